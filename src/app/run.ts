// A simulated run (`baffle run`, each run of `baffle suite`): check the run directory and the model, load the data,
// simulate the federation, write the run directory.
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { simulate, type MetricsRecord } from './simulation.ts';
import type { RunConfig } from '../core/config/index.ts';
import { resolveWorkers } from '../node/config.ts';
import { checkRunData, loadRunData, loadRunModel, modelLine } from '../node/model/load.ts';
import {
  checkFreshRun,
  configRecord,
  finishRun,
  finishedRun,
  prepareFreshRun,
  readMetrics,
  writeConfig,
  writeMetrics,
  type RunSummary,
} from './runDir.ts';
import * as fmt from './format.ts';

export interface RunOptions {
  config: RunConfig;
  outDir: string;
  /** Continue from the checkpoint in outDir/checkpoint (written after every step). */
  resume?: boolean;
  /** Replace a run already in outDir. */
  force?: boolean;
  /** No progress bar and no per-epoch lines (tests). */
  quiet?: boolean;
  log?: (line: string) => void;
}

export type { RunSummary };

export async function runSimulation(opts: RunOptions): Promise<RunSummary> {
  const { config, outDir } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = opts.quiet ? () => {} : log;
  const workers = resolveWorkers(config);

  // Everything that can be refused is checked before the data loads: the directory, the model, where the data
  // lives; only then is the directory created (a refused run leaves none behind).
  if (opts.resume) {
    const done = finishedRun(outDir);
    if (done) {
      say(fmt.finishedLine(done, outDir));
      return done;
    }
  } else checkFreshRun(outDir, opts.force ?? false, 'run');
  const model = await loadRunModel(config);
  const { artifact } = model;
  checkRunData(config);
  if (!opts.resume) prepareFreshRun(outDir, opts.force ?? false, 'run');

  const t0 = performance.now();
  const dataset = loadRunData(config, artifact);
  say(
    `data: ${dataset.name}, ${dataset.train.count} train / ${dataset.test.count} test, ` +
      `${dataset.inputShape.join('×')}, ${dataset.classes} classes (${fmt.seconds(performance.now() - t0)})`,
  );
  if (!opts.resume) writeConfig(outDir, configRecord(config, workers));

  const metrics: MetricsRecord[] = [];
  const progress = opts.quiet ? null : new Progress();
  const result = await simulate(
    config,
    dataset,
    workers,
    {
      onStart: (info) => {
        if (info.resumedAt > 0) {
          // Keep the evaluations of the steps the checkpoint covers; later ones (after it) are redone.
          metrics.push(...readMetrics(outDir).filter((m) => m.step <= info.resumedAt));
          say(`resuming after step ${info.resumedAt} of ${info.totalSteps} from ${join(outDir, 'checkpoint')}`);
        } else if (opts.resume) say(`no checkpoint in ${join(outDir, 'checkpoint')}: starting from step 0`);
        say(modelLine(config, artifact));
        say(
          `federation: ${config.clients} clients (${config.partition}, shard sizes ${Math.min(...info.shardSizes)}–${Math.max(...info.shardSizes)}), ` +
            `${config.algorithm === 'bp' ? 'backprop baseline' : `${config.fedopt} K=${config.K} σ=${config.sigma} ${config.scheme} differences, ${config.seedPolicy} seeds${config.perturbation === 'lowrank' ? `, rank-${config.rank} directions` : ''}`}, ` +
            `${info.totalSteps} steps (${info.stepsPerEpoch}/epoch), ${info.workers} workers`,
        );
        say(`output: ${outDir}`);
        progress?.start(info.totalSteps, info.resumedAt);
      },
      onStep: (s) => progress?.update(s.step, s.epoch, s.trainLoss),
      onEvaluation: (m) => {
        metrics.push(m);
        writeMetrics(outDir, metrics);
        const line = fmt.evaluationLine(m);
        if (progress) progress.log(line, say, m.step);
        else say(line);
      },
    },
    { dir: join(outDir, 'checkpoint'), resume: opts.resume ?? false },
    model,
  );
  progress?.stop();

  const summary = finishRun(outDir, artifact, result, config, workers);
  say(fmt.doneLine(summary, outDir));
  return summary;
}

/**
 * Progress while training: a live bar on a terminal (epoch lines printed above it), and on a pipe or a
 * log file a plain "step i/n" line on stderr every 30 s, so long epochs still show signs of life.
 */
class Progress {
  private bar: cliProgress.MultiBar | null = null;
  private row: cliProgress.SingleBar | null = null;
  private total = 0;
  private lastPlain = 0;
  private readonly started = performance.now();

  private first = 0;

  start(total: number, done: number): void {
    this.total = total;
    this.first = done;
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.MultiBar(
        {
          format: 'training [{bar}] {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | eta {eta_formatted}',
          stream: process.stderr,
          etaBuffer: 50,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.row = this.bar.create(total, done, { epoch: 1, loss: '—' });
    }
    this.lastPlain = performance.now();
  }

  update(step: number, epoch: number, loss: number): void {
    if (this.row) {
      this.row.update(step, { epoch, loss: Number.isFinite(loss) ? loss.toFixed(4) : '—' });
      return;
    }
    const now = performance.now();
    if (now - this.lastPlain >= 30_000 && step < this.total) {
      this.lastPlain = now;
      const rate = (now - this.started) / Math.max(1, step - this.first);
      process.stderr.write(
        `step ${step}/${this.total} (epoch ${epoch}), ${fmt.seconds(rate)} per step, about ${fmt.seconds(rate * (this.total - step))} left\n`,
      );
    }
  }

  log(line: string, say: (line: string) => void, step: number): void {
    // The last line goes out after the bar is gone, or clearing the bar would take it along.
    if (step >= this.total) this.stop();
    if (this.bar && process.stdout.isTTY) this.bar.log(`${line}\n`);
    else say(line);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
    this.row = null;
  }
}
