import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ClassStats as _segserve_v1_ClassStats, ClassStats__Output as _segserve_v1_ClassStats__Output } from './segserve/v1/ClassStats.js';
import type { SegmentRequest as _segserve_v1_SegmentRequest, SegmentRequest__Output as _segserve_v1_SegmentRequest__Output } from './segserve/v1/SegmentRequest.js';
import type { SegmentResponse as _segserve_v1_SegmentResponse, SegmentResponse__Output as _segserve_v1_SegmentResponse__Output } from './segserve/v1/SegmentResponse.js';
import type { SegmenterClient as _segserve_v1_SegmenterClient, SegmenterDefinition as _segserve_v1_SegmenterDefinition } from './segserve/v1/Segmenter.js';
import type { StageTimings as _segserve_v1_StageTimings, StageTimings__Output as _segserve_v1_StageTimings__Output } from './segserve/v1/StageTimings.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  segserve: {
    v1: {
      ClassStats: MessageTypeDefinition<_segserve_v1_ClassStats, _segserve_v1_ClassStats__Output>
      MaskFormat: EnumTypeDefinition
      SegmentRequest: MessageTypeDefinition<_segserve_v1_SegmentRequest, _segserve_v1_SegmentRequest__Output>
      SegmentResponse: MessageTypeDefinition<_segserve_v1_SegmentResponse, _segserve_v1_SegmentResponse__Output>
      Segmenter: SubtypeConstructor<typeof grpc.Client, _segserve_v1_SegmenterClient> & { service: _segserve_v1_SegmenterDefinition }
      StageTimings: MessageTypeDefinition<_segserve_v1_StageTimings, _segserve_v1_StageTimings__Output>
    }
  }
}

