// The README's commands on a fresh clone (issue 14): the repository is cloned into a temporary
// folder, `npm start` runs there, and every ```sh readme-test block of README.md runs in order
// with `bash -e` — the README is this test's input, so a command that breaks, or a promise the
// tour makes that stops holding, fails here. What the test changes, and why:
// - ports: the README's default ports (8080, 9090, 4222) become free ones, through the variables
//   and flags the README and `segserve stack --help` name, so that a segserve running on this
//   machine cannot make the test fail or talk to the wrong server;
// - `segserve stack` gets the bundled policy with shorter canary windows (check interval and bake;
//   the same steps, checks and limits) and one verification pass, and its own TMPDIR so that the
//   tour finds this stack's key;
// - node_modules: hard links to this checkout's (an `npm ci` would need the registry), the install
//   stamp touched so that the set-up does not reinstall; the set-up's build runs on this checkout's
//   outputs dated before the sources (tsc -b checks every source against them, rebuilds what differs).
// Expected ids, versions and reason codes are read from the README's text, not written here.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { DecisionRecord } from '@segserve/proto';
import sharp from 'sharp';
import { supervise, type Supervised } from '@segserve/runtime';
import { REPO_ROOT, freePort, requireBinary, spawnProcess, tempDir, waitFor, type TempDir } from '../helpers/process.js';
import { NATS_INSTALL_HINT } from '../helpers/nats.js';

const README = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

interface Block {
  readonly text: string;
  readonly background: boolean;
  /** The README line the block starts on, for messages. */
  readonly line: number;
}

/** The ```sh readme-test [background] blocks, in order. */
export function readmeBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  for (const m of readme.matchAll(/^```sh readme-test( background)?\n([\s\S]*?)^```$/gm)) {
    blocks.push({ text: m[2]!, background: m[1] !== undefined, line: readme.slice(0, m.index).split('\n').length });
  }
  return blocks;
}

