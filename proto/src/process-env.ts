// glibc malloc settings for inference processes (DESIGN.md §10). Measured with the full-size
// PSPNet and 10 concurrent 1152×768 uploads (services/inference/README section): untuned peak
// RSS 445–562 MB (over the 512 MiB pod limit under sustained load), MALLOC_ARENA_MAX=2 alone
// 483 MB, both settings 320–340 MB. Everything that starts inference processes (segserve start,
// the promoter's local driver, benchmarks, the container image) uses these values.
export const INFERENCE_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  // One arena per thread would let onnxruntime's and sharp's threads each keep their own heap.
  MALLOC_ARENA_MAX: '2',
  // Large tensors and image buffers go to mmap and return to the OS on free.
  MALLOC_MMAP_THRESHOLD_: '131072',
});
