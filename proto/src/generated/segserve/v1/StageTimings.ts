// Original file: segserve/v1/segmenter.proto


export interface StageTimings {
  'queue_ms'?: (number | string);
  'decode_ms'?: (number | string);
  'preprocess_ms'?: (number | string);
  'infer_ms'?: (number | string);
  'postprocess_ms'?: (number | string);
  'encode_ms'?: (number | string);
  'total_ms'?: (number | string);
}

export interface StageTimings__Output {
  'queue_ms': (number);
  'decode_ms': (number);
  'preprocess_ms': (number);
  'infer_ms': (number);
  'postprocess_ms': (number);
  'encode_ms': (number);
  'total_ms': (number);
}
