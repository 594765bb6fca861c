/**
 * Low-rank directions (perturbation 'lowrank', SPEC.md §8). For every weight matrix W ∈ R^{m×p} of the trainable
 * layout (a tensor of two or more dimensions read as [shape[0], rest], e.g. a convolution kernel as
 * [out, in·kh·kw]) the direction is z = A Bᵀ / √r with A ∈ R^{m×r}, B ∈ R^{p×r}; every other tensor (biases,
 * 1-D tensors) keeps a Gaussian direction. A, B and the Gaussian parts of direction (seed, k) are consecutive
 * stretches of one stream: the existing generator's z_{seed,k}[c] at stream positions c ("factor positions"),
 * tensor after tensor in layout order, A (row-major, m·r numbers) then B (row-major, p·r numbers) for a matrix,
 * `size` numbers for a vector. So a direction costs Σ (m+p)·r + Σ vector sizes draws instead of n.
 *
 * E[z zᵀ] = I (A and B independent standard Gaussians), so the estimator stays unbiased; only the fourth
 * moments change (test/estimator.test.ts checks cos(ĝ, g) against the formula of docs/directions.md).
 *
 * Float semantics (binary64, one rounding per operation, no FMA), with c_r = 1 / sqrt(r) in binary64:
 *  - the client's direction: s = Σ_{q=0}^{r-1} A[i,q]·B[j,q] (left to right, starting from the q = 0 product),
 *    z[i,j] = fround(s · c_r) (a float32, as every z of SPEC.md); a vector element is the stream value itself;
 *    perturbLowRank: out = fround(w + sigma · z), exactly as perturbInto.
 *  - the server's ĝ (accumulateLowRank, Float64Array only): a matrix element gets, for every term t = (set, k, q)
 *    in that order (sets in order, k ascending with coef_k ≠ 0, q ascending), g = g + u_t·B_k[j,q] with
 *    u_t = (coef_k · c_r) · A_k[i,q]; a vector element gets g = g + coef_k · z_k exactly as accumulateDirection.
 *    That is ĝ = A·diag(coef ⊗ c_r)·Bᵀ, one matrix product per tensor, with a fixed summation order per element,
 *    so every split of the parameters over workers gives the same bits.
 */
import { directionBackend, fillDirection } from './directions.ts';
import { LR_G, LR_G_BYTES, LR_U, LR_U_BYTES, LR_V, LR_V_BYTES, loadLowRankWasm, type LowRankWasm } from './wasmLowRank.ts';

/** One tensor of the layout as a low-rank direction sees it. */
export interface LowRankTensor {
  /** Its elements in the flat parameter vector: [offset, offset + size). */
  offset: number;
  size: number;
  /** m × p for a matrix (m·p = size); 0 × 0 for a vector, which keeps a Gaussian direction. */
  rows: number;
  cols: number;
  /** Its first factor position; it takes (rows + cols)·rank positions (matrix) or size (vector). */
  factor: number;
}

/** How the directions of a 'lowrank' run map onto the flat parameter vector. Plain data (sent to workers). */
export interface LowRankPlan {
  rank: number;
  /** Length of the flat parameter vector. */
  params: number;
  /** Factor positions one direction draws (Σ (m+p)·r over matrices + Σ vector sizes). */
  factors: number;
  tensors: LowRankTensor[];
}

/** The scale c_r = 1/√r of z = A Bᵀ c_r (binary64; 1 for r = 1). */
export function lowRankScale(rank: number): number {
  return 1 / Math.sqrt(rank);
}

/**
 * The plan of a layout (consecutive entries {shape, offset, size} from offset 0, as an artifact's layout).
 * A tensor is a matrix when it has ≥ 2 dimensions, shape[0] ≥ 2 and size/shape[0] ≥ 2; otherwise a vector.
 */
