// Experiment suites: a directory of run configurations that answer one question together, run with one
// command, and read back by `baffle report`.
//
//   experiments/suites/<name>/
//     suite.toml      title, description, and [base]: the RunConfig keys every run shares
//     <run-id>.toml   one file per run: the keys in which this run differs from [base]
//     notes.md        optional: how to read the results (copied into the report)
//
// `baffle suite DIR [--out OUT] [--set key=value]... [--only id,...] [--list] [--force] [--quiet]` resolves
// every run's configuration up front (base ← run file ← --set; all problems reported before anything runs),
// then runs them one after the other into OUT/<run-id>/ (OUT defaults to runs/<name>). A run whose directory
// already holds a finished run of the same configuration is skipped, so an interrupted suite resumes where it
// stopped. OUT/suite.json records the suite, the exact command and each run's status.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { ConfigError, isOnnxPath, overridesToLayer, resolveConfig, type RunConfig } from '../core/config/index.ts';
import { UserError } from '../core/errors.ts';
import { loadConfigFile, resolvePaths } from '../node/config.ts';
import { checkOutputDir, writeJson } from '../node/files.ts';
import { checkRunData } from '../node/model/load.ts';

export interface SuiteRunSpec {
  id: string;
  file: string;
  /** The run file's keys (before merging with the base). */
  layer: Record<string, unknown>;
}

export interface Suite {
  name: string;
  dir: string;
  title: string;
  description: string;
  base: Record<string, unknown>;
  runs: SuiteRunSpec[];
  /** notes.md, when the suite has one. */
  notes: string | null;
}

export type RunStatus = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

/** OUT/suite.json. */
export interface SuiteRecord {
  format: 'baffle-suite/1';
  name: string;
  title: string;
  description: string;
  /** The suite's source directory, relative to the working directory when it ran. */
  source: string;
  command: string;
  overrides: Record<string, unknown>;
  notes: string | null;
  /** Each run's status and the command that made it (differs from `command` when run with --only). */
  runs: { id: string; file: string; status: RunStatus; command?: string; error?: string }[];
}

export const SUITE_USAGE = `  baffle suite DIR [--out OUT] [--set key=value]... [--only ID,...] [--list] [--force] [--quiet]
      Run every configuration of an experiment suite (experiments/suites/<name>/: suite.toml with the shared
      [base] keys, one <run-id>.toml per run) into OUT/<run-id>/ (default OUT: runs/<name>). Finished runs are
      skipped, so an interrupted suite resumes. --set overrides every run (e.g. maxSteps for a budget run);
      --list prints the resolved runs and exits.
`;

const SUITE_KEYS = new Set(['title', 'description', 'base']);

