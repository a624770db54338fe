// Original file: segserve/v1/segmenter.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { SegmentRequest as _segserve_v1_SegmentRequest, SegmentRequest__Output as _segserve_v1_SegmentRequest__Output } from '../../segserve/v1/SegmentRequest.js';
import type { SegmentResponse as _segserve_v1_SegmentResponse, SegmentResponse__Output as _segserve_v1_SegmentResponse__Output } from '../../segserve/v1/SegmentResponse.js';

export interface SegmenterClient extends grpc.Client {
  Segment(argument: _segserve_v1_SegmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  Segment(argument: _segserve_v1_SegmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  Segment(argument: _segserve_v1_SegmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  Segment(argument: _segserve_v1_SegmentRequest, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  segment(argument: _segserve_v1_SegmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  segment(argument: _segserve_v1_SegmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  segment(argument: _segserve_v1_SegmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  segment(argument: _segserve_v1_SegmentRequest, callback: grpc.requestCallback<_segserve_v1_SegmentResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface SegmenterHandlers extends grpc.UntypedServiceImplementation {
  Segment: grpc.handleUnaryCall<_segserve_v1_SegmentRequest__Output, _segserve_v1_SegmentResponse>;
  
}

export interface SegmenterDefinition extends grpc.ServiceDefinition {
  Segment: MethodDefinition<_segserve_v1_SegmentRequest, _segserve_v1_SegmentResponse, _segserve_v1_SegmentRequest__Output, _segserve_v1_SegmentResponse__Output>
}
