// The aggregation rules by name (the `aggregator` key), and which of them fit a run's directions.
import type { Aggregator } from './types.ts';
import { CenteredClipAggregator } from './centeredClip.ts';
import { CosineScreenAggregator } from './cosineScreen.ts';
import { KrumAggregator } from './krum.ts';
import { MeanAggregator } from './mean.ts';
import { MedianAggregator } from './median.ts';
import { NormScreenAggregator } from './normScreen.ts';
import { TrimmedMeanAggregator } from './trimmedMean.ts';

export const AGGREGATORS = ['mean', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'centered-clip', 'norm-screen', 'cosine-screen'] as const;
export type AggregatorName = (typeof AGGREGATORS)[number];

/**
 * Rules that compare clients coordinate by coordinate (or by distances between whole vectors): meaningful only
 * when every client's k-th scalar multiplies the same direction z_k — shared directions, or gradients.
 */
export const COORDINATE_RULES: readonly AggregatorName[] = ['median', 'trimmed-mean', 'krum', 'multi-krum', 'centered-clip', 'cosine-screen'];

export interface AggregatorSettings {
  aggregator: AggregatorName;
  trimFraction: number;
  /** Byzantine clients Krum assumes. */
  byzantine: number;
  /** Multi-Krum's selection (null = participants − byzantine). */
  krumSelect: number | null;
  centeredClipTau: number | null;
  centeredClipIterations: number;
  screenFactor: number;
}

export function makeAggregator(s: AggregatorSettings): Aggregator {
  switch (s.aggregator) {
    case 'mean':
      return new MeanAggregator();
    case 'median':
      return new MedianAggregator();
    case 'trimmed-mean':
      return new TrimmedMeanAggregator(s.trimFraction);
    case 'krum':
      return new KrumAggregator(s.byzantine, 1);
    case 'multi-krum':
      return new KrumAggregator(s.byzantine, s.krumSelect);
    case 'centered-clip':
      return new CenteredClipAggregator(s.centeredClipTau, s.centeredClipIterations);
    case 'norm-screen':
      return new NormScreenAggregator(s.screenFactor);
    case 'cosine-screen':
      return new CosineScreenAggregator(s.screenFactor);
  }
}

export { KrumAggregator, TrimmedMeanAggregator };
export type { Aggregate, Aggregator, ClientVector } from './types.ts';
