// Byzantine clients, to test the aggregators with (the `attack` and `attackFraction` keys; simulation only). A
// fixed set of clients, drawn from the run's seed, replaces what it would honestly send, every round:
//
//   sign-flip   −v                                    (the honest vector reversed)
//   scale       attackScale × v (default −10)
//   gaussian    N(0, attackNoise²) in every coordinate (default σ = 200), ignoring the data
//   adaptive    full knowledge of the round's honest vectors (Fang et al. 2020, the trim attack on trimmed mean
//               and median): per coordinate j, against the honest mean's sign s_j, a value just past the
//               honest extreme on the other side — in [w_min/b, w_min] or [b·w_min, w_min] when s_j > 0 (b = 2,
//               chosen so the value has the extreme's sign), mirrored with w_max when s_j ≤ 0 — drawn uniformly.
// The same rules apply to K-vectors (BAFFLE) and to gradients or model deltas (the backprop baseline).
import { mixSeed } from '../rng/directions.ts';
import { UniformRng } from '../rng/uniform.ts';
import type { ClientVector } from './aggregators/types.ts';

export const ATTACKS = ['none', 'sign-flip', 'scale', 'gaussian', 'adaptive'] as const;
export type AttackName = (typeof ATTACKS)[number];

export interface AttackSettings {
  attack: AttackName;
  attackFraction: number;
  attackScale: number;
  attackNoise: number;
  seed: number;
}

/** The Byzantine client ids: round(attackFraction × clients) of them, a pure function of the seed. */
export function byzantineClients(s: Pick<AttackSettings, 'attack' | 'attackFraction' | 'seed'>, clients: number): Set<number> {
  if (s.attack === 'none' || s.attackFraction === 0) return new Set();
  const count = Math.round(s.attackFraction * clients);
  const rng = new UniformRng(mixSeed(s.seed, 0x6279_7a6e /* "byzn" */));
  const ids = Array.from({ length: clients }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + rng.nextInt(clients - i);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return new Set(ids.slice(0, count));
}

export class Adversary {
  readonly byzantine: Set<number>;

  constructor(
    private readonly s: AttackSettings,
    clients: number,
  ) {
    this.byzantine = byzantineClients(s, clients);
  }

  get active(): boolean {
    return this.byzantine.size > 0;
  }

  /** The round's vectors with the Byzantine clients' replaced (`step` seeds the random attacks). */
  tamper(vectors: readonly ClientVector[], step: number): ClientVector[] {
    if (!this.active || !vectors.some((v) => this.byzantine.has(v.clientId))) return [...vectors];
    const rng = new UniformRng(mixSeed(this.s.seed, 0x6174_6b21 /* "atk!" */, step));
    const honest = vectors.filter((v) => !this.byzantine.has(v.clientId));
    const d = vectors[0]!.values.length;
    let lo: Float64Array | null = null;
    let hi: Float64Array | null = null;
    let mean: Float64Array | null = null;
    if (this.s.attack === 'adaptive' && honest.length > 0) {
      lo = new Float64Array(d).fill(Infinity);
      hi = new Float64Array(d).fill(-Infinity);
      mean = new Float64Array(d);
      for (const v of honest) {
        for (let i = 0; i < d; i++) {
          const x = v.values[i]!;
          if (x < lo[i]!) lo[i] = x;
          if (x > hi[i]!) hi[i] = x;
          mean[i] += x / honest.length;
        }
      }
    }
    const b = 2;
    return vectors.map((v) => {
      if (!this.byzantine.has(v.clientId)) return v;
      const out = new Float32Array(d);
      switch (this.s.attack) {
        case 'sign-flip':
          for (let i = 0; i < d; i++) out[i] = -v.values[i]!;
          break;
        case 'scale':
          for (let i = 0; i < d; i++) out[i] = this.s.attackScale * v.values[i]!;
          break;
        case 'gaussian':
          for (let i = 0; i < d; i++) out[i] = this.s.attackNoise * rng.normal();
          break;
        case 'adaptive':
          if (!lo || !hi || !mean) {
            for (let i = 0; i < d; i++) out[i] = -v.values[i]!; // no honest vector to know: reverse its own
            break;
          }
          for (let i = 0; i < d; i++) {
            const u = rng.nextFloat();
            // Push against the honest direction, just past the honest extreme on that side.
            const edge = mean[i]! > 0 ? lo[i]! : hi[i]!;
            const far = mean[i]! > 0 ? (edge > 0 ? edge / b : edge * b) : edge > 0 ? edge * b : edge / b;
            out[i] = edge + u * (far - edge);
          }
          break;
        case 'none':
          return v;
      }
      return { ...v, values: out };
    });
  }
}
