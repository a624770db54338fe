import { describe, expect, it } from 'vitest';
import { CHECK_VERDICTS, REASON_CODES } from '@segserve/proto';
import type { RolloutRecord } from '@segserve/promoter';
import { explainCode, phaseLabel, statusText, watchLine } from './status-format.js';

const NOW = new Date('2026-11-27T10:00:30.000Z');
const canary: RolloutRecord = {
  model: 'facade-ads',
  stable: { version: '3', sha256: 'a', target: 'ipv4:127.0.0.1:5001' },
  canary: { version: '4', sha256: 'b', target: 'ipv4:127.0.0.1:6001', weight: 25 },
  phase: 'Canary',
  step: 1,
  updated_at: '2026-11-27T10:00:20.000Z',
  revision: 7,
  experiment_id: 'exp-4',
  candidate: { id: 'exp-4', version: '4', sha256: 'b', claimed: {}, golden_sha256: 'g' },
  failed_checks: 1,
  last_verdict: 'pass',
  last_check_at: '2026-11-27T10:00:20.000Z',
  next_check_at: '2026-11-27T10:00:50.000Z',
  last_checks: [{ check: 'error_rate', result: 'pass', value: 0.002, threshold: 0.01, detail: 'error rate 0.20% (1/500)' }],
};

describe('status formatting', () => {
  it('labels phases with their position', () => {
    expect(phaseLabel(canary, NOW, 3)).toBe('Canary 2/3 (25%)');
    expect(phaseLabel({ ...canary, phase: 'Baking', bake_until: '2026-11-27T10:01:10.000Z' }, NOW)).toBe('Baking (ends in 40s)');
    expect(phaseLabel({ ...canary, phase: 'Failed', restore: canary.stable }, NOW)).toBe('Failed (restoring 3)');
  });

  it('prints the whole picture for `rollout status`', () => {
    expect(statusText(canary, NOW)).toBe(
      [
        'facade-ads: Canary 2 (25%)   experiment exp-4',
        '  stable   3               ipv4:127.0.0.1:5001',
        '  canary   4               ipv4:127.0.0.1:6001   weight 25%',
        '  last check 10s ago: pass, failed checks so far 1',
        '    error_rate    pass  0.20%     error rate 0.20% (1/500)',
        `  pass: ${CHECK_VERDICTS.pass}`,
        '  next check in 20s',
        '  updated  2026-11-27T10:00:20.000Z (revision 7)',
        '',
      ].join('\n'),
    );
  });

  it('prints one line per change for `rollout watch`, with the reason at the end', () => {
    expect(watchLine(canary, NOW)).toBe('10:00:30  facade-ads  Canary 2 (25%)  candidate 4  stable 3  last check pass (failed 1)');
    expect(watchLine({ ...canary, phase: 'Failed', canary: null, reason: 'manual rollback: bad' }, NOW)).toBe('10:00:30  facade-ads  Failed  candidate 4  stable 3  — manual rollback: bad');
  });

  it('says what a reason code means wherever it prints one', () => {
    const failed: RolloutRecord = { ...canary, phase: 'Failed', canary: null, reason: 'no decisive check at 25%: 10 checks in a row held', reason_code: 'no_evidence' };
    expect(watchLine(failed, NOW)).toBe(`10:00:30  facade-ads  Failed  candidate 4  stable 3  — no decisive check at 25%: 10 checks in a row held [no_evidence]\n  no_evidence: ${REASON_CODES.no_evidence.meaning}`);
    expect(statusText(failed, NOW)).toContain(`  reason   no decisive check at 25%: 10 checks in a row held [no_evidence]\n           no_evidence: ${REASON_CODES.no_evidence.meaning}\n`);
    expect(explainCode('made_up_later')).toBe('made_up_later: a reason code this version of segserve does not know.');
  });

  it('says in words what a hold is waiting for', () => {
    const held: RolloutRecord = { ...canary, last_verdict: 'hold', holds: 2, last_checks: [{ check: 'requests', result: 'hold', value: 8, threshold: 50, detail: 'the canary served 8 requests (fewer than 50)' }] };
    expect(watchLine(held, NOW)).toBe(
      '10:00:30  facade-ads  Canary 2 (25%)  candidate 4  stable 3  last check hold (failed 1)  — holding (2 in a row): waiting for 50 requests to the canary in the window (8 so far; the golden set is replayed through it)',
    );
    const baking: RolloutRecord = {
      ...held,
      phase: 'Baking',
      canary: null,
      bake_until: '2026-11-27T10:01:10.000Z',
      bake_extensions: 1,
      bake_passes: 0,
      last_checks: [{ check: 'latency_ratio', result: 'hold', value: 1.12, low: 0.91, high: 1.43, threshold: 1.2, detail: 'p95 …' }],
    };
    expect(watchLine(baking, NOW)).toBe(
      '10:00:30  facade-ads  Baking (ends in 40s, extended 1× for lack of a passing check)  candidate 4  stable 3  last check hold (failed 1)  — holding (2 in a row): waiting for a p95 ratio decisively under or over ×1.2 (now ×1.12, interval ×0.91–×1.43; more requests narrow it)',
    );
    expect(statusText(baking, NOW)).toContain('  passing checks during the bake: 0 (Succeeded needs one)\n');
  });
});
