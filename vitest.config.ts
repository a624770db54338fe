import { configDefaults, defineConfig } from 'vitest/config';

// Three projects:
// - unit: fast tests beside the code, test/repo's checks of the repository's own files and
//   test/**/in-process/ (a service started inside the test against in-process fakes, no child
//   processes; test support that must not ship in a package), files in parallel;
// - integration: test/ files that start real nats-server, prometheus, inference and gateway
//   processes on loopback, one file at a time;
// - e2e: the long journeys through the whole system (a rollout from publish to promotion or
//   rollback, restarts mid-rollout, the README's commands on a fresh clone), last.
// `npm test` runs all three; `npm run test:quick` the first two (while developing).
// A journey lives in a folder named `e2e/` or in a file named `*.e2e.test.ts`.
const E2E = ['test/**/e2e/**/*.test.ts', 'test/**/*.e2e.test.ts'];
const UNIT_IN_TEST = ['test/repo/**/*.test.ts', 'test/**/in-process/**/*.test.ts'];

const processTests = {
  environment: 'node',
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // Real processes on a 2-core machine: one test file at a time, so that the scenarios
  // (deadlines, queue timeouts) of one file do not compete with another file's processes.
  fileParallelism: false,
} as const;

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['proto/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', ...UNIT_IN_TEST],
          environment: 'node',
          // A hang detector, not a speed check (speed is measured in bench/): on a 2-core machine
          // shared with other work a worker can wait many seconds for a core, even in a test that
          // does almost nothing, so vitest's default of 5 s fails tests that are not slow.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Before the process tests, not beside them: both would share the two cores.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT_IN_TEST, ...E2E],
          ...processTests,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: E2E,
          ...processTests,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
