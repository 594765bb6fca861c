// The masks of secure aggregation (Bonawitz et al. 2017, double masking), as uint32 words mod 2^32. Client u's
// masked input is  y_u = x_u + PRG(b_u) + Σ_{v ∈ U2, v ≠ u} δ(u, v) · PRG(s_uv)  with δ = +1 when u < v and −1
// when u > v, PRG(seed) = the ChaCha20 keystream words of the 32-byte seed (nonce 0, counter 0), b_u the
// client's own random 32-byte self-mask seed and s_uv the pairwise seed both u and v derive (crypto.ts maskSeed).
// The pairwise masks cancel in Σ_u y_u; the server removes the self masks with the b_u it rebuilds from shares.
import { keystreamWords } from './chacha20.ts';

/** PRG(seed) as `dim` words. */
export const prg = (seed: Uint8Array, dim: number): Uint32Array => keystreamWords(seed, dim);

/** acc += sign · w (mod 2^32), in place. */
export function addWords(acc: Uint32Array, w: Uint32Array, sign: 1 | -1 = 1): Uint32Array {
  if (w.length !== acc.length) throw new Error(`adding ${w.length} words to ${acc.length}`);
  if (sign === 1) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + w[i]!) >>> 0;
  else for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! - w[i]!) >>> 0;
  return acc;
}

/** δ(u, v): the sign with which u adds the mask it shares with v. */
export const pairSign = (u: number, v: number): 1 | -1 => (u < v ? 1 : -1);

/** y = x + PRG(b) + Σ δ(self, peer) PRG(seed_peer), mod 2^32. */
export function maskInput(x: Uint32Array, selfSeed: Uint8Array, self: number, pairwise: ReadonlyMap<number, Uint8Array>): Uint32Array {
  const y = Uint32Array.from(x);
  addWords(y, prg(selfSeed, x.length));
  for (const [peer, seed] of pairwise) addWords(y, prg(seed, x.length), pairSign(self, peer));
  return y;
}
