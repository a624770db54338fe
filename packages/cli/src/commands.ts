// The `segserve` command table. The services' own processes (`inference`, `eval`, `gateway`,
// `promoter`) come from each service's `./cli` entry; the commands that drive the system from the
// outside (start, stack, publish, keys, decisions, rollout, rollback) live in this package. Each
// entry is loaded lazily, so `segserve inference` never loads the promoter's code.

export type CliEntry = (command: string, argv: readonly string[]) => Promise<number>;

export interface CommandSpec {
  readonly summary: string;
  readonly load: () => Promise<CliEntry>;
}

const inference = async (): Promise<CliEntry> => (await import('@segserve/inference/cli')).run;
const gateway = async (): Promise<CliEntry> => (await import('@segserve/gateway/cli')).run;
const promoter = async (): Promise<CliEntry> => (await import('@segserve/promoter/cli')).run;
const start = async (): Promise<CliEntry> => (await import('./start.js')).run;
const stack = async (): Promise<CliEntry> => (await import('./stack.js')).run;
const intake = async (): Promise<CliEntry> => (await import('./intake.js')).run;
const rollout = async (): Promise<CliEntry> => (await import('./rollout.js')).run;
const evaluate = async (): Promise<CliEntry> => (await import('./eval.js')).run;

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  inference: { summary: 'one inference server on a model directory (--model <dir>)', load: inference },
  eval: { summary: 'mIoU, per-class IoU, latency and peak RSS on a golden set; --against <stable dir>: paired, as ratios', load: evaluate },
  gateway: { summary: 'the REST + gRPC front door', load: gateway },
  start: { summary: 'inference + gateway on the bundled default model (what `npm start` runs)', load: start },
  promoter: { summary: 'the rollout controller', load: promoter },
  stack: { summary: 'the full local stack: nats-server, prometheus, inference, gateway, promoter', load: stack },
  publish: { summary: 'upload a model version and publish its signed ExperimentResult', load: intake },
  keys: { summary: 'keys generate: an ed25519 signing key pair for publishers', load: intake },
  decisions: { summary: 'the decision records of a model', load: intake },
  rollout: { summary: 'rollout status|watch <model>', load: rollout },
  rollback: { summary: 'restore the previous stable of a model', load: rollout },
};
