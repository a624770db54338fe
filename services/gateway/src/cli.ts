// Entry point for the `segserve` CLI (packages/cli): `gateway` and `start`.
import { runGateway, runStartCommand } from './main.js';

export function run(command: string, argv: readonly string[]): Promise<number> {
  switch (command) {
    case 'gateway':
      return runGateway(argv);
    case 'start':
      return runStartCommand(argv);
    default:
      process.stderr.write(`segserve: the gateway package has no command '${command}'\n`);
      return Promise.resolve(2);
  }
}
