/**
 * Rényi-DP accountant for the sampled Gaussian mechanism (SGM). Platform-free (no `node:` imports).
 *
 * The mechanism, once per step: every record (for baffle: every client) joins the step independently with
 * probability q (Poisson subsampling); the joined records' contributions, each clipped to L2 norm C, are summed
 * and Gaussian noise N(0, (σ·C)² I) is added. σ is the *noise multiplier* (noise std / L2 sensitivity).
 *
 * RDP of one step at order α (Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy of the Sampled
 * Gaussian Mechanism", arXiv:1908.10530, Sec. 3.3): ε(α) = log(A_α) / (α − 1) with
 *   A_α = E_{z∼N(0,σ²)} [ ((1 − q) + q·exp((2z − 1)/(2σ²)))^α ],
 * evaluated as
 *   integer α:     A_α = Σ_{i=0..α} C(α,i) (1−q)^{α−i} q^i exp((i² − i)/(2σ²))
 *   fractional α:  A_α = A₀ + A₁, two series over i ≥ 0 (the integral split at z₀ = σ² log(1/q − 1) + ½),
 *                  A₀ = Σ C(α,i) q^i (1−q)^{α−i} e^{(i²−i)/(2σ²)} · ½ erfc((i − z₀)/(√2 σ)),
 *                  A₁ = Σ C(α,i) q^{α−i} (1−q)^i e^{(j²−j)/(2σ²)} · ½ erfc((z₀ − j)/(√2 σ)),  j = α − i,
 *                  with signed binomial coefficients C(α,i) (negative for some i > α), summed until both
 *                  terms are below e^{−30} (the stopping rule of TF-Privacy's and Opacus's implementation).
 * Special cases: q = 0 → 0; σ = 0 → ∞; q = 1 → α/(2σ²) (the Gaussian mechanism); α = ∞ → ∞.
 * Composition: RDP adds up over steps, so T identical steps give T·ε(α).
 *
 * Conversion to (ε, δ)-DP, minimised over the order list:
 *   'improved' (default; Opacus `get_privacy_spent` since v0.14 / April 2021, so all of 1.x; TF-Privacy since
 *              Dec. 2020 and dp_accounting;
 *              Balle et al. 2020, "Hypothesis testing interpretations and Rényi DP", Thm. 21; Canonne, Kamath
 *              & Steinke 2020, Prop. 12):   ε = ε(α) − (log δ + log α)/(α − 1) + log((α − 1)/α)
 *   'classic'  (Mironov 2017, "Rényi Differential Privacy", Prop. 3; TF-Privacy before Dec. 2020, the
 *              moments accountant of Abadi et al. 2016):   ε = ε(α) + log(1/δ)/(α − 1)
 * Both are clamped below at 0 ((ε, δ)-DP for ε < 0 implies (0, δ)-DP), and RDP = 0 at every order (no
 * step, or q = 0) gives ε = 0 exactly (identical output distributions), as Opacus's accountant with an empty
 * history does.
 *
 * docs/privacy.md explains what this bounds in baffle and where each test value comes from.
 */

import { UserError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------------
// Order lists and conversion

/** Opacus's `RDPAccountant.DEFAULT_ALPHAS`: [1 + x/10 for x in 1..99] + [12, …, 63] (151 orders). */
export const DEFAULT_ALPHAS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/** How RDP is turned into (ε, δ)-DP; see the module comment. */
export type Conversion = 'improved' | 'classic';

/** The default conversion: the one Opacus's current `get_privacy_spent` uses. */
export const DEFAULT_CONVERSION: Conversion = 'improved';

/** An (ε, δ) guarantee and the order that gave it. */
export interface PrivacySpent {
  /** ε ≥ 0 (Infinity when every order gives ∞, e.g. σ = 0). */
  epsilon: number;
  delta: number;
  /** The optimal RDP order α (NaN when no order binds: ε infinite at every order, or RDP 0 at every order). */
  order: number;
  /**
   * True when the optimum is the smallest or the largest order of the list: widening the list could give a
   * smaller ε (Opacus warns in that case).
   */
  orderAtEdge: boolean;
}

/** A privacy target that no noise multiplier can reach (e.g. ε below what the order list allows). */
export class PrivacyBudgetError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, { hint });
    this.name = 'PrivacyBudgetError';
  }
}

