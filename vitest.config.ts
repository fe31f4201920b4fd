import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Interop tests need real etcd; `npm run test:interop` runs them (see .ci/run).
    exclude: ['test/interop/**', 'node_modules/**'],
    // Simulation suites run hundreds of seeds; they are CPU-bound, not flaky, so the
    // limit is generous and fixed rather than retried.
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'threads',
  },
});
