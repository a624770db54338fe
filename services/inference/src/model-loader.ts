// Fetch → verify → load → check the graph against model.json → warm up. Only a model that went
// through all of it is ever served (docs/reliability.md item 20). With SEGSERVE_ORT_ARENA=auto the
// sessions are first created with onnxruntime's arena off; when the warm-up run shows small
// activations (domain/arena.ts) they are created again, with it on, and warmed again.

import { decideArena, initialArena, type ArenaDecision, type ArenaPolicy } from './domain/arena.js';
import { describeModel, type LoadedModel, type ModelArtifact } from './domain/model.js';
import { Pipeline } from './pipeline.js';
import type { ImageLimits } from './domain/image-cost.js';
import type { MemoryProbe, MemoryReading } from './adapters/memory-probe.js';
import type { ImageCodec, InferenceBackend, ModelStore } from './ports.js';

/** `arena` undefined: the factory's own default (no policy given to loadPipeline). */
export type BackendFactory = (artifact: ModelArtifact, arena?: boolean) => Promise<InferenceBackend>;

export interface LoadedPipeline {
  readonly pipeline: Pipeline;
  readonly model: LoadedModel;
  readonly backend: InferenceBackend;
  /** Fetch + verify + session creation + warm-up, seconds. */
  readonly loadSeconds: number;
  /** How the served sessions' arena was chosen (undefined: no policy was given). */
  readonly arena: ArenaDecision | undefined;
  /** The first warm-up run's peak growth of resident memory (what 'auto' decided from). */
  readonly warmUpGrowthBytes: number | undefined;
  /** Memory just before the served sessions' warm-up run, its peak reset (undefined: not measurable). */
  readonly beforeWarmUp: MemoryReading | undefined;
}

export interface LoadOptions {
  readonly store: ModelStore;
  readonly createBackend: BackendFactory;
  readonly codec: ImageCodec;
  readonly limits: ImageLimits;
  /** How onnxruntime's arena is chosen (config.ts arenaPolicy). */
  readonly arena?: ArenaPolicy;
  /** Measures memory around the warm-up runs; without it nothing is measured ('auto' keeps the arena off). */
  readonly memory?: MemoryProbe;
  readonly now?: () => number;
}

interface Warmed {
  readonly backend: InferenceBackend;
  readonly model: LoadedModel;
  readonly before: MemoryReading | undefined;
  readonly growthBytes: number | undefined;
}

/** Runs `warmUp` and measures the peak of resident memory it reached above the state before it. */
export async function measureWarmUp(memory: MemoryProbe | undefined, warmUp: () => Promise<void>): Promise<{ before: MemoryReading | undefined; growthBytes: number | undefined }> {
  const before = memory?.resetPeak() ? memory.read() : undefined;
  await warmUp();
  const after = before === undefined ? undefined : memory?.read();
  return { before, growthBytes: before !== undefined && after !== undefined ? Math.max(0, after.peakBytes - before.rssBytes) : undefined };
}

async function warmed(options: LoadOptions, artifact: ModelArtifact, arena: boolean | undefined): Promise<Warmed> {
  const backend = await options.createBackend(artifact, arena);
  try {
    const model = describeModel(artifact, backend.inputs, backend.outputs);
    return { backend, model, ...(await measureWarmUp(options.memory, () => backend.warmUp())) };
  } catch (err) {
    await backend.close();
    throw err;
  }
}

/**
 * Sessions started with the arena `policy` chooses: `start` them with its initial arena (undefined
 * without a policy: the starter's own default), decide from their warm-up growth, and when the
 * decision differs `stop` them and start them again with it. Also what the bench's bare variant
 * starts its sessions with (bench/workers/bare.mjs).
 */
export async function settleArena<T extends { readonly growthBytes: number | undefined }>(
  policy: ArenaPolicy | undefined,
  start: (arena: boolean | undefined) => Promise<T>,
  stop: (started: T) => Promise<unknown>,
): Promise<{ started: T; decision: ArenaDecision | undefined; growthBytes: number | undefined }> {
  const first = policy === undefined ? undefined : initialArena(policy.mode);
  let started = await start(first);
  const { growthBytes } = started;
  const decision = policy === undefined ? undefined : decideArena(policy, growthBytes);
  if (decision !== undefined && decision.arena !== first) {
    await stop(started);
    started = await start(decision.arena);
  }
  return { started, decision, growthBytes };
}

export async function loadPipeline(options: LoadOptions): Promise<LoadedPipeline> {
  const now = options.now ?? (() => performance.now());
  const t0 = now();
  const artifact = await options.store.load();
  const { started: w, decision, growthBytes } = await settleArena(
    options.arena,
    (arena) => warmed(options, artifact, arena),
    (stale) => stale.backend.close(),
  );
  const { backend, model } = w;
  return {
    pipeline: new Pipeline({ model, codec: options.codec, backend, limits: options.limits }),
    model,
    backend,
    loadSeconds: (now() - t0) / 1000,
    arena: decision,
    warmUpGrowthBytes: growthBytes,
    beforeWarmUp: w.before,
  };
}
