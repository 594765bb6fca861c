// `baffle join <url>`: run one or more federated clients against a `baffle serve` server.
import { X509Certificate } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readTokens } from '../node/net/tokens.ts';
import { checkLocalIdx } from '../node/net/localData.ts';
import { readUserFile } from '../node/files.ts';
import { ExitCode, UserError } from '../core/errors.ts';
import { UsageError } from './usage.ts';

export const JOIN_USAGE = `  baffle join URL --tokens FILE [--client ID] [--virtual N] [--data DIR | --data-dir DIR] [--ca FILE]
             [--give-up SECONDS] [--quiet | --verbose]
      Take part in a federation as client(s) that run forward passes only. URL is the server's ws:// or
      wss:// address. Hosts every client of the tokens file, or N clients from ID on (--virtual N hosts N
      simulated clients in this process, each with its own connection). Training data: the run's data set
      (the server names it; each client trains on its partition index = client id), read from --data-dir
      when it lives elsewhere on this machine, or with --data DIR a directory of the client's own IDX files
      (train-images-idx3-ubyte, train-labels-idx1-ubyte; one client only). Reconnects with backoff when
      the server goes away; exits when the server says training is done.
`;

export async function joinCommand(args: string[], log: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      tokens: { type: 'string' },
      client: { type: 'string' },
      virtual: { type: 'string' },
      data: { type: 'string' },
      'data-dir': { type: 'string' },
      ca: { type: 'string' },
      'give-up': { type: 'string' },
      quiet: { type: 'boolean' },
      verbose: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('join: give exactly one server URL (ws://host:port or wss://host:port)');
  const url = positionals[0];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`join: '${url}' is not a URL (expected ws://host:port or wss://host:port)`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new UsageError(`join: '${url}' must start with ws:// or wss://`);
  }
  if (!values.tokens) throw new UsageError('join: --tokens FILE is required (make one with `baffle tokens`)');
  const tokens = readTokens(values.tokens);
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`join: --${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  const first = int('client', values.client, 0);
  const count = int('virtual', values.virtual, 1);
  const giveUp = int('give-up', values['give-up'], 0) ?? 600;
  let ids: number[];
  const inFile = [...tokens.keys()].sort((a, b) => a - b);
  if (first === undefined) ids = count === undefined ? inFile : inFile.slice(0, count);
  else ids = Array.from({ length: count ?? 1 }, (_, i) => first + i);
  if (ids.length === 0) throw new UsageError(`join: ${values.tokens} holds no tokens`);
  if (count !== undefined && ids.length < count) throw new UsageError(`join: --virtual ${count} but ${values.tokens} holds only ${ids.length} tokens`);
  const missing = ids.filter((id) => !tokens.has(id));
  if (missing.length > 0) throw new UsageError(`join: no token for client ${missing.slice(0, 5).join(', ')} in ${values.tokens}`);
  if (values.data && values['data-dir']) throw new UsageError('join: give --data (own files) or --data-dir (the run data set), not both');
  if (values.data && ids.length > 1) throw new UsageError('join: --data DIR holds one client’s data; host a single client with it');
  // The files this process reads, checked before it connects (the data itself loads once the server names the run).
  if (values.data) checkLocalIdx(values.data);
  if (values['data-dir']) {
    const d = values['data-dir'];
    if (!existsSync(d)) throw new UsageError(`join: --data-dir ${d}: no such directory`);
    if (!statSync(d).isDirectory()) throw new UsageError(`join: --data-dir ${d}: is a file, not a directory`);
  }
  const ca = values.ca ? readCa(values.ca) : undefined;
  if (ca && parsed.protocol === 'ws:') log(`warning: --ca ${values.ca} applies to wss:// only; ${url} is not encrypted`);
  if (parsed.protocol === 'ws:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) {
    log('warning: ws:// sends the model and results unencrypted; use wss:// (serve --tls-cert/--tls-key) beyond loopback');
  }

  const say = values.quiet ? () => {} : log;
  say(`joining ${parsed.origin} as ${ids.length === 1 ? `client ${ids[0]}` : `${ids.length} clients (${ids[0]}–${ids[ids.length - 1]})`}`);
  const t0 = performance.now();
  const { join } = await import('../node/net/client.ts');
  const result = await join({
    url,
    clients: ids.map((id) => ({ id, token: tokens.get(id) as string })),
    data: values.data ? { kind: 'files', dir: values.data } : { kind: 'dataset', dataDir: values['data-dir'] ?? null },
    ca,
    log,
    verbose: values.quiet ? false : values.verbose,
    giveUpMs: giveUp * 1000,
  });
  const outcomes = [...result.outcomes.values()];
  const n = (o: string) => outcomes.filter((x) => x === o).length;
  say(
    `finished: ${n('done')} done, ${n('refused')} refused, ${n('gave-up')} gave up, ${n('stopped')} stopped; ` +
      `${result.tasks} tasks in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const firstWith = (o: string) => ids.find((id) => result.outcomes.get(id) === o)!;
  const more = (o: string) => (n(o) > 1 ? ` (and ${n(o) - 1} more client${n(o) > 2 ? 's' : ''})` : '');
  if (n('refused') > 0) {
    const id = firstWith('refused');
    throw new UserError(`the server at ${parsed.origin} refused client ${id}${more('refused')}: ${result.reasons.get(id) ?? 'no reason given'}`, {
      exitCode: ExitCode.refused,
      hint: 'check that the tokens file is the one the server reads (`baffle tokens`) and that both run the same baffle version',
    });
  }
  if (n('gave-up') > 0) {
    const id = firstWith('gave-up');
    throw new UserError(`gave up on ${parsed.origin}: client ${id}${more('gave-up')} had no connection for ${giveUp} s (${result.reasons.get(id) ?? 'no answer'})`, {
      exitCode: ExitCode.gaveUp,
      hint: 'check that `baffle serve` runs at that address and port, or wait longer with --give-up SECONDS (0 = forever)',
    });
  }
  if (n('stopped') > 0) return ExitCode.interrupted;
  return 0;
}

/** The --ca file: PEM certificate(s) to trust, refused before connecting when missing or not a certificate. */
function readCa(path: string): Buffer {
  const pem = readUserFile(path, 'join: --ca');
  try {
    new X509Certificate(pem);
  } catch (e) {
    throw new UsageError(`join: --ca ${path}: not a PEM certificate (${(e as Error).message.split('\n')[0]})`, 'give the server certificate (or the CA that signed it) as a PEM file');
  }
  return pem;
}
