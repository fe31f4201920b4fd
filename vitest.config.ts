import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Interop tests need real etcd (`npm run test:interop`); chaos tests start whole clusters for
    // minutes (`npm run test:chaos`). .ci/run runs both.
    exclude: ['test/interop/**', 'test/chaos/**', 'node_modules/**'],
    // Simulation suites run hundreds of seeds; they are CPU-bound, not flaky, so the
    // limit is generous and fixed rather than retried.
    testTimeout: 300_000,
    hookTimeout: 60_000,
    // Child processes, not worker threads: a CI run once hung after its last test with a worker
    // thread spinning in Node's environment teardown (FreeEnvironment → CleanupHandles looping
    // on a handle or request that never closed; 6 min of CPU, seen with gdb). A child process
    // is ended by its exit, whatever a native addon (LMDB, SQLite, gRPC) leaves behind.
    pool: 'forks',
  },
});
