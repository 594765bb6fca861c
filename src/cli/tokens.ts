// `baffle tokens`: make the per-client tokens file the server reads (and slices of it for join machines).
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkOutputFile, writeAtomic } from '../node/files.ts';
import { formatTokens, makeTokens } from '../node/net/tokens.ts';
import { UsageError } from './usage.ts';

export const TOKENS_USAGE = `  baffle tokens --clients N --out FILE [--parts P] [--force]
      Make a tokens file: one secret token per client id 0..N-1 (the server reads the whole file; a join
      process needs the entries of the clients it hosts). --parts P also writes FILE's entries split into
      P contiguous slices, FILE-part1.json … FILE-partP.json, one per join machine. Keep these files secret.
`;

function positiveInt(name: string, v: string | undefined, fallback?: number): number {
  if (v === undefined) {
    if (fallback === undefined) throw new UsageError(`tokens: --${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`tokens: --${name} must be a positive integer, got '${v}'`);
  return n;
}

/** Refuses, before anything is written, a path that holds something (unless `force`) or cannot be written. */
function checkSecret(path: string, force: boolean): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`tokens: --out ${path} is a directory, not a file`);
  if (existsSync(path) && !force) throw new UsageError(`tokens: ${path} exists`, 'use --force to replace it, or choose another --out');
  checkOutputFile(path, `tokens: --out ${path}`);
}

export function tokensCommand(args: string[], log: (line: string) => void): number {
  const { values } = parseArgs({
    args,
    options: {
      clients: { type: 'string' },
      out: { type: 'string' },
      parts: { type: 'string' },
      force: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const clients = positiveInt('clients', values.clients);
  const parts = values.parts === undefined ? 0 : positiveInt('parts', values.parts);
  if (!values.out) throw new UsageError('tokens: --out FILE is required');
  if (parts > clients) throw new UsageError(`tokens: --parts ${parts} is more than the ${clients} clients`);
  const stem = values.out.replace(/\.json$/i, '');
  const partPaths = Array.from({ length: parts }, (_, i) => `${stem}-part${i + 1}.json`);
  for (const path of [values.out, ...partPaths]) checkSecret(path, values.force ?? false);
  const entries = makeTokens(clients);
  writeAtomic(values.out, formatTokens(entries), 0o600);
  log(`wrote ${clients} client tokens to ${values.out}`);
  for (const [i, path] of partPaths.entries()) {
    const slice = entries.slice(Math.floor((clients * i) / parts), Math.floor((clients * (i + 1)) / parts));
    writeAtomic(path, formatTokens(slice), 0o600);
    log(`wrote clients ${slice[0]!.client}–${slice[slice.length - 1]!.client} to ${path}`);
  }
  return 0;
}
