/**
 * A tiny WebAssembly binary emitter: just enough to hand-assemble the direction kernels of wasmDirections.ts
 * at import time (no toolchain, no build step, no npm package). It writes the standard binary format
 * (https://webassembly.github.io/spec/core/binary/) including the fixed-width SIMD (v128) opcodes; the
 * result is a plain byte array for `new WebAssembly.Module(bytes)`, usable in Node and in browsers.
 *
 * Only what the kernels use is here: i32/f64/v128 value types, locals, block/loop/if, branches, the memory
 * loads/stores, and a table of opcode numbers. Functions are written as a flat list of instructions; the
 * caller is responsible for stack discipline (the engine's validator checks it: WebAssembly.validate).
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
export function uleb(v: number, out: number[] = []): number[] {
  if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`uleb: ${v}`);
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer (any int32 or uint32 value, encoded as its int32 reading). */
export function sleb32(v: number, out: number[] = []): number[] {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** Core (single-byte) opcodes used by the kernels. */
export const Op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  return: 0x0f,
  drop: 0x1a,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  i32_load: 0x28,
  f32_load: 0x2a,
  f64_load: 0x2b,
  i32_store: 0x36,
  f32_store: 0x38,
  f64_store: 0x39,
  i32_const: 0x41,
  f64_const: 0x44,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotl: 0x77,
  i32_ctz: 0x68,
  select: 0x1b,
  i64_load: 0x29,
  i64_store: 0x37,
  i32_store8: 0x3a,
  i64_const: 0x42,
  i64_eqz: 0x50,
  i64_ctz: 0x7a,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_and: 0x83,
  i64_shl: 0x86,
  i64_shr_u: 0x88,
  f64_lt: 0x63,
  f64_gt: 0x64,
  f64_floor: 0x9c,
  f64_add: 0xa0,
  f64_sub: 0xa1,
  f64_mul: 0xa2,
  f64_div: 0xa3,
  f64_neg: 0x9a,
  i32_wrap_i64: 0xa7,
  i32_trunc_f64_s: 0xaa,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
  f32_demote_f64: 0xb6,
  f64_convert_i32_s: 0xb7,
  f64_convert_i32_u: 0xb8,
  f64_promote_f32: 0xbb,
  i64_reinterpret_f64: 0xbd,
  f64_reinterpret_i64: 0xbf,
  i64_or: 0x84,
} as const;

/** SIMD opcodes (prefix 0xFD, then the number as unsigned LEB128). */
export const Simd = {
  v128_load: 0x00,
  v128_store: 0x0b,
  v128_const: 0x0c,
  i8x16_shuffle: 0x0d,
  i32x4_splat: 0x11,
  f64x2_splat: 0x14,
  i32x4_extract_lane: 0x1b,
  i32x4_replace_lane: 0x1c,
  i32x4_eq: 0x37,
  i32x4_lt_s: 0x39,
  i32x4_gt_s: 0x3b,
  i32x4_ge_s: 0x3f,
  v128_and: 0x4e,
  v128_or: 0x50,
  v128_xor: 0x51,
  v128_any_true: 0x53,
  v128_load32_lane: 0x56,
  v128_load64_lane: 0x57,
  v128_store32_lane: 0x5a,
  v128_store64_lane: 0x5b,
  v128_load32_zero: 0x5c,
  v128_load64_zero: 0x5d,
  f32x4_demote_f64x2_zero: 0x5e,
  f64x2_promote_low_f32x4: 0x5f,
  i32x4_abs: 0xa0,
  i32x4_bitmask: 0xa4,
  i32x4_shl: 0xab,
  i32x4_shr_s: 0xac,
  i32x4_shr_u: 0xad,
  i32x4_add: 0xae,
  i32x4_sub: 0xb1,
  i32x4_mul: 0xb5,
  f64x2_add: 0xf0,
  f64x2_mul: 0xf2,
  f64x2_convert_low_i32x4_s: 0xfe,
} as const;

/** One function body under construction: declared locals plus a flat instruction byte stream. */
export class Fn {
  readonly code: number[] = [];
  private readonly localTypes: ValType[] = [];
  private nextIndex: number;

  constructor(
    readonly params: ValType[],
    readonly results: ValType[],
  ) {
    this.nextIndex = params.length;
  }

