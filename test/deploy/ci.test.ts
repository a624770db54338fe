// .gitlab-ci.yml, checked without GitLab: it parses, stages and needs are consistent, the
// rules put experiments on merge requests and rollouts on the default branch only, images are
// pinned, and every script line calls something that exists in the repository.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMANDS } from '../../packages/cli/src/commands.js';
import { REPO_ROOT } from '../helpers/process.js';
import type { Json } from './render.js';

const ci = parse(readFileSync(path.join(REPO_ROOT, '.gitlab-ci.yml'), 'utf8'), { merge: true }) as Record<string, Json>;
const RESERVED = new Set(['stages', 'workflow', 'variables', 'default', 'include', 'image', 'services', 'cache', 'before_script', 'after_script']);
const jobs = Object.fromEntries(Object.entries(ci).filter(([k]) => !RESERVED.has(k) && !k.startsWith('.'))) as Record<string, Json>;
const stages = ci['stages'] as string[];
const npmScripts = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** A pipeline as GitLab's rules see it. */
interface Context {
  readonly name: string;
  readonly vars: Readonly<Record<string, string>>;
}
const CONTEXTS: Context[] = [
  { name: 'merge request', vars: { CI_PIPELINE_SOURCE: 'merge_request_event', CI_DEFAULT_BRANCH: 'main', CI_MERGE_REQUEST_IID: '7' } },
  { name: 'push to main', vars: { CI_PIPELINE_SOURCE: 'push', CI_COMMIT_BRANCH: 'main', CI_DEFAULT_BRANCH: 'main' } },
  { name: 'push to a branch', vars: { CI_PIPELINE_SOURCE: 'push', CI_COMMIT_BRANCH: 'feature', CI_DEFAULT_BRANCH: 'main' } },
  { name: 'nightly schedule', vars: { CI_PIPELINE_SOURCE: 'schedule', CI_COMMIT_BRANCH: 'main', CI_DEFAULT_BRANCH: 'main' } },
];

/** The `if:` expressions this file uses: `$A == "x"`, `$A == $B`, `!=`, `&&`, `||`. */
export function evalIf(expr: string, vars: Readonly<Record<string, string>>): boolean {
  return expr.split('||').some((conj) =>
    conj.split('&&').every((atom) => {
      const m = /^\s*\$(\w+)\s*(==|!=)\s*(?:"([^"]*)"|\$(\w+))\s*$/.exec(atom);
      if (!m) throw new Error(`unsupported rule expression: ${atom}`);
      const left = vars[m[1]!];
      const right = m[3] ?? vars[m[4]!];
      return m[2] === '==' ? left !== undefined && left === right : left !== right;
    }),
  );
}

type When = 'on_success' | 'manual' | 'never';
function when(rules: Json[] | undefined, ctx: Context): When {
  if (!rules) return 'on_success';
  for (const r of rules) if (r.if === undefined || evalIf(r.if, ctx.vars)) return (r.when ?? 'on_success') as When;
  return 'never';
}
const pipelineRuns = (ctx: Context): boolean => when(ci['workflow'].rules, ctx) !== 'never';
const runs = (job: string, ctx: Context): When => (pipelineRuns(ctx) ? when(jobs[job]!.rules, ctx) : 'never');

function scriptLines(job: Json): string[] {
  return [...(job.before_script ?? []), ...(job.script ?? []), ...(job.after_script ?? [])] as string[];
}

function expand(s: string, job: Json): string {
  const vars: Record<string, string> = { ...ci['variables'], ...job.variables, CI_PROJECT_DIR: REPO_ROOT };
  let out = s;
  for (let i = 0; i < 3; i++) out = out.replace(/\$\{?(\w+)\}?/g, (all, v: string) => vars[v] ?? all);
  return out;
}

/** Commands from outside the repository that the jobs' images provide or install. */
const TOOLS = new Set(['curl', 'chmod', 'pip', 'apk', 'docker', 'kind', 'kubectl', '/kaniko/executor', 'timeout', 'echo']);

