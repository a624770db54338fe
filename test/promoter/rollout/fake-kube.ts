// A small Kubernetes API server for the Kubernetes driver's tests: the apps/v1 Deployment
// GET and PATCH paths with their JSON, optimistic concurrency on metadata.resourceVersion
// (409 Conflict Status), a strategic merge of what the driver sends (containers and env by
// name, annotations), and a deployment "controller" that moves the status one step per read —
// or never becomes available and reports ProgressDeadlineExceeded. Also the events.k8s.io/v1
// create path, validating what the API server validates (eventTime in RFC 3339 with
// microseconds, reportingController/Instance, action, reason, type, note ≤ 1 kB; 409
// AlreadyExists for a name it has), so that `describe(name)` can show what kubectl would.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface FakeDeployment {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; generation: number; annotations?: Record<string, string> };
  spec: { replicas: number; template: { spec: { containers: { name: string; image: string; env: { name: string; value: string }[] }[] } } };
  status: { observedGeneration: number; replicas: number; updatedReplicas: number; availableReplicas: number; conditions: { type: string; status: string; reason: string; message: string }[] };
}

export interface FakeEvent {
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly eventTime: string;
  readonly reportingController: string;
  readonly reportingInstance: string;
  readonly action: string;
  readonly reason: string;
  readonly type: 'Normal' | 'Warning';
  readonly note: string;
  readonly regarding: { readonly apiVersion: string; readonly kind: string; readonly name: string; readonly namespace: string; readonly uid?: string };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

export class FakeKube {
  readonly deployments = new Map<string, FakeDeployment>();
  readonly requests: RecordedRequest[] = [];
  /** Per deployment: how many upcoming PATCHes find the object changed by someone else. */
  readonly conflicts = new Map<string, number>();
  /** Deployments whose new pods never become available. */
  readonly stuck = new Set<string>();
  /** Created Events, in order. */
  readonly events: FakeEvent[] = [];
  /** Upcoming Event creations that fail with this status (an API server having trouble). */
  eventFailures = 0;
  private server: http.Server | undefined;
  private rv = 100;

  constructor(readonly namespace: string) {}

