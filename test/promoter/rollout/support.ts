// Shared by the rollout tests: NATS limits that fit the test server's 2 GB JetStream store.
import { DEFAULT_NATS_LIMITS, type NatsLimits } from '../../../services/promoter/src/adapters/nats-setup.js';

export const TEST_NATS_LIMITS: NatsLimits = { ...DEFAULT_NATS_LIMITS, modelsMaxBytes: 512 * 1024 * 1024, experimentsMaxBytes: 64 * 1024 * 1024, eventsMaxBytes: 64 * 1024 * 1024 };
