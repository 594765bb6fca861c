// `baffle serve`: the training session of `baffle run` with real clients over WebSocket. The same run directory
// (config.json, metrics.jsonl, summary.json, model.onnx, weights), plus rounds.jsonl (who was counted and who
// was dropped, per round), server.json (address, tokens, TLS files) and a checkpoint after every round, from
// which `baffle serve --resume DIR` continues. Order of work: refusals first (directory, tokens, TLS, port, model,
// where the data lives), then the run directory is created and the data loads.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { RunConfig, ServerConfig } from '../core/config/index.ts';
import { ConfigError, secAggThresholdOf } from '../core/config/index.ts';
import { fixedPointScale } from '../core/secagg/quantize.ts';
import type { MetricsRecord } from '../core/fl/federation.ts';
import { clientModel } from '../core/model/artifact.ts';
import { resolveWorkers } from '../node/config.ts';
import { readUserFile, writeJson, writeJsonLines } from '../node/files.ts';
import { checkRunData, loadRunData, loadRunModel, modelLine } from '../node/model/load.ts';
import { Listener } from '../node/net/listener.ts';
import { WebPages } from '../node/net/web.ts';
import { NetServer, type RoundRecord } from '../node/net/server.ts';
import { readTokens } from '../node/net/tokens.ts';
import * as fmt from './format.ts';
import {
  checkFreshRun,
  readServerFile,
  type ServerFile,
  configRecord,
  finishRun,
  finishedRun,
  prepareFreshRun,
  writeConfig,
  writeMetrics,
  type RunSummary,
} from './runDir.ts';
import { Session } from './session.ts';

export { readServerFile, type ServerFile } from './runDir.ts';

