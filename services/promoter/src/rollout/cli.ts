// Placeholder: promoter, stack, rollout and rollback arrive with the rollout controller.
export function runRolloutCommand(command: string, _argv: readonly string[]): Promise<number> {
  process.stderr.write(`segserve ${command}: not available yet\n`);
  return Promise.resolve(2);
}