// ---------------------------------------------------------------------------------------------------
// Special functions: erfc and log(erfc) in float64, accurate for large arguments.

const SQRT_PI = Math.sqrt(Math.PI);
const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const TWO_OVER_SQRT_PI = 2 / SQRT_PI;
/** Below this, erf by its everywhere-positive Maclaurin series; at and above, erfc by its continued fraction. */
const ERFC_SPLIT = 2;

/**
 * erf(x) for 0 ≤ x < ERFC_SPLIT: erf(x) = (2/√π) e^{−x²} Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3·…·(2n+1)) (Abramowitz &
 * Stegun 7.1.6): all terms positive, so no cancellation; about 40 terms at x = 2.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * log(√π · e^{x²} · erfc(x)) for x ≥ ERFC_SPLIT, from the continued fraction (A&S 7.1.14 / Laplace)
 *   √π e^{x²} erfc(x) = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated by the modified Lentz method. Converges in < 100 terms at x = 2, a handful for large x.
 */
function logScaledErfcCf(x: number): number {
  const tiny = 1e-300;
  let f = x; // b0 = x
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/** The complementary error function erfc(x) = 1 − erf(x), relative error ~1e-15 (~1e-13 just below x = 2). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= ERFC_SPLIT) {
    if (x > 27.3) return 0; // below the smallest subnormal
    return Math.exp(-x * x + logScaledErfcCf(x)) / SQRT_PI;
  }
  if (x >= 0) return 1 - erfSeries(x);
  if (x > -ERFC_SPLIT) return 1 + erfSeries(-x);
  return 2 - erfc(-x);
}

/**
 * log(erfc(x)) for every real x, without underflow: for x ≥ 2 it is −x² − log√π + log(√π e^{x²} erfc(x)),
 * finite for any finite x (≈ −x² − log(x√π) for large x). log(erfc(−∞)) = log 2, log(erfc(+∞)) = −∞.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x >= ERFC_SPLIT) return -x * x - LOG_SQRT_PI + logScaledErfcCf(x);
  return Math.log(erfc(x));
}

// ---------------------------------------------------------------------------------------------------
// Log-space arithmetic

/** log(eˣ + eʸ). */
export function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return b + Math.log1p(Math.exp(a - b));
}

/** log(eˣ − eʸ) for x ≥ y (−∞ when equal); throws when x < y (the result would be negative). */
export function logSub(x: number, y: number): number {
  if (x < y) throw new RangeError(`logSub: the difference is negative (log-values ${x} < ${y})`);
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  return x + Math.log1p(-Math.exp(y - x));
}

/** A signed number held as (sign, log|value|); adds terms of either sign without leaving log space. */
interface SignedLog {
  positive: boolean;
  log: number;
}

function signedAdd(acc: SignedLog, positive: boolean, log: number): SignedLog {
  if (log === -Infinity) return acc;
  if (acc.log === -Infinity) return { positive, log };
  if (acc.positive === positive) return { positive, log: logAdd(acc.log, log) };
  if (acc.log > log) return { positive: acc.positive, log: logSub(acc.log, log) };
  if (log > acc.log) return { positive, log: logSub(log, acc.log) };
  return { positive: true, log: -Infinity };
}

// ---------------------------------------------------------------------------------------------------
// log(A_α) of the sampled Gaussian mechanism, 0 < q < 1, σ > 0

/** log(A_α) for an integer order α ≥ 2 (a finite binomial sum; Mironov et al. 2019, Sec. 3.3). */
export function logAInt(q: number, sigma: number, alpha: number): number {
  if (!Number.isInteger(alpha) || alpha < 1) throw new RangeError(`logAInt: integer order ≥ 1 expected, got ${alpha}`);
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  let logA = -Infinity;
  let logBinom = 0; // log C(α, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / twoSigma2;
    logA = logAdd(logA, s);
  }
  return logA;
}

/** The fractional series stops when both of its terms are below e^{STOP_LOG_TERM} (TF-Privacy / Opacus: −30). */
const STOP_LOG_TERM = -30;
/** Safety cap on the fractional series; an order that has not converged by then is reported as ∞ (dropped). */
const MAX_FRAC_TERMS = 200_000;

