// @segserve/runtime: what every segserve process shares at run time. Contracts (what crosses a
// process boundary) live in @segserve/proto; this package holds the code that runs inside one.
export * from './logger.js';
export * from './config.js';
export * from './log-line.js';
export * from './http2-windows.js';
export * from './process-env.js';
export * from './client-identity.js';
export * from './memory-budget.js';
export * from './memory-ledger.js';
export * from './wire-scan.js';
export * from './request-rules.js';
export * from './grpc-edge.js';
export * from './grpc-preframed.js';
export * from './cgroup.js';
export * from './golden/index.js';
export * from './png.js';
export * from './supervisor.js';
export * from './gc.js';
