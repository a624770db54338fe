// The reason codes (proto/src/reason-codes.ts) and their documentation agree: docs/promotion.md's
// "Reason codes" tables list exactly the table's codes, stages and sentences, and the verdicts.
// That every code the promoter can emit is in the table is the type checker's job: each field
// that carries a code is typed `ReasonCode` (checked here at type level, by `npm run typecheck`),
// and the narrower unions (policy and claim verdicts, check verdicts) are declared against it.
// Runs in the unit project: a read of the repository's own files.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CHECK_VERDICTS, REASON_CODES, reasonMeaning, type CheckVerdict, type DecisionEvent, type DecisionRecord, type ReasonCode } from '@segserve/proto';
import type { RolloutEvent, RolloutOutcome, RolloutRecord, Verdict, VerificationReport } from '@segserve/promoter';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The rows of the markdown tables under `## <heading>` (until the next `## `), cells trimmed, header and rule dropped. */
function tableRows(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/promotion.md has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) =>
      l
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim().replace(/^`|`$/g, '')),
    );
}

describe('reason codes', () => {
  const docs = readFileSync(path.join(ROOT, 'docs', 'promotion.md'), 'utf8');
  const rows = tableRows(docs, 'Reason codes');

  it('docs/promotion.md lists every code with its stage and sentence, in the order of the table', () => {
    const documented = rows.filter((r) => r.length === 3);
    expect(documented).toEqual(Object.entries(REASON_CODES).map(([code, e]) => [code, e.stage, e.meaning]));
  });

  it('docs/promotion.md says what each check verdict means', () => {
    const documented = rows.filter((r) => r.length === 2);
    expect(documented).toEqual(Object.entries(CHECK_VERDICTS));
  });

  it('each sentence is one sentence a person can read', () => {
    for (const [code, e] of Object.entries(REASON_CODES)) {
      expect(e.meaning, code).toMatch(/^[A-Z].*\.$/);
      expect(e.meaning.slice(0, -1).replaceAll('e.g.', 'eg'), code).not.toMatch(/\.\s/);
    }
  });

  it('knows the codes it has, and only those', () => {
    expect(reasonMeaning('no_evidence')).toBe(REASON_CODES.no_evidence.meaning);
    expect(reasonMeaning('toString')).toBeUndefined();
    expect(reasonMeaning('failed')).toBeUndefined();
  });

  it('every field that carries a code is typed by the table (type-level: npm run typecheck)', () => {
    expectTypeOf<DecisionRecord['reason_code']>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<DecisionEvent['reason_code']>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<NonNullable<RolloutRecord['reason_code']>>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<NonNullable<RolloutEvent['reason_code']>>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<VerificationReport['reasonCode']>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<Extract<RolloutOutcome, { reasonCode: unknown }>['reasonCode']>().toEqualTypeOf<ReasonCode>();
    expectTypeOf<Verdict>().toEqualTypeOf<CheckVerdict>();
  });
});
