// The aggregate step of a round, the same for BAFFLE's K-vectors and the backprop baseline's gradients: the
// Byzantine clients' replacement (simulation only), differential privacy's per-client clipping and Gaussian
// noise, and the aggregation rule. Order: what the clients send (attack, then — distributed DP — each client's
// clipping and share of the noise), then the rule, then — central DP — the server's noise on the sum.
import { mixSeed } from '../rng/directions.ts';
import { clipL2, dpNoiseSeed, noisedShare, seededNormals, shareStd } from '../privacy/noise.ts';
import { UniformRng } from '../rng/uniform.ts';
import { makeAggregator, type AggregatorSettings } from './aggregators/index.ts';
import type { Aggregate, Aggregator, ClientVector } from './aggregators/types.ts';
import { Adversary, type AttackSettings } from './attacks.ts';

export interface DpSettings {
  /** L2 bound C of each client's vector (null = no differential privacy). */
  dpClip: number | null;
  /** Noise std / C of the Gaussian mechanism on the sum (0 = clipping only). */
  noiseMultiplier: number;
  /** 'central': the server adds N(0, (σC)²) to the sum; 'distributed': each of the m clients adds N(0, (σC)²/m). */
  dpNoise: 'central' | 'distributed';
}

export type AggregationSettings = AggregatorSettings & AttackSettings & DpSettings;

export { clipL2 };

export interface Combined extends Aggregate {
  /** Clients whose vector DP clipping shortened. */
  clipped: number;
}

export class Aggregation {
  private readonly rule: Aggregator;
  private readonly adversary: Adversary;

  constructor(
    private readonly s: AggregationSettings,
    clients: number,
  ) {
    this.rule = makeAggregator(s);
    this.adversary = new Adversary(s, clients);
  }

  get byzantine(): ReadonlySet<number> {
    return this.adversary.byzantine;
  }

  /** What the clients send this round: the Byzantine ones' replacements (for rules that only screen clients). */
  sent(vectors: readonly ClientVector[], step: number): ClientVector[] {
    return this.adversary.tamper(vectors, step);
  }

  /** The round's aggregate of `vectors` divided by `divisor`, with the attack, DP and the rule applied. */
  combine(vectors: readonly ClientVector[], step: number, divisor: number): Combined {
    let sent = this.sent(vectors, step);
    const { dpClip } = this.s;
    if (dpClip === null) return { ...this.rule.aggregate(sent, divisor), clipped: 0 };
    // Differential privacy: each client's vector clipped to L2 ≤ C, the unweighted sum noised (sensitivity C),
    // divided by the number of clients: the mechanism the accountant (src/core/privacy) bounds.
    const m = sent.length;
    const d = sent[0]!.values.length;
    const sum = new Float64Array(d);
    let clipped = 0;
    if (this.s.dpNoise === 'distributed') {
      // Distributed noise: each client adds its own share N(0, (σC)²/m) from its own stream (privacy/noise.ts),
      // exactly as a client of a secure round does (secagg/quantize.ts secAggVector), so only the sum carries
      // the full noise and a secure run matches this one up to the quantization.
      const std = shareStd(this.s.noiseMultiplier, dpClip, m);
      for (const v of sent) {
        const share = noisedShare(v.values, dpClip, std, seededNormals(dpNoiseSeed(this.s.seed, step, v.clientId)));
        if (share.clipped) clipped++;
        for (let i = 0; i < d; i++) sum[i] += share.values[i]!;
      }
    } else {
      const noise = new UniformRng(mixSeed(this.s.seed, 0x6470_6e21 /* "dpn!" */, step));
      const std = this.s.noiseMultiplier * dpClip;
      sent = sent.map((v) => {
        const values = v.values.slice();
        if (clipL2(values, dpClip) < 1) clipped++;
        return { ...v, values, examples: 1 };
      });
      for (const v of sent) for (let i = 0; i < d; i++) sum[i] += v.values[i]!;
      if (std > 0) for (let i = 0; i < d; i++) sum[i] += std * noise.normal();
    }
    for (let i = 0; i < d; i++) sum[i] = sum[i]! / m / divisor;
    return { values: sum, used: sent.map((v) => v.clientId), excluded: [], clipped };
  }
}
