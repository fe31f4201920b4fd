import { defineConfig } from 'vitest/config';

/**
 * Chaos tests start whole clusters of real processes and inject faults for tens of seconds each;
 * `npm run test:chaos` runs them (see .ci/run), one file at a time.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
