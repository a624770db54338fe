// Placeholder until the inference service lands: every command reports itself as not built yet.
export function run(command: string, _argv: readonly string[]): Promise<number> {
  process.stderr.write(`segserve ${command}: not available yet\n`);
  return Promise.resolve(2);
}
