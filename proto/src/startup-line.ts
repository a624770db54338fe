// The start-up line: the one JSON log line each segserve server writes on stdout once it is
// ready, at every log level, with the ports it bound (port 0 in the environment means "any
// free port", so the line is the only place a supervisor learns them). Everything that starts
// a server — `segserve start` and `stack`, the promoter's local driver, the tests, the
// benchmarks — waits for this line and reads it with parseStartupLine, never by hand.

export const STARTUP_MESSAGES = { inference: 'serving', gateway: 'listening', promoter: 'running' } as const;

export type StartupService = keyof typeof STARTUP_MESSAGES;

/** What each server's start-up line carries besides level, time, service and msg. */
export interface StartupFields {
  readonly inference: {
    readonly grpc_port: number;
    readonly metrics_port: number;
    readonly model?: string;
    readonly version?: string;
    readonly sha256?: string;
    readonly load_seconds?: number;
    readonly max_concurrency?: number;
    readonly max_queue?: number;
    readonly intra_op_threads?: number;
    /** onnxruntime's CPU arena as chosen at load (SEGSERVE_ORT_ARENA), why, and the warm-up run's growth it was chosen from (MiB). */
    readonly ort_arena?: boolean;
    readonly ort_arena_reason?: string;
    readonly warm_up_growth_mb?: number;
    /** The admission budget and what it was derived from (MiB; issue 11). */
    readonly memory_limit_mb?: number;
    readonly baseline_mb?: number;
    readonly activation_mb?: number;
    readonly activation_measured?: boolean;
    readonly budget_mb?: number;
  };
  readonly gateway: {
    readonly http_port: number;
    readonly grpc_port: number;
    readonly host?: string;
    readonly version?: string;
    readonly models?: readonly string[];
    readonly nats?: boolean;
    readonly api_keys?: boolean;
    /** What uploads in flight may hold at once (the memory budget), MiB. */
    readonly upload_budget_mb?: number;
  };
  readonly promoter: {
    readonly metrics_port: number;
    readonly deployer?: string;
    readonly metrics_source?: string;
    readonly models?: readonly string[];
    readonly signers?: number;
    /** The local driver's state directory (process registry, inference logs). */
    readonly state_dir?: string;
  };
}

export type StartupLine<S extends StartupService> = StartupFields[S] & { readonly service: S; readonly msg: (typeof STARTUP_MESSAGES)[S]; readonly [field: string]: unknown };

/** The fields that must be ports (integers 1–65535) for a line to count as the start-up line. */
const PORT_FIELDS: { readonly [S in StartupService]: readonly (keyof StartupFields[S])[] } = {
  inference: ['grpc_port', 'metrics_port'],
  gateway: ['http_port', 'grpc_port'],
  promoter: ['metrics_port'],
};

const isPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65_536;

/** The line a server writes, as [msg, fields]: `logger.announce(...startupLine('gateway', {…}))`. */
export function startupLine<S extends StartupService>(service: S, fields: StartupFields[S]): [msg: (typeof STARTUP_MESSAGES)[S], fields: StartupFields[S]] {
  return [STARTUP_MESSAGES[service], fields];
}

/** `service`'s start-up line from one line of its output, or undefined for any other line. */
export function parseStartupLine<S extends StartupService>(service: S, line: string): StartupLine<S> | undefined {
  const text = line.trim();
  if (!text.startsWith('{') || !text.includes(`"${STARTUP_MESSAGES[service]}"`)) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof obj !== 'object' || obj === null) return undefined;
  const rec = obj as Record<string, unknown>;
  if (rec['msg'] !== STARTUP_MESSAGES[service] || rec['service'] !== service) return undefined;
  if (!PORT_FIELDS[service].every((f) => isPort(rec[f as string]))) return undefined;
  return rec as StartupLine<S>;
}
