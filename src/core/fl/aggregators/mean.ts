// The plain example-weighted mean (FedAvg/FedSGD's rule): optimal without adversaries, broken by a single one.
import { all, dimensionOf, weightedMean, type Aggregate, type Aggregator, type ClientVector } from './types.ts';

export class MeanAggregator implements Aggregator {
  readonly name = 'mean';
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    dimensionOf(vectors);
    return { values: weightedMean(vectors, divisor), used: all(vectors), excluded: [] };
  }
}
