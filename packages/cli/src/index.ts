// @segserve/cli: the `segserve` command. The library surface is small: the command table and
// the default-model choice that `start`, `stack` and the tests share.
export { COMMANDS, type CliEntry, type CommandSpec } from './commands.js';
export { chooseDefaultModel, describeModel, sampleImage, DEFAULT_MODEL_FILE, REPO_ROOT, type ModelChoice } from './models.js';
