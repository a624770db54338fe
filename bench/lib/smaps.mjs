// A process's resident memory by mapping (/proc/<pid>/smaps), in the groups that say where a
// peak comes from: file-backed (code and data of node, onnxruntime, libvips …), the main malloc
// arena (`[heap]`), anonymous mappings under 1 MiB (V8's heap pages, thread stacks, small malloc
// mappings) and of 1 MiB or more (one model run's activations, tensors, decoded images, malloc's
// large blocks), listed one by one, each with what its VmFlags and address say it is (`kind`):
// - `malloc`: a block glibc malloc mapped on its own (≥ MALLOC_MMAP_THRESHOLD_): with
//   glibc.malloc.hugetlb=1 (INFERENCE_MALLOC_ENV) malloc advises huge pages on it, flag `hg`;
//   buffers of onnxruntime, sharp and Node's ArrayBuffers are such blocks;
// - `arena`: one of malloc's secondary arenas (MALLOC_ARENA_MAX): reserved 64 MiB-aligned with
//   MAP_NORESERVE (flag `nr`), the small allocations of threads other than the main one;
// - `wasm`: a WebAssembly memory (V8 maps it `dc`, not copied on fork): the tensor builder's;
// - `other`: anything else (V8's heap spaces, thread stacks).
import { readFileSync } from 'node:fs';

const MIB = 2 ** 20;

/** What a large anonymous mapping is, from its VmFlags and start address (see the header). */
export function mappingKind(flags, start) {
  const f = new Set(flags);
  if (f.has('hg')) return 'malloc';
  if (f.has('dc')) return 'wasm';
  if (f.has('nr') && start % (64 * MIB) === 0) return 'arena';
  return 'other';
}
const HEADER = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/;

/**
 * {fileMb, heapMb, anonSmallMb, anonLargeMb, totalMb, large: [{sizeMb, rssMb, name, kind}]} of an
 * smaps text, resident (Rss) MiB; `large` are the anonymous mappings of 1 MiB or more, largest Rss first.
 */
export function smapsBreakdown(text) {
  const out = { fileMb: 0, heapMb: 0, anonSmallMb: 0, anonLargeMb: 0, totalMb: 0, large: [] };
  let current;
  const close = () => {
    if (!current) return;
    const rssMb = current.rssKb / 1024;
    out.totalMb += rssMb;
    if (current.name.startsWith('/')) out.fileMb += rssMb;
    else if (current.name === '[heap]') out.heapMb += rssMb;
    else if (current.bytes < MIB) out.anonSmallMb += rssMb;
    else {
      out.anonLargeMb += rssMb;
      out.large.push({ sizeMb: current.bytes / MIB, rssMb, name: current.name, kind: mappingKind(current.flags, current.start) });
    }
  };
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      close();
      const start = Number.parseInt(h[1], 16);
      current = { start, bytes: Number.parseInt(h[2], 16) - start, name: h[3].trim(), rssKb: 0, flags: [] };
      continue;
    }
    const flags = /^VmFlags:\s*(.*)$/.exec(line);
    if (flags && current) current.flags = flags[1].trim().split(/\s+/);
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) current.rssKb = Number(rss[1]);
  }
  close();
  out.large.sort((x, y) => y.rssMb - x.rssMb);
  return out;
}

/** The smaps text of a live process, or undefined once it is gone. */
export function readSmaps(pid) {
  try {
    return readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
}
