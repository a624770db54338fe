export { COMMANDS, type CliEntry, type CommandSpec } from './commands.js';
