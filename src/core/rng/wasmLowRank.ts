/**
 * WebAssembly SIMD128 kernel of the server's low-rank rebuild (lowrank.ts, SPEC.md §8): for whole rows of a
 * weight matrix, g[row][j] += Σ_t u[row][t] · V[t][j] with t ascending per element, two elements per f64x2 lane
 * pair. Each lane does exactly the binary64 operations of the JS kernel (f64x2.mul, f64x2.add: one IEEE
 * rounding each, no fused multiply-add), in the same order, so the bits equal the JS reference's
 * (test/lowrank.test.ts compares them). Hand-assembled with wasmEmit.ts at first use.
 *
 * Memory (fixed, MEM_PAGES): G (the rows of g being accumulated), U (their u_t), V (a chunk of terms of V).
 * Kernels `mm<R>x<N>(g, gs, u, us, v, vs, len)`: R = 1, 2 rows (row strides gs, us in bytes), N = 4 or 1 terms
 * starting at u, v (V's row stride vs in bytes), len elements per row (the odd last one in scalar f64).
 */
import { emitModule, F64, Fn, I32, Op, Simd, V128 } from './wasmEmit.ts';

/** Byte offsets and sizes of the three regions. */
export const LR_G = 0;
export const LR_G_BYTES = 8 << 20;
export const LR_U = LR_G + LR_G_BYTES;
export const LR_U_BYTES = 4 << 20;
export const LR_V = LR_U + LR_U_BYTES;
export const LR_V_BYTES = 4 << 20;
const MEM_PAGES = (LR_V + LR_V_BYTES) >> 16;

type MmFn = (g: number, gs: number, u: number, us: number, v: number, vs: number, len: number) => void;

/** Client, rank 1: rows i < rows of out[i][j] = fround(w[i][j] + sigma · fround(a[i] · b[j])), float32 arrays. */
type Pr1Fn = (out: number, w: number, a: number, b: number, p: number, rows: number, sigma: number) => void;

export interface LowRankWasm {
  f64: Float64Array;
  f32: Float32Array;
  pr1: Pr1Fn;
  mm2x4: MmFn;
  mm2x1: MmFn;
  mm1x4: MmFn;
  mm1x1: MmFn;
}

/** One kernel: R rows × N terms. */
function kernel(R: 1 | 2, N: 1 | 4): Fn {
  const f = new Fn([I32, I32, I32, I32, I32, I32, I32], []);
  const [g, gs, u, us, v, vs, len] = [0, 1, 2, 3, 4, 5, 6];
  const j = f.local(I32); // byte offset within a row
  const end2 = f.local(I32); // bytes of the even part of len
  const acc = f.local(V128);
  const sacc = f.local(F64);
  const splat: number[][] = []; // [row][term]
  const scal: number[][] = [];
  for (let r = 0; r < R; r++) {
    splat.push([]);
    scal.push([]);
    for (let t = 0; t < N; t++) {
      const s = f.local(F64);
      // u of row r, term t: f64.load(u + r·us + 8t)
      f.get(u);
      if (r === 1) f.get(us).op(Op.i32_add);
      f.mem(Op.f64_load, 3, 8 * t).set(s);
      const sp = f.local(V128);
      f.get(s).simd(Simd.f64x2_splat).set(sp);
      scal[r]!.push(s);
      splat[r]!.push(sp);
    }
  }
  // V row pointers of the N terms: v + t·vs
  const vp: number[] = [];
  for (let t = 0; t < N; t++) {
    const p = f.local(I32);
    f.get(v);
    if (t > 0) f.get(vs).i32(t).op(Op.i32_mul).op(Op.i32_add);
    f.set(p);
    vp.push(p);
  }
  const g1 = f.local(I32);
  f.get(g).get(gs).op(Op.i32_add).set(g1);
  const gRow = [g, g1];
  // end2 = (len & ~1) * 8
  f.get(len).i32(-2).op(Op.i32_and).i32(3).op(Op.i32_shl).set(end2);
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get(end2).op(Op.i32_ge_s).brIf(1);
  for (let r = 0; r < R; r++) {
    // acc = g[r][j..j+1]; acc = acc + s_rt · V[t][j..j+1] for t in order; store
    f.get(gRow[r]!).get(j).op(Op.i32_add).simdMem(Simd.v128_load, 3).set(acc);
    for (let t = 0; t < N; t++) {
      f.get(acc);
      f.get(splat[r]![t]!);
      f.get(vp[t]!).get(j).op(Op.i32_add).simdMem(Simd.v128_load, 3);
      f.simd(Simd.f64x2_mul).simd(Simd.f64x2_add).set(acc);
    }
    f.get(gRow[r]!).get(j).op(Op.i32_add).get(acc).simdMem(Simd.v128_store, 3);
  }
  f.get(j).i32(16).op(Op.i32_add).set(j);
  f.br(0).end().end();
  // odd last element, scalar
  f.get(len).i32(1).op(Op.i32_and).if();
  for (let r = 0; r < R; r++) {
    f.get(gRow[r]!).get(end2).op(Op.i32_add).mem(Op.f64_load, 3).set(sacc);
    for (let t = 0; t < N; t++) {
      f.get(sacc);
      f.get(scal[r]![t]!);
      f.get(vp[t]!).get(end2).op(Op.i32_add).mem(Op.f64_load, 3);
      f.op(Op.f64_mul).op(Op.f64_add).set(sacc);
    }
    f.get(gRow[r]!).get(end2).op(Op.i32_add).get(sacc).mem(Op.f64_store, 3);
  }
  f.end();
  return f;
}

