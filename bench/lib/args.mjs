// Command-line flags of the bench scripts: `--name value` or a bare `--flag` ('true').

/** `--a 1 --b --c x` → { a: '1', b: 'true', c: 'x' }. */
export function args(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) a[k] = 'true';
    else a[k] = argv[++i];
  }
  return a;
}
