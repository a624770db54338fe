// A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics) for the rendered manifests:
// is a TCP connection from one endpoint to another on a port allowed? A pod selected by no
// policy of a direction is open in that direction; once selected, only what some rule of a
// selecting policy allows gets through, and both the source's egress and the destination's
// ingress must allow it.
import type { Json, K8sObject } from './render.js';

export interface Endpoint {
  readonly name: string;
  /** Pods have a namespace and labels; an address outside the cluster has only `ip`. */
  readonly namespace?: string;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ip?: string;
}

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined;

export function selects(selector: Selector, labels: Readonly<Record<string, string>> = {}): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    const ok =
      e.operator === 'In' ? has && (e.values ?? []).includes(value ?? '') :
      e.operator === 'NotIn' ? !has || !(e.values ?? []).includes(value ?? '') :
      e.operator === 'Exists' ? has :
      e.operator === 'DoesNotExist' ? !has : false;
    if (!ok) return false;
  }
  return true;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const n = Number(bits);
  if (n === 0) return true;
  const mask = 2 ** 32 - 2 ** (32 - n);
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(base ?? '0.0.0.0') & mask) >>> 0;
}

function peerMatches(peer: Json, policyNamespace: string, other: Endpoint): boolean {
  if (peer.ipBlock) {
    // ipBlock is for addresses outside the cluster (its effect on pod IPs is CNI-specific).
    if (!other.ip) return false;
    return inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c: string) => inCidr(other.ip ?? '', c));
  }
  if (other.namespace === undefined) return false;
  const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, other.namespaceLabels) : other.namespace === policyNamespace;
  const podOk = peer.podSelector ? selects(peer.podSelector, other.labels) : true;
  return nsOk && podOk;
}

function portMatches(ports: Json[] | undefined, port: number): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || p.port === port || (p.endPort !== undefined && port >= p.port && port <= p.endPort)));
}

function ruleAllows(rule: Json, peers: 'from' | 'to', policyNamespace: string, other: Endpoint, port: number): boolean {
  if (!portMatches(rule.ports, port)) return false;
  const list: Json[] | undefined = rule[peers];
  if (!list || list.length === 0) return true;
  return list.some((peer) => peerMatches(peer, policyNamespace, other));
}

function directionAllows(policies: readonly K8sObject[], self: Endpoint, other: Endpoint, port: number, direction: 'Ingress' | 'Egress'): boolean {
  if (self.namespace === undefined) return true; // outside the cluster: no policy applies
  const selecting = policies.filter(
    (p) => (p.metadata.namespace ?? '') === self.namespace && selects(p.spec.podSelector ?? {}, self.labels) && (p.spec.policyTypes ?? ['Ingress']).includes(direction),
  );
  if (selecting.length === 0) return true;
  const field = direction === 'Ingress' ? 'ingress' : 'egress';
  const peers = direction === 'Ingress' ? 'from' : 'to';
  return selecting.some((p) => ((p.spec[field] ?? []) as Json[]).some((rule) => ruleAllows(rule, peers, p.metadata.namespace ?? '', other, port)));
}

/** Whether `from` may open a TCP connection to `to` on `port`. */
export function allowed(policies: readonly K8sObject[], from: Endpoint, to: Endpoint, port: number): boolean {
  return directionAllows(policies, from, to, port, 'Egress') && directionAllows(policies, to, from, port, 'Ingress');
}

/** Every endpoint of `candidates` that may reach `to` on `port`, by name. */
export function whoReaches(policies: readonly K8sObject[], candidates: readonly Endpoint[], to: Endpoint, port: number): string[] {
  return candidates.filter((c) => c !== to && allowed(policies, c, to, port)).map((c) => c.name).sort();
}
