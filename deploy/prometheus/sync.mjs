#!/usr/bin/env node
// Writes prometheusrule.yaml (the Prometheus Operator object) from rules.yml (the plain rules
// file promtool checks and tests). rules.yml is the source; test/deploy/prometheus.test.ts
// fails when the two differ. Usage: node deploy/prometheus/sync.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const rules = parse(readFileSync(path.join(here, 'rules.yml'), 'utf8'));
const object = {
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: {
    name: 'segserve',
    labels: { 'app.kubernetes.io/name': 'segserve', release: 'kube-prometheus-stack' },
  },
  spec: { groups: rules.groups },
};
const header = '# GENERATED from rules.yml by `node deploy/prometheus/sync.mjs`; edit rules.yml instead.\n';
writeFileSync(path.join(here, 'prometheusrule.yaml'), header + stringify(object, { lineWidth: 0 }));
