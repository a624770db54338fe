// `segserve eval --against <stable dir>`: a candidate measured paired with the stable on the
// golden set, exactly as the verifier measures it — each in its own inference process (the
// serving path: gRPC Segment, PNG masks, the process's own total time, peak RSS from /metrics),
// image by image, alternating which goes first — and the ExperimentResult claims of the second
// form that come out of it: the candidate's figures, the stable's from the same run, and the
// ratios' intervals. What CI measures and what the promoter verifies are then one measurement.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadGoldenSet } from '@segserve/runtime';
import { parseModelManifest, type ExperimentBaseline, type ModelManifest } from '@segserve/proto';
import type { Metrics, ModelRef } from '../domain/ports.js';
import { pairedRatios, type RatioInterval } from '../domain/ratio.js';
import { runGoldenSetPaired, type GoldenMeasurement } from './golden-run.js';
import { LocalInferenceSandbox, type SandboxInstance } from './sandbox.js';

export interface AgainstOptions {
  readonly candidateDir: string;
  readonly stableDir: string;
  readonly goldenDir: string;
  /** Passes over the golden set (the policy's verify.repeats; default 3). */
  readonly repeats?: number;
  /** argv that starts an inference process, e.g. [node, segserve bin, 'inference']. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly logDir: string;
  readonly signal?: AbortSignal;
  readonly requestDeadlineMs?: number;
}

/** The claims of an ExperimentResult of the second form (`publish --result` reads this file). */
export interface PairedClaims {
  readonly schema_version: 2;
  readonly metrics: Metrics;
  readonly baseline: ExperimentBaseline;
  readonly golden: { readonly sha256: string };
}

export interface AgainstReport {
  readonly candidate: ModelRef;
  readonly stable: ModelRef;
  readonly images: number;
  readonly pairs: number;
  readonly ratios: Readonly<Record<string, RatioInterval>>;
  readonly claims: PairedClaims;
  readonly measured: { readonly candidate: GoldenMeasurement; readonly stable: GoldenMeasurement };
}

/** The cost figures compared as ratios (the rest — mIoU, per-class IoU — stay absolute). */
const COST_METRICS = ['latency_ms_p95', 'latency_ms_p50', 'peak_rss_mb'];

async function manifestOf(dir: string): Promise<ModelManifest> {
  const file = path.join(dir, 'model.json');
  return parseModelManifest(JSON.parse(await readFile(file, 'utf8')), file);
}

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

function rounded(m: Metrics): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => [k, round(v)]));
}

export async function measureAgainst(o: AgainstOptions): Promise<AgainstReport> {
  const [cm, sm] = await Promise.all([manifestOf(o.candidateDir), manifestOf(o.stableDir)]);
  if (cm.name !== sm.name) throw new Error(`${o.candidateDir} is model '${cm.name}' but ${o.stableDir} is '${sm.name}'`);
  if (cm.sha256 === sm.sha256) throw new Error(`${o.candidateDir} and ${o.stableDir} have the same model.onnx: nothing to compare`);
  const candidate: ModelRef = { model: cm.name, version: cm.version, sha256: cm.sha256 };
  const stable: ModelRef = { model: sm.name, version: sm.version, sha256: sm.sha256 };
  const dirs = new Map([
    [cm.sha256, o.candidateDir],
    [sm.sha256, o.stableDir],
  ]);
  const sandbox = new LocalInferenceSandbox({
    command: o.command,
    env: o.env,
    logDir: o.logDir,
    resolve: (ref) => Promise.resolve({ args: ['--model', path.resolve(dirs.get(ref.sha256) ?? '')], env: {} }),
  });
  const golden = await loadGoldenSet(o.goldenDir);
  const signal = o.signal ?? new AbortController().signal;
  const started: SandboxInstance[] = [];
  try {
    // One after the other: two model loads at once would be measured by neither.
    for (const ref of [candidate, stable]) started.push(await sandbox.start(ref, signal));
    const [c, s] = started as [SandboxInstance, SandboxInstance];
    const [mc, ms] = (await runGoldenSetPaired(
      [
        { model: candidate.model, version: candidate.version, target: c.target, metricsEndpoints: c.metricsEndpoints },
        { model: stable.model, version: stable.version, target: s.target, metricsEndpoints: s.metricsEndpoints },
      ],
      { golden, repeats: o.repeats ?? 3, requestDeadlineMs: o.requestDeadlineMs ?? 60_000, signal },
    )) as [GoldenMeasurement, GoldenMeasurement];
    const server = mc.latencySource === 'server' && ms.latencySource === 'server';
    const ratios = pairedRatios(
      COST_METRICS.filter((m) => mc.metrics[m] !== undefined && ms.metrics[m] !== undefined),
      { metrics: mc.metrics, latencyMs: server ? mc.serverMs : mc.clientMs },
      { metrics: ms.metrics, latencyMs: server ? ms.serverMs : ms.clientMs },
    );
    const pairs = Math.min(mc.serverMs.length, ms.serverMs.length);
    const claims: PairedClaims = {
      schema_version: 2,
      metrics: rounded(mc.metrics),
      baseline: {
        version: stable.version,
        sha256: stable.sha256,
        metrics: rounded(ms.metrics),
        intervals: Object.fromEntries(Object.entries(ratios).filter(([, r]) => r.samples > 0).map(([m, r]) => [m, [round(r.low), round(r.high)] as const])),
        pairs,
      },
      golden: { sha256: golden.sha256 },
    };
    return { candidate, stable, images: golden.items.length, pairs, ratios, claims, measured: { candidate: mc, stable: ms } };
  } finally {
    for (const i of started) await i.close();
  }
}