function checkCommand(line: string, job: Json): string[] {
  const problems: string[] = [];
  for (const segment of line.split(/&&|\|\||;|\|/)) {
    const words = expand(segment, job).trim().replace(/\s*[<>].*$/, '').split(/\s+/).filter(Boolean);
    let k = 0;
    while (k < words.length && /^\w+=/.test(words[k]!)) k++; // VAR=value prefixes
    const cmd = words[k];
    if (!cmd) continue;
    const args = words.slice(k + 1).map((a) => a.replace(/^"|"$/g, ''));
    const file = (p: string | undefined): void => {
      if (!p || !existsSync(path.join(REPO_ROOT, p))) problems.push(`${line}: ${p ?? '(nothing)'} does not exist`);
    };
    if (cmd === 'bash' || cmd === 'node') file(args[0]);
    else if (cmd === 'npm') {
      if (args[0] === 'run') {
        if (!npmScripts[args[1] ?? '']) problems.push(`${line}: no npm script ${args[1]}`);
      } else if (args[0] === 'test' || args[0] === 'start') {
        if (!npmScripts[args[0]]) problems.push(`${line}: no npm script ${args[0]}`);
      } else if (args[0] !== 'ci') problems.push(`${line}: unexpected npm ${args[0]}`);
    } else if (cmd === 'npx') {
      if (args[0] === 'segserve') {
        if (!COMMANDS[args[1] ?? '']) problems.push(`${line}: no segserve subcommand ${args[1]}`);
      } else if (args[0] !== 'tsc') problems.push(`${line}: unexpected npx ${args[0]}`);
    } else if (cmd === 'python' || cmd === 'python3' || cmd === '/usr/bin/python3') {
      if (args[0] === '-m') file(`${args[1]?.replaceAll('.', '/')}.py`);
      else file(args[0]);
      for (const a of args.slice(2)) if (/\.(ya?ml|json|py)$/.test(a)) file(a);
    } else if (!TOOLS.has(cmd)) problems.push(`${line}: unknown command ${cmd}`);
  }
  return problems;
}

