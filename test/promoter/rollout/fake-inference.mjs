// A stand-in for `segserve inference` that speaks only the contract the local driver relies on
// (the start-up line with its ports, grpc.health.v1, /metrics). Used where a test needs a
// process to misbehave in ways the real server never would: FAKE_MODE=crash exits at once,
// FAKE_MODE=hang never serves, FAKE_MODE=crash-after-ready exits 1 s after serving.
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '@segserve/proto';

const mode = process.env.FAKE_MODE ?? 'ok';
const model = process.argv[process.argv.indexOf('--model') + 1] ?? 'none';
if (mode === 'crash') {
  console.log(JSON.stringify({ level: 'error', msg: 'fake crash', model }));
  process.exit(3);
}
if (mode === 'hang') setInterval(() => undefined, 1000);
else {
  const { health } = loadProtos();
  const server = new grpc.Server();
  let status = 'SERVING';
  server.addService(health.grpc.health.v1.Health.service, {
    Check: (_call, cb) => cb(null, { status }),
    Watch: (call) => call.end(),
  });
  const grpcPort = await new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${process.env.SEGSERVE_GRPC_PORT ?? '0'}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const metrics = http.createServer((_req, res) => res.end(`segserve_model_info{model="x",version="1",sha256="y"} 1\n`));
  await new Promise((resolve) => metrics.listen(Number(process.env.SEGSERVE_METRICS_PORT ?? '0'), '127.0.0.1', resolve));
  console.log(JSON.stringify({ level: 'info', service: 'inference', msg: 'serving', grpc_port: grpcPort, metrics_port: metrics.address().port, model, env_fault: process.env.SEGSERVE_FAULT_ERROR_RATIO ?? null }));
  if (mode === 'crash-after-ready') setTimeout(() => process.exit(1), 1000);
  const stop = () => {
    status = 'NOT_SERVING';
    metrics.close();
    server.tryShutdown(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
