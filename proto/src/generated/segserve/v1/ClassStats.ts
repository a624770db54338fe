// Original file: segserve/v1/segmenter.proto

import type { Long } from '@grpc/proto-loader';

export interface ClassStats {
  'name'?: (string);
  'pixels'?: (number | string | Long);
  'fraction'?: (number | string);
}

export interface ClassStats__Output {
  'name': (string);
  'pixels': (string);
  'fraction': (number);
}