export function lowRankPlan(layout: readonly { shape: readonly number[]; offset: number; size: number }[], rank: number): LowRankPlan {
  if (!(Number.isSafeInteger(rank) && rank >= 1)) throw new RangeError(`rank must be an integer ≥ 1, got ${String(rank)}`);
  const tensors: LowRankTensor[] = [];
  let offset = 0;
  let factor = 0;
  for (const e of layout) {
    if (e.offset !== offset) throw new RangeError(`lowRankPlan: the layout is not consecutive at offset ${e.offset} (expected ${offset})`);
    const m = e.shape.length >= 2 ? e.shape[0]! : 0;
    const p = m > 0 ? e.size / m : 0;
    if (m >= 2 && p >= 2 && Number.isInteger(p)) {
      tensors.push({ offset, size: e.size, rows: m, cols: p, factor });
      factor += (m + p) * rank;
    } else {
      tensors.push({ offset, size: e.size, rows: 0, cols: 0, factor });
      factor += e.size;
    }
    offset += e.size;
  }
  if (factor > 2 ** 42) throw new RangeError('lowRankPlan: too many factor positions');
  return { rank, params: offset, factors: factor, tensors };
}

let FBUF = new Float32Array(0); // one direction's factors (client), grown on demand

function factorBuffer(n: number): Float32Array {
  if (FBUF.length < n) FBUF = new Float32Array(n);
  return FBUF;
}

function checkPlan(plan: LowRankPlan, length: number, what: string): void {
  if (plan.params !== length) throw new RangeError(`${what}: the plan is for ${plan.params} parameters, the vector has ${length}`);
}

/** The factor stream of direction (seed, k): out[c] for c in [0, plan.factors). */
export function fillFactors(plan: LowRankPlan, seed: number, k: number, out: Float32Array): void {
  if (out.length < plan.factors) throw new RangeError(`fillFactors: out has ${out.length} elements, the plan draws ${plan.factors}`);
  fillDirection(seed, k, out, 0, plan.factors);
}

/**
 * The client's step: out[i] = fround(w[i] + sigma · z[i]) for the low-rank direction (seed, k), over the whole
 * vector. `out` may be `w` only if the caller does not need w afterwards (it is read element by element).
 */
export function perturbLowRank(out: Float32Array, w: Float32Array, sigma: number, plan: LowRankPlan, seed: number, k: number): void {
  checkPlan(plan, out.length, 'perturbLowRank');
  if (w.length !== out.length) throw new RangeError(`perturbLowRank: out.length ${out.length} != w.length ${w.length}`);
  const f = factorBuffer(plan.factors);
  fillFactors(plan, seed, k, f);
  const r = plan.rank;
  const c = lowRankScale(r);
  for (const t of plan.tensors) {
    const o = t.offset;
    if (t.rows === 0) {
      const fo = t.factor - o;
      for (let i = o; i < o + t.size; i++) out[i] = w[i]! + sigma * f[fo + i]!;
      continue;
    }
    const p = t.cols;
    const bBase = t.factor + t.rows * r;
    if (r === 1 && wasmRank1(out, w, sigma, f, t)) continue;
    if (r === 1) {
      for (let i = 0; i < t.rows; i++) {
        const a = f[t.factor + i]!;
        const row = o + i * p;
        const bo = bBase - row;
        for (let e = row; e < row + p; e++) out[e] = w[e]! + sigma * Math.fround(a * f[bo + e]!);
      }
      continue;
    }
    for (let i = 0; i < t.rows; i++) {
      const aRow = t.factor + i * r;
      const row = o + i * p;
      for (let j = 0; j < p; j++) {
        const bRow = bBase + j * r;
        let s = f[aRow]! * f[bRow]!;
        for (let q = 1; q < r; q++) s = s + f[aRow + q]! * f[bRow + q]!;
        out[row + j] = w[row + j]! + sigma * Math.fround(s * c);
      }
    }
  }
}

