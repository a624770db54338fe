// Types of smaps.mjs for the TypeScript tests (test/repo/bench-lib.test.ts).
export type SmapsBreakdown = {
  fileMb: number;
  heapMb: number;
  anonSmallMb: number;
  anonLargeMb: number;
  totalMb: number;
  large: { sizeMb: number; rssMb: number; name: string; kind: MappingKind }[];
};
export type MappingKind = 'malloc' | 'arena' | 'wasm' | 'other';
export function mappingKind(flags: readonly string[], start: number): MappingKind;
export function smapsBreakdown(text: string): SmapsBreakdown;
export function readSmaps(pid: number): string | undefined;
