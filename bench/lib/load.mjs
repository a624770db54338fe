// A closed-loop load generator: `concurrency` virtual clients, each sending its next request as
// soon as the previous one is answered, until `requests` requests have succeeded. A client told
// OVERLOADED/UNAVAILABLE waits the Retry-After it was given (capped), like a well-behaved client,
// and that answer does not use up the budget; any other error does. With `durationS`, clients
// stop sending once that time has passed (requests already sent are awaited).
import { countBy, percentile, round } from './stats.mjs';

const RETRYABLE = new Set(['OVERLOADED', 'UNAVAILABLE']);

/**
 * send(i) → Promise<{code, ms, retryAfterS?}>. Returns a summary: throughput of successes,
 * latency percentiles of successes, counts and latencies of every code.
 */
export async function closedLoop({ concurrency, requests = Infinity, durationS = Infinity, send, backoffCapMs = 1000, maxAttempts = requests * 100 }) {
  let ok = 0;
  let budget = requests;
  let attempts = 0;
  let index = 0;
  const outcomes = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (budget > 0 && attempts < maxAttempts && performance.now() - t0 < durationS * 1000) {
        budget--;
        attempts++;
        const o = await send(index++);
        o.at = (performance.now() - t0) / 1000;
        outcomes.push(o);
        if (o.code === 'OK') ok++;
        else if (RETRYABLE.has(o.code)) {
          budget++; // retried: does not count against the successes we want
          const wait = Math.min(backoffCapMs, (o.retryAfterS ?? 0.1) * 1000);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  return summarize(outcomes, wallS, concurrency);
}

export function summarize(outcomes, wallS, concurrency) {
  const okMs = outcomes.filter((o) => o.code === 'OK').map((o) => o.ms);
  const byCode = countBy(outcomes.map((o) => o.code));
  const errorMs = {};
  for (const code of Object.keys(byCode)) {
    if (code === 'OK') continue;
    const ms = outcomes.filter((o) => o.code === code).map((o) => o.ms);
    errorMs[code] = { p50: round(percentile(ms, 50)), p95: round(percentile(ms, 95)), max: round(Math.max(...ms)) };
  }
  return {
    concurrency,
    requests: outcomes.length,
    ok: okMs.length,
    wall_s: round(wallS, 2),
    throughput: round(okMs.length / wallS, 3),
    p50_ms: round(percentile(okMs, 50)),
    p95_ms: round(percentile(okMs, 95)),
    p99_ms: round(percentile(okMs, 99)),
    codes: byCode,
    error_ms: errorMs,
  };
}
