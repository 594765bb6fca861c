// `baffle suite` and `baffle report` end to end on tiny runs: the suite runs, the report has the expected
// tables and rows (numbers read back from the run directories), and every PNG plot exists and is a real image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_CONFIG } from '../src/core/config/index.ts';
import type { MemoryReport } from '../src/report/memory.ts';
import type { RunConfig } from '../src/core/config/index.ts';
import type { RunData, SuiteData } from '../src/report/data.ts';
import { loadSuite, suiteCommand } from '../src/report/suite.ts';
import type { MetricsRecord } from '../src/core/fl/federation.ts';

/** A finished run with one metrics line at step 10, for the table and reading tests. */
function fakeRun(id: string, config: Partial<RunConfig>, accuracy: number, more: { metric?: Partial<MetricsRecord>; run?: Partial<RunData> } = {}): RunData {
  return {
    id,
    dir: `/runs/${id}`,
    config: { ...DEFAULT_CONFIG, hidden: [128], ...config },
    metrics: [
      { epoch: 1, step: 10, testAccuracy: accuracy, testLoss: 1, trainLoss: 1, forwardPasses: 1, uplinkBytes: 1, downlinkBytes: 1, directions: 0, lr: 0.01, wallMs: 1000, ...more.metric },
    ],
    finished: true,
    status: 'done',
    params: null,
    frozenParams: null,
    privacy: null,
    ...more.run,
  };
}

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;
const baffle = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });

