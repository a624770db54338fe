// glibc malloc settings for inference processes (DESIGN.md §10). Peak RSS of the full-size
// PSPNet under 10 concurrent 1152×768 uploads (`node bench/memory.mjs --sweep`, docs/benchmarks.md
// "Memory"): two sessions with glibc's dynamic mmap threshold 580–586 MB (over the 512 MiB pod
// limit), with this fixed threshold 361–369 MB; the default single session 329–334 MB with the
// dynamic threshold and 286–311 MB with this one. Everything that starts inference processes (segserve start,
// the promoter's local driver, benchmarks, the container image) uses these values.
export const INFERENCE_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  // One arena per thread would let onnxruntime's and sharp's threads each keep their own heap.
  MALLOC_ARENA_MAX: '2',
  // Large tensors and image buffers go to mmap and return to the OS on free.
  MALLOC_MMAP_THRESHOLD_: '131072',
  // ...and those mappings are faulted in 2 MiB pages (transparent huge pages, madvise): the
  // per-run activations then cost about what onnxruntime's arena costs in CPU without keeping
  // them resident (`node bench/ort-settings.mjs`, docs/benchmarks.md "Issues 15 and 11").
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
});
