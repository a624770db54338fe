import { configDefaults, defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests in test/ that start
// real nats-server, prometheus, inference and gateway processes on loopback.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['proto/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/repo/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // Checks of the repository's own files (no processes): in the unit project.
          exclude: [...configDefaults.exclude, 'test/repo/**'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Real processes on a 2-core machine: run test files one at a time so that timing-
          // sensitive scenarios (deadlines, queue timeouts) are not starved by each other.
          fileParallelism: false,
        },
      },
    ],
  },
});