/**
 * log(A_α) for any real order α > 1 by the two-sided series of Mironov et al. 2019, Sec. 3.3 (exact for
 * integer α too, where the binomial coefficients vanish beyond i = α). Returns Infinity (which removes the
 * order from the minimisation, a conservative choice) if the series has not converged after 200 000 terms.
 */
export function logAFrac(q: number, sigma: number, alpha: number): number {
  if (!(alpha > 1) || !Number.isFinite(alpha)) throw new RangeError(`logAFrac: finite order > 1 expected, got ${alpha}`);
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sigma2 = sigma * sigma;
  const twoSigma2 = 2 * sigma2;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  const z0 = sigma2 * Math.log(1 / q - 1) + 0.5;
  let a0: SignedLog = { positive: true, log: -Infinity };
  let a1: SignedLog = { positive: true, log: -Infinity };
  let logAbsBinom = 0; // log |C(α, i)|
  let binomPositive = true;
  for (let i = 0; i < MAX_FRAC_TERMS; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      if (factor < 0) binomPositive = !binomPositive;
      logAbsBinom += Math.log(Math.abs(factor)); // −∞ from here on when α is an integer < i
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * logQ + j * log1mQ;
    const logT1 = logAbsBinom + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / twoSigma2 + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigma2 + logE1;
    a0 = signedAdd(a0, binomPositive, logS0);
    a1 = signedAdd(a1, binomPositive, logS1);
    if (Math.max(logS0, logS1) < STOP_LOG_TERM) {
      // Both partial sums are integrals of non-negative functions, so they must come out positive.
      if (!a0.positive || !a1.positive) return Infinity;
      return logAdd(a0.log, a1.log);
    }
  }
  return Infinity;
}

/** log(A_α): the finite sum for integer α, the series otherwise. */
export function computeLogA(q: number, sigma: number, alpha: number): number {
  return Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
}

// ---------------------------------------------------------------------------------------------------
// RDP of the SGM

function checkMechanism(q: number, noiseMultiplier: number, where: string): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`${where}: sample rate must be in [0, 1], got ${q}`);
  if (!(noiseMultiplier >= 0)) throw new RangeError(`${where}: noise multiplier must be ≥ 0, got ${noiseMultiplier}`);
}

function checkOrders(orders: readonly number[], where: string): void {
  if (orders.length === 0) throw new RangeError(`${where}: the order list is empty`);
  for (const a of orders) {
    if (!(a > 1)) throw new RangeError(`${where}: RDP orders must be > 1, got ${a}`);
  }
}

function checkSteps(steps: number, where: string): void {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`${where}: steps must be an integer ≥ 0, got ${steps}`);
}

/** RDP ε(α) of ONE step of the sampled Gaussian mechanism (may be Infinity). */
export function rdpSampledGaussian(q: number, noiseMultiplier: number, alpha: number): number {
  checkMechanism(q, noiseMultiplier, 'rdpSampledGaussian');
  if (!(alpha > 1)) throw new RangeError(`rdpSampledGaussian: RDP order must be > 1, got ${alpha}`);
  if (q === 0) return 0;
  if (noiseMultiplier === 0) return Infinity;
  if (noiseMultiplier === Infinity) return 0;
  if (alpha === Infinity) return Infinity;
  if (q === 1) return alpha / (2 * noiseMultiplier * noiseMultiplier);
  return computeLogA(q, noiseMultiplier, alpha) / (alpha - 1);
}

/**
 * RDP at each order of `steps` compositions of the sampled Gaussian mechanism (TF-Privacy / Opacus
 * `compute_rdp`): steps × ε(α). 0 steps (or q = 0) give 0 at every order.
 */
export function computeRdp(
  q: number,
  noiseMultiplier: number,
  steps: number,
  orders: readonly number[] = DEFAULT_ALPHAS,
): number[] {
  checkSteps(steps, 'computeRdp');
  checkOrders(orders, 'computeRdp');
  return orders.map((a) => {
    if (steps === 0) return 0;
    return steps * rdpSampledGaussian(q, noiseMultiplier, a);
  });
}

function checkDelta(delta: number, where: string): void {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`${where}: delta must be in (0, 1), got ${delta}`);
}

