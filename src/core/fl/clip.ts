// Gradient clipping by the largest absolute entry (the BAFFLE reference clips ĝ to max|ĝ_i| ≤ 0.3).

/**
 * If max_i |g_i| > maxAbs, rescale the whole vector in place by maxAbs / max_i |g_i| (direction kept,
 * largest entry becomes ±maxAbs). Returns the scale applied: 1 when the vector was left untouched.
 * maxAbs = 0 or Infinity disables clipping (returns 1). Throws on a negative/NaN maxAbs and on a
 * non-finite gradient entry (NaN/±Infinity), which no rescaling can repair.
 */
export function clipMaxAbs(g: Float32Array, maxAbs: number): number {
  if (Number.isNaN(maxAbs) || maxAbs < 0) {
    throw new RangeError(`clipMaxAbs: maxAbs must be ≥ 0 (0 or Infinity = off), got ${maxAbs}`);
  }
  if (maxAbs === 0 || maxAbs === Infinity) return 1;
  let max = 0;
  for (let i = 0; i < g.length; i++) {
    const a = Math.abs(g[i]!);
    if (a > max) max = a;
    else if (a !== a) throw new RangeError(`clipMaxAbs: gradient entry ${i} is NaN`);
  }
  if (max === Infinity) throw new RangeError('clipMaxAbs: gradient has an infinite entry');
  if (max <= maxAbs) return 1;
  const scale = maxAbs / max;
  for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
  return scale;
}
