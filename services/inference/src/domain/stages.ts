// Request stages, timed for every request and exported as the `stage` label of
// segserve_inference_duration_seconds (docs/architecture.md#metrics).
export const STAGES = ['queue', 'decode', 'preprocess', 'infer', 'postprocess', 'encode', 'total'] as const;
export type Stage = (typeof STAGES)[number];
export type StageTimings = Partial<Record<Stage, number>>;
