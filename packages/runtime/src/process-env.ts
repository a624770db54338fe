// glibc malloc settings for inference processes (docs/architecture.md#memory-and-admission-by-cost).
// A fixed mmap threshold keeps the peak RSS of concurrent full-size uploads under the pod limit where
// glibc's dynamic one does not (`node bench/memory.mjs --sweep`; figures in docs/benchmarks.md
// "Memory"). Everything that starts inference processes (segserve start,
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