/** z of the low-rank direction (seed, k) itself, as float32 (tests, test vectors, other clients). */
export function fillLowRank(plan: LowRankPlan, seed: number, k: number, out: Float32Array): void {
  checkPlan(plan, out.length, 'fillLowRank');
  perturbLowRank(out, new Float32Array(out.length), 1, plan, seed, k);
}

/** One seed's coefficients, as src/core/zo/server.ts's DirectionSet. */
export interface LowRankSet {
  seed: number;
  coefs: ArrayLike<number>;
}

let UBUF = new Float64Array(0); // server: u_t for the rows of one tensor, [row][t]
let VBUF = new Float64Array(0); // server: B_k[j,q] for one tensor, [t][j]
let SBUF = new Float32Array(0); // server: one direction's factor stream
let FBUF_ALL = new Float32Array(0); // server: every term's factors over the overlapping tensors, [term][position]
let F_CAP = 8 << 20; // floats of FBUF_ALL at most (32 MB)

/** Tests: the size of the per-term factor cache in floats (0 forces the per-tensor draws); returns the old one. */
export function setFactorCacheCap(floats: number): number {
  const old = F_CAP;
  F_CAP = floats;
  return old;
}

const T_CHUNK = 64; // terms per pass over a row (keeps the chunk of V in L2)

/**
 * The server's rebuild: g[start, end) += ĝ of the sets for low-rank directions (see the header for the exact
 * summation order). g must be a Float64Array. Any [start, end) gives the bits of the whole-vector call.
 */
