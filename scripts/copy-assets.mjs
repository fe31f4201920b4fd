// tsc compiles TypeScript only; the gRPC loaders read .proto files at run time, so the build copies
// them next to the compiled loaders (dist/server/proto for the etcd API, dist/services/ids/proto
// for the ID service), where they look for them.
import { cpSync } from 'node:fs';

cpSync('src/server/proto', 'dist/server/proto', {
  recursive: true,
  filter: (path) => !path.endsWith('.ts'),
});

cpSync('src/services/ids/proto', 'dist/services/ids/proto', {
  recursive: true,
  filter: (path) => !path.endsWith('.ts'),
});
