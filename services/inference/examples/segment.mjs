// A plain grpc-js client for segserve's Segment call, built only from the .proto files.
//
//   node services/inference/examples/segment.mjs <host:port> <image> [mask.png]
//
// Prints the class shares and writes the mask (a one-channel PNG, pixel value = class index).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [target = '127.0.0.1:50051', imagePath, maskPath = 'mask.png'] = process.argv.slice(2);
if (!imagePath) {
  console.error('usage: segment.mjs <host:port> <image> [mask.png]');
  process.exit(2);
}
const protoRoot = fileURLToPath(new URL('../../../proto', import.meta.url));
const def = protoLoader.loadSync('segserve/v1/segmenter.proto', { includeDirs: [protoRoot], keepCase: true, longs: String, enums: String, defaults: true });
const { segserve } = grpc.loadPackageDefinition(def);
const client = new segserve.v1.Segmenter(target, grpc.credentials.createInsecure(), {
  'grpc.max_send_message_length': 32 * 1024 * 1024,
  'grpc.max_receive_message_length': 32 * 1024 * 1024,
});

client.Segment({ image: readFileSync(imagePath), mask_format: 'PNG' }, { deadline: Date.now() + 30_000 }, (err, res) => {
  client.close();
  if (err) {
    // The exact segserve code (e.g. TOO_LARGE vs OVERLOADED) is in the trailer.
    console.error(`error ${err.code} ${err.metadata?.get('segserve-error-code')[0] ?? ''}: ${err.details}`);
    process.exit(1);
  }
  writeFileSync(maskPath, res.mask);
  console.log(`${res.model}/${res.version} ${res.width}x${res.height} in ${res.timings.total_ms.toFixed(1)} ms -> ${maskPath}`);
  for (const c of res.classes) console.log(`  ${c.name.padEnd(12)} ${(c.fraction * 100).toFixed(1)}%  (${c.pixels} px)`);
});
