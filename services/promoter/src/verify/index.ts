// Verification of candidates on the golden set (docs/architecture.md#promotion, step "verify"). `createVerifier` is
// the one-call wiring for main.ts; the pieces are exported for tests and other drivers.
import type { KV } from '@nats-io/kv';
import type { Policy } from '../domain/policy.js';
import type { CandidateVerifier, Logger, ModelDeployer } from '../domain/ports.js';
import { currentStableFrom } from './current-stable.js';
import { LocalInferenceSandbox, type InferenceSandbox, type LocalSandboxOptions } from './sandbox.js';
import { GoldenVerifier, type VerificationJournal } from './verifier.js';

export interface VerifierWiring {
  readonly policies: ReadonlyMap<string, Policy>;
  /** Directory with `<model>/golden/{images,masks}` (SEGSERVE_GOLDEN_ROOT; default the repository's models/). */
  readonly goldenRoot: string;
  /** KV `segserve_rollouts` (from ensureNatsObjects): where the current stable is read. */
  readonly rollouts: KV;
  /** The deployer that runs the candidate: its `metricsTargets(model, 'canary')` gives the /metrics to sample RSS from. */
  readonly deployer: Pick<ModelDeployer, 'metricsTargets'>;
  /** How to start a private no-traffic process for the stable: pass the same command, env and resolver as the local deployer. */
  readonly sandbox: LocalSandboxOptions | InferenceSandbox;
  readonly log: Logger;
  readonly requestDeadlineMs?: number;
  /** `paired` (default): the stable measured alongside each candidate; `cached`: once per digest. */
  readonly stableMeasurement?: 'paired' | 'cached';
}

export function createVerifier(w: VerifierWiring): CandidateVerifier & VerificationJournal {
  return new GoldenVerifier({
    policies: w.policies,
    goldenRoot: w.goldenRoot,
    currentStable: currentStableFrom(w.rollouts),
    sandbox: 'start' in w.sandbox ? w.sandbox : new LocalInferenceSandbox(w.sandbox),
    candidateMetricsEndpoints: (model) => w.deployer.metricsTargets?.(model, 'canary') ?? [],
    log: w.log,
    ...(w.requestDeadlineMs ? { requestDeadlineMs: w.requestDeadlineMs } : {}),
    ...(w.stableMeasurement ? { stableMeasurement: w.stableMeasurement } : {}),
  });
}

export { GoldenVerifier, type GoldenVerifierOptions, type VerificationJournal } from './verifier.js';
export { LocalInferenceSandbox, type InferenceSandbox, type LocalSandboxOptions, type SandboxInstance } from './sandbox.js';
export { currentStableFrom, verificationFrom, type StableRef } from './current-stable.js';
export { runGoldenSet, runGoldenSetPaired, type GoldenMeasurement, type GoldenRunOptions, type GoldenTarget } from './golden-run.js';