export function accumulateLowRank(g: Float64Array, sets: readonly LowRankSet[], plan: LowRankPlan, start = 0, end = g.length): void {
  if (!(g instanceof Float64Array)) throw new TypeError('accumulateLowRank: the accumulator must be a Float64Array');
  checkPlan(plan, g.length, 'accumulateLowRank');
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= g.length)) {
    throw new RangeError(`invalid element range [${String(start)}, ${String(end)}) for length ${g.length}`);
  }
  const r = plan.rank;
  const c = lowRankScale(r);
  const terms: { seed: number; k: number; d: number; coef: number }[] = [];
  for (const set of sets) {
    for (let k = 0; k < set.coefs.length; k++) {
      const coef = set.coefs[k]!;
      if (coef !== 0) terms.push({ seed: set.seed, k, d: coef * c, coef });
    }
  }
  if (terms.length === 0) return;
  if (SBUF.length < plan.factors) SBUF = new Float32Array(plan.factors);
  // The factor positions [fLo, fHi) of the tensors that overlap [start, end): drawn once per term into F when
  // that fits (one generator call per term), else per tensor and term into SBUF.
  let fLo = Infinity;
  let fHi = 0;
  for (const t of plan.tensors) {
    if (Math.max(start, t.offset) >= Math.min(end, t.offset + t.size)) continue;
    fLo = Math.min(fLo, t.factor);
    fHi = Math.max(fHi, t.factor + (t.rows === 0 ? t.size : (t.rows + t.cols) * r));
  }
  if (fHi === 0) return;
  const span = fHi - fLo;
  const cached = terms.length * span <= F_CAP;
  if (cached) {
    if (FBUF_ALL.length < terms.length * span) FBUF_ALL = new Float32Array(terms.length * span);
    for (let x = 0; x < terms.length; x++) {
      fillDirection(terms[x]!.seed, terms[x]!.k, SBUF, fLo, fHi);
      FBUF_ALL.set(SBUF.subarray(fLo, fHi), x * span);
    }
  }
  /** The factors of term x: an array and the index of factor position 0 in it ([cLo, cHi) valid). */
  const factorsOf = (x: number, cLo: number, cHi: number): [Float32Array, number] => {
    if (cached) return [FBUF_ALL, x * span - fLo];
    fillDirection(terms[x]!.seed, terms[x]!.k, SBUF, cLo, cHi);
    return [SBUF, 0];
  };
  for (const t of plan.tensors) {
    const lo = Math.max(start, t.offset);
    const hi = Math.min(end, t.offset + t.size);
    if (lo >= hi) continue;
    if (t.rows === 0) {
      for (let x = 0; x < terms.length; x++) {
        const [f, fb] = factorsOf(x, t.factor + (lo - t.offset), t.factor + (hi - t.offset));
        const fo = fb + t.factor - t.offset;
        const coef = terms[x]!.coef;
        for (let i = lo; i < hi; i++) g[i] = g[i]! + coef * f[fo + i]!;
      }
      continue;
    }
    const p = t.cols;
    const iLo = Math.floor((lo - t.offset) / p);
    const iHi = Math.ceil((hi - t.offset) / p);
    const nRows = iHi - iLo;
    const T = terms.length * r;
    if (UBUF.length < nRows * T) UBUF = new Float64Array(nRows * T);
    if (VBUF.length < T * p) VBUF = new Float64Array(T * p);
    const U = UBUF;
    const V = VBUF;
    const aStart = t.factor + iLo * r;
    const bBase = t.factor + t.rows * r;
    for (let x = 0; x < terms.length; x++) {
      const d = terms[x]!.d;
      // A rows [iLo, iHi) and all of B (the positions in between are drawn too, and ignored).
      const [f, fb] = factorsOf(x, aStart, bBase + p * r);
      for (let q = 0; q < r; q++) {
        const tt = x * r + q;
        const a0 = fb + aStart + q;
        for (let i = 0; i < nRows; i++) U[i * T + tt] = d * f[a0 + i * r]!;
        const vRow = tt * p;
        const b0 = fb + bBase + q;
        if (r === 1) V.set(f.subarray(b0, b0 + p), vRow);
        else for (let j = 0; j < p; j++) V[vRow + j] = f[b0 + j * r]!;
      }
    }
    // Rows wholly inside [lo, hi) go four at a time (or through the WebAssembly kernel); a partial first or
    // last row alone. Same bits either way.
    const firstFull = t.offset + iLo * p >= lo ? 0 : 1;
    const lastFull = t.offset + iHi * p <= hi ? nRows : nRows - 1;
    const M = directionBackend() === 'wasm' ? lowRankWasm() : null;
    if (M !== null && lastFull > firstFull && wasmRows(M, g, t.offset + iLo * p, U, V, p, T, firstFull, lastFull)) {
      for (const i of [0, nRows - 1]) {
        if (i >= firstFull && i < lastFull) continue; // done in wasm
        const row = t.offset + (iLo + i) * p;
        const jLo = Math.max(lo, row) - row;
        const jHi = Math.min(hi, row + p) - row;
        if (jLo < jHi) for (let t0 = 0; t0 < T; t0 += T_CHUNK) rowTerms(g, row, jLo, jHi, U, i * T, V, p, t0, Math.min(T, t0 + T_CHUNK));
        if (nRows === 1) break;
      }
      continue;
    }
    for (let t0 = 0; t0 < T; t0 += T_CHUNK) {
      const t1 = Math.min(T, t0 + T_CHUNK);
      let i = 0;
      while (i < nRows) {
        const row = t.offset + (iLo + i) * p;
        if (i >= firstFull && i + 4 <= lastFull) {
          rows4Terms(g, row, U, i * T, T, V, p, t0, t1);
          i += 4;
          continue;
        }
        const jLo = Math.max(lo, row) - row;
        const jHi = Math.min(hi, row + p) - row;
        rowTerms(g, row, jLo, jHi, U, i * T, V, p, t0, t1);
        i++;
      }
    }
  }
}

let wasmMod: LowRankWasm | null | undefined; // undefined: not loaded yet

function lowRankWasm(): LowRankWasm | null {
  if (wasmMod === undefined) wasmMod = loadLowRankWasm();
  return wasmMod;
}

/**
 * A rank-1 matrix tensor of the client's perturbation through the WebAssembly kernel (same bits as the JS loop):
 * A and B into its memory, then the rows in chunks (w in, out back). False when it does not fit (JS then).
 */
