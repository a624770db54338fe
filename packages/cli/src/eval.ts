// `segserve eval`: without --against, the inference package's evaluation in this process.
// With `--against <stable dir>`, the candidate measured paired with the stable, each in its own
// inference process, as the promoter's verifier measures them (@segserve/promoter measureAgainst),
// and the claims of an ExperimentResult of the second form: figures that depend on the hardware
// become ratios to the stable that another machine can check. `--out <file>` writes them for
// `segserve publish --result <file>`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './models.js';

const USAGE =
  'usage: segserve eval --model <candidate dir> --against <stable dir> [--golden <dir>] [--passes <n>] [--out <result.json>] [--json]\n' +
  '       segserve eval --model <dir> --golden <dir> [--passes <n>] [--json]   (one model, in this process)';

const SEGSERVE_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

const x = (v: number): string => `×${v.toFixed(3)}`;

export async function run(command: string, argv: readonly string[]): Promise<number> {
  if (!argv.some((a) => a === '--against' || a.startsWith('--against='))) return (await import('@segserve/inference/cli')).run(command, argv);
  let values: { model?: string | undefined; against?: string | undefined; golden?: string | undefined; passes?: string | undefined; out?: string | undefined; json?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: [...argv], options: { model: { type: 'string' }, against: { type: 'string' }, golden: { type: 'string' }, passes: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } }));
  } catch (err) {
    process.stderr.write(`segserve eval: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  const passes = Number(values.passes ?? 3);
  if (!values.model || !values.against || !Number.isInteger(passes) || passes < 1) {
    process.stderr.write(`segserve eval: ${!values.model ? '--model <dir> is required' : !values.against ? '--against <dir> is required' : '--passes must be a positive integer'}\n${USAGE}\n`);
    return 2;
  }
  const candidateDir = path.resolve(values.model);
  const { measureAgainst, describeRatio, defaultGoldenDir } = await import('@segserve/promoter');
  // By default the newest golden set the model's policy accepts (verify.golden_sets).
  const goldenDir = path.resolve(values.golden ?? (await defaultGoldenDir(candidateDir)));
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'segserve-eval-'));
  // The processes get this environment minus what picks a model or a port.
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^SEGSERVE_(MODEL_|GRPC_PORT|METRICS_PORT|NATS_URL)/.test(e[0])));
  const started = performance.now();
  let ok = false;
  try {
    const r = await measureAgainst({ candidateDir, stableDir: path.resolve(values.against), goldenDir, repeats: passes, command: [process.execPath, SEGSERVE_BIN, 'inference'], env, logDir });
    if (values.out) await writeFile(values.out, `${JSON.stringify(r.claims, null, 2)}\n`);
    ok = true;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...r.claims, ratios: r.ratios, images: r.images, pairs: r.pairs })}\n`);
      return 0;
    }
    const c = r.claims.metrics;
    const s = r.claims.baseline.metrics;
    const row = (name: string, m: string, unit: string, digits: number): string => {
      const ratio = r.ratios[m];
      const v = (n: number | undefined): string => (n === undefined ? '—' : `${n.toFixed(digits)}${unit}`);
      return `${name.padEnd(16)}${v(c[m]).padEnd(16)}${v(s[m]).padEnd(16)}${ratio ? describeRatio(ratio) : ''}`;
    };
    const lines = [
      `candidate ${r.candidate.model}/${r.candidate.version}  against  stable ${r.stable.model}/${r.stable.version}   (${r.images} golden images × ${passes} passes = ${r.pairs} pairs, alternating)`,
      '',
      `${''.padEnd(16)}${'candidate'.padEnd(16)}${'stable'.padEnd(16)}ratio (candidate / stable)`,
      row('mIoU', 'miou', '', 4),
      row('latency p50', 'latency_ms_p50', ' ms', 1),
      row('latency p95', 'latency_ms_p95', ' ms', 1),
      row('peak RSS', 'peak_rss_mb', ' MB', 1),
      '',
      `Latency and memory depend on the machine: the result claims them as ratios to ${r.stable.version} (${Object.entries(r.ratios).map(([m, v]) => `${m} ${x(v.ratio)}`).join(', ')}).`,
      values.out ? `Claims written to ${values.out}: segserve publish --model ${values.model} --result ${values.out}` : 'Write the claims with --out <file>, then: segserve publish --model <dir> --result <file>',
      `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`segserve eval: ${err instanceof Error ? err.message : String(err)} (process logs in ${logDir})\n`);
    return 1;
  } finally {
    if (ok) await rm(logDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