export function loadSuite(dir: string): Suite {
  if (!existsSync(dir)) throw new ConfigError(`suite '${dir}': no such directory`);
  if (!statSync(dir).isDirectory()) throw new ConfigError(`suite '${dir}': is a file, not a suite directory`);
  const suiteFile = join(dir, 'suite.toml');
  if (!existsSync(suiteFile)) throw new ConfigError(`suite '${dir}': no suite.toml (see experiments/suites/README.md)`);
  let meta: Record<string, unknown>;
  try {
    meta = parseToml(readFileSync(suiteFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`suite file '${suiteFile}': invalid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const problems: string[] = [];
  for (const k of Object.keys(meta)) {
    if (!SUITE_KEYS.has(k)) problems.push(`suite file '${suiteFile}': unknown key '${k}' (allowed: title, description, [base])`);
  }
  if (typeof meta.title !== 'string' || meta.title.trim() === '') problems.push(`suite file '${suiteFile}': 'title' must be a non-empty string`);
  const base = (meta.base ?? {}) as Record<string, unknown>;
  if (typeof base !== 'object' || Array.isArray(base)) problems.push(`suite file '${suiteFile}': [base] must be a table`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.toml') && f !== 'suite.toml')
    .sort();
  if (files.length === 0) problems.push(`suite '${dir}': no run files (<run-id>.toml)`);
  const runs: SuiteRunSpec[] = [];
  for (const f of files) {
    try {
      runs.push({ id: basename(f, '.toml'), file: join(dir, f), layer: loadConfigFile(join(dir, f)) });
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const notesFile = join(dir, 'notes.md');
  return {
    name: basename(resolve(dir)),
    dir,
    title: (meta.title as string).trim(),
    description: typeof meta.description === 'string' ? meta.description.trim() : '',
    base,
    runs,
    notes: existsSync(notesFile) ? readFileSync(notesFile, 'utf8').trim() : null,
  };
}

/** A path value `run:ID[/FILE]` names another run of the suite (its output directory, or a file in it). */
const RUN_REF = /^run:([^/\\]+)(?:[/\\](.*))?$/;

/** The runs a run's path keys refer to with `run:ID`. */
function runRefs(layers: readonly Record<string, unknown>[]): string[] {
  const refs: string[] = [];
  for (const layer of layers) {
    for (const k of ['init', 'model'] as const) {
      const m = typeof layer[k] === 'string' ? RUN_REF.exec(layer[k] as string) : null;
      if (m) refs.push(m[1]!);
    }
  }
  return refs;
}

/**
 * Every run's full configuration: base ← run file ← overrides, with `run:ID` paths (e.g. init = "run:pretrain",
 * model = "run:pretrain/model.onnx", for fine-tuning what an earlier run of the suite trained) made paths into
 * `outDir`. Runs come in file-name order, except that a run follows the runs it refers to. Throws one
 * ConfigError listing every problem.
 */
export function resolveSuite(suite: Suite, overrides: Record<string, unknown>, outDir: string): { id: string; config: RunConfig }[] {
  const problems: string[] = [];
  const resolved = new Map<string, { id: string; config: RunConfig; after: string[] }>();
  const ids = new Set(suite.runs.map((r) => r.id));
  for (const run of suite.runs) {
    const layers = [suite.base, run.layer, overrides];
    const after = runRefs(layers);
    for (const id of after) if (!ids.has(id) || id === run.id) problems.push(`run '${run.id}': 'run:${id}' names no other run of the suite`);
    const withPaths = layers.map((layer) =>
      Object.fromEntries(
        Object.entries(layer).map(([k, v]) => {
          const m = (k === 'init' || k === 'model') && typeof v === 'string' ? RUN_REF.exec(v) : null;
          return [k, m ? join(outDir, m[1]!, m[2] ?? '') .replace(/[/\\]$/, '') : v];
        }),
      ),
    );
    try {
      const config = resolvePaths(resolveConfig(withPaths, [`${join(suite.dir, 'suite.toml')} [base]`, run.file, '--set']));
      resolved.set(run.id, { id: run.id, config, after });
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems.map((p) => `run '${run.id}': ${p}`));
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // Order: file-name order, each run after the runs it refers to (a cycle is refused).
  const out: { id: string; config: RunConfig }[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, chain: string[]): void => {
    if (state.get(id) === 'done') return;
    if (state.get(id) === 'visiting') throw new ConfigError(`suite '${suite.dir}': runs refer to each other in a circle (${[...chain, id].join(' → ')})`);
    state.set(id, 'visiting');
    const r = resolved.get(id)!;
    for (const dep of r.after) visit(dep, [...chain, id]);
    state.set(id, 'done');
    out.push({ id: r.id, config: r.config });
  };
  for (const run of suite.runs) visit(run.id, []);
  return out;
}

/** Keys whose values differ between the given configurations (the suite's independent variables). */
export function varyingKeys(configs: readonly RunConfig[]): (keyof RunConfig)[] {
  if (configs.length === 0) return [];
  const keys = Object.keys(configs[0]!) as (keyof RunConfig)[];
  return keys.filter((k) => k !== 'workers' && k !== 'dataDir' && configs.some((c) => JSON.stringify(c[k]) !== JSON.stringify(configs[0]![k])));
}

function sameConfig(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const strip = ({ workers: _w, ...rest }: Record<string, unknown>) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

export async function suiteCommand(argv: string[], say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      set: { type: 'string', multiple: true },
      only: { type: 'string' },
      list: { type: 'boolean' },
      force: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(SUITE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new ConfigError('baffle suite: give exactly one suite directory (e.g. experiments/suites/k-sweep)');
  const suite = loadSuite(positionals[0]!);
  const overrides = overridesToLayer(values.set ?? []);
  const outDir = resolve(values.out ?? join('runs', suite.name));
  let runs = resolveSuite(suite, overrides, outDir);
  if (values.only) {
    const wanted = values.only.split(',').map((s) => s.trim());
    const unknown = wanted.filter((w) => !runs.some((r) => r.id === w));
    if (unknown.length > 0) throw new ConfigError(`--only: no run named ${unknown.join(', ')} in ${suite.dir} (runs: ${runs.map((r) => r.id).join(', ')})`);
    runs = runs.filter((r) => wanted.includes(r.id));
  }
  const varying = varyingKeys(resolveSuite(suite, overrides, outDir).map((r) => r.config));
  if (values.list) {
    say(`${suite.title} (${suite.dir}): ${runs.length} runs; they differ in ${varying.join(', ') || 'nothing'}`);
    for (const r of runs) say(`  ${r.id.padEnd(24)} ${varying.map((k) => `${k}=${JSON.stringify(r.config[k])}`).join(' ')}`);
    return 0;
  }
  // Everything the runs read that exists before the suite starts is checked now (a run:ID path is made by
  // an earlier run of the suite, so it is checked when that run has finished).
  checkOutputDir(outDir, `suite: --out ${outDir}`);
  const missing: string[] = [];
  const made = (p: string) => resolve(p).startsWith(outDir + sep);
  for (const r of runs) {
    for (const [k, p] of [['model', isOnnxPath(r.config.model) ? r.config.model : null], ['init', r.config.init]] as const) {
      if (p !== null && !made(p) && !existsSync(p)) missing.push(`run '${r.id}': ${k} '${p}' does not exist`);
    }
    try {
      checkRunData(r.config);
    } catch (e) {
      if (e instanceof UserError) missing.push(`run '${r.id}': ${e.message}`);
      else throw e;
    }
  }
  if (missing.length > 0) throw new ConfigError(missing);
  // Refuse to clobber a finished run of another configuration before anything starts.
  for (const r of runs) {
    const cfgFile = join(outDir, r.id, 'config.json');
    if (!values.force && existsSync(join(outDir, r.id, 'summary.json')) && existsSync(cfgFile)) {
      const old = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
      if (!sameConfig(old, r.config as unknown as Record<string, unknown>)) {
        throw new ConfigError(
          `${join(outDir, r.id)} holds a finished run of a different configuration; use another --out, or --force to replace it`,
        );
      }
    }
  }
  const record: SuiteRecord = {
    format: 'baffle-suite/1',
    name: suite.name,
    title: suite.title,
    description: suite.description,
    source: relative(process.cwd(), resolve(suite.dir)) || '.',
    command: ['baffle', 'suite', ...argv].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' '),
    overrides,
    notes: suite.notes,
    runs: runs.map((r) => ({ id: r.id, file: relative(process.cwd(), resolve(suite.runs.find((s) => s.id === r.id)!.file)), status: 'pending' as RunStatus })),
  };
  // Keep the statuses of runs of an earlier invocation that this one does not touch (--only).
  const recordFile = join(outDir, 'suite.json');
  if (existsSync(recordFile)) {
    const old = JSON.parse(readFileSync(recordFile, 'utf8')) as SuiteRecord;
    for (const r of old.runs) {
      const mine = record.runs.find((x) => x.id === r.id);
      if (!mine) record.runs.push(r);
      else if (r.command) mine.command = r.command; // a skipped run keeps the command that made it
    }
    if (values.only) record.command = old.command;
  }
  writeJson(recordFile, record);
  const { runSimulation } = await import('../app/run.ts');
  let failed = 0;
  let internal: unknown = null;
  for (const [i, r] of runs.entries()) {
    const entry = record.runs.find((x) => x.id === r.id)!;
    const dir = join(outDir, r.id);
    const same =
      !values.force &&
      existsSync(join(dir, 'config.json')) &&
      sameConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>, r.config as unknown as Record<string, unknown>);
    const finished = same && existsSync(join(dir, 'summary.json'));
    if (finished) {
      entry.status = 'skipped';
      say(`[${i + 1}/${runs.length}] ${r.id}: already finished in ${dir}, skipped`);
      writeJson(recordFile, record);
      continue;
    }
    entry.status = 'running';
    entry.command = ['baffle', 'suite', ...argv].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ');
    writeJson(recordFile, record);
    say(`[${i + 1}/${runs.length}] ${r.id}: ${varying.map((k) => `${k}=${JSON.stringify(r.config[k])}`).join(' ')}`);
    const t0 = performance.now();
    try {
      // An interrupted run of the same configuration continues from its checkpoint; anything else starts afresh.
      const s = await runSimulation({ config: r.config, outDir: dir, quiet: values.quiet ?? false, resume: same, force: !same });
      entry.status = 'done';
      delete entry.error;
      say(`[${i + 1}/${runs.length}] ${r.id}: test accuracy ${(100 * s.testAccuracy).toFixed(2)}% after ${s.step} steps (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    } catch (e) {
      failed++;
      if (!(e instanceof UserError)) internal ??= e;
      entry.status = 'failed';
      entry.error = e instanceof Error ? e.message : String(e);
      say(`[${i + 1}/${runs.length}] ${r.id}: FAILED: ${entry.error}`);
    }
    writeJson(recordFile, record);
  }
  say(`suite ${suite.name}: ${runs.length - failed} of ${runs.length} runs finished; results in ${outDir} (baffle report ${relative(process.cwd(), outDir) || '.'})`);
  if (failed === 0) return 0;
  const first = record.runs.find((x) => x.status === 'failed')!;
  const message = `suite ${suite.name}: ${failed} of ${runs.length} runs failed (first: ${first.id}: ${first.error})`;
  if (internal) throw new Error(message, { cause: internal });
  throw new UserError(message, { hint: 'fix it and run the same command again: finished runs are skipped' });
}
