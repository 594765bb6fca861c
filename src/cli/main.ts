// The `baffle` command line, and its error contract (docs/cli.md): a command that fails prints
// `baffle: <what is wrong>` on one line (and `  hint: <what to do>` when a fix is known) on stderr and exits
// with a documented code — 2 bad input, 3 refused by the server, 4 gave up, 1 internal error. A stack trace
// appears only for an internal error run with --debug or BAFFLE_DEBUG=1.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatConfigHelp, formatServerConfigHelp, overridesToLayer, resolveConfig } from '../core/config/index.ts';
import { ExitCode, UserError } from '../core/errors.ts';
import { configFromArgs, loadConfigFile } from '../node/config.ts';
import { REPORT_USAGE } from '../report/usage.ts';
import { UsageError } from './usage.ts';

// Each command's modules load when it runs (and for its usage text), so that a refusal costs no start-up time
// for the engines, the network stack or the plotting libraries of the other commands.

const RUN_USAGE = `  baffle run [--config FILE] [--set key=value]... [--out DIR] [--force] [--quiet]
      Simulate a federation of clients that train a model with forward passes only (BAFFLE).
      With no options: MLP on mnist-10k, 10 IID clients, FedSGD, K=100, 20 epochs. --set model=FILE.onnx
      trains your own ONNX model (see docs/models.md). A --out directory that holds a run is refused
      unless --force.
  baffle run --resume DIR [--set workers=N] [--quiet]
      Continue a stopped or killed run from its last completed step (DIR/checkpoint); a finished run
      says so and exits 0.
`;

const usageText = async () => `baffle — backpropagation-free federated learning (forward passes only)

Usage:
${(await Promise.all(Object.values(COMMANDS).map((c) => c.usage()))).join('')}  baffle help        This text.

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
  usage(): Promise<string>;
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
    const { resumableRun } = await import('../app/runDir.ts');
    const configPath = resumableRun(outDir, 'run');
    const config = resolveConfig([loadConfigFile(configPath), overrides], [configPath, '--set']);
    const { runSimulation } = await import('../app/run.ts');
    await runSimulation({ config, outDir, quiet: values.quiet ?? false, resume: true });
    return 0;
  }
  const config = configFromArgs(values.config, values.set ?? []);
  const { defaultRunDir } = await import('../app/runDir.ts');
  const outDir = resolve(values.out ?? defaultRunDir(config));
  const { runSimulation } = await import('../app/run.ts');
  await runSimulation({ config, outDir, quiet: values.quiet ?? false, force: values.force ?? false });
  return 0;
}

const KEYS_USAGE = '  baffle keys        List every configuration key with its meaning and default.\n';

const COMMANDS: Record<string, Command> = {
  run: { usage: async () => RUN_USAGE, run: (args) => runCommand(args) },
  serve: {
    usage: async () => (await import('./serve.ts')).SERVE_USAGE,
    run: async (args) => {
      const options = (await import('./serve.ts')).parseServeArgs(args);
      await (await import('../app/serve.ts')).runServer(options);
      return 0;
    },
  },
  join: { usage: async () => (await import('./join.ts')).JOIN_USAGE, run: async (args, say) => (await import('./join.ts')).joinCommand(args, say) },
  tokens: { usage: async () => (await import('./tokens.ts')).TOKENS_USAGE, run: async (args, say) => (await import('./tokens.ts')).tokensCommand(args, say) },
  inspect: { usage: async () => (await import('./modelCommands.ts')).INSPECT_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).inspectCommand(args, say) },
  export: { usage: async () => (await import('./modelCommands.ts')).EXPORT_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).exportCommand(args, say) },
  eval: { usage: async () => (await import('./modelCommands.ts')).EVAL_USAGE, run: async (args, say) => (await import('./modelCommands.ts')).evalCommand(args, say) },
  suite: { usage: async () => (await import('../report/suite.ts')).SUITE_USAGE, run: async (args, say) => (await import('../report/suite.ts')).suiteCommand(args, say) },
  report: { usage: async () => REPORT_USAGE, run: async (args, say) => (await import('./report.ts')).reportCommand(args, say) },
  memory: { usage: async () => (await import('./memory.ts')).MEMORY_USAGE, run: async (args) => (await import('./memory.ts')).memoryCommand(args) },
  keys: {
    usage: async () => KEYS_USAGE,
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
    process.stdout.write(await usageText());
    if (command === undefined) throw new UsageError('no command given', 'the commands are listed above (`baffle help`)');
    return 0;
  }
  const say: Say = (line) => process.stdout.write(`${line}\n`);
  const c = COMMANDS[command];
  if (!c) throw new UsageError(`unknown command '${command}'`, `the commands are ${Object.keys(COMMANDS).join(', ')}, help`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(await c.usage());
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
  // An error thrown outside the command's promise chain (an 'error' event nobody listens to, a rejected promise
  // nobody awaits) ends the command under the same contract, not with Node's own stack trace.
  const escaped = (err: unknown) => {
    process.exitCode = reportError(err, args[0], debug);
    process.exit();
  };
  process.on('uncaughtException', escaped);
  process.on('unhandledRejection', escaped);
  try {
    process.exitCode = await main(args);
  } catch (err) {
    process.exitCode = reportError(err, args[0], debug);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await cli(process.argv.slice(2));
