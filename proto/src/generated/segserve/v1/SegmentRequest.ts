// Original file: segserve/v1/segmenter.proto

import type { MaskFormat as _segserve_v1_MaskFormat, MaskFormat__Output as _segserve_v1_MaskFormat__Output } from '../../segserve/v1/MaskFormat.js';

export interface SegmentRequest {
  'model'?: (string);
  'version'?: (string);
  'image'?: (Buffer | Uint8Array | string);
  'mask_format'?: (_segserve_v1_MaskFormat);
}

export interface SegmentRequest__Output {
  'model': (string);
  'version': (string);
  'image': (Buffer);
  'mask_format': (_segserve_v1_MaskFormat__Output);
}
