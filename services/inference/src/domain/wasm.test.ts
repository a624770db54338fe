import { describe, expect, it } from 'vitest';
import { instantiate, op, wasmModule, type Code } from './wasm.js';

describe('wasmModule', () => {
  // Constants at the edges of each LEB128 length, stored and read back.
  const constants = [0, 1, 63, 64, -64, -65, 127, 128, 0x3fc, 8191, 8192, -8193, 0x7fffffff, -0x80000000, -1];

  it('encodes constants, stores and offsets exactly', () => {
    const body: Code[] = constants.flatMap((v, i) => [op.get(0), op.const(v), op.store(4 * i)]);
    const kernel = instantiate(wasmModule([{ name: 'fill', params: 1, locals: 0, body }]), 65536);
    kernel.exports['fill']!(256);
    expect(Array.from(new Int32Array(kernel.memory, 256, constants.length))).toEqual(constants);
  });

  it('runs loops over bytes with locals and two exported functions', () => {
    // sum(from, to, at): memory[at] = Σ bytes [from, to); double(at): memory[at] ×= 2.
    const [FROM, TO, AT, SUM] = [0, 1, 2, 3];
    const sum = [op.block, op.loop, op.get(FROM), op.get(TO), op.geU, op.brIf(1), op.get(SUM), op.get(FROM), op.load8(), op.add, op.set(SUM), op.get(FROM), op.const(1), op.add, op.set(FROM), op.br(0), op.end, op.end, op.get(AT), op.get(SUM), op.store()];
    const double = [op.get(0), op.get(0), op.load(), op.const(1), op.shl, op.store()];
    const kernel = instantiate(wasmModule([{ name: 'sum', params: 3, locals: 1, body: sum }, { name: 'double', params: 1, locals: 0, body: double }]), 65536 + 1);
    expect(kernel.memory.byteLength).toBe(2 * 65536);
    const bytes = new Uint8Array(kernel.memory);
    for (let i = 0; i < 300; i++) bytes[1000 + i] = i & 0xff;
    kernel.exports['sum']!(1000, 1300, 4000);
    kernel.exports['double']!(4000);
    expect(new Int32Array(kernel.memory, 4000, 1)[0]).toBe(2 * Array.from({ length: 300 }, (_, i) => i & 0xff).reduce((a, b) => a + b, 0));
  });
});
