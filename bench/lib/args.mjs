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

/**
 * The entries of `list` named by a comma-separated list of indices (`--flag 0,3`), in that order;
 * all of them when `spec` is empty. An index that is not one of `list`'s fails, naming `flag`.
 */
export function pickByIndex(list, spec, flag) {
  if (!spec) return [...list];
  return spec.split(',').map((s) => {
    const i = Number(s);
    if (!Number.isInteger(i) || i < 0 || i >= list.length) throw new Error(`--${flag}: '${s}' is not a row index (0–${list.length - 1})`);
    return list[i];
  });
}

/**
 * `argv` without the flags named in `valued` (each with its value) and in `bare` (alone):
 * (['--a', '1', '--b', '--c', 'x'], ['a'], ['b']) → ['--c', 'x'].
 */
export function withoutFlags(argv, valued = [], bare = []) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (argv[i].startsWith('--') && valued.includes(k)) {
      if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) i++;
    } else if (!(argv[i].startsWith('--') && bare.includes(k))) out.push(argv[i]);
  }
  return out;
}
