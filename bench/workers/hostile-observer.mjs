// The well-behaved client of the hostile scenario, on its own thread so that the attack traffic
// the main thread generates never delays its requests or its clock: ordinary uploads through the
// gateway (`concurrency` at a time) and a /healthz probe every 20 ms. The main thread asks for a
// window's results with {cmd: 'begin'} / {cmd: 'end'} and stops it with {cmd: 'stop'}.
// Uploads ask for the JSON answer, whose timings split each request's time: the gateway's
// total and upstream call, the inference service's queue (memory and slot), decode and run.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { httpAgent, multipartBody, postRaw } from '../lib/clients.mjs';

const { gwHttp, model, imageFiles, key, concurrency } = workerData;
const forms = imageFiles.map((f) => multipartBody(readFileSync(f)));
const agent = httpAgent(concurrency);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let running = true;
let uploads = [];
let health = { maxMs: 0, failures: 0, answered: 0 };

/** Where an answered upload's time went, ms, from the gateway's JSON timings. */
function split(body) {
  try {
    const t = JSON.parse(body.toString('utf8')).timings;
    const inf = t.inference ?? {};
    return { gateway: t.total_ms, upstream: t.upstream_ms, inference: inf.total_ms, queue: inf.queue_ms, decode: inf.decode_ms, infer: inf.infer_ms };
  } catch {
    return undefined;
  }
}

async function uploadLoop(offset) {
  let i = offset;
  while (running) {
    const o = await postRaw(`${gwHttp}/v1/models/${model}/segment`, { ...forms[i++ % forms.length], headers: { authorization: `Bearer ${key}`, accept: 'application/json' } }, { agent, timeoutMs: 60_000 });
    uploads.push({ code: o.code, ms: o.ms, ...(o.code === 'OK' ? { split: split(o.body) } : {}) });
    if (o.code === 'NETWORK') await sleep(200);
  }
}

async function healthLoop() {
  const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (running) {
    const t0 = performance.now();
    const ok = await new Promise((resolve) => {
      const req = http.get(`${gwHttp}/healthz`, { agent: probeAgent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
    const ms = performance.now() - t0;
    if (ok) {
      health.maxMs = Math.max(health.maxMs, ms);
      health.answered++;
    } else health.failures++;
    await sleep(20);
  }
  probeAgent.destroy();
}

const loops = [...Array.from({ length: concurrency }, (_, k) => uploadLoop(k)), healthLoop()];

parentPort.on('message', async (m) => {
  if (m.cmd === 'begin') {
    uploads = [];
    health = { maxMs: 0, failures: 0, answered: 0 };
  } else if (m.cmd === 'end') {
    parentPort.postMessage({ uploads, health });
  } else if (m.cmd === 'stop') {
    running = false;
    await Promise.all(loops);
    agent.destroy();
    parentPort.postMessage({ stopped: true });
  }
});
