// `baffle serve`: the federation server with real clients over WebSocket. The same training loop and run
// directory as `baffle run` (config.json, metrics.jsonl, summary.json, weights), plus rounds.jsonl (who was
// counted and who was dropped, per round), server.json (address, tokens, TLS files) and a checkpoint after
// every round, from which `baffle serve --resume DIR` continues.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { loadDataset } from '../data/index.ts';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../fl/checkpoint.ts';
import { Ema } from '../fl/ema.ts';
import { freshProgress, planFederation, runFederation, type FederationProgress, type MetricsRecord } from '../fl/federation.ts';
import { SimPool } from '../fl/simPool.ts';
import { evaluationSplit, makeStrategy, modelConfigOf, serverOptimizer } from '../fl/simulation.ts';
import { buildModel } from '../model/index.ts';
import { NetServer } from '../net/server.ts';
import { readTokens } from '../net/tokens.ts';
import {
  ConfigError,
  isServerKey,
  loadConfigFile,
  overridesToLayer,
  resolveServeConfig,
  resolveWorkers,
  type RunConfig,
  type ServerConfig,
} from './config.ts';
import { writeJson, writeJsonLines, writeWeights } from './files.ts';
import * as fmt from './format.ts';
import type { RunSummary } from './run.ts';
import { UsageError } from './tokens.ts';

export const SERVE_USAGE = `  baffle serve --tokens FILE [--config FILE] [--set key=value]... [--out DIR] [--host H] [--port P]
               [--tls-cert FILE --tls-key FILE] [--quiet]
  baffle serve --resume DIR [--tokens FILE] [--host H] [--port P] [--set serverKey=value]...
      Serve a federation to clients that connect with \`baffle join\`: the same configuration and run
      directory as \`baffle run\`, plus the server keys (host, port, minClients, roundTimeout, quorum,
      heartbeat, maxFrameBytes; see \`baffle keys\`). Listens on 127.0.0.1:7100 unless told otherwise;
      GET /status on the same port returns JSON. Checkpoints after every round; --resume DIR continues
      a stopped or killed server exactly where it stopped.
`;

export interface ServeOptions {
  config: RunConfig;
  server: ServerConfig;
  outDir: string;
  tokensPath: string;
  tls: { cert: string; key: string } | null;
  resume: boolean;
  quiet?: boolean;
  log?: (line: string) => void;
}

interface ServerFile {
  runId: string;
  tokens: string;
  tls: { cert: string; key: string } | null;
  url?: string;
  statusUrl?: string;
  pid?: number;
}

/** Parses the serve command line into ServeOptions (everything is checked before any work starts). */
export function parseServeArgs(args: string[]): ServeOptions {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      resume: { type: 'string' },
      tokens: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      quiet: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const flags: Record<string, unknown> = {};
  if (values.host !== undefined) flags.host = values.host;
  if (values.port !== undefined) flags.port = /^\d+$/.test(values.port) ? Number(values.port) : values.port;
  const sets = overridesToLayer(values.set ?? []);
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw new UsageError('serve: --tls-cert and --tls-key go together');
  let tls = values['tls-cert'] ? { cert: resolve(values['tls-cert']), key: resolve(values['tls-key'] as string) } : null;

  if (values.resume) {
    if (values.config || values.out) throw new UsageError('serve: --resume DIR continues that run; --config and --out do not apply');
    const outDir = resolve(values.resume);
    const configPath = join(outDir, 'config.json');
    if (!existsSync(configPath)) throw new UsageError(`serve --resume: ${configPath} does not exist (not a serve run directory)`);
    const runKeys = Object.keys(sets).filter((k) => !isServerKey(k));
    if (runKeys.length > 0) {
      throw new UsageError(`serve --resume: the run configuration is fixed; only server keys may change (not ${runKeys.join(', ')})`);
    }
    const saved = loadConfigFile(configPath);
    const info = readServerFile(outDir);
    tls = tls ?? info?.tls ?? null;
    const { run, server } = resolveServeConfig([saved, sets, flags], [configPath, '--set', 'command line']);
    const tokensPath = values.tokens ? resolve(values.tokens) : info?.tokens;
    if (!tokensPath) throw new UsageError('serve --resume: --tokens FILE is required (no server.json in the run directory)');
    return { config: run, server, outDir, tokensPath, tls, resume: true, quiet: values.quiet ?? false };
  }

  const layers: Record<string, unknown>[] = [];
  const sources: string[] = [];
  if (values.config) {
    layers.push(loadConfigFile(values.config));
    sources.push(values.config);
  }
  layers.push(sets, flags);
  sources.push('--set', 'command line');
  const { run, server } = resolveServeConfig(layers, sources);
  if (!values.tokens) throw new UsageError('serve: --tokens FILE is required (make one with `baffle tokens --clients N --out FILE`)');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return {
    config: run,
    server,
    outDir: resolve(values.out ?? `runs/${stamp}-${run.dataset}-${run.model}-serve`),
    tokensPath: resolve(values.tokens),
    tls,
    resume: false,
    quiet: values.quiet ?? false,
  };
}