  add(name: string, version: string, replicas: number): FakeDeployment {
    const d: FakeDeployment = {
      metadata: { name, namespace: this.namespace, uid: `uid-${name}`, resourceVersion: String(++this.rv), generation: 1 },
      spec: { replicas, template: { spec: { containers: [{ name: 'inference', image: 'segserve', env: [{ name: 'SEGSERVE_MODEL_NAME', value: 'facade-ads' }, { name: 'SEGSERVE_MODEL_VERSION', value: version }, { name: 'SEGSERVE_MODEL_SHA256', value: version.repeat(64).slice(0, 64) }] }] } } },
      status: { observedGeneration: 1, replicas, updatedReplicas: replicas, availableReplicas: replicas, conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: 'ok' }] },
    };
    this.deployments.set(name, d);
    return d;
  }

  env(name: string, key: string): string | undefined {
    return this.deployments.get(name)?.spec.template.spec.containers[0]?.env.find((e) => e.name === key)?.value;
  }

  patches(name: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/${name}`));
  }

  /** The Events `kubectl describe deployment <name>` lists: regarding that Deployment, by name and uid. */
  describe(name: string): FakeEvent[] {
    const d = this.deployments.get(name);
    return this.events.filter((e) => e.regarding.kind === 'Deployment' && e.regarding.name === name && e.regarding.namespace === this.namespace && e.regarding.uid === d?.metadata.uid);
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig that points @kubernetes/client-node at this server (started at `url`), in its namespace. */
  kubeConfig(url: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: url, skipTLSVerify: true }],
      users: [{ name: 'promoter', token: 'test-token' }],
      contexts: [{ name: 'test', cluster: 'test', user: 'promoter', namespace: this.namespace }],
      currentContext: 'test',
    });
    return kc;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
  }

  private send(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    this.send(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }

  private handle(req: http.IncomingMessage, text: string, res: http.ServerResponse): void {
    const body: unknown = text ? JSON.parse(text) : undefined;
    const path = req.url?.split('?')[0] ?? '';
    this.requests.push({ method: req.method ?? '', path, contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
    const ev = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/.exec(path);
    if (ev) return this.createEvent(req, ev[1] as string, body, res);
    const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)$/.exec(path);
    const d = m && m[1] === this.namespace ? this.deployments.get(m[2] as string) : undefined;
    if (!m || !d) return this.status(res, 404, 'NotFound', `deployments.apps "${m?.[2] ?? path}" not found`);
    if (req.method === 'GET') {
      this.progress(d);
      return this.send(res, 200, d);
    }
    if (req.method !== 'PATCH') return this.status(res, 405, 'MethodNotAllowed', 'only get and patch');
    if (req.headers['content-type'] !== 'application/strategic-merge-patch+json') return this.status(res, 415, 'UnsupportedMediaType', `unexpected ${String(req.headers['content-type'])}`);
    const pending = this.conflicts.get(d.metadata.name) ?? 0;
    if (pending > 0) {
      // Someone else (an HPA, kubectl) wrote in between.
      this.conflicts.set(d.metadata.name, pending - 1);
      d.metadata.resourceVersion = String(++this.rv);
    }
    const patch = body as { metadata?: { resourceVersion?: string; annotations?: Record<string, string> }; spec?: { replicas?: number; template?: { spec?: { containers?: { name: string; env?: { name: string; value: string }[] }[] } } } };
    if (patch.metadata?.resourceVersion !== undefined && patch.metadata.resourceVersion !== d.metadata.resourceVersion) {
      return this.status(res, 409, 'Conflict', `Operation cannot be fulfilled on deployments.apps "${d.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    let templateChanged = false;
    for (const pc of patch.spec?.template?.spec?.containers ?? []) {
      const c = d.spec.template.spec.containers.find((x) => x.name === pc.name);
      if (!c) return this.status(res, 422, 'Invalid', `no container ${pc.name}`);
      for (const e of pc.env ?? []) {
        const existing = c.env.find((x) => x.name === e.name);
        if (existing?.value !== e.value) templateChanged = true;
        if (existing) existing.value = e.value;
        else c.env.push({ ...e });
      }
    }
    const replicasChanged = patch.spec?.replicas !== undefined && patch.spec.replicas !== d.spec.replicas;
    if (patch.spec?.replicas !== undefined) d.spec.replicas = patch.spec.replicas;
    d.metadata.annotations = { ...d.metadata.annotations, ...patch.metadata?.annotations };
    d.metadata.resourceVersion = String(++this.rv);
    if (templateChanged || replicasChanged) d.metadata.generation++;
    if (templateChanged) d.status.updatedReplicas = 0;
    return this.send(res, 200, d);
  }

  private createEvent(req: http.IncomingMessage, namespace: string, body: unknown, res: http.ServerResponse): void {
    if (req.method !== 'POST') return this.status(res, 405, 'MethodNotAllowed', 'only create');
    if (namespace !== this.namespace) return this.status(res, 403, 'Forbidden', `events is forbidden in namespace ${namespace}`);
    if (this.eventFailures > 0) {
      this.eventFailures--;
      return this.status(res, 500, 'InternalError', 'etcdserver: request timed out');
    }
    const e = body as Partial<FakeEvent> & { apiVersion?: string; kind?: string };
    const problems: string[] = [];
    const text = (v: unknown, max: number): boolean => typeof v === 'string' && v.length > 0 && v.length <= max;
    if (e.apiVersion !== 'events.k8s.io/v1' || e.kind !== 'Event') problems.push('apiVersion/kind');
    if (!text(e.metadata?.name, 253) || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(e.metadata?.name ?? '')) problems.push('metadata.name');
    if (typeof e.eventTime !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(e.eventTime)) problems.push(`eventTime: Invalid value: "${String(e.eventTime)}": not RFC 3339 with microseconds`);
    if (!text(e.reportingController, 128)) problems.push('reportingController');
    if (!text(e.reportingInstance, 128)) problems.push('reportingInstance');
    if (!text(e.action, 128)) problems.push('action');
    if (!text(e.reason, 128)) problems.push('reason');
    if (e.type !== 'Normal' && e.type !== 'Warning') problems.push('type');
    if (typeof e.note !== 'string' || Buffer.byteLength(e.note) > 1024) problems.push('note');
    if (!e.regarding?.kind || !e.regarding.name || e.regarding.namespace !== this.namespace) problems.push('regarding');
    if (problems.length > 0) return this.status(res, 422, 'Invalid', `Event.events.k8s.io is invalid: ${problems.join(', ')}`);
    if (this.events.some((x) => x.metadata.name === e.metadata?.name)) return this.status(res, 409, 'AlreadyExists', `events.events.k8s.io "${e.metadata?.name ?? ''}" already exists`);
    const stored = { ...(e as FakeEvent), metadata: { ...(e.metadata as FakeEvent['metadata']), namespace } };
    this.events.push(stored);
    return this.send(res, 201, stored);
  }

  /** The deployment controller, one step per read. */
  private progress(d: FakeDeployment): void {
    const s = d.status;
    if (s.observedGeneration < d.metadata.generation) {
      s.observedGeneration = d.metadata.generation;
      return;
    }
    const want = d.spec.replicas;
    if (this.stuck.has(d.metadata.name)) {
      s.conditions = [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${d.metadata.name}-x" has timed out progressing.` }];
      return;
    }
    if (s.updatedReplicas < want) {
      s.updatedReplicas++;
      s.replicas = Math.max(want, s.replicas);
      return;
    }
    s.updatedReplicas = Math.min(s.updatedReplicas, want);
    s.replicas = want;
    s.availableReplicas = want;
  }
}