/** A README sentence's capture, or a failure naming what the README no longer says. */
function fromReadme(re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(README.replace(/\s+/g, ' '));
  if (!m) throw new Error(`README.md no longer says ${what} (${re.source}); update the README or this test`);
  return m;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The processes whose command line or working directory lies in `dir` (what this test started). */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

interface Run {
  readonly code: number | null;
  readonly output: string;
}

describe('the README, as a newcomer runs it', () => {
  let tmp: TempDir | undefined;
  let clone = '';
  const started: Supervised[] = [];

  afterAll(async () => {
    // Ctrl-C for whatever still runs (the test failed half-way), then anything left in the clone.
    for (const p of started.reverse()) {
      try {
        process.kill(-p.pid, 'SIGINT');
      } catch {
        // already gone
      }
      await Promise.race([p.exited, new Promise((r) => setTimeout(r, 60_000))]);
    }
    if (clone) {
      for (const pid of processesIn(clone)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await tmp?.[Symbol.asyncDispose]();
  }, 180_000);

  /** A command in its own process group (as a terminal runs it; Ctrl-C reaches the whole group), in the clone. */
  function start(command: string, args: readonly string[], env: Record<string, string>, name: string): Supervised {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SEGSERVE_')));
    const p = supervise({ command, args, cwd: clone, env: { ...base, ...env }, name, detached: true, keepLines: Number.POSITIVE_INFINITY });
    started.push(p);
    return p;
  }

  /** Runs a README block with `bash -e`; an ERR trap names the command that failed. */
  async function runBlock(block: Block, env: Record<string, string>, timeoutMs: number): Promise<Run> {
    const script = `trap 'echo "readme-test: exit $? at line $((LINENO - 1)) of the block: $BASH_COMMAND" >&2' ERR\n${block.text}`;
    const p = start('bash', ['-e', '-c', script], env, `README block at line ${block.line}`);
    const timer = setTimeout(() => process.kill(-p.pid, 'SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, output: p.output() };
  }

  it('starts with the two commands, and every readme-test block runs on a fresh clone as the tour says', async () => {
    requireBinary('nats-server', NATS_INSTALL_HINT);
    requireBinary('git', 'apt-get install -y git');
    // The two commands first.
    expect(/^# segserve\n+```sh\nnpm start +#[^\n]*\nnpm test +#[^\n]*\n```/.test(README), 'README starts with npm start and npm test').toBe(true);
    const blocks = readmeBlocks(README);
    const background = blocks.findIndex((b) => b.background);
    expect(blocks.length, 'readme-test blocks').toBeGreaterThanOrEqual(3);
    expect(blocks.filter((b) => b.background), 'one background block (segserve stack)').toHaveLength(1);
    const stackCommand = blocks[background]!.text.trim();
    expect(stackCommand, 'the background block is one segserve stack command').toMatch(/^npx segserve stack( --model models\/facade-ads\/\d+)?$/);
    expect(background, 'the stack comes after the npm start blocks and before the tour').toBeGreaterThan(0);
    expect(background).toBeLessThan(blocks.length - 1);

    // What the tour promises, read from its text.
    const defaultVersion = readFileSync(path.join(REPO_ROOT, 'models', 'facade-ads', 'DEFAULT'), 'utf8').trim();
    // The stack serves the default, or the version its command names; the tour's text says which.
    const stableVersion = /--model models\/facade-ads\/(\d+)/.exec(stackCommand)?.[1] ?? defaultVersion;
    const [, beside] = fromReadme(/is started beside the stable \(version (\d+)/, 'which version the candidate is started beside');
    expect(beside, 'the stable the tour names is the one segserve stack serves').toBe(stableVersion);
    const [, refusedVersion, refusedCode, refusedReason] = fromReadme(/Version (\d+) is refused at the policy \(`(\w+): ([^`]+)`\)/, 'which version is refused, and why');
    const [, restoredVersion] = fromReadme(/`rollback` brings version (\d+) back/, 'what rollback brings back');
    const tour = blocks.slice(background + 1).map((b) => b.text).join('\n');
    const published = [...tour.matchAll(/segserve publish --model models\/facade-ads\/(\d+)\b[^\n]*--id (\S+)/g)].map((m) => ({ version: m[1]!, id: m[2]! }));
    const refused = published.find((p) => p.version === refusedVersion);
    const candidate = published.find((p) => p.version !== refusedVersion);
    expect(refused, `the tour publishes version ${refusedVersion}`).toBeDefined();
    expect(candidate, 'the tour publishes a candidate').toBeDefined();

    // A fresh clone, its node_modules hard-linked from this checkout.
    tmp = await tempDir('segserve-readme-');
    clone = path.join(tmp.path, 'segserve');
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone]);
    execFileSync('cp', ['-al', path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules')]);
    execFileSync('rm', ['-rf', path.join(clone, 'node_modules', '.vite'), path.join(clone, 'node_modules', '.vite-temp')]);
    // npm ci links the workspaces' bins; this checkout's install may predate one.
    const cliPackage = JSON.parse(readFileSync(path.join(clone, 'packages', 'cli', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const [name, file] of Object.entries(cliPackage.bin)) {
      const link = path.join(clone, 'node_modules', '.bin', name);
      if (!existsSync(link)) await symlink(path.join('..', '@segserve', 'cli', file), link);
    }
    // The set-up's `tsc -b` starts from this checkout's build outputs, dated before every source
    // file: tsc then compares each source's text with what its build info recorded, re-checks and
    // re-emits whatever differs (a change not committed here, a stale build), and only confirms the
    // rest — what a rebuild from scratch would produce, without its minutes on a busy machine.
    const workspaces = (JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    const longAgo = new Date(0);
    for (const ws of workspaces) {
      for (const out of ['dist', 'tsconfig.tsbuildinfo']) {
        if (!existsSync(path.join(REPO_ROOT, ws, out))) continue;
        execFileSync('cp', ['-r', path.join(REPO_ROOT, ws, out), path.join(clone, ws, out)]);
        execFileSync('find', [path.join(clone, ws, out), '-exec', 'touch', '-h', '-d', longAgo.toISOString(), '{}', '+']);
      }
    }
    const stamp = path.join(clone, 'node_modules', '.segserve-install-stamp');
    expect(existsSync(stamp), 'scripts/setup.sh install stamp in this checkout').toBe(true);
    const now = new Date();
    await utimes(stamp, now, now);

    const [http, grpc, nats, metrics, prom] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const ports = (text: string): string =>
      text.replaceAll('127.0.0.1:8080', `127.0.0.1:${http}`).replaceAll('127.0.0.1:9090', `127.0.0.1:${grpc}`).replaceAll('127.0.0.1:4222', `127.0.0.1:${nats}`);
    const stackTmp = path.join(tmp.path, 'stack-tmp');
    await mkdir(stackTmp);
    const env = { TMPDIR: stackTmp };

    // npm start: set-up (the build), then the banner with commands that work as printed.
    const npmStart = start('npm', ['start'], { ...env, SEGSERVE_HTTP_PORT: String(http), SEGSERVE_GRPC_PORT: String(grpc) }, 'npm start');
    await npmStart.waitForLine(/segserve is running/, { timeoutMs: 900_000 });
    await waitFor(() => npmStart.output().includes('Ctrl-C stops everything'), { timeoutMs: 10_000, what: 'the whole banner' });
    const banner = npmStart.output();
    expect(banner).toContain(`segserve is running: model facade-ads version ${defaultVersion}`);
    expect(banner).toContain(`http://127.0.0.1:${http}/`);
    expect(banner).toContain('?format=color');

    for (const block of blocks.slice(0, background)) {
      const run = await runBlock({ ...block, text: ports(block.text) }, env, 600_000);
      expect(run.code, `README block at line ${block.line} failed:\n${run.output}`).toBe(0);
      // curl without -f exits 0 on an error answer: the error table's body gives it away.
      expect(run.output, `README block at line ${block.line}`).not.toMatch(/"error"\s*:\s*\{/);
    }
    // What the first blocks promise: a class-index mask at the image's size, a colour PNG, JSON, gRPC, OIP, eval.
    const mask = await sharp(await readFile(path.join(clone, 'mask.png'))).metadata();
    const image = await sharp(path.join(clone, 'models', 'facade-ads', 'golden', 'images', 'facade-001.jpg')).metadata();
    expect([mask.format, mask.width, mask.height]).toEqual(['png', image.width, image.height]);
    expect((await sharp(await readFile(path.join(clone, 'color.png'))).metadata()).format).toBe('png');

    // Ctrl-C stops npm start and frees its ports.
    process.kill(-npmStart.pid, 'SIGINT');
    await npmStart.exited;
    expect(npmStart.output()).toContain('stopped.');
    for (const port of [http, grpc]) expect(await portOpen(port), `port ${port} after Ctrl-C`).toBe(false);

    // segserve stack in the background, with a policy whose canary windows are shorter.
    const policy = parse(readFileSync(path.join(REPO_ROOT, 'services', 'promoter', 'policies', 'facade-ads.yaml'), 'utf8')) as { canary: Record<string, unknown>; verify: Record<string, unknown> };
    policy.canary['interval'] = '10s';
    policy.canary['bake'] = '10s';
    // One pass over the golden set instead of three: the tour's candidate is far from the limits,
    // and the bundled policy's repeats as it ships are test/promoter/intake/busy-machine.e2e.test.ts's.
    policy.verify['repeats'] = 1;
    const policyFile = path.join(tmp.path, 'facade-ads.yaml');
    await writeFile(policyFile, stringify(policy));
    const stackBlock = blocks[background]!;
    // The gateway's ports through the variables of the README's configuration table, the rest by flags.
    const stackFlags = `--policy ${policyFile} --nats-port ${nats} --metrics-port ${metrics} --prometheus-port ${prom}`;
    const stack = start('bash', ['-e', '-c', `exec ${stackBlock.text.trim()} ${stackFlags}`], { ...env, SEGSERVE_HTTP_PORT: String(http), SEGSERVE_GRPC_PORT: String(grpc) }, 'segserve stack');
    await stack.waitForLine(/segserve stack is running/, { timeoutMs: 600_000 });
    await waitFor(() => stack.output().includes('logs  '), { timeoutMs: 10_000, what: 'the whole stack banner' });
    expect(stack.output()).toContain(`gateway      http://127.0.0.1:${http}/`);
    expect(stack.output()).toMatch(new RegExp(`inference {4}facade-ads ${stableVersion} at ipv4:127\\.0\\.0\\.1:\\d+`));
    expect(stack.output()).toContain(`prometheus   http://127.0.0.1:${prom}`);
    const cli = (args: readonly string[]): Supervised => spawnProcess(process.execPath, [path.join(clone, 'packages', 'cli', 'dist', 'bin.js'), ...args], { cwd: clone, env: { SEGSERVE_NATS_URL: `nats://127.0.0.1:${nats}` } });
    const idle = cli(['rollout', 'status', 'facade-ads']);
    expect(await idle.exited).toBe(0);
    expect(idle.output()).toMatch(new RegExp(`facade-ads: Idle\\n {2}stable {3}${stableVersion} `));
    // Prometheus finds the inference process through the promoter's service discovery.
    await waitFor(
      async () => {
        const res = (await (await fetch(`http://127.0.0.1:${prom}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: Record<string, string>; health: string }[] } };
        return res.data.activeTargets.some((t) => t.labels['job'] === 'inference' && t.health === 'up');
      },
      { timeoutMs: 120_000, intervalMs: 1_000, what: 'prometheus scraping the inference process' },
    );

    const tourRuns: Run[] = [];
    for (const block of blocks.slice(background + 1)) tourRuns.push(await runBlock({ ...block, text: ports(block.text) }, env, 1_800_000));
    const decisions = cli(['decisions', 'facade-ads', '--json']);
    expect(await decisions.exited).toBe(0);
    const records = JSON.parse(decisions.output()) as DecisionRecord[];
    const decisionOf = (id: string): DecisionRecord | undefined => records.find((r) => r.key === id);
    const tourOutput = tourRuns.map((r) => r.output).join('\n');

    // The refused version: refused with the README's reason code and sentence, before any traffic.
    expect(decisionOf(refused!.id), tourOutput).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: refusedCode, version: refusedVersion });
    expect(decisionOf(refused!.id)!.reason).toContain(refusedReason);
    // The candidate: promoted, then rolled back by hand to the README's version — or, as the README
    // says can happen on a busy machine, rolled back by the promoter for lack of evidence.
    const verdict = decisionOf(candidate!.id);
    expect(verdict, tourOutput).toBeDefined();
    const failed = tourRuns.find((r) => r.code !== 0);
    if (failed) {
      const watch = new RegExp(`readme-test: exit 1 at line \\d+ of the block: npx segserve rollout watch facade-ads --until-done --experiment ${candidate!.id}\\b`);
      expect(failed.output, `a tour command failed:\n${tourOutput}`).toMatch(watch);
      expect(verdict!.reason_code, `only no_evidence may end the candidate's rollout:\n${tourOutput}`).toBe('no_evidence');
    } else {
      expect(verdict!.status, tourOutput).toMatch(/^(promoted|rolled_back)$/);
      expect(tourOutput).toMatch(new RegExp(`${candidate!.id}[\\s\\S]*promoted`));
      const status = cli(['rollout', 'status', 'facade-ads', '--json']);
      expect(await status.exited).toBe(0);
      const record = JSON.parse(status.output()) as { stable: { version: string } | null };
      expect(record.stable?.version, 'the stable after the rollback').toBe(restoredVersion);
      // The tour's `segserve decisions` names every id it published.
      for (const p of published) expect(tourOutput, `segserve decisions lists ${p.id}`).toContain(p.id);
    }

    // Ctrl-C stops the whole stack and frees every port (npx ends by the signal it forwarded: no exit code).
    process.kill(-stack.pid, 'SIGINT');
    await stack.exited;
    expect(stack.output()).toContain('stopping (SIGINT)');
    const open = async (): Promise<number[]> => (await Promise.all([http, grpc, nats, metrics, prom].map(async (port) => ((await portOpen(port)) ? [port] : [])))).flat();
    await waitFor(async () => (await open()).length === 0, { timeoutMs: 60_000, intervalMs: 500, what: 'the stack to free its ports' }).catch(async () => expect(await open(), 'ports still open after Ctrl-C').toEqual([]));
    await waitFor(() => processesIn(clone).length === 0, { timeoutMs: 60_000, intervalMs: 500, what: 'the processes in the clone to end' }).catch(() => expect(processesIn(clone), 'processes left in the clone').toEqual([]));
  }, 3_600_000);
});

describe('readmeBlocks', () => {
  it('finds the blocks in order, background marked, and nothing else', () => {
    const md = '# x\n```sh\nnpm start\n```\n```sh readme-test\na\nb\n```\ntext\n```sh readme-test background\nserve\n```\n```text\nno\n```\n';
    expect(readmeBlocks(md)).toEqual([
      { text: 'a\nb\n', background: false, line: 5 },
      { text: 'serve\n', background: true, line: 10 },
    ]);
  });
});
