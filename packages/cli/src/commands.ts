// The `segserve` command table: which package implements each subcommand. Each package
// exports `run(command, argv) => Promise<number>` from its `./cli` entry; the CLI imports only
// the package a command needs, so `segserve inference` never loads the promoter's code.

export type CliEntry = (command: string, argv: readonly string[]) => Promise<number>;

export interface CommandSpec {
  readonly summary: string;
  readonly load: () => Promise<CliEntry>;
}

const inference = async (): Promise<CliEntry> => (await import('@segserve/inference/cli')).run;
const gateway = async (): Promise<CliEntry> => (await import('@segserve/gateway/cli')).run;
const promoter = async (): Promise<CliEntry> => (await import('@segserve/promoter/cli')).run;

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  inference: { summary: 'one inference server on a model directory (--model <dir>)', load: inference },
  eval: { summary: 'mIoU, per-class IoU, latency and peak RSS on a golden set', load: inference },
  gateway: { summary: 'the REST + gRPC front door', load: gateway },
  start: { summary: 'inference + gateway on the bundled default model (what `npm start` runs)', load: gateway },
  promoter: { summary: 'the rollout controller', load: promoter },
  stack: { summary: 'the full local stack: nats-server, prometheus, inference, gateway, promoter', load: promoter },
  publish: { summary: 'upload a model version and publish its signed ExperimentResult', load: promoter },
  keys: { summary: 'keys generate: an ed25519 signing key pair for publishers', load: promoter },
  decisions: { summary: 'the decision records of a model', load: promoter },
  rollout: { summary: 'rollout status|watch <model>', load: promoter },
  rollback: { summary: 'restore the previous stable of a model', load: promoter },
};
