// Original file: segserve/v1/segmenter.proto

export const MaskFormat = {
  PNG: 'PNG',
  RAW: 'RAW',
} as const;

export type MaskFormat =
  | 'PNG'
  | 0
  | 'RAW'
  | 1

export type MaskFormat__Output = typeof MaskFormat[keyof typeof MaskFormat]