function readServerFile(dir: string): ServerFile | null {
  const p = join(dir, 'server.json');
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as ServerFile;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function runServer(opts: ServeOptions): Promise<RunSummary> {
  const { config, server: serverConfig, outDir } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = opts.quiet ? () => {} : log;
  const workers = resolveWorkers(config);

  // Everything that can be refused is checked before listening.
  if ((config as { algorithm?: string }).algorithm === 'bp') {
    throw new ConfigError("algorithm 'bp' (the backprop baseline) runs in `baffle run` only: `baffle serve` trains forward-only clients");
  }
  const tokens = readTokens(opts.tokensPath);
  const beyond = [...tokens.keys()].filter((id) => id >= config.clients);
  if (beyond.length > 0) {
    throw new ConfigError(`tokens file ${opts.tokensPath} names client ${beyond[0]}, but the federation has clients 0..${config.clients - 1}`);
  }
  const tls = opts.tls ? { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) } : null;
  if (!tls && !isLoopback(serverConfig.host)) {
    log(`warning: listening on ${serverConfig.host} without TLS: models and results travel unencrypted (use --tls-cert/--tls-key)`);
  }

  const dataset = loadDataset(config.dataset, config.dataDir === null ? {} : { dataDir: config.dataDir });
  const model = buildModel(modelConfigOf(config, dataset));
  const n = model.layout.size;
  const plan = planFederation(config, dataset.train.count);
  const test = evaluationSplit(dataset.test, config.testSubset);
  const checkpointDir = join(outDir, 'checkpoint');

  const pool = new SimPool(model.config, { ...dataset, test }, n, workers);
  let net: NetServer | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping; continue with: baffle serve --resume ${outDir}`);
    void net?.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    if (!net) process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const weights = pool.weights;
    const optimizer = config.fedopt === 'fedsgd' ? serverOptimizer(config, n) : null;
    let ema: Ema | null = null;
    let progress: FederationProgress;
    let runId: string;
    let cursors: number[] | undefined;
    let rounds: unknown[] = [];
    if (opts.resume && hasCheckpoint(checkpointDir)) {
      const ck = loadCheckpoint(checkpointDir);
      if (!isDeepStrictEqual({ ...ck.config, workers: config.workers }, config)) {
        throw new ConfigError(`the checkpoint in ${checkpointDir} was made with a different run configuration than ${join(outDir, 'config.json')}`);
      }
      if (ck.weights.length !== n) throw new Error(`checkpoint holds ${ck.weights.length} weights, the model has ${n}`);
      weights.set(ck.weights);
      if (optimizer && ck.optimizer) optimizer.loadState(ck.optimizer);
      if (config.ema) {
        ema = new Ema(weights, config.emaDecay);
        if (ck.ema) ema.loadState(ck.ema);
      }
      progress = ck.progress;
      runId = ck.runId;
      cursors = ck.extra.cursors as number[] | undefined;
      rounds = (ck.extra.rounds as unknown[] | undefined) ?? [];
      say(`resuming run ${runId} after step ${progress.step} of ${plan.totalSteps} from ${checkpointDir}`);
    } else {
      weights.set(model.initWeights(config.seed));
      ema = config.ema ? new Ema(weights, config.emaDecay) : null;
      progress = freshProgress(config);
      runId = opts.resume ? (readServerFile(outDir)?.runId ?? randomBytes(8).toString('hex')) : randomBytes(8).toString('hex');
      if (opts.resume) say(`no checkpoint in ${checkpointDir} yet: starting the run from step 0`);
      writeJson(join(outDir, 'config.json'), { ...config, workers, ...serverConfig });
    }

    net = await NetServer.start({ config, server: serverConfig, tokens, tls, runId, model, log, cursors });
    net.rounds.push(...(rounds as NetServer['rounds']));
    net.info.totalSteps = plan.totalSteps;
    net.info.step = progress.step;
    net.info.lastMetrics = progress.metrics.at(-1) ?? null;
    const addr = net.address;
    writeJson(join(outDir, 'server.json'), {
      runId,
      tokens: opts.tokensPath,
      tls: opts.tls,
      url: addr.url,
      statusUrl: addr.statusUrl,
      pid: process.pid,
    } satisfies ServerFile);
    const minClients = serverConfig.minClients ?? plan.participants;
    if (tokens.size < minClients) {
      log(`warning: the tokens file has tokens for ${tokens.size} clients, fewer than the ${minClients} needed to start`);
    }
    log(`listening on ${addr.url} (status: ${addr.statusUrl})`);
    say(
      `model: ${config.model} (${n.toLocaleString('en-US')} parameters), ${config.clients} clients, ${plan.participants} per round, ` +
        `${config.fedopt} K=${config.K} σ=${config.sigma} ${config.scheme} differences, ${config.seedPolicy} seeds, ` +
        `${plan.totalSteps} steps (${plan.stepsPerEpoch}/epoch), quorum ${serverConfig.quorum}, round timeout ${serverConfig.roundTimeout}s`,
    );
    say(`output: ${outDir}`);

    const strategy = makeStrategy(config, net, (sets) => pool.reconstruct(sets), n, optimizer ?? undefined);
    const metrics: MetricsRecord[] = progress.metrics.slice();
    if (progress.step < plan.totalSteps) {
      say(`waiting for ${minClients} clients`);
      await net.waitForClients(minClients);
      net.info.state = 'training';
      say(`${net.connectedClients} clients connected: training`);
    }
    const wallBase = progress.wallOffsetMs;
    const sessionStart = performance.now();
    const live = net;
    await runFederation(
      {
        config,
        plan,
        strategy,
        weights,
        ema,
        evaluate: (w) => pool.evaluate(w),
        afterStep: (p) => {
          writeJsonLines(join(outDir, 'rounds.jsonl'), live.rounds);
          saveCheckpoint(
            checkpointDir,
            {
              runId,
              config,
              progress: p,
              weights,
              optimizer: optimizer?.state() ?? null,
              ema: ema?.state() ?? null,
              extra: { cursors: live.cursors, rounds: live.rounds },
            },
            wallBase + (performance.now() - sessionStart),
          );
        },
      },
      progress,
      {
        onStep: (s) => {
          live.info.step = s.step;
          const last = live.rounds.at(-1);
          if (last && last.counted.length < last.participants.length && !opts.quiet) {
            say(`round ${s.step}: ${last.counted.length} of ${last.participants.length} results counted${last.abandoned ? ' (abandoned)' : ''}`);
          }
        },
        onEvaluation: (m) => {
          metrics.push(m);
          live.info.lastMetrics = m;
          writeJsonLines(join(outDir, 'metrics.jsonl'), metrics);
          say(fmt.evaluationLine(m));
        },
      },
    );
    writeJsonLines(join(outDir, 'metrics.jsonl'), metrics);
    writeJsonLines(join(outDir, 'rounds.jsonl'), live.rounds);
    const evalWeights = ema ? ema.weights() : weights;
    writeWeights(outDir, model, evalWeights, config.ema ? 'ema' : 'raw');
    const last = metrics[metrics.length - 1];
    const summary: RunSummary = {
      ...last,
      bestTestAccuracy: Math.max(...metrics.map((m) => m.testAccuracy)),
      params: n,
      totalSteps: plan.totalSteps,
      workers,
    };
    writeJson(join(outDir, 'summary.json'), summary);
    live.finish(plan.totalSteps);
    say(
      `done: test accuracy ${fmt.percent(summary.testAccuracy)} (best ${fmt.percent(summary.bestTestAccuracy)}) after ` +
        `${summary.step} steps in ${fmt.seconds(summary.wallMs)}; results in ${outDir}`,
    );
    // Let the 'done' frames go out before the sockets close.
    await new Promise((r) => setTimeout(r, 200));
    return summary;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await net?.close();
    await pool.close();
  }
}
