// The floor under a refused burst (bench/burst.mjs --server): a server with no model that holds
// the first `capacity` Segment calls of a connection for `hold` ms and refuses the rest
// OVERLOADED the moment their headers arrive, exactly as the inference edge answers them
// (RESOURCE_EXHAUSTED + segserve-error-code trailer, then RST_STREAM NO_ERROR). Two builds:
//   h2    Node's http2 server alone: the transport's floor.
//   grpc  grpc-js + the segserve edge guard (GrpcEdgeGuard, receive windows): the framework's.
// Prints {"grpc_port": n} when ready; per burst (after `quiet` ms without a new call) one line
// {"burst": {...}} with epoch ms of each call's headers and each refusal.
//
//   node bench/workers/refuser.mjs --mode h2|grpc [--capacity 18] [--hold 1000]
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, SegserveError, loadProtos } from '@segserve/proto';
import { GrpcEdgeGuard, bindWithReceiveWindows, UPLOAD_RECEIVE_WINDOWS } from '@segserve/runtime';
import { args } from '../lib/args.mjs';

const a = args(process.argv.slice(2));
const mode = a.mode ?? 'h2';
const capacity = Number(a.capacity ?? 18);
const holdMs = Number(a.hold ?? 1000);
const QUIET_MS = 300;
const epoch = () => performance.timeOrigin + performance.now();

let burst = { headers: [], refused: [] };
let held = 0;
let quietTimer;
function seen(kind) {
  burst[kind].push(Math.round(epoch() * 10) / 10);
  clearTimeout(quietTimer);
  quietTimer = setTimeout(() => {
    console.log(JSON.stringify({ burst }));
    burst = { headers: [], refused: [] };
  }, QUIET_MS);
}

/** Takes a place, or undefined when all `capacity` are held. */
function place() {
  if (held >= capacity) return undefined;
  held++;
  let given = false;
  return { release: () => (given ? undefined : ((given = true), held--)) };
}

if (mode === 'h2') {
  const server = http2.createServer({ settings: { initialWindowSize: UPLOAD_RECEIVE_WINDOWS.streamBytes } });
  server.on('session', (s) => s.setLocalWindowSize(UPLOAD_RECEIVE_WINDOWS.connectionBytes));
  server.on('stream', (stream) => {
    seen('headers');
    const p = place();
    if (!p) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpc.status.RESOURCE_EXHAUSTED), 'grpc-message': 'overloaded', [ERROR_CODE_METADATA_KEY]: 'OVERLOADED', 'retry-after': '1' }, { endStream: true });
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
      seen('refused');
      return;
    }
    stream.on('data', () => {});
    stream.on('close', () => p.release());
    setTimeout(() => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(grpc.status.UNAVAILABLE), 'grpc-message': 'held' }));
      stream.end();
    }, holdMs);
  });
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ grpc_port: server.address().port, mode })));
} else {
  const guard = new GrpcEdgeGuard({
    defaultMaxBytes: 4 << 20,
    arrive: () => {
      seen('headers');
      const p = place();
      if (p) return p;
      seen('refused');
      throw new SegserveError('OVERLOADED', 'all places are taken');
    },
    admit: (_path, _bytes, _caller, p) => p ?? { release: () => {} },
  });
  const protos = loadProtos();
  const server = new grpc.Server({ interceptors: [guard.interceptor], 'grpc.max_receive_message_length': 64 << 20 });
  const segment = { maxBytes: () => 64 << 20, charged: true, raw: true };
  server.addService(guard.service(protos.segmenter.segserve.v1.Segmenter.service, { Segment: segment }), {
    Segment: (_call, callback) => setTimeout(() => callback({ code: grpc.status.UNAVAILABLE, details: 'held' }), holdMs),
  });
  const { port } = await bindWithReceiveWindows(server, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
  console.log(JSON.stringify({ grpc_port: port, mode }));
}
process.on('SIGTERM', () => process.exit(0));
