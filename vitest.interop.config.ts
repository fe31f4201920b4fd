import { defineConfig } from 'vitest/config';

/** Interop tests need real etcd and etcdctl on the PATH; .ci/run installs them first. */
export default defineConfig({
  test: {
    include: ['test/interop/**/*.interop.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
