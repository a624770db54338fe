// Human-readable rollout state for `segserve rollout status|watch` (pure: `now` is passed).
import { CHECK_VERDICTS, reasonMeaning } from '@segserve/proto';
import { holdExplanation, type RolloutRecord } from '@segserve/promoter';

/** `code: what it means`, for a person (proto/src/reason-codes.ts); a code from a newer promoter is said to be unknown. */
export function explainCode(code: string): string {
  return `${code}: ${reasonMeaning(code) ?? 'a reason code this version of segserve does not know.'}`;
}

function ago(iso: string | undefined, now: Date): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function until(iso: string | undefined, now: Date): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.parse(iso) - now.getTime()) / 1000));
  return `in ${s}s`;
}

function fmtValue(check: string, v: number | null): string {
  if (v === null) return '—';
  if (check === 'error_rate' || check === 'rss_fraction') return `${(v * 100).toFixed(2)}%`;
  if (check === 'latency_ratio') return `×${v.toFixed(2)}`;
  return String(v);
}

/** The phase with its position: `Canary 2/3 (25%)`, `Baking (ends in 40s)`, `Failed`. */
export function phaseLabel(s: RolloutRecord, now: Date, steps?: number): string {
  switch (s.phase) {
    case 'Canary':
      return `Canary ${(s.step ?? 0) + 1}${steps ? `/${steps}` : ''} (${s.canary?.weight ?? 0}%)`;
    case 'Baking':
      return `Baking (ends ${until(s.bake_until, now)}${s.bake_extensions ? `, extended ${s.bake_extensions}× for lack of a passing check` : ''})`;
    case 'Failed':
      return s.restore ? `Failed (restoring ${s.restore.version})` : 'Failed';
    default:
      return s.phase;
  }
}

/** What a held check is waiting for, in words; empty unless the last check held. */
export function holding(s: RolloutRecord): string {
  if (s.last_verdict !== 'hold' || !s.last_checks || (s.phase !== 'Canary' && s.phase !== 'Baking')) return '';
  const why = holdExplanation(s.last_checks, s.phase === 'Canary' ? 'canary' : 'new stable');
  return why ? `holding (${s.holds ?? 1} in a row): ${why}` : '';
}

/** One line per change, for `rollout watch`. */
export function watchLine(s: RolloutRecord, now: Date): string {
  const parts = [now.toISOString().slice(11, 19), s.model, phaseLabel(s, now)];
  if (s.candidate) parts.push(`candidate ${s.candidate.version}`);
  if (s.stable) parts.push(`stable ${s.stable.version}`);
  if (s.last_verdict && s.last_check_at && (s.phase === 'Canary' || s.phase === 'Baking')) parts.push(`last check ${s.last_verdict} (failed ${s.failed_checks ?? 0})`);
  if ((s.phase === 'Failed' || s.phase === 'Succeeded') && s.reason) parts.push(`— ${s.reason}${s.reason_code ? ` [${s.reason_code}]\n  ${explainCode(s.reason_code)}` : ''}`);
  else if (s.rollback_requested) parts.push(`— rollback requested: ${s.rollback_requested.reason}`);
  else if (holding(s)) parts.push(`— ${holding(s)}`);
  return parts.join('  ');
}

/** The full picture, for `rollout status`. */
export function statusText(s: RolloutRecord, now: Date): string {
  const lines = [`${s.model}: ${phaseLabel(s, now)}${s.experiment_id ? `   experiment ${s.experiment_id}` : ''}`];
  const row = (name: string, version: string, target: string, extra = ''): string => `  ${name.padEnd(9)}${version.padEnd(16)}${target}${extra}`;
  if (s.stable) lines.push(row('stable', s.stable.version, s.stable.target));
  if (s.canary) lines.push(row('canary', s.canary.version, s.canary.target, `   weight ${s.canary.weight}%`));
  else if (s.candidate && s.phase === 'Verifying') lines.push(row('candidate', s.candidate.version, '(starting, verifying on the golden set; no traffic)'));
  if (s.previous_stable) lines.push(row('previous', s.previous_stable.version, '(restored by `segserve rollback`)'));
  if (s.restore) lines.push(row('restoring', s.restore.version, '(starting)'));
  if (s.reason) lines.push(`  reason   ${s.reason}${s.reason_code ? ` [${s.reason_code}]` : ''}`);
  if (s.reason_code) lines.push(`           ${explainCode(s.reason_code)}`);
  if (s.rollback_requested) lines.push(`  rollback requested ${ago(s.rollback_requested.at, now)}: ${s.rollback_requested.reason}`);
  if (s.last_checks?.length) {
    lines.push(`  last check ${ago(s.last_check_at, now)}: ${s.last_verdict ?? '?'}, failed checks so far ${s.failed_checks ?? 0}`);
    for (const c of s.last_checks) lines.push(`    ${c.check.padEnd(14)}${c.result.padEnd(6)}${fmtValue(c.check, c.value).padEnd(10)}${c.detail}`);
    if (s.last_verdict) lines.push(`  ${s.last_verdict}: ${CHECK_VERDICTS[s.last_verdict]}`);
  }
  if (holding(s)) lines.push(`  ${holding(s)}`);
  if (s.phase === 'Baking') lines.push(`  passing checks during the bake: ${s.bake_passes ?? 0} (Succeeded needs one)`);
  if ((s.phase === 'Canary' || s.phase === 'Baking') && s.next_check_at) lines.push(`  next check ${until(s.next_check_at, now)}`);
  lines.push(`  updated  ${s.updated_at} (revision ${s.revision})`);
  return `${lines.join('\n')}\n`;
}