/**
 * The client's rank-1 perturbation of whole rows (SPEC.md §8): per element z = fround(a·b) (the product of two
 * float32 values, exact in binary64), out = fround(w + sigma·z); four elements per step as two f64x2 halves,
 * the odd rest in scalar code. f32x4.demote_f64x2_zero and f32.demote_f64 round to nearest-even as Math.fround.
 */
function perturbRank1(): Fn {
  const f = new Fn([I32, I32, I32, I32, I32, I32, F64], []);
  const [out, w, a, b, p, rows, sigma] = [0, 1, 2, 3, 4, 5, 6];
  const i = f.local(I32);
  const j = f.local(I32); // byte offset in the row
  const end4 = f.local(I32);
  const endB = f.local(I32);
  const rowOff = f.local(I32);
  const av = f.local(V128);
  const sv = f.local(V128);
  const wv = f.local(V128);
  const bv = f.local(V128);
  const lo = f.local(V128);
  const as = f.local(F64);
  f.get(sigma).simd(Simd.f64x2_splat).set(sv);
  f.get(p).i32(-4).op(Op.i32_and).i32(2).op(Op.i32_shl).set(end4);
  f.get(p).i32(2).op(Op.i32_shl).set(endB);
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(rows).op(Op.i32_ge_s).brIf(1);
  // as = a[i] (float32 → binary64), av = splat(as); rowOff = i·p·4
  f.get(a).get(i).i32(2).op(Op.i32_shl).op(Op.i32_add).mem(Op.f32_load, 2).op(Op.f64_promote_f32).tee(as).simd(Simd.f64x2_splat).set(av);
  f.get(i).get(endB).op(Op.i32_mul).set(rowOff);
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get(end4).op(Op.i32_ge_s).brIf(1);
  f.get(w).get(rowOff).op(Op.i32_add).get(j).op(Op.i32_add).simdMem(Simd.v128_load, 2).set(wv);
  f.get(b).get(j).op(Op.i32_add).simdMem(Simd.v128_load, 2).set(bv);
  // half h of the four lanes: (w_h + sigma · fround(a · b_h)) in binary64, then demoted
  const half = (h: 0 | 1): void => {
    // lanes 2, 3 of x moved down and widened to binary64
    const src = (x: number): void => {
      f.get(x).get(x).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).simd(Simd.f64x2_promote_low_f32x4);
    };
    // w half in binary64
    if (h === 0) f.get(wv).simd(Simd.f64x2_promote_low_f32x4);
    else src(wv);
    f.get(sv);
    f.get(av);
    if (h === 0) f.get(bv).simd(Simd.f64x2_promote_low_f32x4);
    else src(bv);
    f.simd(Simd.f64x2_mul); // a·b (exact)
    f.simd(Simd.f32x4_demote_f64x2_zero).simd(Simd.f64x2_promote_low_f32x4); // z = fround(a·b)
    f.simd(Simd.f64x2_mul); // sigma·z
    f.simd(Simd.f64x2_add); // w + sigma·z
    f.simd(Simd.f32x4_demote_f64x2_zero); // fround
  };
  half(0);
  f.set(lo);
  f.get(out).get(rowOff).op(Op.i32_add).get(j).op(Op.i32_add); // store address
  f.get(lo);
  half(1);
  f.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
  f.simdMem(Simd.v128_store, 2);
  f.get(j).i32(16).op(Op.i32_add).set(j);
  f.br(0).end().end();
  // the rest of the row, one element at a time
  f.block().loop();
  f.get(j).get(endB).op(Op.i32_ge_s).brIf(1);
  f.get(out).get(rowOff).op(Op.i32_add).get(j).op(Op.i32_add); // store address
  f.get(w).get(rowOff).op(Op.i32_add).get(j).op(Op.i32_add).mem(Op.f32_load, 2).op(Op.f64_promote_f32);
  f.get(sigma);
  f.get(as);
  f.get(b).get(j).op(Op.i32_add).mem(Op.f32_load, 2).op(Op.f64_promote_f32);
  f.op(Op.f64_mul).op(Op.f32_demote_f64).op(Op.f64_promote_f32).op(Op.f64_mul).op(Op.f64_add).op(Op.f32_demote_f64);
  f.mem(Op.f32_store, 2);
  f.get(j).i32(4).op(Op.i32_add).set(j);
  f.br(0).end().end();
  f.get(i).i32(1).op(Op.i32_add).set(i);
  f.br(0).end().end();
  return f;
}

export function buildLowRankWasm(): Uint8Array<ArrayBuffer> {
  return emitModule(
    [
      { name: 'pr1', fn: perturbRank1() },
      { name: 'mm2x4', fn: kernel(2, 4) },
      { name: 'mm2x1', fn: kernel(2, 1) },
      { name: 'mm1x4', fn: kernel(1, 4) },
      { name: 'mm1x1', fn: kernel(1, 1) },
    ],
    MEM_PAGES,
  );
}

/** Compile and instantiate, or null when WebAssembly SIMD is unavailable (the JS kernels then run). */
export function loadLowRankWasm(): LowRankWasm | null {
  try {
    const WA = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
    if (WA === undefined) return null;
    const bytes = buildLowRankWasm();
    if (!WA.validate(bytes)) return null;
    const ex = new WA.Instance(new WA.Module(bytes), {}).exports as unknown as { memory: WebAssembly.Memory } & Omit<LowRankWasm, 'f64' | 'f32'>;
    return { f64: new Float64Array(ex.memory.buffer), f32: new Float32Array(ex.memory.buffer), pr1: ex.pr1, mm2x4: ex.mm2x4, mm2x1: ex.mm2x1, mm1x4: ex.mm1x4, mm1x1: ex.mm1x1 };
  } catch {
    return null;
  }
}
