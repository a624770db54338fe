// The Kubernetes manifests, checked without a cluster: every overlay renders with the real
// kustomize, every object validates against the Kubernetes / Prometheus Operator schemas, and
// the policies hold on what would actually be applied (limits, probes, non-root, read-only
// root fs, drain timing, RBAC least privilege — docs/reliability.md item 37 —, NetworkPolicies).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEGSERVE_ENV_VARS } from '@segserve/proto';
import { REPO_ROOT } from '../helpers/process.js';
import { byKind, find, kustomize, schemaErrors, type Json, type K8sObject, type Overlay } from './render.js';
import { allowed, whoReaches, type Endpoint } from './netpol.js';

const OVERLAYS: readonly Overlay[] = ['dev', 'prod'];
const rendered = new Map<Overlay, K8sObject[]>();
const render = (o: Overlay): K8sObject[] => {
  let objects = rendered.get(o);
  if (!objects) {
    objects = kustomize(o);
    rendered.set(o, objects);
  }
  return objects;
};

const MODEL = 'facade-ads';
const INFERENCE = [`inference-${MODEL}-stable`, `inference-${MODEL}-canary`];
const MiB = 1024 * 1024;

function quantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  const f: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: MiB, Gi: 1024 * MiB, Ti: 1024 * 1024 * MiB };
  return Number(m[1]) * (f[m[2] ?? ''] ?? NaN);
}

const workloads = (objects: readonly K8sObject[]): K8sObject[] => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const containersOf = (w: K8sObject): Json[] => [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers];
const env = (container: Json): Record<string, Json> => Object.fromEntries((container.env ?? []).map((e: Json) => [e.name, e]));