function wasmRank1(out: Float32Array, w: Float32Array, sigma: number, f: Float32Array, t: LowRankTensor): boolean {
  if (directionBackend() !== 'wasm') return false;
  const M = lowRankWasm();
  const p = t.cols;
  const rowsPer = Math.floor(LR_G_BYTES / 2 / (p * 4));
  if (M === null || rowsPer < 1 || t.rows * 4 > LR_U_BYTES / 4 || p * 4 > (LR_U_BYTES * 3) / 4) return false;
  const mem = M.f32;
  const W0 = LR_G >> 2;
  const O0 = (LR_G + LR_G_BYTES / 2) >> 2;
  const A0 = LR_U >> 2;
  const B0 = (LR_U + LR_U_BYTES / 4) >> 2;
  mem.set(f.subarray(t.factor, t.factor + t.rows), A0);
  mem.set(f.subarray(t.factor + t.rows, t.factor + t.rows + p), B0);
  for (let i0 = 0; i0 < t.rows; i0 += rowsPer) {
    const nr = Math.min(rowsPer, t.rows - i0);
    const e0 = t.offset + i0 * p;
    mem.set(w.subarray(e0, e0 + nr * p), W0);
    M.pr1(O0 << 2, W0 << 2, (A0 + i0) << 2, B0 << 2, p, nr, sigma);
    out.set(mem.subarray(O0, O0 + nr * p), e0);
  }
  return true;
}

/** Terms per chunk of V in the wasm path: a multiple of 4 whose chunk of V takes about 256 KB (L2). */
function wasmChunk(p: number): number {
  return Math.max(4, Math.min(64, Math.floor((256 << 10) / (p * 8)) & ~3));
}

/**
 * Local rows [r0, r1) (whole rows; row r starts at g[base + r·p], its u_t at U[r·T]) through the WebAssembly
 * kernel: the rows and their u_t are copied into its memory in blocks, V in chunks of terms. Returns false
 * (nothing done) when a row does not fit the kernel's regions; the caller then runs the JS kernels.
 */
function wasmRows(M: LowRankWasm, g: Float64Array, base: number, U: Float64Array, V: Float64Array, p: number, T: number, r0: number, r1: number): boolean {
  const tc = wasmChunk(p);
  const rb = Math.min(r1 - r0, Math.floor(LR_G_BYTES / (p * 8)), Math.floor(LR_U_BYTES / (T * 8)));
  if (rb < 1 || tc * p * 8 > LR_V_BYTES) return false;
  const mem = M.f64;
  const gs = p * 8;
  const us = T * 8;
  for (let b0 = r0; b0 < r1; b0 += rb) {
    const b1 = Math.min(r1, b0 + rb);
    const nb = b1 - b0;
    mem.set(g.subarray(base + b0 * p, base + b1 * p), LR_G >> 3);
    mem.set(U.subarray(b0 * T, b1 * T), LR_U >> 3);
    for (let t0 = 0; t0 < T; t0 += tc) {
      const t1 = Math.min(T, t0 + tc);
      mem.set(V.subarray(t0 * p, t1 * p), LR_V >> 3);
      for (let r = 0; r < nb; r += 2) {
        const two = r + 1 < nb;
        const gp = LR_G + r * gs;
        const up = LR_U + r * us;
        let t = t0;
        for (; t + 4 <= t1; t += 4) (two ? M.mm2x4 : M.mm1x4)(gp, gs, up + t * 8, us, LR_V + (t - t0) * gs, gs, p);
        for (; t < t1; t++) (two ? M.mm2x1 : M.mm1x1)(gp, gs, up + t * 8, us, LR_V + (t - t0) * gs, gs, p);
      }
    }
    g.set(mem.subarray(LR_G >> 3, (LR_G >> 3) + nb * p), base + b0 * p);
  }
  return true;
}

