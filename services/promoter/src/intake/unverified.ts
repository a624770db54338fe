// Results rejected before their signature is verified (malformed, unsigned, for a model without
// a policy): anyone with publish rights on `segserve.experiments.>` can send them by the
// thousand, so they are never written to `segserve_decisions` (which only signed results may
// write) nor announced one by one. They are counted, sampled into the log, and the latest few
// kept in a bounded record that the promoter serves on `/intake/unverified`.
//
// Also here: failures of the intake itself (the decisions bucket full or failing) that made it
// give up on a signed result — recorded the same bounded way, so that the intake moves on.
import type { Logger } from '../domain/ports.js';
import type { ReasonCode } from '@segserve/proto';

export interface UnverifiedRejection {
  readonly stream_seq: number;
  readonly subject: string;
  /** The model of the subject when it has a policy, else `(unknown)`: attackers choose subjects. */
  readonly model: string;
  readonly reason_code: ReasonCode;
  readonly reason: string;
  /** What the message claimed (unauthenticated: for reading, never for keying anything). */
  readonly claimed_id: string | null;
  readonly signer: string | null;
  readonly received_at: string;
}

export interface IntakeFailure {
  readonly stream_seq: number;
  readonly model: string;
  readonly experiment_id: string | null;
  readonly error: string;
  readonly at: string;
}

export interface UnverifiedSummary {
  /** Per `<model>/<reason_code>`, since the promoter started. */
  readonly counts: Readonly<Record<string, number>>;
  readonly total: number;
  /** The latest rejections, newest last (at most `keep`). */
  readonly latest: readonly UnverifiedRejection[];
  /** Signed results the intake gave up on because it could not record their decision. */
  readonly failures: readonly IntakeFailure[];
}

export interface UnverifiedLogOptions {
  readonly log: Logger;
  readonly clock?: () => number;
  /** Entries kept in the record (default 100). */
  readonly keep?: number;
  /** At most one log line per model and reason code per this many ms (default 10 s). */
  readonly logEveryMs?: number;
  /** Called for every rejection (the Prometheus counter). */
  readonly count?: (model: string, reasonCode: ReasonCode) => void;
}

export const UNKNOWN_MODEL_LABEL = '(unknown)';

export class UnverifiedLog {
  private readonly counts = new Map<string, number>();
  private readonly latest: UnverifiedRejection[] = [];
  private readonly failures: IntakeFailure[] = [];
  /** Per `<model>/<code>`: when the last line was logged, and how many were not logged since. */
  private readonly sampled = new Map<string, { at: number; suppressed: number }>();
  private total = 0;
  private readonly keep: number;
  private readonly clock: () => number;

  constructor(private readonly options: UnverifiedLogOptions) {
    this.keep = Math.max(1, options.keep ?? 100);
    this.clock = options.clock ?? Date.now;
  }

  record(r: UnverifiedRejection): void {
    const key = `${r.model}/${r.reason_code}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.total++;
    push(this.latest, r, this.keep);
    this.options.count?.(r.model, r.reason_code);
    const now = this.clock();
    const s = this.sampled.get(key);
    if (s && now - s.at < (this.options.logEveryMs ?? 10_000)) {
      s.suppressed++;
      return;
    }
    this.sampled.set(key, { at: now, suppressed: 0 });
    this.options.log.warn('result rejected before authentication', {
      seq: r.stream_seq,
      subject: r.subject.slice(0, 200),
      model: r.model,
      reason_code: r.reason_code,
      reason: r.reason.slice(0, 500),
      ...(s && s.suppressed > 0 ? { not_logged_since_last_line: s.suppressed } : {}),
      total_for_reason: this.counts.get(key),
    });
  }

  recordFailure(f: IntakeFailure): void {
    push(this.failures, f, this.keep);
  }

  summary(): UnverifiedSummary {
    return { counts: Object.fromEntries(this.counts), total: this.total, latest: [...this.latest], failures: [...this.failures] };
  }
}

function push<T>(list: T[], item: T, keep: number): void {
  list.push(item);
  if (list.length > keep) list.splice(0, list.length - keep);
}