describe.each(OVERLAYS)('overlay %s', (overlay) => {
  it('renders with kubectl kustomize and every object validates against its schema, unknown fields included', () => {
    const objects = render(overlay);
    expect(objects.length).toBeGreaterThan(20);
    expect(objects.flatMap(schemaErrors)).toEqual([]);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ['Deployment', 'StatefulSet', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'ServiceAccount', 'NetworkPolicy', 'PodMonitor', 'ServiceMonitor', 'PrometheusRule', 'ConfigMap']) {
      expect(kinds, k).toContain(k);
    }
    expect(kinds).not.toContain('ClusterRole');
    expect(kinds).not.toContain('ClusterRoleBinding');
    for (const o of objects) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('segserve');
  });

  it('every container: explicit CPU and memory, pinned image, non-root, read-only root fs, no privilege escalation, probes', () => {
    for (const w of workloads(render(overlay))) {
      const pod = w.spec.template.spec;
      const where = `${w.kind}/${w.metadata.name}`;
      expect(pod.securityContext?.runAsNonRoot, where).toBe(true);
      expect(pod.securityContext?.runAsUser, where).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, where).toBe('RuntimeDefault');
      expect(pod.hostNetwork ?? false, where).toBe(false);
      for (const c of containersOf(w)) {
        const at = `${where}/${c.name}`;
        for (const r of ['cpu', 'memory']) {
          expect(c.resources?.requests?.[r], `${at} requests.${r}`).toBeDefined();
          expect(c.resources?.limits?.[r], `${at} limits.${r}`).toBeDefined();
        }
        expect(quantity(c.resources.requests.memory), at).toBeLessThanOrEqual(quantity(c.resources.limits.memory));
        expect(c.image, at).toMatch(/^[^:@\s]+(:[\w][\w.-]*)(@sha256:[0-9a-f]{64})?$/);
        expect(c.image, at).not.toMatch(/:latest$/);
        expect(c.securityContext?.allowPrivilegeEscalation, at).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, at).toBe(true);
        expect(c.securityContext?.capabilities?.drop, at).toEqual(['ALL']);
        expect(c.securityContext?.privileged ?? false, at).toBe(false);
        expect(c.readinessProbe, `${at} readinessProbe`).toBeDefined();
        expect(c.livenessProbe, `${at} livenessProbe`).toBeDefined();
        // Every SEGSERVE_* name is one the services know (a typo would stop the pod at start).
        for (const name of Object.keys(env(c))) if (name.startsWith('SEGSERVE_')) expect(SEGSERVE_ENV_VARS as readonly string[], `${at} ${name}`).toContain(name);
      }
    }
  });

  it('inference tracks: 512Mi request = limit, explicit CPU, gRPC probes, drain-matched grace, safe rollout, spread', () => {
    const objects = render(overlay);
    for (const name of INFERENCE) {
      const d = find(objects, 'Deployment', name);
      const pod = d.spec.template.spec;
      const c = pod.containers.find((x: Json) => x.name === 'inference');
      expect(c, `${name}: container 'inference' (the name the promoter patches)`).toBeDefined();
      expect(c.args).toEqual(['inference']);
      expect(c.resources.requests.memory).toBe('512Mi');
      expect(c.resources.limits.memory).toBe('512Mi');
      expect(quantity(c.resources.limits.cpu)).toBeGreaterThan(0);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect(c[probe]?.grpc?.port, `${name} ${probe}`).toBe(50051);
      const e = env(c);
      for (const v of ['SEGSERVE_MODEL_NAME', 'SEGSERVE_MODEL_VERSION', 'SEGSERVE_MODEL_SHA256', 'SEGSERVE_NATS_URL']) expect(e[v], `${name} ${v}`).toBeDefined();
      expect(e['SEGSERVE_MODEL_NAME'].value).toBe(MODEL);
      // Empty (the digest of the version's model.json) or a pinned sha256.
      expect(e['SEGSERVE_MODEL_SHA256'].value).toMatch(/^([0-9a-f]{64})?$/);
      const manifest = path.join(REPO_ROOT, 'models', MODEL, e['SEGSERVE_MODEL_VERSION'].value, 'model.json');
      if (existsSync(manifest) && e['SEGSERVE_MODEL_SHA256'].value) expect(e['SEGSERVE_MODEL_SHA256'].value).toBe((JSON.parse(readFileSync(manifest, 'utf8')) as { sha256: string }).sha256);
      // Concurrent runs share the CPUs; more runs than CPUs only adds memory (docs/architecture.md#memory-and-admission-by-cost).
      expect(Number(e['SEGSERVE_MAX_CONCURRENCY'].value)).toBeLessThanOrEqual(Math.ceil(quantity(c.resources.limits.cpu)));
      // The V8 heap cap leaves most of the 512 MiB to onnxruntime and sharp.
      const heap = Number(/--max-old-space-size=(\d+)/.exec(e['NODE_OPTIONS']?.value ?? '')?.[1]);
      expect(heap).toBeGreaterThan(64);
      expect(heap).toBeLessThanOrEqual(256);
      // SIGTERM → preStop sleep, then the service drains SEGSERVE_SHUTDOWN_GRACE_MS; the
      // kubelet must not SIGKILL before both are over.
      const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? c.lifecycle?.preStop?.sleep?.seconds);
      const drain = Number(e['SEGSERVE_SHUTDOWN_GRACE_MS'].value) / 1000;
      expect(preStop).toBeGreaterThan(0);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drain + 2);
      expect(d.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      expect(d.spec.revisionHistoryLimit).toBeGreaterThanOrEqual(3);
      expect(pod.topologySpreadConstraints?.length).toBeGreaterThan(0);
      for (const t of pod.topologySpreadConstraints) expect(t.labelSelector.matchLabels).toEqual(d.spec.selector.matchLabels);
      expect(pod.automountServiceAccountToken).toBe(false);
    }
    // The canary is the stable's twin: same pod spec but for its track label.
    const [stable, canary] = INFERENCE.map((n) => find(objects, 'Deployment', n));
    const strip = (d: K8sObject): Json => JSON.parse(JSON.stringify(d.spec.template).replaceAll(/"(stable|canary)"/g, '"TRACK"'));
    expect(strip(canary!)).toEqual(strip(stable!));
    expect(canary!.spec.replicas).toBe(0);
  });

  it('headless Services, HPA and PDBs point at what exists', () => {
    const objects = render(overlay);
    const pods = workloads(objects).map((w) => ({ name: w.metadata.name, labels: w.spec.template.metadata.labels as Record<string, string>, ports: containersOf(w).flatMap((c) => c.ports ?? []) as Json[] }));
    const podsSelectedBy = (sel: Record<string, string>): string[] => pods.filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v)).map((p) => p.name);
    for (const name of INFERENCE) {
      const svc = find(objects, 'Service', name);
      expect(svc.spec.clusterIP).toBe('None');
      expect(podsSelectedBy(svc.spec.selector)).toEqual([name]);
      expect(svc.spec.ports[0].port).toBe(50051);
    }
    for (const s of byKind(objects, 'Service')) {
      const selected = podsSelectedBy(s.spec.selector);
      expect(selected.length, `Service ${s.metadata.name} selects no pod`).toBeGreaterThan(0);
      for (const p of s.spec.ports) if (typeof p.targetPort === 'string') expect(pods.find((x) => x.name === selected[0])?.ports.map((x) => x.name), `${s.metadata.name}:${p.targetPort}`).toContain(p.targetPort);
    }
    const hpas = byKind(objects, 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(['gateway', `inference-${MODEL}-stable`]);
    for (const h of hpas) {
      find(objects, 'Deployment', h.spec.scaleTargetRef.name);
      expect(h.spec.metrics.some((m: Json) => m.resource?.name === 'cpu')).toBe(true);
      expect(h.spec.minReplicas).toBeLessThanOrEqual(h.spec.maxReplicas);
    }
    for (const pdb of byKind(objects, 'PodDisruptionBudget')) expect(podsSelectedBy(pdb.spec.selector.matchLabels).length, pdb.metadata.name).toBe(1);
    expect(byKind(objects, 'PodDisruptionBudget').map((p) => p.metadata.name)).toEqual(expect.arrayContaining(['gateway', ...INFERENCE]));
  });

  it('gateway: API keys from a Secret, NATS URL with its own user; promoter: one replica, Kubernetes driver', () => {
    const objects = render(overlay);
    const gw = env(find(objects, 'Deployment', 'gateway').spec.template.spec.containers[0]);
    expect(gw['SEGSERVE_API_KEYS'].valueFrom.secretKeyRef.key).toBe('keys');
    expect(gw['SEGSERVE_NATS_URL'].value).toMatch(/^nats:\/\/gateway:\$\(NATS_PASSWORD\)@nats:4222$/);
    const promoter = find(objects, 'Deployment', 'promoter');
    expect(promoter.spec.replicas).toBe(1);
    expect(promoter.spec.strategy.type).toBe('Recreate');
    const pe = env(promoter.spec.template.spec.containers[0]);
    expect(pe['SEGSERVE_DEPLOYER'].value).toBe('kubernetes');
    expect(pe['SEGSERVE_NATS_URL'].value).toMatch(/^nats:\/\/promoter:/);
    for (const name of INFERENCE) expect(env(find(objects, 'Deployment', name).spec.template.spec.containers[0])['SEGSERVE_NATS_URL'].value).toMatch(/^nats:\/\/inference:/);
  });

  it('every Secret and ConfigMap reference resolves (prod: the Secrets documented as created out of band)', () => {
    const objects = render(overlay);
    const external = overlay === 'prod' ? { 'segserve-nats-users': ['gateway', 'inference', 'promoter', 'publisher', 'observer'], 'segserve-gateway-api-keys': ['keys'] } : {};
    const docs = readFileSync(path.join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
    for (const name of Object.keys(external)) expect(docs, `docs/deploy.md tells how to create ${name}`).toContain(name);
    const keysOf = (kind: string, name: string): string[] => {
      const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
      if (o) return Object.keys({ ...o.data, ...o['stringData'] });
      if (kind === 'Secret') return (external as Record<string, string[]>)[name] ?? [];
      return [];
    };
    for (const w of workloads(objects)) {
      for (const c of containersOf(w)) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
          if (!ref) continue;
          const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
          expect(keysOf(kind, ref.name), `${w.metadata.name}/${c.name} ${e.name} → ${kind} ${ref.name}.${ref.key}`).toContain(ref.key);
        }
      }
      for (const v of w.spec.template.spec.volumes ?? []) if (v.configMap) expect(keysOf('ConfigMap', v.configMap.name).length, v.configMap.name).toBeGreaterThan(0);
    }
    if (overlay === 'dev') {
      // nats-server parses these from its environment: letters and digits, a letter first.
      for (const v of Object.values(find(objects, 'Secret', byKind(objects, 'Secret').find((s) => s.metadata.name.startsWith('segserve-nats-users'))!.metadata.name).data ?? {})) {
        expect(Buffer.from(v, 'base64').toString()).toMatch(/^[A-Za-z][A-Za-z0-9]{15,}$/);
      }
    }
  });

  it('RBAC (docs/reliability.md item 37): only the promoter, only get/list/watch/patch on its inference Deployments, by name', () => {
    const objects = render(overlay);
    const roles = byKind(objects, 'Role');
    expect(roles.map((r) => r.metadata.name)).toEqual(['promoter']);
    const rules: Json[] = roles[0]!['rules'];
    expect(rules).toHaveLength(1);
    const rule = rules[0];
    expect(rule.apiGroups).toEqual(['apps']);
    expect(rule.resources).toEqual(['deployments']);
    for (const verb of rule.verbs) expect(['get', 'list', 'watch', 'patch']).toContain(verb);
    // The verbs are the ones the Kubernetes driver needs: each AppsV1Api call it makes maps to one.
    const driver = readFileSync(path.join(REPO_ROOT, 'services', 'promoter', 'src', 'adapters', 'kubernetes-deployer.ts'), 'utf8');
    const VERB: Record<string, string> = { read: 'get', patch: 'patch', list: 'list', watch: 'watch', replace: 'update', create: 'create', delete: 'delete' };
    const calls = [...new Set([...driver.matchAll(/\.(read|patch|list|watch|replace|create|delete)Namespaced(\w+)\(/g)].map((m) => `${m[1]}:${m[2]}`))];
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      const [op, what] = call.split(':') as [string, string];
      expect(what, `the driver calls ${call} — not on a Deployment`).toBe('Deployment');
      expect(rule.verbs, `the driver calls ${call}`).toContain(VERB[op]);
    }
    expect([...rule.verbs].sort(), 'verbs the driver never uses').toEqual([...new Set(calls.map((c) => VERB[c.split(':')[0]!]))].sort());
    expect([...rule.resourceNames].sort()).toEqual([...INFERENCE].sort());
    for (const name of rule.resourceNames) find(objects, 'Deployment', name);
    for (const r of rules) {
      expect(r.resources.join()).not.toMatch(/secrets|pods|exec|\*/);
      expect(r.verbs.join()).not.toMatch(/\*|create|delete|update|escalate|bind|impersonate/);
      expect(r.apiGroups.join()).not.toContain('*');
    }
    const bindings = byKind(objects, 'RoleBinding');
    expect(bindings).toHaveLength(1);
    expect(bindings[0]!['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'promoter' });
    expect(bindings[0]!['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'promoter', namespace: 'segserve' }]);
    // Only the promoter's pods carry an API token.
    for (const w of workloads(objects)) {
      const pod = w.spec.template.spec;
      const token = pod.automountServiceAccountToken ?? true;
      if (w.metadata.name === 'promoter') {
        expect(pod.serviceAccountName).toBe('promoter');
        expect(token).toBe(true);
      } else {
        expect(token, `${w.metadata.name} mounts an API token`).toBe(false);
        expect(pod.serviceAccountName ?? 'default').toBe('default');
      }
    }
    expect(find(objects, 'ServiceAccount', 'promoter')['automountServiceAccountToken']).toBe(false);
  });

  it('NetworkPolicies: only gateway (and the promoter for verification) reach inference; only the promoter reaches the API and Prometheus', () => {
    const objects = render(overlay);
    const policies = byKind(objects, 'NetworkPolicy');
    const ns = (name: string, labels: Record<string, string> = {}): Pick<Endpoint, 'namespace' | 'namespaceLabels'> => ({ namespace: name, namespaceLabels: { 'kubernetes.io/metadata.name': name, ...labels } });
    const ours: Endpoint[] = workloads(objects).map((w) => ({ name: w.metadata.name, ...ns('segserve'), labels: w.spec.template.metadata.labels }));
    const pod = (name: string): Endpoint => ours.find((e) => e.name === name) ?? (() => { throw new Error(`no pod ${name}`); })();
    const prometheus: Endpoint = { name: 'prometheus', ...ns('monitoring'), labels: { 'app.kubernetes.io/name': 'prometheus' } };
    const grafana: Endpoint = { name: 'grafana', ...ns('monitoring'), labels: { 'app.kubernetes.io/name': 'grafana' } };
    const ingress: Endpoint = { name: 'ingress-controller', ...ns('ingress-nginx'), labels: { 'app.kubernetes.io/name': 'ingress-nginx' } };
    const ciRunner: Endpoint = { name: 'ci-runner', ...ns('gitlab-runner', { 'segserve.io/nats-client': 'true' }), labels: { app: 'runner' } };
    const stranger: Endpoint = { name: 'stranger', ...ns('other'), labels: { 'app.kubernetes.io/component': 'gateway' } };
    const dns: Endpoint = { name: 'kube-dns', ...ns('kube-system'), labels: { 'k8s-app': 'kube-dns' } };
    const apiServer: Endpoint = { name: 'kube-apiserver', ip: '172.18.0.2' };
    const everyone = [...ours, prometheus, grafana, ingress, ciRunner, stranger];

    for (const name of INFERENCE) {
      expect(whoReaches(policies, everyone, pod(name), 50051), `${name}:50051`).toEqual(['gateway', 'promoter']);
      expect(whoReaches(policies, everyone, pod(name), 9100), `${name}:9100`).toEqual(['prometheus']);
    }
    for (const port of [443, 6443]) expect(whoReaches(policies, ours, apiServer, port), `API :${port}`).toEqual(['promoter']);
    expect(whoReaches(policies, ours, prometheus, 9090)).toEqual(['promoter']);
    expect(whoReaches(policies, everyone, pod('nats'), 4222)).toEqual(['ci-runner', 'gateway', ...INFERENCE, 'promoter'].sort());
    expect(whoReaches(policies, everyone, pod('promoter'), 9102)).toEqual(['prometheus']);
    expect(whoReaches(policies, everyone, pod('nats'), 7777)).toEqual(['prometheus']);
    expect(whoReaches(policies, everyone, pod('nats'), 8222)).toEqual([]);
    expect(allowed(policies, ingress, pod('gateway'), 8080)).toBe(true);
    expect(allowed(policies, ingress, pod('gateway'), 9090)).toBe(true);
    expect(allowed(policies, prometheus, pod('gateway'), 8080)).toBe(true);
    expect(allowed(policies, ingress, pod(INFERENCE[0]!), 50051)).toBe(false);
    for (const e of ours) {
      expect(allowed(policies, e, dns, 53), `${e.name} → DNS`).toBe(true);
      // Default deny both ways: no segserve pod talks to a stranger.
      expect(allowed(policies, e, stranger, 8080), `${e.name} → stranger`).toBe(false);
      expect(allowed(policies, e, { name: 'internet', ip: '93.184.216.34' }, 80), `${e.name} → internet:80`).toBe(false);
    }
  });

  it('Prometheus Operator objects select the pods and ports that exist; the dashboard ConfigMap carries the sidecar label', () => {
    const objects = render(overlay);
    const pods = workloads(objects);
    for (const pm of byKind(objects, 'PodMonitor')) {
      const selected = pods.filter((w) => Object.entries(pm.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
      expect(selected.length, pm.metadata.name).toBeGreaterThan(0);
      for (const w of selected) for (const ep of pm.spec.podMetricsEndpoints) expect(containersOf(w).flatMap((c) => (c.ports ?? []).map((p: Json) => p.name))).toContain(ep.port);
    }
    const sm = find(objects, 'ServiceMonitor', 'segserve-gateway');
    const svc = byKind(objects, 'Service').find((s) => Object.entries(sm.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => s.metadata.labels?.[k] === v));
    expect(svc?.spec.ports.map((p: Json) => p.name)).toContain(sm.spec.endpoints[0].port);
    const jobs = [...byKind(objects, 'PodMonitor'), sm].map((m) => (m.spec.podMetricsEndpoints ?? m.spec.endpoints)[0].relabelings.find((r: Json) => r.targetLabel === 'job')?.replacement).sort();
    expect(jobs).toEqual(['segserve-gateway', 'segserve-inference', 'segserve-nats', 'segserve-promoter']);
    const dashboard = byKind(objects, 'ConfigMap').find((c) => c.metadata.labels?.['grafana_dashboard'] === '1');
    expect(dashboard?.data?.['segserve.json']).toBe(readFileSync(path.join(REPO_ROOT, 'deploy', 'grafana', 'segserve.json'), 'utf8'));
  });

  it('NATS: JetStream on a volume larger than max_file_store, every password variable from the Secret', () => {
    const objects = render(overlay);
    const sts = find(objects, 'StatefulSet', 'nats');
    const conf = readFileSync(path.join(REPO_ROOT, 'deploy', 'nats', 'nats.conf'), 'utf8');
    const configMap = byKind(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('nats-config'));
    expect(configMap?.data?.['nats.conf']).toBe(conf);
    const maxFileStore = quantity((/max_file_store:\s*(\d+)GB/.exec(conf)?.[1] ?? 'x') + 'G');
    const pvc = quantity(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage);
    expect(pvc).toBeGreaterThan(maxFileStore);
    expect(sts.spec.template.spec.containers[0].volumeMounts.map((m: Json) => m.mountPath)).toContain('/data');
    expect(conf).toMatch(/store_dir:\s*\/data\/jetstream/);
    const vars = [...conf.matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]);
    const e = env(sts.spec.template.spec.containers[0]);
    for (const v of vars) expect(e[v!]?.valueFrom?.secretKeyRef?.name, v).toMatch(/^segserve-nats-users/);
  });
});

describe('schema validation', () => {
  it('catches a wrong type, a missing required field and an unknown (misspelt) field', () => {
    const broken: K8sObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec: { replicas: 'two', selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ image: 'x:1', livenesProbe: { grpc: { port: 1 } } }] } } },
    };
    const errors = schemaErrors(broken).join('\n');
    expect(errors).toMatch(/replicas must be integer|must have required property 'name'/);
    expect(errors).toContain('unknown field .spec.template.spec.containers[0].livenesProbe');
    expect(() => schemaErrors({ ...broken, apiVersion: 'extensions/v1beta1' })).toThrow(/no schema/);
  });
});
