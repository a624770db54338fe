// A real Prometheus on a random loopback port scraping the given targets, for tests.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, requireBinary, spawnProcess, tempDir, waitFor, type Spawned, type TempDir } from './process.js';

export const PROMETHEUS_INSTALL_HINT = 'apt-get install -y prometheus (or: bash scripts/setup.sh)';

export interface ScrapeJob {
  readonly job: string;
  /** host:port of each /metrics endpoint. */
  readonly targets: readonly string[];
  readonly metricsPath?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface StartPrometheusOptions {
  readonly targets: readonly ScrapeJob[];
  readonly scrapeIntervalSeconds?: number;
  /** Rule files (absolute paths) to load. */
  readonly ruleFiles?: readonly string[];
}

export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Instant query; returns the vector (or a one-element list for scalars). */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `query` until it returns at least one sample. */
  waitForSeries(promql: string, timeoutMs?: number): Promise<PromSample[]>;
  /** Rewrites the scrape targets and reloads the configuration (POST /-/reload). */
  setTargets(targets: readonly ScrapeJob[]): Promise<void>;
  stop(): Promise<void>;
  output(): string;
}

function renderConfig(options: StartPrometheusOptions, targets: readonly ScrapeJob[]): string {
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const jobs = targets.map((t) => ({
    job_name: t.job,
    metrics_path: t.metricsPath ?? '/metrics',
    scrape_interval: interval,
    static_configs: [{ targets: [...t.targets], labels: { ...t.labels } }],
  }));
  // JSON is valid YAML.
  return JSON.stringify({
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [...(options.ruleFiles ?? [])],
    scrape_configs: jobs,
  });
}

export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusServer> {
  const binary = requireBinary('prometheus', PROMETHEUS_INSTALL_HINT);
  const dir: TempDir = await tempDir('segserve-prom-');
  const configFile = path.join(dir.path, 'prometheus.yml');
  await writeFile(configFile, renderConfig(options, options.targets));
  const port = await freePort();
  const server: Spawned = spawnProcess(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir.path, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { name: 'prometheus' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (server.hasExited()) throw new Error(`prometheus exited:\n${server.output()}`);
      const res = await fetch(`${url}/-/ready`).catch(() => undefined);
      return res?.ok === true;
    },
    { timeoutMs: 60_000, what: 'prometheus ready' },
  );

  const query = async (promql: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: unknown };
    };
    if (body.status !== 'success' || !body.data) throw new Error(`prometheus query failed: ${body.error ?? res.status} (${promql})`);
    const { resultType, result } = body.data;
    if (resultType === 'scalar') {
      const [, v] = result as [number, string];
      return [{ metric: {}, value: Number(v) }];
    }
    if (resultType !== 'vector') throw new Error(`unexpected result type ${resultType} for ${promql}`);
    return (result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };

  const stop = async (): Promise<void> => {
    await server.stop(10_000);
  };

  return {
    url,
    port,
    query,
    waitForSeries: (promql, timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const r = await query(promql);
          return r.length > 0 ? r : undefined;
        },
        { timeoutMs, intervalMs: 500, what: `series for ${promql}` },
      ),
    setTargets: async (targets) => {
      await writeFile(configFile, renderConfig(options, targets));
      const res = await fetch(`${url}/-/reload`, { method: 'POST' });
      if (!res.ok) throw new Error(`prometheus reload failed: ${res.status} ${await res.text()}`);
    },
    stop,
    output: () => server.output(),
    [Symbol.asyncDispose]: async () => {
      await stop();
      await dir[Symbol.asyncDispose]();
    },
  };
}
