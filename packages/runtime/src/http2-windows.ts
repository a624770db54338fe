// HTTP/2 receive windows for gRPC servers that take large uploads.
//
// Node's HTTP/2 starts every stream and every connection with a 64 KiB receive window and
// widens it one WINDOW_UPDATE at a time as the server's event loop reads. A burst of 50 image
// uploads of ~120 KiB on one connection (the gateway's to a pod, or a client's) then crawls
// through ~100 window round trips, and every request — including the ones that will be refused
// OVERLOADED at once — is complete only at the end: the excess of such a burst was answered in
// p95 183–185 ms, and in 98–134 ms with the windows below (docs/benchmarks.md, "OVERLOADED").
//
// grpc-js (1.14) has an option for this on its clients ('grpc-node.flow_control_window') but
// none on its servers, so this reaches into two of the server's fields. Both are checked: when
// a grpc-js release renames them, the server keeps Node's defaults, `windowsApplied` is false,
// and packages/runtime/src/http2-windows.test.ts fails on the upgrade.
import type * as grpc from '@grpc/grpc-js';
import type { Http2Server, Http2Session } from 'node:http2';

export interface ReceiveWindows {
  /** SETTINGS_INITIAL_WINDOW_SIZE announced to clients: per stream. */
  readonly streamBytes: number;
  /** The connection-level window, shared by all streams of a connection. */
  readonly connectionBytes: number;
}

/** 1 MiB per stream, 8 MiB per connection: a few dozen uploads in flight, bounded memory. */
export const UPLOAD_RECEIVE_WINDOWS: ReceiveWindows = Object.freeze({ streamBytes: 1 << 20, connectionBytes: 8 << 20 });

interface ServerInternals {
  commonServerOptions?: { settings?: Record<string, unknown> };
  http2Servers?: Map<Http2Server, unknown>;
}

/**
 * bindAsync with wider receive windows. Resolves with the bound port and whether the windows
 * were applied (false: this grpc-js no longer has the fields, Node's defaults stay).
 */
export function bindWithReceiveWindows(server: grpc.Server, address: string, credentials: grpc.ServerCredentials, windows: ReceiveWindows = UPLOAD_RECEIVE_WINDOWS): Promise<{ port: number; windowsApplied: boolean }> {
  const internals = server as unknown as ServerInternals;
  const common = internals.commonServerOptions;
  const announced = typeof common === 'object';
  // Every connection's SETTINGS frame: the per-stream window.
  if (announced) common.settings = { ...common.settings, initialWindowSize: windows.streamBytes };
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => {
      if (err) return reject(err);
      const servers = internals.http2Servers;
      const widened = servers instanceof Map && servers.size > 0;
      if (widened) {
        // The connection window can only be set on an open session.
        for (const h2 of servers.keys()) h2.on('session', (session: Http2Session) => widen(session, windows.connectionBytes));
      }
      resolve({ port, windowsApplied: announced && widened });
    });
  });
}

function widen(session: Http2Session, bytes: number): void {
  try {
    session.setLocalWindowSize(bytes);
  } catch {
    // Closed before its settings were exchanged: nothing to widen.
  }
}