export interface ServeOptions {
  config: RunConfig;
  server: ServerConfig;
  outDir: string;
  tokensPath: string;
  tls: { cert: string; key: string } | null;
  resume: boolean;
  /** Replace a run already in outDir. */
  force?: boolean;
  quiet?: boolean;
  log?: (line: string) => void;
  /**
   * The read-only token of /dashboard's data (/events) and /status. Default: none on a loopback host, one
   * generated at start (printed once) on any other.
   */
  dashboardToken?: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function readPem(path: string, what: string): Buffer {
  return readUserFile(path, what);
}

export async function runServer(opts: ServeOptions): Promise<RunSummary> {
  const { config, server: serverConfig, outDir } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = opts.quiet ? () => {} : log;
  const workers = resolveWorkers(config);

  // Everything that can be refused is checked before the data loads, the port bound first of all.
  if (config.algorithm === 'bp') {
    throw new ConfigError("algorithm 'bp' (the backprop baseline) runs in `baffle run` only: `baffle serve` trains forward-only clients");
  }
  if (config.attack !== 'none') {
    throw new ConfigError(`attack '${config.attack}' simulates Byzantine clients in \`baffle run\` only: over the network the clients are real`);
  }
  if (opts.resume) {
    const done = finishedRun(outDir);
    if (done) {
      say(fmt.finishedLine(done, outDir));
      return done;
    }
  } else checkFreshRun(outDir, opts.force ?? false, 'serve');
  const tokens = readTokens(opts.tokensPath);
  const beyond = [...tokens.keys()].filter((id) => id >= config.clients);
  if (beyond.length > 0) {
    throw new ConfigError(`tokens file ${opts.tokensPath} names client ${beyond[0]}, but the federation has clients 0..${config.clients - 1}`);
  }
  const tls = opts.tls ? { cert: readPem(opts.tls.cert, '--tls-cert'), key: readPem(opts.tls.key, '--tls-key') } : null;
  const listener = await Listener.open(serverConfig.host, serverConfig.port, tls && { ...tls, files: opts.tls! });
  let net: NetServer | null = null;
  let session: Session | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping; continue with: baffle serve --resume ${outDir}`);
    const code = signal === 'SIGINT' ? 130 : 143;
    void (net ? net.close(true) : listener.close()).finally(() => process.exit(code));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (!tls && !isLoopback(serverConfig.host)) {
      log(`warning: listening on ${serverConfig.host} without TLS: models and results travel unencrypted (use --tls-cert/--tls-key)`);
    }
    const { artifact } = await loadRunModel(config);
    // The browser client's page and scripts (built now, so that a broken build shows before any client waits).
    const pages = new WebPages();
    await pages.warm();
    checkRunData(config);
    if (!opts.resume) prepareFreshRun(outDir, opts.force ?? false, 'serve');
    const dataset = loadRunData(config, artifact);
    const runId = readServerFile(outDir)?.runId ?? randomBytes(8).toString('hex');
    session = Session.open({
      config,
      artifact,
      dataset,
      workers,
      checkpointDir: join(outDir, 'checkpoint'),
      resume: opts.resume,
      runId,
      remoteClients: true,
    });
    const { plan } = session;
    if (session.resumedAt > 0) say(`resuming run ${session.runId} after step ${session.resumedAt} of ${plan.totalSteps} from ${join(outDir, 'checkpoint')}`);
    else {
      if (opts.resume) say(`no checkpoint in ${join(outDir, 'checkpoint')} yet: starting the run from step 0`);
      writeConfig(outDir, { ...configRecord(config, workers), ...serverConfig });
    }
    const dashboardToken = opts.dashboardToken ?? (isLoopback(serverConfig.host) ? null : randomBytes(24).toString('base64url'));
    const live = NetServer.start({
      config,
      server: serverConfig,
      tokens,
      listener,
      runId: session.runId,
      model: clientModel(artifact),
      log,
      cursors: session.restored.cursors as number[] | undefined,
      pages,
      dashboardToken,
      noiseMultiplier: session.privacy?.noiseMultiplier ?? 0,
    });
    net = live;
    live.rounds.push(...((session.restored.rounds as RoundRecord[] | undefined) ?? []));
    live.info.totalSteps = plan.totalSteps;
    live.info.step = session.resumedAt;
    live.info.lastMetrics = session.metrics.at(-1) ?? null;
    const metrics: MetricsRecord[] = session.metrics.slice();
    live.info.metrics = metrics;
    const addr = live.address;
    writeJson(join(outDir, 'server.json'), {
      runId: session.runId,
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
    log(`listening on ${addr.url} (status: ${addr.statusUrl}, browser clients: ${addr.statusUrl.replace(/\/status$/, '/join')})`);
    // The token is printed here once (and written nowhere): the fragment never reaches the server or its logs.
    const dashboardUrl = addr.statusUrl.replace(/\/status$/, '/dashboard');
    if (dashboardToken) log(`dashboard: ${dashboardUrl}#token=${dashboardToken} (the token also opens /status: Authorization: Bearer TOKEN)`);
    else log(`dashboard: ${dashboardUrl}`);
    say(modelLine(config, artifact));
    say(
      `federation: ${config.clients} clients, ${plan.participants} per round, ` +
        `${config.fedopt} K=${config.K} σ=${config.sigma} ${config.scheme} differences, ${config.seedPolicy} seeds, ` +
        `${plan.totalSteps} steps (${plan.stepsPerEpoch}/epoch), quorum ${serverConfig.quorum}, round timeout ${serverConfig.roundTimeout}s`,
    );
    if (config.secureAggregation) {
      const S = fixedPointScale(plan.participants, config.secAggRange);
      say(
        `secure aggregation: threshold ${secAggThresholdOf(config)} of ${plan.participants}, values clipped to ±${config.secAggRange}, ` +
          `32-bit fixed point with scale 2^${Math.log2(S)} (each coordinate of the sum within ${(plan.participants / S).toExponential(1)})`,
      );
    }
    say(`output: ${outDir}`);

    if (session.resumedAt < plan.totalSteps) {
      say(`waiting for ${minClients} clients`);
      await live.waitForClients(minClients);
      live.info.state = 'training';
      say(`${live.connectedClients} clients connected: training`);
    }
    const result = await session.train(
      session.strategy(live),
      {
        onStep: (s) => {
          live.info.step = s.step;
          writeJsonLines(join(outDir, 'rounds.jsonl'), live.rounds);
          const last = live.rounds.at(-1);
          if (last && last.counted.length < last.participants.length && !opts.quiet) {
            say(`round ${s.step}: ${last.counted.length} of ${last.participants.length} results counted${last.abandoned ? ' (abandoned)' : ''}`);
          }
        },
        onEvaluation: (m) => {
          metrics.push(m);
          live.info.lastMetrics = m;
          writeMetrics(outDir, metrics);
          say(fmt.evaluationLine(m));
        },
      },
      () => ({ cursors: live.cursors, rounds: live.rounds }),
    );
    writeMetrics(outDir, result.metrics);
    writeJsonLines(join(outDir, 'rounds.jsonl'), live.rounds);
    const summary = finishRun(outDir, artifact, result, config, workers);
    live.finish(plan.totalSteps);
    say(fmt.doneLine(summary, outDir));
    // Let the 'done' frames go out before the sockets close.
    await new Promise((r) => setTimeout(r, 200));
    return summary;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (net) await net.close();
    else await listener.close();
    await session?.close();
  }
}
