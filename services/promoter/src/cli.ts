// `segserve` subcommands implemented by the promoter package. Intake-side commands (publish,
// keys, decisions) and rollout-side commands (promoter, stack, rollout, rollback) live apart.
export async function run(command: string, argv: readonly string[]): Promise<number> {
  switch (command) {
    case 'publish':
    case 'keys':
    case 'decisions':
      return (await import('./intake/cli.js')).runIntakeCommand(command, argv);
    default:
      return (await import('./rollout/cli.js')).runRolloutCommand(command, argv);
  }
}
