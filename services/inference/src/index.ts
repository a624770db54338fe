// @segserve/inference as a library: the pipeline and evaluation that `segserve eval` and the
// promoter's verification use, the pure metric functions, and the process entry for tests.
export { startInference, defaultBackendFactory, type InferenceProcess, type StartOptions } from './app.js';
export { parseConfig, applyFlags, imageLimits, arenaPolicy, ConfigError, DEFAULTS, type InferenceConfig, type ModelSource, type OrtSettings, type SessionSettings } from './config.js';
export { decideArena, initialArena, type ArenaDecision, type ArenaMode, type ArenaPolicy } from './domain/arena.js';
export { processMemory, type MemoryProbe, type MemoryReading } from './adapters/memory-probe.js';
export { Pipeline, StageTimer, type InspectedImage, type MaskFormat, type SegmentResult } from './pipeline.js';
export { readImageHeader, exifOrientation, type ImageHeader } from './domain/image-header.js';
export { checkImage, segmentWorkBytes, jpegShrinkOnLoad, type ImageLimits } from './domain/image-cost.js';
export { encodeMaskPng } from './domain/mask-png.js';
export { loadPipeline, measureWarmUp, settleArena, type LoadedPipeline, type BackendFactory } from './model-loader.js';
export { evaluate, formatReport, peakRssMb, type EvalReport, type EvaluateOptions } from './eval.js';
export { classMap, classMapCounted, classStats, classStatsResized, resizeNearest, nearestSource, logit, type ClassStat, type OutputSpec } from './domain/mask.js';
export { TensorBuilder, channelTables, type Normalization } from './domain/tensor.js';
export { parseInferInput, parseShape, type TensorSpec } from './domain/oip.js';
export { sniffImageFormat, ALLOWED_FORMATS, type ImageFormat } from './domain/image-format.js';
export { ModelLoadError, verifyArtifact, describeModel, segmentSpec, sha256Hex, type LoadedModel, type ModelArtifact } from './domain/model.js';
export { STAGES, type Stage, type StageTimings } from './domain/stages.js';
export { DirectoryModelStore } from './adapters/directory-store.js';
export { SharpCodec } from './adapters/image-codec.js';
export { OrtWorkerPool } from './adapters/ort-backend.js';
export { InferenceMetrics, DURATION_BUCKETS } from './adapters/metrics.js';
export { HEALTH_SERVICES, SEGMENTER_SERVICE, OIP_SERVICE } from './grpc/server.js';
export type { ModelStore, InferenceBackend, ImageCodec, ClassMapOutput } from './ports.js';
