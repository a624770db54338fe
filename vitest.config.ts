import { configDefaults, defineConfig } from 'vitest/config';

// Three projects:
// - unit: fast tests beside the code, test/repo's checks of the repository's own files and
//   test/**/in-process/ (a service started inside the test against in-process fakes, no child
//   processes; test support that must not ship in a package);
// - integration: test/ files that start real nats-server, prometheus, inference and gateway
//   processes on loopback;
// - e2e: the long journeys through the whole system (a rollout from publish to promotion or
//   rollback, restarts mid-rollout, the README's commands on a fresh clone), last.
// The projects run one after the other (groupOrder): unit and integration two files at a time,
// e2e three, and last, alone, the one journey that keeps both cores busy on purpose (e2e-busy).
// Every test is written for a busy machine (issue 14): none may depend on having it to itself.
// `npm test` runs them all; `npm run test:quick` unit and integration (while developing).
// A journey lives in a folder named `e2e/` or in a file named `*.e2e.test.ts`.
const E2E = ['test/**/e2e/**/*.test.ts', 'test/**/*.e2e.test.ts'];
// Starts two CPU-bound processes of its own: beside another journey it would starve it (and itself).
const E2E_BUSY = ['test/promoter/intake/busy-machine.e2e.test.ts'];
const UNIT_IN_TEST = ['test/repo/**/*.test.ts', 'test/**/in-process/**/*.test.ts'];

const processTests = {
  environment: 'node',
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // After each file, whatever processes it started and left running are stopped.
  setupFiles: ['test/helpers/leftovers.ts'],
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
          // Two files at a time (vitest's default on two cores is one): loading modules is most of
          // their work. Before the process tests, not beside them: both would share the two cores.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT_IN_TEST, ...E2E],
          ...processTests,
          // Two files at a time: much of a file's time is start-ups and waits. Not more: a file with
          // live load costs CPU for as long as it runs, so crowding the cores makes it slower and dearer.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: E2E,
          exclude: [...configDefaults.exclude, ...E2E_BUSY],
          ...processTests,
          // Three journeys at a time: most of a journey is waiting (canary steps, bakes, start-ups,
          // the README's tour), and the README's clone alone takes about as long as the others in
          // sequence. It starts first (the largest file); the others share the two other places.
          // Without busy-machine beside them: its burners starved the README's build and start-up.
          maxWorkers: 3,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          name: 'e2e-busy',
          include: E2E_BUSY,
          ...processTests,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
