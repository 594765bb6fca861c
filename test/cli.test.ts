// The `baffle` command as a user runs it: refusals before any work, and the run directory it writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;

function baffle(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
}

test('bad keys, values and combinations are refused before any work, with the key named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-cli-'));
  const out = join(dir, 'run');
  const r = baffle(['run', '--out', out, '--set', 'K=0', '--set', 'lrr=0.1', '--set', 'norm=batchnorm', '--set', 'dataset=cifar10']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /K: got 0/);
  assert.match(r.stderr, /unknown key 'lrr'.*did you mean 'lr'/);
  assert.match(r.stderr, /BatchNorm/i);
  assert.match(r.stderr, /dataDir/);
  assert.equal(existsSync(out), false, 'nothing is written for a refused configuration');

  const cfg = join(dir, 'bad.toml');
  writeFileSync(cfg, 'model = "lenet"\nepochs = "many"\n');
  const r2 = baffle(['run', '--config', cfg, '--out', out]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /epochs/);
  assert.match(r2.stderr, /bad\.toml/);

  const r3 = baffle(['run', '--set', 'dataset=mnist', '--set', `dataDir=${join(dir, 'nowhere')}`, '--out', out]);
  assert.equal(r3.status, 2, r3.stderr);
  assert.match(r3.stderr, /nowhere/);
});

test('a short run writes config.json, metrics.jsonl, summary.json and the weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-cli-'));
  const out = join(dir, 'run');
  const cfg = join(dir, 'tiny.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [8], K: 5, clients: 3, maxSteps: 4, evalEvery: 2, testSubset: 200 }));
  const r = baffle(['run', '--config', cfg, '--set', 'seed=5', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /step +2 +test acc/);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.seed, 5);
  assert.equal(config.K, 5);
  assert.equal(config.model, 'mlp');
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  for (const key of ['epoch', 'step', 'testAccuracy', 'testLoss', 'trainLoss', 'forwardPasses', 'uplinkBytes', 'downlinkBytes', 'wallMs']) {
    assert.equal(typeof lines[1][key], 'number', key);
  }
  assert.deepEqual(lines.map((l) => l.step), [2, 4]);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.step, 4);
  assert.equal(summary.params, 32 * 32 * 8 + 8 + 8 * 10 + 10);
  assert.equal(summary.bestTestAccuracy, Math.max(...lines.map((l) => l.testAccuracy)));
  const manifest = JSON.parse(readFileSync(join(out, 'weights.json'), 'utf8'));
  const bin = readFileSync(join(out, 'weights.bin'));
  assert.equal(bin.length, manifest.params * 4);
  assert.equal(manifest.layout[0].name.length > 0, true);
});

test('a run killed with SIGKILL resumes from its last completed step to the same metrics and weights', async () => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'baffle-resume-'));
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [32], K: 30, clients: 4, maxSteps: 30, evalEvery: 5, testSubset: 200, seed: 9 }));
  const straight = join(dir, 'straight');
  assert.equal(baffle(['run', '--config', cfg, '--out', straight, '--quiet']).status, 0);

  const killed = join(dir, 'killed');
  const child = spawn(process.execPath, [BIN, 'run', '--config', cfg, '--out', killed, '--quiet'], { stdio: 'ignore' });
  const manifest = join(killed, 'checkpoint', 'checkpoint.json');
  const stepOf = () => (existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).step : 0);
  const deadline = Date.now() + 60_000;
  while (stepOf() < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const at = stepOf();
  assert.ok(at >= 7 && at < 30, `killed after step ${at}, mid-run`);
  assert.equal(existsSync(join(killed, 'summary.json')), false);

  // As a checkpoint written before these keys existed: they take their defaults (what that run did).
  const ck = JSON.parse(readFileSync(manifest, 'utf8'));
  for (const k of ['aggregator', 'dpClip', 'perturbation', 'secureAggregation']) {
    assert.ok(k in ck.config, `${k} is a key of the checkpoint's config`);
    delete ck.config[k];
  }
  writeFileSync(manifest, JSON.stringify(ck));
  const r = baffle(['run', '--resume', killed, '--set', 'workers=1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`resuming after step ${at}`));
  const metrics = (d: string) =>
    readFileSync(join(d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { wallMs: _w, ...rest } = JSON.parse(l);
        return rest;
      });
  assert.deepEqual(metrics(killed), metrics(straight));
  assert.deepEqual(readFileSync(join(killed, 'weights.bin')), readFileSync(join(straight, 'weights.bin')));

  const refused = baffle(['run', '--resume', killed, '--set', 'K=5']);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /only workers may be changed, not K/);

  // A finished run resumed says so and trains nothing; a fresh run into it is refused; --force replaces it.
  const weights = readFileSync(join(straight, 'weights.bin'));
  const again = baffle(['run', '--resume', straight]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /is finished \(step 30 of 30, .*\): not training again/);
  assert.deepEqual(readFileSync(join(straight, 'weights.bin')), weights);
  const over = baffle(['run', '--config', cfg, '--set', 'maxSteps=5', '--out', straight, '--quiet']);
  assert.equal(over.status, 2);
  assert.match(over.stderr, /already holds a run/);
  assert.equal(JSON.parse(readFileSync(join(straight, 'summary.json'), 'utf8')).step, 30, 'the finished run is untouched');
  const forced = baffle(['run', '--config', cfg, '--set', 'maxSteps=5', '--out', straight, '--quiet', '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(JSON.parse(readFileSync(join(straight, 'summary.json'), 'utf8')).step, 5);
});
