// A tiny gRPC client for people trying segserve (printed by `segserve start`):
//   node services/gateway/dist/grpc-example.js <host:port> <model> <image> [mask.png] [api-key]
// Calls segserve.v1.Segmenter/Segment, writes the class-index PNG mask and prints a summary.
import * as grpc from '@grpc/grpc-js';
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_MAX_MESSAGE_BYTES, loadProtos, type SegmentResponse__Output } from '@segserve/proto';

async function main(argv: readonly string[]): Promise<number> {
  const [address, model, image, out = 'mask.png', key] = argv;
  if (!address || !model || !image) {
    process.stderr.write('usage: node grpc-example.js <host:port> <model> <image> [mask.png] [api-key]\n');
    return 2;
  }
  const { segmenter } = loadProtos();
  const client = new segmenter.segserve.v1.Segmenter(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
    'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
  });
  const metadata = new grpc.Metadata();
  if (key) metadata.set('authorization', `Bearer ${key}`);
  try {
    const response = await new Promise<SegmentResponse__Output>((resolve, reject) => {
      client.Segment({ model, image: readFileSync(image), mask_format: 'PNG' }, metadata, { deadline: Date.now() + 60_000 }, (err, res) => (err || !res ? reject(err ?? new Error('no response')) : resolve(res)));
    });
    writeFileSync(out, response.mask);
    const classes = response.classes.map((c) => ({ name: c.name, pixels: Number(c.pixels), fraction: Number(c.fraction.toFixed(4)) }));
    process.stdout.write(`${JSON.stringify({ model: response.model, version: response.version, width: response.width, height: response.height, classes, mask: out })}\n`);
    return 0;
  } catch (err) {
    const e = err as grpc.ServiceError;
    process.stderr.write(`Segment failed: ${grpc.status[e.code] ?? 'ERROR'} ${e.details ?? e.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
