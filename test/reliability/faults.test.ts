// Faults under generated load (issue 8, docs/reliability.md items 15, 17, 19): two inference processes
// behind a gateway, REST and gRPC clients running all the time, then one inference process is
// killed (-9), terminated (SIGTERM), frozen (SIGSTOP) or slow. Every request is accounted for —
// OK or a table code with the table's status, nothing lost, nothing hanging past the deadline —
// and no process other than the target exits or restarts.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { Census, Load, ipv4Target, startGateway, startInference, tally, type Outcome, type Proc } from './harness.js';

let procs: Proc[] = [];
let load: Load | undefined;

afterEach(async () => {
  await load?.stop();
  load = undefined;
  for (const p of procs) p.spawned.kill('SIGCONT');
  await Promise.all(procs.map((p) => p[Symbol.asyncDispose]()));
  procs = [];
});

/** Two inference processes (each request holds its slot `delayMs`, so requests are in flight) and a gateway over both. */
async function stack(options: { delayA?: number; delayB?: number; gatewayEnv?: Record<string, string> } = {}): Promise<{ a: Proc; b: Proc; gateway: Proc; census: Census }> {
  const [a, b] = await Promise.all([
    startInference('inference a', { SEGSERVE_FAULT_DELAY_MS: String(options.delayA ?? 30) }),
    startInference('inference b', { SEGSERVE_FAULT_DELAY_MS: String(options.delayB ?? 30) }),
  ]);
  procs.push(a, b);
  const gateway = await startGateway({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(a, b)}`, ...options.gatewayEnv });
  procs.push(gateway);
  return { a, b, gateway, census: new Census([a, b, gateway]) };
}

const unaccounted = (outcomes: readonly Outcome[]): Outcome[] => outcomes.filter((o) => !o.accounted);
const failures = (outcomes: readonly Outcome[]): Outcome[] => outcomes.filter((o) => o.code !== 'OK');
const summary = (name: string, outcomes: readonly Outcome[], extra = ''): void => console.log(`fault ${name}: ${outcomes.length} requests ${JSON.stringify(tally(outcomes))}${extra}`);

describe('faults under load', () => {
  it('kill -9 of one inference process: only requests in flight at the kill may fail, each with a table code (item 17)', async () => {
    const { a, census } = await stack();
    load = new Load(procs[2]!);
    await load.answered(40);
    const inFlightAtKill = load.inFlight;
    a.spawned.kill('SIGKILL');
    await a.spawned.exited;
    const exitedAt = performance.now();
    await load.answered(80);
    const outcomes = await load.stop();
    summary('SIGKILL', outcomes, `, ${inFlightAtKill} in flight at the kill`);

    expect(unaccounted(outcomes)).toEqual([]);
    expect(failures(outcomes).length).toBeLessThanOrEqual(inFlightAtKill);
    // The failures are over once the gateway knows: of the requests sent after the process was
    // gone, the last 40 to be answered are all OK, served by the other process.
    const after = outcomes.filter((o) => o.startedAt > exitedAt);
    expect(after.length).toBeGreaterThanOrEqual(40);
    expect(failures(after.slice(-40))).toEqual([]);
    expect(census.casualties([a])).toEqual([]);
  });

  it('SIGTERM of one inference process: it drains and exits 0, no request fails (item 19)', async () => {
    const { a, census } = await stack();
    load = new Load(procs[2]!);
    await load.answered(40);
    a.spawned.kill('SIGTERM');
    expect(await a.spawned.exited).toBe(0);
    await load.answered(60);
    const outcomes = await load.stop();
    summary('SIGTERM', outcomes);

    expect(unaccounted(outcomes)).toEqual([]);
    expect(failures(outcomes)).toEqual([]);
    expect(census.casualties([a])).toEqual([]);
  });

  it('SIGSTOP of one inference process: calls to it end at the gateway deadline as DEADLINE, the other serves; after SIGCONT both serve, nothing restarted', async () => {
    const deadlineMs = 2_000;
    const { a, b, census } = await stack({ gatewayEnv: { SEGSERVE_DEADLINE_MS: String(deadlineMs) } });
    load = new Load(procs[2]!);
    await load.answered(30);
    const stoppedAt = performance.now();
    a.spawned.kill('SIGSTOP');
    // Frozen until the gateway has given up on a call to it and the other process has served one
    // sent meanwhile: whatever the machine's speed, those answers came while `a` was frozen.
    const whileStopped = (): Outcome[] => load!.outcomes.filter((o) => o.startedAt > stoppedAt);
    await waitFor(() => load!.outcomes.some((o) => o.code === 'DEADLINE') && whileStopped().some((o) => o.code === 'OK'), {
      timeoutMs: 60_000,
      what: 'a DEADLINE answer and a served request while one process is frozen',
    });
    a.spawned.kill('SIGCONT');
    const resumedAt = performance.now();
    await load.answered(40);
    const outcomes = await load.stop();
    const during = outcomes.filter((o) => o.startedAt > stoppedAt && o.startedAt < resumedAt);
    summary('SIGSTOP', outcomes, `; while stopped ${JSON.stringify(tally(during))}`);

    expect(unaccounted(outcomes)).toEqual([]);
    expect(new Set(failures(outcomes).map((f) => f.code))).toEqual(new Set(['DEADLINE']));
    // Nothing hangs: a call to the frozen process is ended by the gateway's deadline (never sooner),
    // not by the client's own timeout (that would be CLIENT_TIMEOUT, unaccounted) nor by the SIGCONT.
    const ended = failures(outcomes).filter((o) => o.endedAt < resumedAt);
    expect(ended.length).toBeGreaterThan(0);
    for (const o of failures(outcomes)) expect(o.endedAt - o.startedAt).toBeGreaterThanOrEqual(deadlineMs - 50);
    // The other process kept serving while one was frozen.
    expect(during.filter((o) => o.code === 'OK').length).toBeGreaterThan(0);
    expect(census.casualties()).toEqual([]);
    expect(a.spawned.hasExited() || b.spawned.hasExited()).toBe(false);
  });

  it('a slow upstream: requests past the gateway deadline get DEADLINE (504 / DEADLINE_EXCEEDED) in time, the slow process frees its slot (item 15)', async () => {
    const deadlineMs = 1_500;
    // `a` would take ten minutes: every answer from it is the gateway's deadline, never `a`'s own.
    const { a, census } = await stack({ delayA: 600_000, gatewayEnv: { SEGSERVE_DEADLINE_MS: String(deadlineMs) } });
    load = new Load(procs[2]!, { workers: 2 });
    await load.answered(30);
    const outcomes = await load.stop();
    summary('slow upstream', outcomes);

    expect(unaccounted(outcomes)).toEqual([]);
    expect(tally(outcomes)['DEADLINE']).toBeGreaterThan(0);
    expect(tally(outcomes)['OK']).toBeGreaterThan(0);
    expect(new Set(failures(outcomes).map((f) => f.code))).toEqual(new Set(['DEADLINE']));
    // At the deadline, not sooner; later only by the machine's own delays, never by the slow work.
    for (const o of failures(outcomes)) expect(o.endedAt - o.startedAt).toBeGreaterThanOrEqual(deadlineMs - 50);
    // The slow process gives its slot back: the abandoned (cancelled) runs end.
    const inFlight = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${a.ports['metrics']}/metrics`)).text();
      return Number(/^segserve_inference_in_flight(?:\{[^}]*\})? (\S+)/m.exec(text)?.[1] ?? NaN);
    };
    const deadline = Date.now() + 30_000;
    while ((await inFlight()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await inFlight()).toBe(0);
    expect(census.casualties()).toEqual([]);
  });
});
