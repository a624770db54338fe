// Entry point for the `segserve` CLI (packages/cli): `gateway`.
import { runGateway } from './main.js';

export function run(command: string, argv: readonly string[]): Promise<number> {
  switch (command) {
    case 'gateway':
      return runGateway(argv);
    default:
      process.stderr.write(`segserve: the gateway package has no command '${command}'\n`);
      return Promise.resolve(2);
  }
}
