// The promoter's HTTP endpoint (:9102): Prometheus metrics, and Prometheus HTTP service
// discovery of the local driver's inference processes (`segserve stack` points its Prometheus
// here, since those processes get new ports with every version), and the intake's bounded
// record of results rejected before authentication.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface SdTarget {
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface HttpEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpEndpointOptions {
  readonly port: number;
  readonly host?: string;
  readonly registry: Registry;
  readonly sdTargets: () => readonly SdTarget[];
  /** `/intake/unverified`: counts and the latest results rejected before authentication (JSON). */
  readonly unverified?: () => unknown;
}

export async function startHttpEndpoint(options: HttpEndpointOptions): Promise<HttpEndpoint> {
  const server = http.createServer((req, res) => {
    const url = req.url?.split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (url === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (url === '/sd/inference') {
      const groups = options.sdTargets().map((t) => ({ targets: [t.target], labels: t.labels }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(groups));
    } else if (url === '/intake/unverified' && options.unverified) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(options.unverified()));
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
