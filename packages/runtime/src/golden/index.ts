// The one golden-set module: listing, digest, mask decoding (palette PNGs included) and scoring.
export { comparePaths, goldenSetDigest, listGoldenSet, loadGoldenSet, readMask, type GoldenItem, type GoldenSet, type LoadedGoldenItem } from './set.js';
export { decodePngMask, type MaskImage } from './png-mask.js';
export { accumulate, emptyConfusion, IGNORE_INDEX, percentile, scores, SegmentationScorer, type Confusion, type MaskNames, type SegmentationScores } from './score.js';
