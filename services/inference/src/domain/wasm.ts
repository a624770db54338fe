// A minimal WebAssembly encoder for the pipeline's numeric kernels (docs/architecture.md#request-data-flow):
// a module of functions taking i32 parameters over one memory the caller creates and imports
// (env.memory), and the few instructions such kernels use. The kernels stay readable source in
// this repository instead of a binary built by an outside tool.

/** One instruction's bytes; a function body is a flat list of them. */
export type Code = readonly number[];

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    const byte = v & 0x7f;
    v >>>= 7;
    out.push(v === 0 ? byte : byte | 0x80);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const name = (s: string): number[] => {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
};
const vector = (items: readonly number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: readonly number[]): number[] => [id, ...uleb(body.length), ...body];

const I32 = 0x7f;

/** The instructions the kernels use (i32 only; alignment hints: natural). */
export const op = {
  /** `block` / `loop` without results; each closes with `end`. */
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  get: (local: number): Code => [0x20, ...uleb(local)],
  set: (local: number): Code => [0x21, ...uleb(local)],
  const: (value: number): Code => [0x41, ...sleb(value)],
  load: (offset = 0): Code => [0x28, 2, ...uleb(offset)],
  load8: (offset = 0): Code => [0x2d, 0, ...uleb(offset)],
  store: (offset = 0): Code => [0x36, 2, ...uleb(offset)],
  store8: (offset = 0): Code => [0x3a, 0, ...uleb(offset)],
  geU: [0x4f],
  add: [0x6a],
  sub: [0x6b],
  and: [0x71],
  shl: [0x74],
  shrU: [0x76],
} as const;

export interface WasmFunction {
  readonly name: string;
  /** Number of i32 parameters (locals 0 … params − 1). */
  readonly params: number;
  /** Number of further i32 locals (after the parameters). */
  readonly locals: number;
  readonly body: readonly Code[];
}

/** The module's bytes: `functions` exported by name, the memory imported as env.memory. */
export function wasmModule(functions: readonly WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vector(Array.from({ length: f.params }, () => [I32])), 0]);
  const imports = [[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]];
  const exports = functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]);
  const bodies = functions.map((f) => {
    const body = [...(f.locals > 0 ? vector([[...uleb(f.locals), I32]]) : [0]), ...f.body.flat(), ...op.end];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(2, vector(imports)),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}

// @types/node 20 does not declare the WebAssembly global (lib.dom does): the part used here.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
};

export interface Kernel {
  /** The whole memory (it never grows, so views on it stay valid). */
  readonly memory: ArrayBuffer;
  readonly exports: Readonly<Record<string, (...args: number[]) => void>>;
}

const compiled = new WeakMap<Uint8Array, object>();

/** An instance of `module` (compiled once per thread) over a new memory of at least `bytes`. */
export function instantiate(module: Uint8Array, bytes: number): Kernel {
  let m = compiled.get(module);
  if (!m) {
    m = new WebAssembly.Module(module);
    compiled.set(module, m);
  }
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) });
  const instance = new WebAssembly.Instance(m, { env: { memory } });
  return { memory: memory.buffer, exports: instance.exports as Kernel['exports'] };
}