/** ε at one order from its RDP value, by the chosen conversion (before clamping at 0). */
function epsilonAtOrder(alpha: number, rdp: number, logDelta: number, conversion: Conversion): number {
  if (conversion === 'classic') return rdp - logDelta / (alpha - 1);
  return rdp - (logDelta + Math.log(alpha)) / (alpha - 1) + Math.log1p(-1 / alpha);
}

/**
 * (ε, δ) from RDP values at the given orders: the minimum over the orders of the chosen conversion
 * (Opacus / TF-Privacy `get_privacy_spent`), clamped at 0.
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: Conversion = DEFAULT_CONVERSION,
): PrivacySpent {
  checkOrders(orders, 'rdpToEpsilon');
  checkDelta(delta, 'rdpToEpsilon');
  if (conversion !== 'improved' && conversion !== 'classic') {
    throw new RangeError(`rdpToEpsilon: conversion must be 'improved' or 'classic', got ${String(conversion)}`);
  }
  if (orders.length !== rdp.length) {
    throw new RangeError(`rdpToEpsilon: ${orders.length} orders but ${rdp.length} RDP values`);
  }
  const logDelta = Math.log(delta);
  // RDP 0 at every order: the two output distributions are identical, so (0, 0)-DP (no steps taken, or
  // q = 0). Without this the conversions would still charge their log(1/δ)/(α − 1) term.
  if (rdp.every((r) => r === 0)) return { epsilon: 0, delta, order: NaN, orderAtEdge: false };
  let best = Infinity;
  let bestIndex = -1;
  for (let k = 0; k < orders.length; k++) {
    const r = rdp[k]!;
    if (Number.isNaN(r) || r < 0) throw new RangeError(`rdpToEpsilon: RDP values must be ≥ 0, got ${r} at order ${orders[k]}`);
    const e = epsilonAtOrder(orders[k]!, r, logDelta, conversion);
    if (e < best) {
      best = e;
      bestIndex = k;
    }
  }
  if (bestIndex < 0) return { epsilon: Infinity, delta, order: NaN, orderAtEdge: false };
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of orders) {
    lo = Math.min(lo, a);
    hi = Math.max(hi, a);
  }
  const order = orders[bestIndex]!;
  return { epsilon: Math.max(0, best), delta, order, orderAtEdge: order === lo || order === hi };
}

/** Options shared by the one-shot functions. */
export interface AnalysisOptions {
  /** RDP orders (default DEFAULT_ALPHAS). */
  orders?: readonly number[];
  /** Default 'improved'. */
  conversion?: Conversion;
}

/** (ε, δ) after `steps` steps of the sampled Gaussian mechanism with rate `sampleRate` and multiplier σ. */
export function epsilonFor(
  params: { noiseMultiplier: number; sampleRate: number; steps: number; delta: number } & AnalysisOptions,
): PrivacySpent {
  const orders = params.orders ?? DEFAULT_ALPHAS;
  const rdp = computeRdp(params.sampleRate, params.noiseMultiplier, params.steps, orders);
  return rdpToEpsilon(orders, rdp, params.delta, params.conversion ?? DEFAULT_CONVERSION);
}

// ---------------------------------------------------------------------------------------------------
// Noise multiplier for a target ε

export interface NoiseMultiplierOptions extends AnalysisOptions {
  /** The search stops once target − ε(σ) ≤ this (default 0.01, as Opacus's `epsilon_tolerance`). */
  epsilonTolerance?: number;
  /** Give up (PrivacyBudgetError) when σ would have to exceed this (default 1e6, Opacus's MAX_SIGMA). */
  maxNoiseMultiplier?: number;
}

/**
 * The noise multiplier σ for which `steps` steps at sample rate q give ε ≤ targetEpsilon at δ, within
 * `epsilonTolerance` of the target: the returned σ satisfies target − tolerance < ε(σ) ≤ target, so it is the
 * smallest sufficient σ up to that tolerance in ε. The search is Opacus's `get_noise_multiplier` (same
 * bracketing from σ = 20, doubling, then bisection on [0, σ_high]), so its published values reproduce.
 *
 * Returns 0 when no noise is needed (q = 0 or steps = 0). Throws PrivacyBudgetError when the target cannot be
 * reached: below the ε that even σ = ∞ gives with this order list and δ (log(1/δ)-driven floor), or needing
 * σ > maxNoiseMultiplier.
 */
