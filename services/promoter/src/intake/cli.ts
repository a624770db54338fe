// Placeholder: publish, keys and decisions arrive with the intake.
export function runIntakeCommand(command: string, _argv: readonly string[]): Promise<number> {
  process.stderr.write(`segserve ${command}: not available yet\n`);
  return Promise.resolve(2);
}
