// `segserve promoter`: the promoter process. Wired in main.ts (the only place that reads the
// environment), loaded lazily so that `segserve --help` loads nothing.
const USAGE = 'usage: segserve promoter   (SEGSERVE_NATS_URL, SEGSERVE_POLICY, SEGSERVE_DEPLOYER=local|kubernetes, SEGSERVE_PROMETHEUS_URL, SEGSERVE_SIGNERS; see docs/configuration.md)';

export async function run(command: string, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command !== 'promoter') {
    process.stderr.write(`segserve: the promoter package has no command '${command}'\n`);
    return 2;
  }
  if (argv.length > 0) {
    process.stderr.write(`segserve promoter: unexpected argument '${argv[0] ?? ''}' (configure with SEGSERVE_* variables)\n`);
    return 2;
  }
  return (await import('./main.js')).main();
}
