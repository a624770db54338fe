// `segserve inference` and `segserve eval` (packages/cli dispatches here).
export async function run(command: string, argv: readonly string[]): Promise<number> {
  const main = await import('./main.js');
  switch (command) {
    case 'inference':
      return main.runInference(argv);
    case 'eval':
      return main.runEval(argv);
    default:
      process.stderr.write(`segserve: the inference package has no command '${command}'\n`);
      return 2;
  }
}
