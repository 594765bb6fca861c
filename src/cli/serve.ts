// `baffle serve` on the command line: its flags and keys into ServeOptions, every one checked before any work
// (the server itself is src/app/serve.ts).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isServerKey, overridesToLayer, resolveServeConfig } from '../core/config/index.ts';
import { loadConfigFile, resolvePaths } from '../node/config.ts';
import type { ServeOptions } from '../app/serve.ts';
import { defaultRunDir, readServerFile, resumableRun } from '../app/runDir.ts';
import { UsageError } from './usage.ts';

export const SERVE_USAGE = `  baffle serve --tokens FILE [--config FILE] [--set key=value]... [--out DIR] [--host H] [--port P]
               [--tls-cert FILE --tls-key FILE] [--dashboard-token T] [--force] [--quiet]
  baffle serve --resume DIR [--tokens FILE] [--host H] [--port P] [--dashboard-token T] [--set serverKey=value]...
      Serve a federation to clients that connect with \`baffle join\` or a browser on /join: the same
      configuration and run directory as \`baffle run\`, plus the server keys (host, port, minClients,
      roundTimeout, quorum, heartbeat, maxFrameBytes; see \`baffle keys\`). Listens on 127.0.0.1:7100
      unless told otherwise. Checkpoints after every round; --resume DIR continues a stopped or killed
      server exactly where it stopped (a finished one is not trained again). A --out directory that holds
      a run is refused unless --force.
      Watching: /dashboard on the same port is a live, read-only page (round, clients, drops, curves, ETA)
      fed by GET /events (server-sent events); GET /status returns the same state as one JSON document.
      On a loopback host both are open (unless --dashboard-token is given). On any other host they need the
      dashboard token: --dashboard-token T (16+ characters), or one generated at start and printed once, in
      the dashboard's address (…/dashboard#token=T: the page reads the fragment, which never reaches a
      server or a log, and sends it as the header Authorization: Bearer T; so does curl -H). A request
      without it, or with another, gets 401 and a JSON error.
`;

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
      'dashboard-token': { type: 'string' },
      force: { type: 'boolean' },
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
  const dashboardToken = values['dashboard-token'];
  if (dashboardToken !== undefined && !/^[A-Za-z0-9._~+\/=-]{16,200}$/.test(dashboardToken)) {
    throw new UsageError('serve: --dashboard-token: give 16 to 200 characters of letters, digits and . _ ~ + / = - (omit it to have one generated)');
  }
  const dash = dashboardToken === undefined ? {} : { dashboardToken };

  if (values.resume) {
    if (values.config || values.out || values.force) throw new UsageError('serve: --resume DIR continues that run; --config, --out and --force do not apply');
    const outDir = resolve(values.resume);
    const configPath = resumableRun(outDir, 'serve');
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
    return { config: run, server, outDir, tokensPath, tls, resume: true, quiet: values.quiet ?? false, ...dash };
  }

  const layers: Record<string, unknown>[] = [];
  const sources: string[] = [];
  if (values.config) {
    layers.push(loadConfigFile(values.config));
    sources.push(values.config);
  }
  layers.push(sets, flags);
  sources.push('--set', 'command line');
  const resolved = resolveServeConfig(layers, sources);
  const run = resolvePaths(resolved.run);
  const server = resolved.server;
  if (!values.tokens) throw new UsageError('serve: --tokens FILE is required (make one with `baffle tokens --clients N --out FILE`)');
  return {
    config: run,
    server,
    outDir: resolve(values.out ?? defaultRunDir(run, '-serve')),
    tokensPath: resolve(values.tokens),
    tls,
    resume: false,
    force: values.force ?? false,
    quiet: values.quiet ?? false,
    ...dash,
  };
}