  /** Declare a new local of type t; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.nextIndex++;
  }

  op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
  get(i: number): this {
    return this.op(Op.local_get, ...uleb(i));
  }
  set(i: number): this {
    return this.op(Op.local_set, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(Op.local_tee, ...uleb(i));
  }
  i32(v: number): this {
    return this.op(Op.i32_const, ...sleb32(v));
  }
  /** i64.const of a value given as a BigInt (two's complement, 64 bits). */
  i64(v: bigint): this {
    const out: number[] = [];
    v = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        out.push(b);
        break;
      }
      out.push(b | 0x80);
    }
    return this.op(Op.i64_const, ...out);
  }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    // the binary format is little-endian whatever the host is
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const bytes = Array.from(b);
    return this.op(Op.f64_const, ...(le ? bytes : bytes.reverse()));
  }
  /** Core memory instruction with memarg (alignment exponent, constant offset). */
  mem(opcode: number, alignLog2: number, offset = 0): this {
    return this.op(opcode, ...uleb(alignLog2), ...uleb(offset));
  }
  simd(opcode: number): this {
    return this.op(0xfd, ...uleb(opcode));
  }
  /** SIMD memory instruction (v128.load/store, load*_zero). */
  simdMem(opcode: number, alignLog2: number, offset = 0): this {
    return this.simd(opcode).op(...uleb(alignLog2), ...uleb(offset));
  }
  /** SIMD lane memory instruction (v128.loadN_lane / storeN_lane). */
  simdLaneMem(opcode: number, alignLog2: number, offset: number, lane: number): this {
    return this.simd(opcode).op(...uleb(alignLog2), ...uleb(offset), lane);
  }
  lane(opcode: number, lane: number): this {
    return this.simd(opcode).op(lane);
  }
  /** v128.const from four int32 lanes. */
  v128i32(a: number, b: number, c: number, d: number): this {
    const bytes = new Uint8Array(new Int32Array([a, b, c, d]).buffer);
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const out: number[] = [];
    for (let lane = 0; lane < 4; lane++) {
      const q = Array.from(bytes.subarray(lane * 4, lane * 4 + 4));
      out.push(...(le ? q : q.reverse()));
    }
    return this.simd(Simd.v128_const).op(...out);
  }
  shuffle(lanes: number[]): this {
    if (lanes.length !== 16) throw new Error('i8x16.shuffle needs 16 lane indices');
    return this.simd(Simd.i8x16_shuffle).op(...lanes);
  }
  /** Structured control: blocktype empty (0x40). */
  block(): this {
    return this.op(Op.block, 0x40);
  }
  loop(): this {
    return this.op(Op.loop, 0x40);
  }
  if(): this {
    return this.op(Op.if, 0x40);
  }
  end(): this {
    return this.op(Op.end);
  }
  br(depth: number): this {
    return this.op(Op.br, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(Op.br_if, ...uleb(depth));
  }

  /** Encoded body: local declarations (run-length by type) + code + end. */
  body(): number[] {
    const groups: [number, ValType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const out: number[] = uleb(groups.length);
    for (const [n, t] of groups) out.push(...uleb(n), t);
    out.push(...this.code, Op.end);
    return [...uleb(out.length), ...out];
  }
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function name(s: string): number[] {
  const b = Array.from(new TextEncoder().encode(s));
  return [...uleb(b.length), ...b];
}

/**
 * A module with one memory of `pages` 64 KiB pages (exported as "memory", no maximum growth needed) and the
 * given exported functions, in order.
 */
export function emitModule(fns: { name: string; fn: Fn }[], pages: number): Uint8Array<ArrayBuffer> {
  // one type per function (duplicates are harmless)
  const types: number[] = uleb(fns.length);
  for (const { fn } of fns) {
    types.push(0x60, ...uleb(fn.params.length), ...fn.params, ...uleb(fn.results.length), ...fn.results);
  }
  const funcs: number[] = uleb(fns.length);
  fns.forEach((_, i) => funcs.push(...uleb(i)));
  const memory = [...uleb(1), 0x01, ...uleb(pages), ...uleb(pages)]; // limits: min = max = pages
  const exports: number[] = uleb(fns.length + 1);
  exports.push(...name('memory'), 0x02, ...uleb(0));
  fns.forEach(({ name: n }, i) => exports.push(...name(n), 0x00, ...uleb(i)));
  const code: number[] = uleb(fns.length);
  for (const { fn } of fns) code.push(...fn.body());
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(3, funcs),
    ...section(5, memory),
    ...section(7, exports),
    ...section(10, code),
  ]);
}
