// `baffle memory`: each client mode measured in a fresh process, written as memory.json + memory.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MemoryReport } from '../src/report/memory.ts';

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;

test('baffle memory measures a BAFFLE and a backprop client step in fresh processes', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'baffle-memory-')), 'mem');
  const r = spawnSync(
    process.execPath,
    [BIN, 'memory', '--set', 'hidden=[8]', '--set', 'K=6', '--modes', 'idle,baffle-ort,bp-tfjs', '--steps', '1', '--out', out],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(join(out, 'memory.json'), 'utf8')) as MemoryReport;
  assert.equal(report.format, 'baffle-memory/1');
  assert.equal(report.params, 32 * 32 * 8 + 8 + 8 * 10 + 10);
  assert.deepEqual(report.samples.map((s) => s.mode), ['idle', 'baffle-ort', 'bp-tfjs']);
  const [idle, ort, bp] = report.samples as [MemoryReport['samples'][0], MemoryReport['samples'][0], MemoryReport['samples'][0]];
  for (const s of report.samples) assert.ok(s.rssPeak >= s.rssStart && s.rssStart > 10 * 2 ** 20, `${s.mode}: rss ${s.rssStart} → ${s.rssPeak}`);
  assert.ok(ort.rssPeak > idle.rssPeak && bp.rssPeak > idle.rssPeak, 'loading an engine costs memory');
  assert.equal(ort.forwardPasses, 7, 'K + 1 forward passes');
  assert.equal(bp.forwardPasses, 1);
  assert.ok(bp.enginePeakBytes !== null && bp.enginePeakBytes > 0 && bp.wasmHeapBytes !== null);
  assert.equal(ort.enginePeakBytes, null, 'ONNX Runtime exposes no tensor-memory counter');
  const md = readFileSync(join(out, 'memory.md'), 'utf8');
  assert.match(md, /\| bp-tfjs \| 1 \| [\d.]+ \|/);
  assert.match(md, /Made by: `baffle memory --set hidden=\[8\]/);
});
