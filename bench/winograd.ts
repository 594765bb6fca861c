// What a forward engine other than onnxruntime's CPU provider could gain: a measurement, not a feature.
// Compiles bench/winograd/winograd.cc (a single-threaded AVX-512 Winograd F(2×2, 3×3) convolution, checked
// against a direct convolution) with the machine's g++, and times it against onnxruntime's blocked
// convolution on WRN-10-2's stride-1 3×3 layers at batch 32, both alone on one core with warm caches
// (onnxruntime: its own profile of a one-convolution graph, the Conv kernel's median time).
//
//   node --import tsx bench/winograd.ts        (needs g++ and an AVX-512 CPU; not part of npm run bench)
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, textTable } from './lib.ts';
import { profileKernels } from './ortProfile.ts';

const { onnx } = onnxProto;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const N = 32;
/** WRN-10-2's stride-1 3×3 convolutions: input channels, output channels, size. */
const LAYERS: [number, number, number][] = [
  [16, 32, 32],
  [32, 32, 32],
  [64, 64, 16],
  [128, 128, 8],
];

function convModel(c: number, k: number, h: number): Uint8Array {
  const w = new Float32Array(k * c * 9).map((_, i) => Math.sin(i) * 0.1);
  const F = onnx.TensorProto.DataType.FLOAT;
  const graph = onnx.GraphProto.create({
    name: 'conv',
    node: [
      {
        opType: 'Conv',
        input: ['x', 'w'],
        output: ['y'],
        attribute: [
          { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [3, 3] },
          { name: 'pads', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1, 1, 1] },
        ],
      },
    ],
    initializer: [{ name: 'w', dataType: F, dims: [k, c, 3, 3], rawData: new Uint8Array(w.buffer) }],
    input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [N, c, h, h].map((d) => ({ dimValue: d })) } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 10, opsetImport: [{ domain: '', version: 21 }], graph })).finish();
}

async function ortConvMs(c: number, k: number, h: number): Promise<number> {
  const x = new ort.Tensor('float32', new Float32Array(N * c * h * h).map((_, i) => Math.cos(i)), [N, c, h, h]);
  const events = await profileKernels(convModel(c, k, h), 'all', async (s) => {
    for (let i = 0; i < 33; i++) await s.run({ x });
  });
  return median(events.filter((e) => e.op === 'Conv').map((e) => e.us).slice(3)) / 1000;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-winograd-'));
try {
  const exe = path.join(dir, 'winograd');
  const cc = spawnSync('g++', ['-O3', '-march=native', '-std=c++17', '-o', exe, path.join(HERE, 'winograd', 'winograd.cc')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`g++ failed (needs g++ and an AVX-512 CPU):\n${cc.stderr}`);
  const rows: (string | number)[][] = [];
  let ours = 0;
  let theirs = 0;
  for (const [c, k, h] of LAYERS) {
    const r = spawnSync(exe, [String(N), String(c), String(k), String(h), '30'], { encoding: 'utf8' });
    const m = /^ok maxrel=(\S+) ms=(\S+)/.exec(r.stdout);
    if (!m) throw new Error(`winograd ${c}→${k} @${h}: ${r.stdout}${r.stderr}`);
    const wino = Number(m[2]);
    const ortMs = await ortConvMs(c, k, h);
    const mflop = (2 * N * k * c * 9 * h * h) / 1e6;
    ours += wino;
    theirs += ortMs;
    rows.push([`${c}→${k} 3×3 @${h}×${h}`, mflop, ortMs, mflop / ortMs, wino, mflop / wino, `${(ortMs / wino).toFixed(2)}×`, m[1]!]);
  }
  rows.push(['all four', '', theirs, '', ours, '', `${(theirs / ours).toFixed(2)}×`, '']);
  console.log(
    textTable({
      title: `Winograd F(2×2, 3×3) prototype vs onnxruntime's blocked convolution, batch ${N}, one thread, warm caches`,
      head: ['layer', 'MFLOP (direct)', 'onnxruntime ms', 'GFLOP/s', 'Winograd ms', 'direct-equivalent GFLOP/s', 'speed-up', 'max rel. error'],
      rows,
      notes: ['Winograd times include the filter transform (the weights change every BAFFLE pass). Error: against a double-precision direct convolution, relative to the largest output.'],
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
