// tsc compiles TypeScript only; the gRPC loader reads .proto files at run time, so the build copies
// them next to the compiled loader (dist/server/proto), where it looks for them.
import { cpSync } from 'node:fs';

cpSync('src/server/proto', 'dist/server/proto', {
  recursive: true,
  filter: (path) => !path.endsWith('.ts'),
});
