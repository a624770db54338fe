// The intake loop: one durable pull consumer per model with a policy, filtered to
// `segserve.experiments.<model>`, one message in flight (a newer result waits behind the
// running one — docs/reliability.md item 31), plus one consumer over every subject that records and
// terminates results of models without a policy (docs/reliability.md item 24).
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { NATS_NAMES, type DecisionEvent, type DecisionRecord, type ReasonCode } from '@segserve/proto';
import { DecisionStore } from '../adapters/decision-store.js';
import {
  DEFAULT_INTAKE_CONSUMER,
  UNKNOWN_MODELS_CONSUMER,
  ensureIntakeConsumer,
  intakeConsumerName,
  type IntakeConsumerOptions,
  type NatsObjects,
} from '../adapters/nats-setup.js';
import { ModelRegistry } from '../adapters/object-store.js';
import { modelFromSubject } from '../domain/experiment-result.js';
import type { Policy } from '../domain/policy.js';
import type { Logger, RolloutRunner } from '../domain/ports.js';
import { currentStableFrom, verificationFrom } from '../verify/current-stable.js';
import type { VerificationJournal } from '../verify/verifier.js';
import { ResultProcessor } from './processor.js';
import { UnverifiedLog } from './unverified.js';

export interface IntakeOptions {
  readonly nc: NatsConnection;
  /** From `ensureNatsObjects(nc)`. */
  readonly objects: NatsObjects;
  /** Models the intake consumes: exactly those with a policy (`loadPolicies`). */
  readonly policies: ReadonlyMap<string, Policy>;
  /** Public nkeys (`U…`) whose signatures are accepted (SEGSERVE_SIGNERS). */
  readonly signers: readonly string[];
  /** Takes accepted candidates through verification and canary; resumes by experiment id. */
  readonly runner: RolloutRunner;
  /**
   * The verifier (from `createVerifier`): the measured figures of a promoted candidate come from
   * its reports. Without it (or after a restart) they are read from the rollout state.
   */
  readonly verifications?: VerificationJournal;
  readonly log: Logger;
  /** Where model.json of a stable that was never uploaded can be found (default: none). */
  readonly modelRoots?: readonly string[];
  /** Ack wait and max deliveries of the durable consumers (default 60 s, 10). */
  readonly consumer?: Partial<IntakeConsumerOptions>;
  /**
   * `segserve_promoter_results_total{model,outcome}` for the results the intake decides itself
   * (outcome `rejected` before the runner, `duplicate`); the runner counts the rollouts it ran.
   * main.ts: `(model, outcome) => telemetry.results.inc({ model, outcome })`.
   */
  readonly countResult?: (model: string, outcome: 'rejected' | 'duplicate') => void;
  /**
   * `segserve_promoter_unverified_results_total{model,reason_code}` for results rejected before
   * their signature is verified (never stored). main.ts: `telemetry.unverified.inc(...)`.
   */
  readonly countUnverified?: (model: string, reasonCode: ReasonCode) => void;
  readonly now?: () => Date;
  /** Called after each decision is stored and announced, before the ack. */
  readonly onDecision?: (record: DecisionRecord) => void | Promise<void>;
}

export interface Intake {
  /** Creates the consumers and starts consuming; resolves once every consumer is running. */
  start(): Promise<void>;
  /** Stops consuming; an in-flight result is nak'ed (its rollout resumes on the next start). */
  stop(): Promise<void>;
  readonly decisions: DecisionStore;
  /** Counts and the latest results rejected before authentication, and results given up on. */
  readonly unverified: UnverifiedLog;
}

export function createIntake(options: IntakeOptions): Intake {
  const consumerOptions: IntakeConsumerOptions = { ...DEFAULT_INTAKE_CONSUMER, ...options.consumer };
  const decisions = new DecisionStore(options.objects.decisions);
  const fromRolloutState = verificationFrom(options.objects.rollouts);
  const unverified = new UnverifiedLog({ log: options.log, ...(options.countUnverified ? { count: options.countUnverified } : {}) });
  const processor = new ResultProcessor({
    policies: options.policies,
    signers: new Set(options.signers),
    decisions,
    registry: new ModelRegistry(options.objects.models),
    currentStable: currentStableFrom(options.objects.rollouts),
    modelRoots: options.modelRoots ?? [],
    runner: options.runner,
    verificationOf: async (model: string, id: string) => options.verifications?.reportFor(id) ?? (await fromRolloutState(model, id)),
    publishEvent: async (event: DecisionEvent) => {
      await options.objects.js.publish(NATS_NAMES.rolloutEventsSubject(event.model), JSON.stringify(event));
    },
    log: options.log,
    now: options.now ?? (() => new Date()),
    maxDeliver: consumerOptions.maxDeliver,
    unverified,
    // Three heartbeats per ack wait: one lost or late heartbeat does not cause a redelivery.
    heartbeatMs: Math.max(250, Math.floor(consumerOptions.ackWaitMs / 3)),
    onDecision: options.onDecision,
    ...(options.countResult ? { onOutcome: options.countResult } : {}),
  });

  const abort = new AbortController();
  const running = new Set<ConsumerMessages>();
  const loops: Promise<void>[] = [];
  let stopping = false;

  const loop = async (name: string, handle: (m: JsMsg) => Promise<unknown>): Promise<void> => {
    while (!stopping) {
      let messages: ConsumerMessages | undefined;
      try {
        const consumer = await options.objects.js.consumers.get(NATS_NAMES.experimentsStream, name);
        messages = await consumer.consume({ max_messages: 1 });
        running.add(messages);
        for await (const m of messages) {
          await handle(m);
          if (stopping) break;
        }
      } catch (err) {
        if (stopping) break;
        options.log.warn('intake consumer interrupted; retrying', { consumer: name, error: err });
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        if (messages) {
          running.delete(messages);
          await messages.close().catch(() => undefined);
        }
      }
    }
  };

  const handleModel = (m: JsMsg): Promise<unknown> => processor.process(m, abort.signal);
  // Only results for models nobody consumes: the model consumers own the others.
  const handleUnknown = async (m: JsMsg): Promise<unknown> => {
    const model = modelFromSubject(m.subject);
    if (model !== null && processor.knownModels.has(model)) return m.ackAck();
    return processor.process(m, abort.signal);
  };

  return {
    decisions,
    unverified,
    async start() {
      const models = [...options.policies.keys()];
      for (const model of models) {
        await ensureIntakeConsumer(options.objects.jsm, intakeConsumerName(model), NATS_NAMES.experimentsSubject(model), consumerOptions);
      }
      await ensureIntakeConsumer(options.objects.jsm, UNKNOWN_MODELS_CONSUMER, NATS_NAMES.experimentsSubject('>'), consumerOptions);
      for (const model of models) loops.push(loop(intakeConsumerName(model), handleModel));
      loops.push(loop(UNKNOWN_MODELS_CONSUMER, handleUnknown));
      options.log.info('intake consuming', { models, signers: options.signers.length, ack_wait_ms: consumerOptions.ackWaitMs, max_deliver: consumerOptions.maxDeliver });
    },
    async stop() {
      stopping = true;
      abort.abort(new Error('intake stopping'));
      await Promise.all([...running].map((m) => m.close().catch(() => undefined)));
      await Promise.all(loops);
    },
  };
}
