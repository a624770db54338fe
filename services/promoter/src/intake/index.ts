// The promoter's intake: experiment results from NATS → decision records (docs/architecture.md#nats, #promotion).
//
// Wiring in main.ts (the rollout side owns main/config; this is the whole contract):
//
//   const nc = await connect({ servers: config.natsUrl });
//   const objects = await ensureNatsObjects(nc);                 // idempotent set-up (docs/architecture.md#nats)
//   const policies = await loadPolicies(config.policyPath);      // SEGSERVE_POLICY: file or dir
//   const verifier = createVerifier({                             // from '../verify/index.js'
//     policies, goldenRoot: config.goldenRoot,                    // SEGSERVE_GOLDEN_ROOT
//     rollouts: objects.rollouts, deployer,
//     sandbox: { command, env, resolve, logDir },                 // same as the LocalDeployer's
//     log,
//   });
//   const runner = new YourRolloutRunner({ verifier, deployer, ... });
//   const intake = createIntake({
//     nc, objects, policies,
//     signers: parseSigners(config.signers),                      // SEGSERVE_SIGNERS
//     runner, log, verifications: verifier,                    // measured figures of promotions
//     modelRoots: [path.join(repoRoot, 'models')],                // stables never uploaded
//     countResult: (model, outcome) => telemetry.results.inc({ model, outcome }),
//   });
//   await intake.start();   … on SIGTERM: await intake.stop(); (before deployer.close())
//
// Per result the intake validates (schema, signature, idempotency, artifact, policy on the
// claims), then calls `runner.run(candidate, {working, signal})` and records the outcome the
// runner returns. The runner resumes by experiment id: a result whose record is in progress at
// stage `rollout` is handed to it again after a crash.
export { createIntake, type Intake, type IntakeOptions } from './intake.js';
export { loadPolicies } from './policies.js';
export { ResultProcessor, type IntakeMessage, type ResultOutcome } from './processor.js';
export { DecisionStore, DecisionConflictError, type StoredDecision } from '../adapters/decision-store.js';
export { ensureNatsObjects, ensureIntakeConsumer, DEFAULT_NATS_LIMITS, DEFAULT_INTAKE_CONSUMER, type NatsLimits, type NatsObjects, type IntakeConsumerOptions } from '../adapters/nats-setup.js';
export { ModelRegistry, modelObjectName } from '../adapters/object-store.js';
export { generateSigningKeys, parseSigners, signResult, signingKeyFromSeed, verifyResultSignature } from '../adapters/signing.js';
