// `npm start` runs this before any set-up work: a port the gateway needs that is already taken is
// named with the variable that moves it, in a second instead of after the install and the build.
// No dependencies (it runs before `npm ci`).
import net from 'node:net';

const host = process.env.SEGSERVE_HOST || '127.0.0.1';
const ports = [
  ['SEGSERVE_HTTP_PORT', 8080, 'REST and the upload page'],
  ['SEGSERVE_GRPC_PORT', 9090, 'gRPC'],
];

/** Resolves with the error code when `port` cannot be bound on `host`, or undefined when it can. */
const tryBind = (port) =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err) => resolve(err.code ?? String(err)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });

let clash = false;
for (const [variable, fallback, what] of ports) {
  const raw = process.env[variable];
  const port = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`npm start: ${variable}=${raw} is not a port number (0–65535; 0 picks a free one).`);
    clash = true;
    continue;
  }
  if (port === 0) continue;
  const code = await tryBind(port);
  if (code === undefined) continue;
  clash = true;
  const why = code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${code})`;
  console.error(`npm start: port ${port} on ${host} (${what}) ${why}. Stop what holds it, or choose another: ${variable}=${port + 1} npm start`);
}
process.exit(clash ? 1 : 0);