/** PNG width and height from the IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function writeSuite(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'suite.toml'),
    [
      'title = "Tiny K sweep"',
      'description = "An MLP on mnist-10k for a few steps."',
      '[base]',
      'model = "mlp"',
      'hidden = [8]',
      'clients = 3',
      'K = 4',
      'maxSteps = 4',
      'evalEvery = 2',
      'emaEvery = "step"',
      'seed = 7',
      'workers = 2',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'k4.toml'), '# K = 4\n');
  writeFileSync(join(dir, 'k12.toml'), 'K = 12\n');
  writeFileSync(join(dir, 'bp.toml'), 'algorithm = "bp"\n');
  writeFileSync(join(dir, 'notes.md'), 'What to look for: a tiny sweep.\n');
}

test('suite files are validated up front, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-suite-'));
  writeSuite(dir);
  writeFileSync(join(dir, 'bad.toml'), 'Kk = 5\n');
  const suite = loadSuite(dir);
  assert.deepEqual(suite.runs.map((r) => r.id), ['bad', 'bp', 'k12', 'k4']);
  await assert.rejects(
    suiteCommand([dir, '--out', join(dir, 'out')], () => {}),
    (e: unknown) => e instanceof ConfigError && /run 'bad'.*unknown key 'Kk'.*did you mean 'K'/.test(e.message),
  );
  assert.equal(existsSync(join(dir, 'out')), false, 'nothing runs when a run file is bad');
});

test('baffle suite + baffle report: tables with every run, BAFFLE beside backprop, and the PNG plots', async () => {
  const root = mkdtempSync(join(tmpdir(), 'baffle-report-'));
  const suiteDir = join(root, 'tiny');
  writeSuite(suiteDir);
  const out = join(root, 'tiny-runs');
  const lines: string[] = [];
  assert.equal(await suiteCommand([suiteDir, '--out', out, '--quiet', '--set', 'testSubset=2004'], (l) => lines.push(l)), 0, lines.join('\n'));
  const record = JSON.parse(readFileSync(join(out, 'suite.json'), 'utf8'));
  assert.deepEqual(record.runs.map((r: { status: string }) => r.status), ['done', 'done', 'done']);
  assert.match(record.command, /baffle suite .*tiny --out .* --set testSubset=2004/);
  // Resuming: finished runs are skipped.
  const again: string[] = [];
  assert.equal(await suiteCommand([suiteDir, '--out', out, '--quiet', '--set', 'testSubset=2004'], (l) => again.push(l)), 0);
  assert.equal(again.filter((l) => /skipped/.test(l)).length, 3);

  // A memory measurement next to it (the format `baffle memory` writes).
  const memDir = join(root, 'memory');
  mkdirSync(memDir);
  const sample = (mode: string, peak: number, engine: number | null) => ({
    mode, rssStart: 50e6, rssLoaded: 60e6, rssEnd: 70e6, rssPeak: peak, engineBytes: engine === null ? null : 1e5,
    enginePeakBytes: engine, wasmHeapBytes: engine === null ? null : 2 ** 24, stepMs: 5, forwardPasses: mode === 'bp-tfjs' ? 1 : 5,
  });
  const mem: MemoryReport = {
    format: 'baffle-memory/1', command: 'baffle memory --set hidden=[8]', model: 'mlp [8]', params: 8290, dataset: 'mnist-10k',
    batch: 32, K: 4, scheme: 'forward', steps: 1, tfjsBackend: 'wasm', node: '20', cpus: 2,
    samples: [sample('idle', 80e6, null), sample('baffle-ort', 100e6, null), sample('baffle-tfjs', 150e6, 1e6), sample('bp-tfjs', 170e6, 3e6)] as MemoryReport['samples'],
  };
  writeFileSync(join(memDir, 'memory.json'), JSON.stringify(mem));

  const reportDir = join(root, 'report');
  const r = baffle(['report', out, memDir, '--out', reportDir, '--title', 'Tiny results']);
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(reportDir, 'report.md'), 'utf8');
  assert.match(md, /^# Tiny results/);
  assert.match(md, /## Summary/);
  assert.match(md, /## Tiny K sweep/);
  assert.match(md, /## Client memory/);
  assert.match(md, /Made by:\*\* `baffle suite/);
  assert.match(md, /What to look for: a tiny sweep\./);
  assert.match(md, /\| bp-tfjs \| 1 \| 162\.1 \| 85\.8 \| 57\.2 \| 104\.9 \| 2\.9 \|/, "memory row: MiB");
  // BAFFLE's memory as a fraction of backprop's: (100 − 80) / (170 − 80) over idle; growth (100 − 60) / (170 − 60).
  assert.match(md, /needs 22% of the backprop client's memory over an idle process/);
  assert.match(md, /grows during the steps by 36% of what/);
  assert.match(md, /\| \[mlp \[8\]\]\(#client-memory-mlp-8-baffle-against-backprop\) \| 32 \| 4 \| 19\.1 \| 85\.8 \| \*\*22%\*\* \| 38\.1 \| 104\.9 \| \*\*36%\*\* \| 1\.0 \/ 2\.9 = \*\*33%\*\* \|/, 'memory summary row');

  // One table row per run, with the numbers of its last metrics record.
  const lastOf = (id: string) => {
    const rows = readFileSync(join(out, id, 'metrics.jsonl'), 'utf8').trim().split('\n');
    return JSON.parse(rows[rows.length - 1]!) as { step: number; testAccuracy: number };
  };
  const bp = lastOf('bp');
  for (const id of ['k4', 'k12', 'bp']) {
    const m = lastOf(id);
    const row = md.split('\n').find((l) => l.startsWith(`| [${id}](`));
    assert.ok(row, `a table row for ${id}`);
    const cells = row!.split('|').map((c) => c.trim());
    assert.equal(cells[2], id === 'bp' ? 'backprop' : 'BAFFLE');
    assert.equal(cells[4], String(m.step));
    assert.equal(cells[5], `${(100 * m.testAccuracy).toFixed(2)}%`);
    if (id !== 'bp') {
      assert.equal(cells[7], `${(100 * bp.testAccuracy).toFixed(2)}% (bp)`, 'the backprop baseline beside the BAFFLE number');
      assert.equal(cells[8], (100 * (bp.testAccuracy - m.testAccuracy)).toFixed(2).replace('-', '−'));
    }
  }
  assert.match(md, /By K on mnist-10k: k4 \(K = 4\) [\d.]+%, k12 \(K = 12\) [\d.]+%\./);

  for (const name of ['accuracy', 'accuracy-vs-K', 'baffle-vs-backprop', 'bytes', 'forward-passes', 'wall-time']) {
    const file = join(reportDir, `tiny-runs-${name}.png`);
    assert.ok(existsSync(file), `${file} exists`);
    assert.ok(md.includes(`](tiny-runs-${name}.png)`), `report links ${name}`);
    const { width, height } = pngSize(file);
    assert.ok(width >= 1000 && height >= 300, `${name}: ${width}×${height}`);
  }
  assert.ok(pngSize(join(reportDir, 'memory.png')).width >= 1000);

  // --md elsewhere keeps the image links relative; --archive copies the records (not the weights).
  const r2 = baffle(['report', out, '--archive', join(root, 'archive'), '--out', join(root, 'docs', 'img'), '--md', join(root, 'docs', 'results.md')]);
  assert.equal(r2.status, 0, r2.stderr);
  const md2 = readFileSync(join(root, 'docs', 'results.md'), 'utf8');
  assert.match(md2, /\]\(img\/tiny-runs-accuracy\.png\)/);
  assert.ok(existsSync(join(root, 'archive', 'tiny-runs', 'k4', 'metrics.jsonl')));
  assert.equal(existsSync(join(root, 'archive', 'tiny-runs', 'k4', 'weights.bin')), false);
  assert.match(md2, /\[k4\]\(\.\.\/archive\/tiny-runs\/k4\)/, 'rows link the archived run directories');
});

test('suite reading of an ablation: each variant against the base run, BAFFLE and its own backprop baseline', async () => {
  const { suiteReading } = await import('../src/report/markdown.ts');
  const run = (id: string, over: Partial<RunConfig>, accuracy: number) =>
    fakeRun(id, { model: 'lenet', ...over }, accuracy, { metric: { forwardPasses: 10 * 10 * 101, uplinkBytes: 4200 } });
  const suite: SuiteData = {
    name: 'ablation', dir: '/runs', title: 'Ablation', description: '', command: null, commands: [], source: null, overrides: {}, notes: null,
    runs: [
      run('base', {}, 0.4),
      run('base-bp', { algorithm: 'bp' }, 0.8),
      run('relu', { activation: 'relu' }, 0.35),
      run('relu-bp', { algorithm: 'bp', activation: 'relu' }, 0.82),
      run('central', { scheme: 'central', K: 50 }, 0.38),
    ],
  };
  const text = suiteReading(suite).join(' ');
  assert.match(text, /Against the base run \(40\.00%; backprop 80\.00%\)/);
  assert.match(text, /relu −5\.00 \(its backprop baseline \+2\.00\)/);
  assert.match(text, /central −2\.00 \(same backprop baseline\)/);
});

test('fine-tuning table: each fine-tuning run beside its backprop counterpart and the from-scratch run', async () => {
  const { fineTuneTable } = await import('../src/report/markdown.ts');
  const run = (id: string, over: Partial<RunConfig>, accuracy: number, params: number, frozen: number) =>
    fakeRun(id, over, accuracy, { run: { params, frozenParams: frozen } });
  const init = '/runs/pretrain';
  const runs = [
    run('scratch', {}, 0.8, 132_490, 0),
    run('scratch-bp', { algorithm: 'bp' }, 0.95, 132_490, 0),
    run('head', { init, trainable: ['last:1'] }, 0.85, 1290, 131_200),
    run('head-bp', { init, trainable: ['last:1'], algorithm: 'bp' }, 0.875, 1290, 131_200),
  ];
  const suite = { name: 'ft', dir: '/runs', title: 't', description: '', command: null, commands: [], source: null, overrides: {}, notes: null, runs };
  const table = fineTuneTable(suite, { mdDir: '/runs', outDir: '/runs/report', command: 'baffle report' });
  assert.ok(table);
  const rows = table.split('\n').slice(2);
  assert.equal(rows.length, 1, 'only the run that starts from a pretrained model');
  assert.match(rows[0]!, /\[head\]/);
  assert.match(rows[0]!, /init pretrain, trainable \["last:1"\], K = 100 \| 1,290 of 132,490 \| 10 \| 85\.00% \| 87\.50% \(head-bp\) \| 2\.50 \| 80\.00% \(scratch\) \| \+5\.00 \|/);
  assert.equal(fineTuneTable({ ...suite, runs: runs.slice(0, 2) }, { mdDir: '/runs', outDir: '/runs/report', command: 'x' }), null);
});

test('robustness table: one row per aggregator and algorithm, one column per attack, changes from the clean run', async () => {
  const { robustnessTable, robustnessReading, attackFractionPoints } = await import('../src/report/robustness.ts');
  const run = (id: string, over: Partial<RunConfig>, accuracy: number) => fakeRun(id, { seedPolicy: 'shared', ...over }, accuracy);
  const flip = (f: number): Partial<RunConfig> => ({ attack: 'sign-flip', attackFraction: f });
  const runs = [
    run('median-30', { aggregator: 'median', ...flip(0.3) }, 0.86),
    run('mean-0', { aggregator: 'mean' }, 0.9),
    run('mean-30', { aggregator: 'mean', ...flip(0.3) }, 0.5),
    run('median-0', { aggregator: 'median' }, 0.88),
    run('bp-mean-0', { aggregator: 'mean', algorithm: 'bp' }, 0.95),
    run('bp-mean-30', { aggregator: 'mean', algorithm: 'bp', ...flip(0.3) }, 0.6),
    run('mean-10', { aggregator: 'mean', ...flip(0.1) }, 0.8),
  ];
  const suite: SuiteData = { name: 'byz', dir: '/runs', title: 'Byz', description: '', command: null, commands: [], source: null, overrides: {}, notes: null, runs };
  const table = robustnessTable(suite, (r) => r.dir)!;
  const lines = table.split('\n');
  assert.equal(lines[0], '| aggregator | algorithm | clean | 10% sign-flip | 30% sign-flip |');
  assert.equal(lines[2], '| mean | BAFFLE | [90.00%](/runs/mean-0) | [80.00%](/runs/mean-10) (−10.00) | [50.00%](/runs/mean-30) (−40.00) |');
  assert.equal(lines[3], '| mean | backprop | [95.00%](/runs/bp-mean-0) | — | [60.00%](/runs/bp-mean-30) (−35.00) |');
  assert.equal(lines[4], '| median | BAFFLE | [88.00%](/runs/median-0) | — | [86.00%](/runs/median-30) (−2.00) |');
  assert.equal(lines.length, 5);
  const reading = robustnessReading(suite).join(' ');
  assert.match(reading, /At 30% sign-flip, BAFFLE with median reached 86\.00% \(−2\.00 from its clean run\) against the mean's 50\.00% \(−40\.00\)/);
  const points = attackFractionPoints(suite)!;
  assert.equal(points.length, runs.length);
  assert.deepEqual(points.find((p) => p.run === 'bp-mean-30'), { aggregator: 'mean', algorithm: 'backprop', fraction: 0.3, accuracy: 0.6, run: 'bp-mean-30' });
  // A suite without attacks has no such table.
  assert.equal(robustnessTable({ ...suite, runs: runs.filter((r) => r.config.attack === 'none') }, (r) => r.dir), null);
});

test('privacy table: a row per target ε (∞ last), BAFFLE beside DP backprop with ε spent, noise multiplier and drop', async () => {
  const { privacyTable } = await import('../src/report/robustness.ts');
  const run = (id: string, over: Partial<RunConfig>, accuracy: number, privacy: RunData['privacy']) =>
    fakeRun(id, { seedPolicy: 'shared', ...over }, accuracy, { run: { privacy } });
  const runs = [
    run('eps8', { dpClip: 2, targetEpsilon: 8 }, 0.85, { epsilon: 7.999, delta: 1e-5, noiseMultiplier: 0.7 }),
    run('no-dp', {}, 0.9, null),
    run('eps1', { dpClip: 2, targetEpsilon: 1 }, 0.7, { epsilon: 0.9995, delta: 1e-5, noiseMultiplier: 3.25 }),
    run('bp-eps1', { dpClip: 0.2, targetEpsilon: 1, algorithm: 'bp' }, 0.4, { epsilon: 1, delta: 1e-5, noiseMultiplier: 3.25 }),
    run('bp-no-dp', { algorithm: 'bp' }, 0.95, null),
  ];
  const suite: SuiteData = { name: 'dp', dir: '/runs', title: 'DP', description: '', command: null, commands: [], source: null, overrides: {}, notes: null, runs };
  const lines = privacyTable(suite, (r) => r.dir)!.split('\n');
  assert.equal(lines.length, 5);
  assert.equal(lines[2], '| 1 (δ = 1e−5) | [70.00%](/runs/eps1) | 1.00 | 3.250 | −20.00 | [40.00%](/runs/bp-eps1) | 1.00 | 3.250 | −55.00 |');
  assert.equal(lines[3], '| 8 (δ = 1e−5) | [85.00%](/runs/eps8) | 8.00 | 0.700 | −5.00 | — | — | — | — |');
  assert.equal(lines[4], '| ∞ | [90.00%](/runs/no-dp) | ∞ | 0 | — | [95.00%](/runs/bp-no-dp) | ∞ | 0 | — |');
  assert.equal(privacyTable({ ...suite, runs: runs.filter((r) => r.config.dpClip === null) }, (r) => r.dir), null);
});