/** g[row + j] += Σ_{t in [t0, t1)} U[uo + t]·V[t·p + j] for j in [jLo, jHi), t ascending per element. */
function rowTerms(g: Float64Array, row: number, jLo: number, jHi: number, U: Float64Array, uo: number, V: Float64Array, p: number, t0: number, t1: number): void {
  let t = t0;
  // Four terms per visit of g[j]: (((g + u0 v0) + u1 v1) + u2 v2) + u3 v3 is the sequential chain.
  for (; t + 4 <= t1; t += 4) {
    const u0 = U[uo + t]!;
    const u1 = U[uo + t + 1]!;
    const u2 = U[uo + t + 2]!;
    const u3 = U[uo + t + 3]!;
    const v0 = t * p - row;
    const v1 = v0 + p;
    const v2 = v1 + p;
    const v3 = v2 + p;
    const e1 = row + jHi;
    for (let e = row + jLo; e < e1; e++) g[e] = g[e]! + u0 * V[v0 + e]! + u1 * V[v1 + e]! + u2 * V[v2 + e]! + u3 * V[v3 + e]!;
  }
  for (; t < t1; t++) {
    const u = U[uo + t]!;
    const v = t * p - row;
    const e1 = row + jHi;
    for (let e = row + jLo; e < e1; e++) g[e] = g[e]! + u * V[v + e]!;
  }
}

/**
 * rowTerms for four whole consecutive rows (row, row + p, …; their u_t at uo, uo + T, …): each loaded V value
 * serves four rows, each visit of g[e] adds four terms. Per element the chain is still t ascending.
 */
function rows4Terms(g: Float64Array, row: number, U: Float64Array, uo: number, T: number, V: Float64Array, p: number, t0: number, t1: number): void {
  const q0 = uo;
  const q1 = q0 + T;
  const q2 = q1 + T;
  const q3 = q2 + T;
  const r1 = row + p;
  const r2 = r1 + p;
  const r3 = r2 + p;
  let t = t0;
  for (; t + 4 <= t1; t += 4) {
    const a0 = U[q0 + t]!;
    const a1 = U[q0 + t + 1]!;
    const a2 = U[q0 + t + 2]!;
    const a3 = U[q0 + t + 3]!;
    const b0 = U[q1 + t]!;
    const b1 = U[q1 + t + 1]!;
    const b2 = U[q1 + t + 2]!;
    const b3 = U[q1 + t + 3]!;
    const c0 = U[q2 + t]!;
    const c1 = U[q2 + t + 1]!;
    const c2 = U[q2 + t + 2]!;
    const c3 = U[q2 + t + 3]!;
    const d0 = U[q3 + t]!;
    const d1 = U[q3 + t + 1]!;
    const d2 = U[q3 + t + 2]!;
    const d3 = U[q3 + t + 3]!;
    const v0 = t * p;
    const v1 = v0 + p;
    const v2 = v1 + p;
    const v3 = v2 + p;
    for (let j = 0; j < p; j++) {
      const x0 = V[v0 + j]!;
      const x1 = V[v1 + j]!;
      const x2 = V[v2 + j]!;
      const x3 = V[v3 + j]!;
      g[row + j] = g[row + j]! + a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
      g[r1 + j] = g[r1 + j]! + b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3;
      g[r2 + j] = g[r2 + j]! + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
      g[r3 + j] = g[r3 + j]! + d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3;
    }
  }
  for (; t < t1; t++) {
    const a = U[q0 + t]!;
    const b = U[q1 + t]!;
    const c = U[q2 + t]!;
    const d = U[q3 + t]!;
    const v = t * p;
    for (let j = 0; j < p; j++) {
      const x = V[v + j]!;
      g[row + j] = g[row + j]! + a * x;
      g[r1 + j] = g[r1 + j]! + b * x;
      g[r2 + j] = g[r2 + j]! + c * x;
      g[r3 + j] = g[r3 + j]! + d * x;
    }
  }
}
