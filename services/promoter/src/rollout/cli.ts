// `segserve promoter|stack|rollout|rollback`: everything is wired in main.ts (the only place
// that reads the environment); loaded lazily so `segserve publish` never loads it.
export async function runRolloutCommand(command: string, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE[command] ?? `segserve ${command}`}\n`);
    return 0;
  }
  return (await import('../main.js')).main(command, argv);
}

const USAGE: Readonly<Record<string, string>> = {
  promoter: 'usage: segserve promoter   (SEGSERVE_NATS_URL, SEGSERVE_POLICY, SEGSERVE_DEPLOYER=local|kubernetes, SEGSERVE_PROMETHEUS_URL, SEGSERVE_SIGNERS; see the README)',
  stack: 'usage: segserve stack [--model <dir>] [--policy <file|dir>] [--nats-port 4222] [--http-port 8080] [--grpc-port 9090] [--metrics-port 9102] [--prometheus-port 9091] [--no-prometheus]',
  rollout: 'usage: segserve rollout status <model> [--json]\n       segserve rollout watch <model> [--until-done] [--experiment <id>] [--timeout <30m>] [--json]',
  rollback: 'usage: segserve rollback <model> [--reason <text>] [--no-wait]',
};
