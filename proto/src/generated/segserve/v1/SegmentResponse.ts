// Original file: segserve/v1/segmenter.proto

import type { ClassStats as _segserve_v1_ClassStats, ClassStats__Output as _segserve_v1_ClassStats__Output } from '../../segserve/v1/ClassStats.js';
import type { MaskFormat as _segserve_v1_MaskFormat, MaskFormat__Output as _segserve_v1_MaskFormat__Output } from '../../segserve/v1/MaskFormat.js';
import type { StageTimings as _segserve_v1_StageTimings, StageTimings__Output as _segserve_v1_StageTimings__Output } from '../../segserve/v1/StageTimings.js';

export interface SegmentResponse {
  'model'?: (string);
  'version'?: (string);
  'width'?: (number);
  'height'?: (number);
  'mask'?: (Buffer | Uint8Array | string);
  'classes'?: (_segserve_v1_ClassStats)[];
  'mask_format'?: (_segserve_v1_MaskFormat);
  'timings'?: (_segserve_v1_StageTimings | null);
}

export interface SegmentResponse__Output {
  'model': (string);
  'version': (string);
  'width': (number);
  'height': (number);
  'mask': (Buffer);
  'classes': (_segserve_v1_ClassStats__Output)[];
  'mask_format': (_segserve_v1_MaskFormat__Output);
  'timings': (_segserve_v1_StageTimings__Output | null);
}