describe('.gitlab-ci.yml', () => {
  it('has the stages build, test, experiment, publish, canary and an e2e stage, in order; every job in one', () => {
    expect(stages.slice(0, 5)).toEqual(['build', 'test', 'experiment', 'publish', 'canary']);
    for (const [name, job] of Object.entries(jobs)) expect(stages, name).toContain(job.stage);
    for (const s of stages) expect(Object.values(jobs).some((j) => j.stage === s), `stage ${s} has a job`).toBe(true);
  });

  it('needs point at earlier-or-same-stage jobs that run whenever the needing job runs', () => {
    for (const [name, job] of Object.entries(jobs)) {
      for (const need of (job.needs ?? []) as (string | { job: string })[]) {
        const dep = typeof need === 'string' ? need : need.job;
        expect(jobs[dep], `${name} needs ${dep}`).toBeDefined();
        expect(stages.indexOf(jobs[dep]!.stage)).toBeLessThanOrEqual(stages.indexOf(job.stage));
        for (const ctx of CONTEXTS) if (runs(name, ctx) !== 'never') expect(runs(dep, ctx), `${name} runs on ${ctx.name} but ${dep} does not`).not.toBe('never');
      }
    }
  });

  it('experiments run on merge requests; publish and canary only from the default branch; e2e nightly or by hand', () => {
    const mr = CONTEXTS[0]!;
    const main = CONTEXTS[1]!;
    const branch = CONTEXTS[2]!;
    const nightly = CONTEXTS[3]!;
    for (const j of Object.keys(jobs).filter((n) => jobs[n]!.stage === 'experiment')) expect(runs(j, mr), j).toBe('on_success');
    for (const j of ['publish', 'canary']) {
      expect(runs(j, main), j).toBe('on_success');
      for (const ctx of [mr, branch, nightly]) expect(runs(j, ctx), `${j} on ${ctx.name}`).toBe('never');
    }
    expect(runs('test', mr)).toBe('on_success');
    expect(runs('e2e-kind', nightly)).toBe('on_success');
    expect(runs('e2e-kind', main)).toBe('manual');
    expect(runs('e2e-kind', mr)).toBe('never');
    expect(evalIf('$A == "x" && $B != $C', { A: 'x', B: '1', C: '2' })).toBe(true);
    expect(() => evalIf('$A =~ /x/', {})).toThrow(/unsupported/);
  });

  it('builds with kaniko from deploy/docker/Dockerfile; test runs npm test through .ci/run', () => {
    const build = jobs['build-image']!;
    expect(build.stage).toBe('build');
    expect(build.image.name).toMatch(/kaniko-project\/executor:v\d/);
    const line = scriptLines(build).join('\n');
    expect(line).toContain('/kaniko/executor');
    const dockerfile = /--dockerfile "?\$CI_PROJECT_DIR\/([^"\s]+)/.exec(line)?.[1];
    expect(dockerfile && existsSync(path.join(REPO_ROOT, dockerfile))).toBe(true);
    expect(scriptLines(jobs['test']!)).toContain('bash .ci/run');
    // .ci/run: the set-up, then the README's test command, which runs every vitest project.
    const run = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
    expect(run.trim().split('\n').filter((l) => !l.startsWith('#') && l.trim() !== '').slice(-2)).toEqual(['bash scripts/setup.sh', 'npm test']);
    expect(npmScripts['test']).toMatch(/&& vitest run$/);
    expect(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')).toMatch(/^npm test +#/m);
  });

  it('publish signs with the protected variable; canary waits with rollout watch --until-done', () => {
    const publish = scriptLines(jobs['publish']!).join('\n');
    expect(publish).toMatch(/npx segserve publish --model /);
    // The seed is never in the file: only the protected CI variable provides it.
    expect(JSON.stringify(ci)).not.toMatch(/SEGSERVE_SIGNING_SEED\s*[:=]\s*\S/);
    expect(jobs['publish']!.variables?.SEGSERVE_SIGNING_SEED).toBeUndefined();
    expect(scriptLines(jobs['canary']!).join('\n')).toMatch(/npx segserve rollout watch "?\$MODEL"? --until-done/);
    expect(jobs['canary']!.resource_group).toBe(jobs['publish']!.resource_group);
    expect(scriptLines(jobs['experiment:eval']!).join('\n')).toMatch(/npx segserve eval --model .* --golden .* --json/);
  });

  it('pins every image (no latest, no untagged)', () => {
    for (const [name, job] of Object.entries(jobs)) {
      for (const img of [job.image, ...(job.services ?? [])].filter(Boolean)) {
        const ref = expand(typeof img === 'string' ? img : img.name, job);
        expect(ref, name).toMatch(/^[\w./-]+:[\w][\w.-]*$/);
        expect(ref, name).not.toMatch(/:latest$/);
      }
    }
  });

  it('every script line calls a command that exists (npm scripts, segserve subcommands, files)', () => {
    const problems = Object.values(jobs).flatMap((job) => scriptLines(job).flatMap((l) => checkCommand(l, job)));
    expect(problems).toEqual([]);
    // The checker can fail.
    expect(checkCommand('npx segserve promote-everything', {})).toHaveLength(1);
    expect(checkCommand('npm run no-such-script', {})).toHaveLength(1);
    expect(checkCommand('bash deploy/ci/missing.sh', {})).toHaveLength(1);
  });

  it('deploy/ci/e2e-kind.sh is valid bash and calls only segserve subcommands that exist', () => {
    const script = path.join(REPO_ROOT, 'deploy', 'ci', 'e2e-kind.sh');
    execFileSync('bash', ['-n', script]);
    const text = readFileSync(script, 'utf8');
    const used = [...text.matchAll(/npx segserve (\w+)/g)].map((m) => m[1]!);
    expect(used).toEqual(expect.arrayContaining(['publish', 'rollout', 'keys']));
    for (const c of used) expect(COMMANDS, c).toHaveProperty(c);
    expect(text).toContain('kubectl apply -k deploy/k8s/overlays/dev');
  });
});
