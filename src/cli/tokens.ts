// `baffle tokens`: make the per-client tokens file the server reads (and slices of it for join machines).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
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

function writeSecret(path: string, text: string, force: boolean): void {
  if (existsSync(path) && !force) throw new UsageError(`tokens: ${path} exists (use --force to replace it)`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600 });
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
  const entries = makeTokens(clients);
  writeSecret(values.out, formatTokens(entries), values.force ?? false);
  log(`wrote ${clients} client tokens to ${values.out}`);
  const stem = values.out.replace(/\.json$/i, '');
  for (let i = 0; i < parts; i++) {
    const slice = entries.slice(Math.floor((clients * i) / parts), Math.floor((clients * (i + 1)) / parts));
    const path = `${stem}-part${i + 1}.json`;
    writeSecret(path, formatTokens(slice), values.force ?? false);
    log(`wrote clients ${slice[0].client}–${slice[slice.length - 1].client} to ${path}`);
  }
  return 0;
}