export function noiseMultiplierFor(
  targetEpsilon: number,
  delta: number,
  sampleRate: number,
  steps: number,
  options: NoiseMultiplierOptions = {},
): number {
  const orders = options.orders ?? DEFAULT_ALPHAS;
  const conversion = options.conversion ?? DEFAULT_CONVERSION;
  const tolerance = options.epsilonTolerance ?? 0.01;
  const maxSigma = options.maxNoiseMultiplier ?? 1e6;
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) {
    throw new PrivacyBudgetError(`target epsilon must be a finite number > 0, got ${targetEpsilon}`);
  }
  checkDelta(delta, 'noiseMultiplierFor');
  checkMechanism(sampleRate, 0, 'noiseMultiplierFor');
  checkSteps(steps, 'noiseMultiplierFor');
  checkOrders(orders, 'noiseMultiplierFor');
  if (!(tolerance > 0)) throw new RangeError(`noiseMultiplierFor: epsilonTolerance must be > 0, got ${tolerance}`);
  if (sampleRate === 0 || steps === 0) return 0;

  // With no privacy loss at all (RDP = 0 at every order, i.e. σ → ∞) the conversion still charges
  // ≈ log(1/δ)/(α_max − 1): a target at or below that floor is unreachable whatever the noise.
  let floor = Infinity;
  for (const a of orders) floor = Math.min(floor, epsilonAtOrder(a, 0, Math.log(delta), conversion));
  if (targetEpsilon <= floor) {
    throw new PrivacyBudgetError(
      `target epsilon ${targetEpsilon} is unreachable at delta ${delta}: with these RDP orders (largest ` +
        `${Math.max(...orders)}) even infinite noise gives epsilon ${floor.toPrecision(4)}`,
      'raise the target epsilon or delta, or add larger RDP orders',
    );
  }
  const eps = (sigma: number): number => {
    const perStep = orders.map((a) => rdpSampledGaussian(sampleRate, sigma, a));
    return rdpToEpsilon(orders, perStep.map((r) => r * steps), delta, conversion).epsilon;
  };

  let sigmaLow = 0;
  let sigmaHigh = 10;
  let epsHigh = Infinity;
  while (epsHigh > targetEpsilon) {
    sigmaHigh *= 2;
    if (sigmaHigh > maxSigma) {
      throw new PrivacyBudgetError(
        `target epsilon ${targetEpsilon} at delta ${delta} needs a noise multiplier above ${maxSigma} ` +
          `(sample rate ${sampleRate}, ${steps} steps)`,
        'raise the target epsilon, or lower the sample rate or the number of steps',
      );
    }
    epsHigh = eps(sigmaHigh);
  }
  // Invariant: ε(sigmaHigh) = epsHigh ≤ target < ε(sigmaLow) (ε(0) = ∞). Bisection halves the bracket each
  // time; the iteration cap only guards against a tolerance finer than float64 can resolve.
  for (let it = 0; it < 200 && targetEpsilon - epsHigh > tolerance; it++) {
    const sigma = (sigmaLow + sigmaHigh) / 2;
    if (sigma === sigmaLow || sigma === sigmaHigh) break;
    const e = eps(sigma);
    if (e < targetEpsilon) {
      sigmaHigh = sigma;
      epsHigh = e;
    } else {
      sigmaLow = sigma;
    }
  }
  return sigmaHigh;
}

// ---------------------------------------------------------------------------------------------------
// The accountant a training loop calls once per step

