#!/usr/bin/env node
import { COMMANDS } from './commands.js';

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`);
  return `usage: segserve <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command === undefined ? 2 : 0;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    process.stderr.write(`segserve: unknown command '${command}'\n\n${usage()}`);
    return 2;
  }
  const run = await spec.load();
  return run(command, rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    // Servers keep the event loop alive and exit through their own shutdown path; one-shot
    // commands resolve with their exit code.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`segserve: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
