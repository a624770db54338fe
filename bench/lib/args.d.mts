// Types of args.mjs for the TypeScript tests (test/repo/bench-lib.test.ts).
export function args(argv: readonly string[]): Record<string, string>;
export function pickByIndex<T>(list: readonly T[], spec: string | undefined, flag: string): T[];
export function withoutFlags(argv: readonly string[], valued?: readonly string[], bare?: readonly string[]): string[];
