// Types of trees.mjs for the TypeScript tests (test/repo/bench-lib.test.ts).
export type Trees = { before?: string; after: string };
export function treesOf(before: string | undefined, options?: { root?: string; cwd?: string; exists?: (file: string) => boolean }): Trees;
export function turnAt(names: readonly string[], i: number): string[];
export function turnOrder(names: readonly string[], rounds: number): string[];
export function describeTrees(trees: Trees, cwd?: string): string;
export function runTreesInTurn(
  trees: Trees,
  rounds: number,
  command: (tree: string, dir: string) => [string, string[]],
  options?: { onLine?: (tree: string, line: string) => void; env?: NodeJS.ProcessEnv },
): Promise<{ tree: string; text: string }[]>;
