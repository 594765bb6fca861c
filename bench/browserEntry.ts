// The page side of the bench section 'browser' (bench/browser.ts): forward passes per second of a client step on
// onnxruntime-web (perturb the weights, one minibatch loss), and the direction generator's ns per element.
import { unpack } from 'msgpackr';
import { parseClientModel } from '../src/core/model/artifact.ts';
import { directionBackend, perturbInto } from '../src/core/rng/directions.ts';
import { WebOrtSession, type OrtWeb } from '../src/web/ortSession.ts';

interface PageResult {
  passesPerSec?: number;
  passes?: number;
  threads?: number;
  perturbNsPerElement?: number;
  backend?: string;
  error?: string;
}

const w = window as unknown as { __result?: PageResult };

async function main(): Promise<PageResult> {
  const q = new URLSearchParams(location.search);
  const seconds = Number(q.get('seconds') ?? '2');
  if (q.get('what') === 'rng') {
    const n = 1_000_000;
    const weights = new Float32Array(n).fill(0.5);
    const out = new Float32Array(n);
    perturbInto(out, weights, 1e-4, 7, 0); // warm-up (and the WebAssembly module's compilation)
    let k = 1;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) perturbInto(out, weights, 1e-4, 7, k++);
    return { perturbNsPerElement: ((performance.now() - t0) * 1e6) / ((k - 1) * n), backend: directionBackend() };
  }
  const threads = Number(q.get('threads') ?? '1');
  const ort = (await import(/* @vite-ignore */ new URL('/ort/ort.wasm.min.mjs', location.href).href)) as OrtWeb;
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const model = parseClientModel(unpack(new Uint8Array(await (await fetch(`/model/${q.get('model')}`)).arrayBuffer())));
  const session = await WebOrtSession.create(ort, model, 'wasm');
  const batch = 32;
  const size = model.inputDims.reduce((p, d) => p * d, 1);
  const x = new Float32Array(batch * size);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 8) / 16777216;
  const y = Uint8Array.from({ length: batch }, (_, i) => i % model.classes);
  session.setBatch({ x, y, count: batch });
  const weights = new Float32Array(model.params);
  for (let i = 0; i < weights.length; i++) weights[i] = (((i * 40503) % 1000) / 1000 - 0.5) * 0.1;
  const scratch = new Float32Array(model.params);
  for (let k = 0; k < 3; k++) {
    perturbInto(scratch, weights, 1e-4, 1, k);
    await session.loss(scratch);
  }
  let passes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    perturbInto(scratch, weights, 1e-4, 1, passes);
    await session.loss(scratch);
    passes++;
  }
  return { passesPerSec: passes / ((performance.now() - t0) / 1000), passes, threads: ort.env.wasm.numThreads as number, backend: 'wasm' };
}

main().then(
  (r) => (w.__result = r),
  (e: Error) => (w.__result = { error: e.message }),
);
