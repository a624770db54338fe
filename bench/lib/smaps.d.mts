// Types of smaps.mjs for the TypeScript tests (test/repo/bench-lib.test.ts).
export type SmapsBreakdown = {
  fileMb: number;
  heapMb: number;
  anonSmallMb: number;
  anonLargeMb: number;
  totalMb: number;
  large: { sizeMb: number; rssMb: number; name: string }[];
};
export function smapsBreakdown(text: string): SmapsBreakdown;
export function readSmaps(pid: number): string | undefined;
