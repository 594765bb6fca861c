// `baffle run`: resolve the configuration, load the data, simulate the federation, write the run directory.
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { loadDataset } from '../data/index.ts';
import { simulate, type MetricsRecord } from '../fl/simulation.ts';
import { resolveWorkers, type RunConfig } from './config.ts';
import { writeJson, writeJsonLines, writeWeights } from './files.ts';
import * as fmt from './format.ts';

export interface RunOptions {
  config: RunConfig;
  outDir: string;
  /** No progress bar and no per-epoch lines (tests). */
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface RunSummary extends MetricsRecord {
  bestTestAccuracy: number;
  params: number;
  totalSteps: number;
  workers: number;
}

export async function runSimulation(opts: RunOptions): Promise<RunSummary> {
  const { config, outDir } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = opts.quiet ? () => {} : log;
  const workers = resolveWorkers(config);

  const t0 = performance.now();
  const dataset = loadDataset(config.dataset, config.dataDir === null ? {} : { dataDir: config.dataDir });
  say(
    `data: ${dataset.name}, ${dataset.train.count} train / ${dataset.test.count} test, ` +
      `${dataset.inputShape.join('×')}, ${dataset.classes} classes (${fmt.seconds(performance.now() - t0)})`,
  );
  writeJson(join(outDir, 'config.json'), { ...config, workers });

  const metrics: MetricsRecord[] = [];
  let bar: cliProgress.SingleBar | null = null;
  let params = 0;
  let totalSteps = 0;
  const result = await simulate(config, dataset, workers, {
    onStart: (info) => {
      params = info.params;
      totalSteps = info.totalSteps;
      say(
        `model: ${config.model} (${info.params.toLocaleString('en-US')} parameters), ${config.clients} clients ` +
          `(${config.partition}, shard sizes ${Math.min(...info.shardSizes)}–${Math.max(...info.shardSizes)}), ` +
          `${config.fedopt} K=${config.K} σ=${config.sigma} ${config.scheme} differences, ${config.seedPolicy} seeds, ` +
          `${info.totalSteps} steps (${info.stepsPerEpoch}/epoch), ${info.workers} workers`,
      );
      say(`output: ${outDir}`);
      if (!opts.quiet) {
        bar = new cliProgress.SingleBar(
          {
            format: 'training [{bar}] {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | eta {eta_formatted}',
            stream: process.stderr,
            noTTYOutput: true,
            notTTYSchedule: 30_000,
            etaBuffer: 50,
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(info.totalSteps, 0, { epoch: 1, loss: '—' });
      }
    },
    onStep: (s) => bar?.update(s.step, { epoch: s.epoch, loss: s.trainLoss.toFixed(4) }),
    onEvaluation: (m) => {
      metrics.push(m);
      writeJsonLines(join(outDir, 'metrics.jsonl'), metrics);
      const line =
        `epoch ${m.epoch.toFixed(Number.isInteger(m.epoch) ? 0 : 2).padStart(3)}  step ${String(m.step).padStart(5)}  ` +
        `test acc ${fmt.percent(m.testAccuracy).padStart(7)}  test loss ${m.testLoss.toFixed(4)}  ` +
        `train loss ${m.trainLoss.toFixed(4)}  fwd ${fmt.count(m.forwardPasses)}  ` +
        `up ${fmt.bytes(m.uplinkBytes)}  down ${fmt.bytes(m.downlinkBytes)}  ${fmt.seconds(m.wallMs)}`;
      const active = bar as cliProgress.SingleBar | null;
      if (active) {
        // Take the bar down, print the line, put the bar back: no torn lines on a terminal.
        active.stop();
        say(line);
        if (m.step < totalSteps) active.start(totalSteps, m.step, { epoch: Math.floor(m.epoch) + 1, loss: m.trainLoss.toFixed(4) });
      } else say(line);
    },
  });
  (bar as cliProgress.SingleBar | null)?.stop();

  const last = result.metrics[result.metrics.length - 1];
  const summary: RunSummary = {
    ...last,
    bestTestAccuracy: Math.max(...result.metrics.map((m) => m.testAccuracy)),
    params: params || result.model.layout.size,
    totalSteps: result.totalSteps,
    workers,
  };
  writeWeights(outDir, result.model, result.evalWeights, config.ema ? 'ema' : 'raw');
  writeJson(join(outDir, 'summary.json'), summary);
  say(
    `done: test accuracy ${fmt.percent(summary.testAccuracy)} (best ${fmt.percent(summary.bestTestAccuracy)}) after ` +
      `${summary.step} steps in ${fmt.seconds(summary.wallMs)}; results in ${outDir}`,
  );
  return summary;
}
