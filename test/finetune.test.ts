// Models as values, end to end: an imported ONNX model trains with forward passes only; a run's model.onnx
// gives the run's accuracy in a plain onnxruntime session; the import path trains what the zoo path trains;
// fine-tuning starts from an earlier run's weights; the backprop baseline trains a subset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { resolveConfig } from '../src/core/config/index.ts';
import { evaluationSplit } from '../src/core/fl/setup.ts';
import { exportModel } from '../src/core/model/onnx/export.ts';
import { TrainableMap } from '../src/core/model/trainableMap.ts';
import { simulate } from '../src/app/simulation.ts';
import { loadRunData, loadRunModel } from '../src/node/model/load.ts';
import { torchMlp } from './onnxFixtures.ts';

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;
const baffle = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'baffle-finetune-'));
const jsonLines = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

/** Accuracy of `file` on the run's test split, in a plain InferenceSession (the file's own input and output). */
async function plainAccuracy(file: string, runDir: string): Promise<number> {
  const config = resolveConfig([JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'))]);
  const { artifact } = await loadRunModel(config);
  const test = evaluationSplit(loadRunData(config, artifact).test, config.testSubset);
  const session = await ort.InferenceSession.create(readFileSync(file));
  const size = test.x.length / test.count;
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', test.x, [test.count, ...artifact.inputDims]) });
  const logits = out[session.outputNames[0]!]!.data as Float32Array;
  const classes = logits.length / test.count;
  assert.equal(size, artifact.inputDims.reduce((p, d) => p * d, 1));
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    if (best === test.y[i]) correct++;
  }
  await session.release();
  return correct / test.count;
}

test('an imported ONNX model (torch-style MLP on 28×28 input) trains its head with forward passes only', async () => {
  const model = join(dir, 'mlp.onnx');
  writeFileSync(model, torchMlp({ hidden: 32 }));
  const out = join(dir, 'imported');
  const r = baffle(['run', '--set', `model=${model}`, '--set', 'trainable=last:1', '--set', 'K=20', '--set', 'clients=4', '--set', 'maxSteps=40',
    '--set', 'evalEvery=20', '--set', 'testSubset=400', '--set', 'lr=0.05', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /mlp\.onnx: 330 trainable parameters \(2 tensors\), 25,120 frozen/, 'trainable and frozen counts are printed');
  assert.match(r.stdout, /data: mnist-10k, .* 1×28×28/, 'the data are prepared at the model’s 28×28 input');
  const m = jsonLines(join(out, 'metrics.jsonl'));
  assert.equal(m.length, 2);
  assert.ok(m[1]!.testLoss < 0.9 * m[0]!.testLoss && m[1]!.testAccuracy > 0.3, `test loss ${m[0]!.testLoss} → ${m[1]!.testLoss}, accuracy ${m[1]!.testAccuracy}`);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.params, 330);
  assert.equal(summary.frozenParams, 25_120);
});

test("a run's model.onnx gives the run's test accuracy in a plain InferenceSession, and in baffle eval", async () => {
  const zoo = join(dir, 'zoo');
  const r = baffle(['run', '--set', 'hidden=[8]', '--set', 'K=10', '--set', 'clients=3', '--set', 'maxSteps=12', '--set', 'evalEvery=12',
    '--set', 'testSubset=500', '--out', zoo, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  for (const run of [zoo, join(dir, 'imported')]) {
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    assert.equal(await plainAccuracy(join(run, 'model.onnx'), run), summary.testAccuracy, run);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    const e = baffle(['eval', join(run, 'model.onnx'), '--set', `testSubset=${config.testSubset}`, '--json']);
    assert.equal(e.status, 0, e.stderr);
    const ev = JSON.parse(e.stdout);
    assert.equal(ev.accuracy, summary.testAccuracy);
    assert.ok(Math.abs(ev.loss - summary.testLoss) < 1e-5, `${ev.loss} vs ${summary.testLoss}`);
  }
  // export from the checkpoint writes the same model the finished run wrote.
  const exported = join(dir, 'exported.onnx');
  const x = baffle(['export', zoo, '--out', exported]);
  assert.equal(x.status, 0, x.stderr);
  assert.equal(await plainAccuracy(exported, zoo), JSON.parse(readFileSync(join(zoo, 'summary.json'), 'utf8')).testAccuracy);
});

test('the import path trains what the zoo path trains, bit for bit; init starts from an earlier run', async () => {
  const base = { hidden: [8], K: 8, clients: 3, maxSteps: 6, evalEvery: 3, testSubset: 300, seed: 4, trainable: ['last:1'] };
  const zooConfig = resolveConfig([base]);
  const zooModel = await loadRunModel(zooConfig);
  const dataset = loadRunData(zooConfig, zooModel.artifact);
  // The zoo model at its seed initialisation, as an ONNX file: importing it must give the same run.
  const file = join(dir, 'seeded.onnx');
  writeFileSync(file, exportModel(zooModel.artifact, zooModel.artifact.initial));
  const { hidden: _zooOnly, ...rest } = base;
  const imported = resolveConfig([{ ...rest, model: file }]);
  const a = await simulate(zooConfig, dataset, 2, {}, null, zooModel);
  const b = await simulate(imported, dataset, 2);
  assert.deepEqual(b.artifact.layout, a.artifact.layout);
  assert.equal(b.artifact.frozen, a.artifact.frozen);
  assert.deepEqual(b.metrics.map(({ wallMs: _w, ...m }) => m), a.metrics.map(({ wallMs: _w, ...m }) => m));
  assert.deepEqual(b.evalWeights, a.evalWeights);

  // init = a finished run: every parameter starts from that run's model.onnx.
  const run = join(dir, 'zoo');
  const fromRun = await loadRunModel(resolveConfig([{ hidden: [8], init: run }]));
  const trained = readFileSync(join(run, 'weights.bin'));
  assert.deepEqual(Buffer.from(fromRun.artifact.initial.buffer), trained, 'the trained weights are the starting point');
  await assert.rejects(loadRunModel(resolveConfig([{ hidden: [16], init: run }])), /parameter 'fc1.weight' has shape \[8,1024\], the model's is \[16,1024\]/);
});

test('the backprop baseline trains only the trainable subset (trainable = last:1)', async () => {
  const config = resolveConfig([{ algorithm: 'bp', hidden: [16], clients: 4, maxSteps: 10, evalEvery: 10, testSubset: 500, trainable: 'last:1', lr: 0.05, seed: 2 }]);
  const model = await loadRunModel(config);
  const map = new TrainableMap(model.zoo!.layout, model.artifact.layout);
  assert.equal(map.size, 16 * 10 + 10);
  assert.equal(map.identity, false);
  // expand/gather place the head at its offset in the full vector and nowhere else.
  const full = new Float32Array(model.zoo!.layout.size);
  map.expand(Float32Array.from({ length: map.size }, (_, i) => i + 1), full);
  assert.equal(full.filter((v) => v !== 0).length, map.size);
  assert.equal(full[model.zoo!.layout.params.find((p) => p.name === 'fc_out.weight')!.offset], 1);
  const back = new Float32Array(map.size);
  map.gather(full, back);
  assert.deepEqual(Array.from(back), Array.from({ length: map.size }, (_, i) => i + 1));

  const dataset = loadRunData(config, model.artifact);
  const r = await simulate(config, dataset, 2, {}, null, model);
  assert.equal(r.evalWeights.length, map.size);
  assert.ok(r.metrics[0]!.testAccuracy > 0.3, `head-only backprop accuracy ${r.metrics[0]!.testAccuracy}`);
  // The head moved (the frozen layer is a constant of the graph: it cannot).
  assert.notDeepEqual(r.evalWeights, model.artifact.initial);
});
