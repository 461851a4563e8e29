import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dist/ must match src/: integration tests spawn bin/tulle, which runs dist/
    globalSetup: ['test/global-setup.ts'],
    // integration tests build namespaces and run real daemons: give them room, run files in
    // parallel on the 2 cores, but never retry a failure away
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
