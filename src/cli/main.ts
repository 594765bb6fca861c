// The `baffle` command line.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, configFromArgs, formatConfigHelp, formatServerConfigHelp, loadConfigFile, overridesToLayer, resolveConfig } from './config.ts';
import { runSimulation } from './run.ts';
import { JOIN_USAGE, joinCommand } from './join.ts';
import { parseServeArgs, runServer, SERVE_USAGE } from './serve.ts';
import { TOKENS_USAGE, tokensCommand } from './tokens.ts';
import { MEMORY_USAGE } from './memory.ts';
import { REPORT_USAGE } from '../report/usage.ts';
import { SUITE_USAGE } from '../report/suite.ts';

const USAGE = `baffle — backpropagation-free federated learning (forward passes only)

Usage:
  baffle run [--config FILE] [--set key=value]... [--out DIR] [--quiet]
      Simulate a federation of clients that train a model with forward passes only (BAFFLE).
      With no options: MLP on mnist-10k, 10 IID clients, FedSGD, K=100, 20 epochs.
  baffle run --resume DIR [--set workers=N] [--quiet]
      Continue a stopped or killed run from its last completed step (DIR/checkpoint).
${SERVE_USAGE}${JOIN_USAGE}${TOKENS_USAGE}${SUITE_USAGE}${REPORT_USAGE}${MEMORY_USAGE}  baffle keys        List every configuration key with its meaning and default.
  baffle help        This text.

Options of run:
  --config FILE      JSON or TOML configuration file (keys as listed by \`baffle keys\`).
  --set key=value    Override one key (repeatable); value is JSON when it parses, else a string.
  --out DIR          Run directory (default: runs/<timestamp>-<dataset>-<model>).
  --quiet            No progress bar and no per-epoch lines.
  --resume DIR       Continue the run in DIR with its own config.json (only \`workers\` may be changed).
`;

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === 'keys') {
    process.stdout.write(`${formatConfigHelp()}\n\nServer keys (baffle serve only):\n${formatServerConfigHelp()}\n`);
    return 0;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(SERVE_USAGE);
      return 0;
    }
    await runServer(parseServeArgs(rest));
    return 0;
  }
  if (command === 'join') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(JOIN_USAGE);
      return 0;
    }
    return joinCommand(rest, say);
  }
  if (command === 'tokens') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(TOKENS_USAGE);
      return 0;
    }
    return tokensCommand(rest, say);
  }
  if (command === 'suite' || command === 'report' || command === 'memory') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(command === 'suite' ? SUITE_USAGE : command === 'report' ? REPORT_USAGE : MEMORY_USAGE);
      return 0;
    }
    if (command === 'suite') return (await import('../report/suite.ts')).suiteCommand(rest, say);
    if (command === 'report') return (await import('./report.ts')).reportCommand(rest, say);
    return (await import('./memory.ts')).memoryCommand(rest);
  }
  if (command !== 'run') {
    process.stderr.write(`baffle: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      quiet: { type: 'boolean' },
      resume: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.resume !== undefined) {
    const outDir = resolve(values.resume);
    const configPath = join(outDir, 'config.json');
    if (!existsSync(configPath)) throw new ConfigError(`--resume ${values.resume}: no config.json there (not a run directory)`);
    if (values.config || values.out) throw new ConfigError('--resume takes the configuration and directory of the run: drop --config and --out');
    const overrides = overridesToLayer(values.set ?? []);
    const changed = Object.keys(overrides).filter((k) => k !== 'workers');
    if (changed.length > 0) throw new ConfigError(`--resume: only workers may be changed, not ${changed.join(', ')}`);
    const config = resolveConfig([loadConfigFile(configPath), overrides], [configPath, '--set']);
    await runSimulation({ config, outDir, quiet: values.quiet ?? false, resume: true });
    return 0;
  }
  const config = configFromArgs(values.config, values.set ?? []);
  const outDir = resolve(values.out ?? `runs/${timestamp()}-${config.dataset}-${config.model}`);
  await runSimulation({ config, outDir, quiet: values.quiet ?? false });
  return 0;
}

export async function cli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (
      err instanceof ConfigError ||
      (err instanceof Error && (err.name === 'DataError' || err.name === 'UsageError' || err.name === 'TokensError'))
    ) {
      process.stderr.write(`baffle: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`baffle: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`baffle: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await cli(process.argv.slice(2));
