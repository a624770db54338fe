// The CandidateVerifier (DESIGN.md §7 "verify"): before any live traffic, run the golden set
// through the candidate's inference process (started by the deployer, no traffic), measure
// mIoU, p95 latency and peak RSS, and reject when the measurement does not reproduce the claim
// within `claim_tolerance`, or no longer beats the stable — the stable measured the same way in
// a private sandbox process, cached by (digest, golden set, repeats).
import path from 'node:path';
import { checkClaims, evaluatePolicy, fmt, type Policy } from '../domain/policy.js';
import type { Candidate, CandidateVerifier, Logger, Metrics, ModelRef, VerificationReport } from '../domain/ports.js';
import { goldenDigest, loadGoldenSet, type GoldenSet } from './golden-set.js';
import { runGoldenSet, type GoldenMeasurement } from './golden-run.js';
import type { InferenceSandbox } from './sandbox.js';

export interface GoldenVerifierOptions {
  readonly policies: ReadonlyMap<string, Policy>;
  /** Directory holding `<model>/golden/{images,masks}/` (the repository's models/ by default). */
  readonly goldenRoot: string;
  /** The model's current stable (from the rollout state); null before the first promotion. */
  readonly currentStable: (model: string) => Promise<ModelRef | null>;
  /** Starts a private no-traffic process for the stable. */
  readonly sandbox: InferenceSandbox;
  /** `host:port` of the /metrics endpoints behind the candidate's target (peak RSS). */
  readonly candidateMetricsEndpoints: (model: string, target: string) => readonly string[];
  readonly log: Logger;
  /** Deadline of one Segment call (default 60 s: a 2-core machine shared with a canary). */
  readonly requestDeadlineMs?: number;
}

function report(
  ok: boolean,
  reasonCode: string,
  reason: string,
  candidate: Candidate,
  measured: Metrics = {},
  stableMeasured: Metrics | null = null,
): VerificationReport {
  return { ok, reasonCode, reason, claimed: candidate.claimed, measured, stableMeasured };
}

function describe(m: Metrics): string {
  const parts = ['miou', 'latency_ms_p95', 'peak_rss_mb'].filter((k) => m[k] !== undefined).map((k) => `${k} ${fmt(m[k] as number)}`);
  return parts.join(', ');
}

export class GoldenVerifier implements CandidateVerifier {
  private readonly goldenSets = new Map<string, GoldenSet>();
  private readonly stableFigures = new Map<string, Promise<Metrics>>();

  constructor(private readonly options: GoldenVerifierOptions) {}

  async verify(candidate: Candidate, target: string, signal: AbortSignal): Promise<VerificationReport> {
    const { model, version } = candidate.ref;
    const policy = this.options.policies.get(model);
    if (!policy) return report(false, 'unknown_model', `Rejected: model '${model}' has no promotion policy.`, candidate);
    if (!policy.verify.golden) return report(true, 'verification_skipped', 'Not verified: the policy turns golden-set verification off.', candidate);

    let golden: GoldenSet;
    try {
      golden = await this.golden(model);
    } catch (err) {
      return report(false, 'golden_missing', `Rejected: the golden set of ${model} cannot be read (${err instanceof Error ? err.message : String(err)}).`, candidate);
    }
    if (golden.sha256 !== candidate.goldenSha256) {
      return report(
        false,
        'golden_mismatch',
        `Rejected: the claims were measured on golden set ${candidate.goldenSha256.slice(0, 12)}, but this promoter's golden set is ${golden.sha256.slice(0, 12)}, so they cannot be checked.`,
        candidate,
      );
    }

    let measured: GoldenMeasurement;
    try {
      measured = await this.measure(golden, policy, { model, version, target, metricsEndpoints: this.options.candidateMetricsEndpoints(model, target) }, signal);
    } catch (err) {
      signal.throwIfAborted();
      return report(false, 'verification_failed', `Rejected: the golden set could not be run through ${version} (${err instanceof Error ? err.message : String(err)}).`, candidate);
    }
    this.options.log.info('candidate measured', { model, version, ...measured.metrics, images: measured.images, rss_samples: measured.rssSamples, latency_source: measured.latencySource });

    const stable = await this.options.currentStable(model);
    let stableMeasured: Metrics | null = null;
    if (stable && stable.sha256 !== candidate.ref.sha256) {
      try {
        stableMeasured = await this.measureStable(stable, golden, policy, signal);
      } catch (err) {
        signal.throwIfAborted();
        return report(
          false,
          'verification_failed',
          `Rejected: the stable ${stable.version} could not be measured for comparison (${err instanceof Error ? err.message : String(err)}).`,
          candidate,
          measured.metrics,
        );
      }
    }

    const claims = checkClaims(policy, candidate.claimed, measured.metrics);
    if (!claims.ok) return report(false, claims.code, claims.reason, candidate, measured.metrics, stableMeasured);
    const verdict = evaluatePolicy(policy, measured.metrics, stableMeasured);
    const against = stableMeasured ? ` against the stable ${stable?.version ?? ''} measured the same way (${describe(stableMeasured)})` : '';
    if (!verdict.accepted) {
      return report(false, verdict.code, `${verdict.reason.replace(/\.$/, '')} — measured on the golden set${against}.`, candidate, measured.metrics, stableMeasured);
    }
    return report(
      true,
      'verified',
      `Verified on ${measured.images} golden images (${describe(measured.metrics)})${against}: ${claims.reason.replace(/\.$/, '')}; ${verdict.reason.replace(/^Accepted: /, '')}`,
      candidate,
      measured.metrics,
      stableMeasured,
    );
  }

  /** The golden set, reloaded when its digest changed on disk. */
  private async golden(model: string): Promise<GoldenSet> {
    const dir = path.join(this.options.goldenRoot, model, 'golden');
    const digest = await goldenDigest(dir);
    const cached = this.goldenSets.get(model);
    if (cached?.sha256 === digest) return cached;
    const loaded = await loadGoldenSet(dir);
    this.goldenSets.set(model, loaded);
    return loaded;
  }

  private measure(
    golden: GoldenSet,
    policy: Policy,
    at: { model: string; version: string; target: string; metricsEndpoints: readonly string[] },
    signal: AbortSignal,
  ): Promise<GoldenMeasurement> {
    return runGoldenSet({
      ...at,
      golden,
      repeats: policy.verify.repeats,
      requestDeadlineMs: this.options.requestDeadlineMs ?? 60_000,
      signal,
    });
  }

  private measureStable(stable: ModelRef, golden: GoldenSet, policy: Policy, signal: AbortSignal): Promise<Metrics> {
    const key = `${stable.sha256}:${golden.sha256}:${policy.verify.repeats}`;
    let figures = this.stableFigures.get(key);
    if (!figures) {
      figures = (async () => {
        this.options.log.info('measuring the stable in a sandbox', { model: stable.model, version: stable.version });
        const instance = await this.options.sandbox.start(stable, signal);
        try {
          const m = await this.measure(golden, policy, { model: stable.model, version: stable.version, target: instance.target, metricsEndpoints: instance.metricsEndpoints }, signal);
          this.options.log.info('stable measured', { model: stable.model, version: stable.version, ...m.metrics, images: m.images, rss_samples: m.rssSamples });
          return m.metrics;
        } finally {
          await instance.close();
        }
      })();
      this.stableFigures.set(key, figures);
      // A failed measurement is not cached: the next candidate tries again.
      figures.catch(() => this.stableFigures.delete(key));
    }
    return figures;
  }
}
