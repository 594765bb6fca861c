// The `baffle` command line, and its error contract (docs/cli.md): a command that fails prints
// `baffle: <what is wrong>` on one line (and `  hint: <what to do>` when a fix is known) on stderr and exits
// with a documented code — 2 bad input, 3 refused by the server, 4 gave up, 1 internal error. A stack trace
// appears only for an internal error run with --debug or BAFFLE_DEBUG=1.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatConfigHelp, formatServerConfigHelp, overridesToLayer, resolveConfig } from '../core/config/index.ts';
import { ExitCode, UserError } from '../core/errors.ts';
import { configFromArgs, loadConfigFile } from '../node/config.ts';
import { defaultRunDir, resumableRun } from '../app/runDir.ts';
import { runSimulation } from '../app/run.ts';
import { JOIN_USAGE, joinCommand } from './join.ts';
import { parseServeArgs, SERVE_USAGE } from './serve.ts';
import { TOKENS_USAGE, tokensCommand } from './tokens.ts';
import { MEMORY_USAGE } from './memory.ts';
import { EVAL_USAGE, EXPORT_USAGE, INSPECT_USAGE } from './modelCommands.ts';
import { REPORT_USAGE } from '../report/usage.ts';
import { SUITE_USAGE } from '../report/suite.ts';
import { UsageError } from './usage.ts';

const RUN_USAGE = `  baffle run [--config FILE] [--set key=value]... [--out DIR] [--force] [--quiet]
      Simulate a federation of clients that train a model with forward passes only (BAFFLE).
      With no options: MLP on mnist-10k, 10 IID clients, FedSGD, K=100, 20 epochs. --set model=FILE.onnx
      trains your own ONNX model (see docs/models.md). A --out directory that holds a run is refused
      unless --force.
  baffle run --resume DIR [--set workers=N] [--quiet]
      Continue a stopped or killed run from its last completed step (DIR/checkpoint); a finished run
      says so and exits 0.
`;

const USAGE = `baffle — backpropagation-free federated learning (forward passes only)

Usage:
${RUN_USAGE}${SERVE_USAGE}${JOIN_USAGE}${TOKENS_USAGE}${INSPECT_USAGE}${EXPORT_USAGE}${EVAL_USAGE}${SUITE_USAGE}${REPORT_USAGE}${MEMORY_USAGE}  baffle keys        List every configuration key with its meaning and default.
  baffle help        This text.

Options of run:
  --config FILE      JSON or TOML configuration file (keys as listed by \`baffle keys\`).
  --set key=value    Override one key (repeatable); value is JSON when it parses, else a string.
  --out DIR          Run directory (default: runs/<timestamp>-<dataset>-<model>).
  --force            Replace the run already in --out DIR.
  --quiet            No progress bar and no per-epoch lines.
  --resume DIR       Continue the run in DIR with its own config.json (only \`workers\` may be changed).

Every command: --debug (or BAFFLE_DEBUG=1) prints the stack trace of an internal error.
Exit codes: 0 done, 1 internal error, 2 bad input, 3 refused by the server, 4 gave up, 130/143 interrupted.
`;

type Say = (line: string) => void;

interface Command {
  usage: string;
  run(args: string[], say: Say): Promise<number>;
}

async function runCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      quiet: { type: 'boolean' },
      force: { type: 'boolean' },
      resume: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.resume !== undefined) {
    if (values.config || values.out || values.force) throw new UsageError('run --resume DIR continues the run in DIR with its own configuration: drop --config, --out and --force');
    const outDir = resolve(values.resume);
    const overrides = overridesToLayer(values.set ?? []);
    const changed = Object.keys(overrides).filter((k) => k !== 'workers');
    if (changed.length > 0) throw new ConfigError(`--resume: only workers may be changed, not ${changed.join(', ')}`);
    const configPath = resumableRun(outDir, 'run');
    const config = resolveConfig([loadConfigFile(configPath), overrides], [configPath, '--set']);
    await runSimulation({ config, outDir, quiet: values.quiet ?? false, resume: true });
    return 0;
  }
  const config = configFromArgs(values.config, values.set ?? []);
  const outDir = resolve(values.out ?? defaultRunDir(config));
  await runSimulation({ config, outDir, quiet: values.quiet ?? false, force: values.force ?? false });
  return 0;
}

const COMMANDS: Record<string, Command> = {
  run: { usage: RUN_USAGE, run: (args) => runCommand(args) },
  serve: {
    usage: SERVE_USAGE,
    run: async (args) => {
      const options = parseServeArgs(args);
      await (await import('../app/serve.ts')).runServer(options);
      return 0;
    },
  },
  join: { usage: JOIN_USAGE, run: (args, say) => joinCommand(args, say) },
  tokens: { usage: TOKENS_USAGE, run: async (args, say) => tokensCommand(args, say) },
  inspect: { usage: INSPECT_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).inspectCommand(args, say) },
  export: { usage: EXPORT_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).exportCommand(args, say) },
  eval: { usage: EVAL_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).evalCommand(args, say) },
  suite: { usage: SUITE_USAGE, run: async (args, say) => (await import('../report/suite.ts')).suiteCommand(args, say) },
  report: { usage: REPORT_USAGE, run: async (args, say) => (await import('./report.ts')).reportCommand(args, say) },
  memory: { usage: MEMORY_USAGE, run: async (args) => (await import('./memory.ts')).memoryCommand(args) },
  keys: {
    usage: '  baffle keys\n      List every configuration key with its meaning and default.\n',
    run: async (args, say) => {
      if (args.length > 0) throw new UsageError(`keys takes no arguments (got ${args.join(' ')})`);
      say(`${formatConfigHelp()}\n\nServer keys (baffle serve only):\n${formatServerConfigHelp()}`);
      return 0;
    },
  },
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? ExitCode.input : 0;
  }
  const say: Say = (line) => process.stdout.write(`${line}\n`);
  const c = COMMANDS[command];
  if (!c) throw new UsageError(`unknown command '${command}'`, `the commands are ${Object.keys(COMMANDS).join(', ')}, help`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(c.usage);
    return 0;
  }
  return c.run(rest, say);
}

/** The one place errors become output and exit codes. */
export function reportError(err: unknown, command: string | undefined, debug: boolean): number {
  const line = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();
  if (err instanceof UserError) {
    const message = err instanceof ConfigError && err.problems.length > 1
      ? `invalid configuration (${err.problems.length} problems): ${err.problems.join('; ')}`
      : line(err.message);
    process.stderr.write(`baffle: ${message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${line(err.hint)}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`baffle: ${command ? `${command}: ` : ''}${line(err.message)}\n`);
    process.stderr.write(`  hint: \`baffle ${command ?? 'help'} --help\` lists the options\n`);
    return ExitCode.input;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`baffle: internal error: ${line(message)}\n`);
  if (debug) process.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
  else process.stderr.write('  hint: run again with --debug (or BAFFLE_DEBUG=1) for the stack trace, and report it\n');
  return ExitCode.internal;
}

export async function cli(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug') || process.env.BAFFLE_DEBUG === '1';
  const args = argv.filter((a) => a !== '--debug');
  try {
    process.exitCode = await main(args);
  } catch (err) {
    process.exitCode = reportError(err, args[0], debug);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await cli(process.argv.slice(2));