/** A run of identical steps. */
export interface MechanismSteps {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

/** What `PrivacyAccountant.state()` returns and `loadState` takes: plain JSON. */
export interface PrivacyAccountantState {
  kind: 'rdp-sampled-gaussian';
  version: 1;
  /** The mechanism `step()` charges by default. */
  noiseMultiplier: number;
  sampleRate: number;
  /** Steps taken so far, consecutive identical steps merged (as Opacus's `RDPAccountant.history`). */
  history: MechanismSteps[];
  orders: number[];
  conversion: Conversion;
}

export interface PrivacyAccountantOptions extends AnalysisOptions {
  noiseMultiplier: number;
  sampleRate: number;
}

/**
 * Tracks the privacy spent by a run of sampled-Gaussian steps:
 *
 *   const acct = new PrivacyAccountant({ noiseMultiplier: 1.1, sampleRate: 0.1 });
 *   acct.step();              // once per round whose noised aggregate was released
 *   acct.epsilon(1e-5);       // ε so far
 *   save(acct.state());       // JSON; later: PrivacyAccountant.fromState(json) or acct.loadState(json)
 *
 * RDP per step is cached per (σ, q), so epsilon() after every step costs one pass over the orders.
 */
export class PrivacyAccountant {
  private noiseMultiplierValue: number;
  private sampleRateValue: number;
  private ordersValue: number[];
  private conversionValue: Conversion;
  private history: MechanismSteps[] = [];
  private readonly perStepCache = new Map<string, number[]>();

  constructor(options: PrivacyAccountantOptions) {
    checkAccountedMechanism(options.sampleRate, options.noiseMultiplier, 'PrivacyAccountant');
    const orders = [...(options.orders ?? DEFAULT_ALPHAS)];
    checkOrders(orders, 'PrivacyAccountant');
    for (const a of orders) {
      if (!Number.isFinite(a)) throw new RangeError(`PrivacyAccountant: orders must be finite (JSON state), got ${a}`);
    }
    const conversion = options.conversion ?? DEFAULT_CONVERSION;
    if (conversion !== 'improved' && conversion !== 'classic') {
      throw new RangeError(`PrivacyAccountant: conversion must be 'improved' or 'classic', got ${String(conversion)}`);
    }
    this.noiseMultiplierValue = options.noiseMultiplier;
    this.sampleRateValue = options.sampleRate;
    this.ordersValue = orders;
    this.conversionValue = conversion;
  }

  get noiseMultiplier(): number {
    return this.noiseMultiplierValue;
  }

  get sampleRate(): number {
    return this.sampleRateValue;
  }

  get conversion(): Conversion {
    return this.conversionValue;
  }

  get orders(): readonly number[] {
    return this.ordersValue;
  }

  /** Total steps charged so far. */
  get steps(): number {
    let n = 0;
    for (const h of this.history) n += h.steps;
    return n;
  }

  /**
   * Charge n steps (default 1) of the configured mechanism, or of `mechanism` when given (e.g. a round whose
   * sample rate differed); consecutive identical steps are merged.
   */
  step(n = 1, mechanism?: { noiseMultiplier?: number; sampleRate?: number }): void {
    checkSteps(n, 'PrivacyAccountant.step');
    const noiseMultiplier = mechanism?.noiseMultiplier ?? this.noiseMultiplierValue;
    const sampleRate = mechanism?.sampleRate ?? this.sampleRateValue;
    checkAccountedMechanism(sampleRate, noiseMultiplier, 'PrivacyAccountant.step');
    if (n === 0) return;
    const last = this.history[this.history.length - 1];
    if (last && last.noiseMultiplier === noiseMultiplier && last.sampleRate === sampleRate) last.steps += n;
    else this.history.push({ noiseMultiplier, sampleRate, steps: n });
  }

  /** Accumulated RDP at each order. */
  rdp(): number[] {
    const total = this.ordersValue.map(() => 0);
    for (const h of this.history) {
      const perStep = this.perStep(h.noiseMultiplier, h.sampleRate);
      for (let k = 0; k < total.length; k++) total[k]! += h.steps * perStep[k]!;
    }
    return total;
  }

  /** (ε, δ) spent so far, with the optimal order. ε = 0 before the first step. */
  privacySpent(delta: number): PrivacySpent {
    return rdpToEpsilon(this.ordersValue, this.rdp(), delta, this.conversionValue);
  }

  /** ε spent so far at δ. */
  epsilon(delta: number): number {
    return this.privacySpent(delta).epsilon;
  }

  /** A JSON-serialisable snapshot (checkpoints); `loadState` / `fromState` restore it exactly. */
  state(): PrivacyAccountantState {
    return {
      kind: 'rdp-sampled-gaussian',
      version: 1,
      noiseMultiplier: this.noiseMultiplierValue,
      sampleRate: this.sampleRateValue,
      history: this.history.map((h) => ({ ...h })),
      orders: [...this.ordersValue],
      conversion: this.conversionValue,
    };
  }

