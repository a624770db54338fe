#!/usr/bin/env node
// `segserve eval --json` output → GitLab's metrics report (one `name value` line per number),
// so a merge request shows mIoU, latency and peak RSS next to the target branch's.
// Usage: node deploy/ci/eval-report.mjs eval.json > metrics.txt
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node deploy/ci/eval-report.mjs <eval.json>\n');
  process.exit(2);
}
const lines = [];
const walk = (value, name) => {
  if (typeof value === 'number' && Number.isFinite(value)) lines.push(`${name} ${value}`);
  else if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) walk(v, `${name}_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`);
  }
};
walk(JSON.parse(readFileSync(file, 'utf8')), 'segserve_eval');
if (lines.length === 0) {
  process.stderr.write(`${file}: no numeric metrics\n`);
  process.exit(1);
}
process.stdout.write(lines.join('\n') + '\n');
