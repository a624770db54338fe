import { describe, expect, it } from 'vitest';
import { REASON_CODES, type DecisionRecord } from '@segserve/proto';
import { decisionsTable } from './decisions-table.js';

const base: DecisionRecord = {
  key: 'facade-ads-3-0123456789ab',
  experiment_id: 'facade-ads-3-0123456789ab',
  model: 'facade-ads',
  version: '3',
  sha256: 'a'.repeat(64),
  status: 'rejected',
  stage: 'verification',
  reason_code: 'claim_not_reproduced',
  reason: 'Rejected: the claim does not reproduce on the golden set: miou measured 0.71 against a claimed 0.85 (off by 0.14, tolerance 0.01).',
  claimed: { miou: 0.85, latency_ms_p95: 120, peak_rss_mb: 210 },
  measured: { miou: 0.71234, latency_ms_p95: 131.27, peak_rss_mb: 220.4 },
  stable: null,
  details: null,
  signer: 'U'.repeat(56),
  subject: 'segserve.experiments.facade-ads',
  stream_seq: 3,
  received_at: '2026-11-27T10:00:00.000Z',
  decided_at: '2026-11-27T10:00:42.512Z',
  attempts: 1,
};

describe('decisionsTable', () => {
  it('shows id, version, claimed → measured, decision, code, time and the reason', () => {
    const text = decisionsTable([
      base,
      { ...base, key: 'unverified-7', experiment_id: null, version: null, status: 'rejected', stage: 'schema', reason_code: 'schema_invalid', reason: 'Rejected: malformed.', claimed: null, measured: null, decided_at: '2026-11-27T10:01:00Z' },
      { ...base, key: 'x', experiment_id: 'x', status: 'in_progress', stage: 'rollout', reason_code: 'accepted', measured: null, decided_at: null },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+VERSION\s+mIoU \(claimed → measured\)\s+p95 ms \(claimed → measured\)\s+RSS MB \(claimed → measured\)\s+DECISION\s+REASON CODE\s+DECIDED\s+REASON$/);
    expect(lines[1]).toMatch(/^facade-ads-3-0123456789ab\s+3\s+0\.85 → 0\.7123\s+120 → 131\.3\s+210 → 220\.4\s+rejected\s+claim_not_reproduced\s+2026-11-27 10:00:42\s+Rejected: the claim/);
    expect(lines[2]).toMatch(/^unverified-7\s+-\s+-\s+-\s+-\s+rejected\s+schema_invalid\s+2026-11-27 10:01:00\s+Rejected: malformed\.$/);
    expect(lines[3]).toMatch(/^x\s+3\s+0\.85\s+120\s+210\s+in progress \(rollout\)\s+accepted\s+2026-11-27 10:00:00/);
    // Columns line up: the reason starts at the same offset on every row.
    const at = lines.map((l) => l.indexOf('Rejected') >= 0 ? l.indexOf('Rejected') : l.indexOf('REASON', l.indexOf('DECIDED')));
    expect(new Set(at.slice(0, 3)).size).toBe(1);
    // Under the table, each code once with its sentence.
    expect(lines.slice(4)).toEqual(['', 'reason codes:', `  claim_not_reproduced: ${REASON_CODES.claim_not_reproduced.meaning}`, `  schema_invalid: ${REASON_CODES.schema_invalid.meaning}`, `  accepted: ${REASON_CODES.accepted.meaning}`]);
  });

  it('says so when there is nothing', () => {
    expect(decisionsTable([])).toBe('no decisions yet\n');
  });
});