  /** Replace this accountant's whole state by a snapshot from `state()` (validated; throws RangeError). */
  loadState(state: unknown): void {
    const s = parseState(state);
    this.noiseMultiplierValue = s.noiseMultiplier;
    this.sampleRateValue = s.sampleRate;
    this.ordersValue = s.orders;
    this.conversionValue = s.conversion;
    this.history = s.history;
    this.perStepCache.clear();
  }

  static fromState(state: unknown): PrivacyAccountant {
    const s = parseState(state);
    const acct = new PrivacyAccountant(s);
    acct.loadState(s);
    return acct;
  }

  private perStep(noiseMultiplier: number, sampleRate: number): number[] {
    const key = `${noiseMultiplier}|${sampleRate}`;
    let v = this.perStepCache.get(key);
    if (!v) {
      v = this.ordersValue.map((a) => rdpSampledGaussian(sampleRate, noiseMultiplier, a));
      this.perStepCache.set(key, v);
    }
    return v;
  }
}

/** As checkMechanism, and σ finite: the accountant's state must survive JSON (which has no Infinity). */
function checkAccountedMechanism(q: number, noiseMultiplier: number, where: string): void {
  checkMechanism(q, noiseMultiplier, where);
  if (!Number.isFinite(noiseMultiplier)) throw new RangeError(`${where}: noise multiplier must be finite, got ${noiseMultiplier}`);
}

function parseState(state: unknown): PrivacyAccountantState {
  const bad = (why: string): never => {
    throw new RangeError(`PrivacyAccountant state: ${why}`);
  };
  if (typeof state !== 'object' || state === null) return bad('not an object');
  const s = state as Record<string, unknown>;
  if (s.kind !== 'rdp-sampled-gaussian') bad(`kind must be 'rdp-sampled-gaussian', got ${JSON.stringify(s.kind)}`);
  if (s.version !== 1) bad(`unsupported version ${JSON.stringify(s.version)}`);
  const num = (v: unknown, what: string): number => (typeof v === 'number' ? v : bad(`${what} is not a number`));
  const noiseMultiplier = num(s.noiseMultiplier, 'noiseMultiplier');
  const sampleRate = num(s.sampleRate, 'sampleRate');
  if (!(sampleRate >= 0 && sampleRate <= 1)) bad(`sampleRate ${sampleRate} is not in [0, 1]`);
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier))) bad(`noiseMultiplier ${noiseMultiplier} is not finite and ≥ 0`);
  if (s.conversion !== 'improved' && s.conversion !== 'classic') bad(`unknown conversion ${JSON.stringify(s.conversion)}`);
  if (!Array.isArray(s.orders) || s.orders.length === 0) return bad('orders is not a non-empty array');
  const orders = s.orders.map((a, k) => {
    const v = num(a, `orders[${k}]`);
    return v > 1 && Number.isFinite(v) ? v : bad(`orders[${k}] = ${v} is not finite and > 1`);
  });
  if (!Array.isArray(s.history)) return bad('history is not an array');
  const history = s.history.map((h: unknown, k): MechanismSteps => {
    if (typeof h !== 'object' || h === null) return bad(`history[${k}] is not an object`);
    const e = h as Record<string, unknown>;
    const entry = {
      noiseMultiplier: num(e.noiseMultiplier, `history[${k}].noiseMultiplier`),
      sampleRate: num(e.sampleRate, `history[${k}].sampleRate`),
      steps: num(e.steps, `history[${k}].steps`),
    };
    if (!(entry.sampleRate >= 0 && entry.sampleRate <= 1)) bad(`history[${k}].sampleRate is not in [0, 1]`);
    if (!(entry.noiseMultiplier >= 0 && Number.isFinite(entry.noiseMultiplier))) {
      bad(`history[${k}].noiseMultiplier is not finite and ≥ 0`);
    }
    if (!Number.isInteger(entry.steps) || entry.steps < 0) bad(`history[${k}].steps is not an integer ≥ 0`);
    return entry;
  });
  return {
    kind: 'rdp-sampled-gaussian',
    version: 1,
    noiseMultiplier,
    sampleRate,
    history,
    orders,
    conversion: s.conversion as Conversion,
  };
}
