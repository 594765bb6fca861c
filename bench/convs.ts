// Section 'convs': where a forward pass goes, layer by layer, in onnxruntime (ours) and in PyTorch.
// Both engines' convolutions are timed one by one on the inputs they get in a real pass: ours from
// onnxruntime's own profile of the engine's optimised graph (kernel time per node, the blocked NCHWc
// convolutions as the client runs them), PyTorch's by torch-peer.py's "convs" command (torch.profiler over
// whole forward passes, per layout variant; the variant with the least convolution time counted). The rest of the
// pass (GroupNorm, activations, pooling, loss, reorders) is the profile's other nodes for ours. This is what
// decides the peer ratio: when both engines' convolutions run at the core's FMA rate, only the rest is left
// to win on.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { optimizeWithWeightInputs, gatherInto } from '../src/node/engine/optimized.ts';
import { examplesPerRun } from '../src/node/engine/ort.ts';
import { median, type Table } from './lib.ts';
import { profileKernels } from './ortProfile.ts';
import { ensureTorch, preparePeers, TorchProcess, writePeerSpec, type Prepared } from './peer.ts';

const { onnx } = onnxProto;

export interface ConvRow {
  /** The layer's weight, e.g. "stage1.0.conv2.weight". */
  weight: string;
  /** "16→32 3×3 /1 @32×32" (input channels → output channels, kernel, stride, input size). */
  shape: string;
  mflop: number;
  oursMs: number;
  torchMs: number;
  /** PyTorch's layout variant (the one with the least total convolution time): nchw, channels_last, channels_last_stem. */
  torchLayout: string;
}

export interface ConvsResult {
  model: string;
  label: string;
  rows: ConvRow[];
  /** Ours: kernel ms of everything that is not a convolution, by op type (median pass). */
  oursOtherMs: Record<string, number>;
}

interface Profiled {
  /** Median kernel µs per node over the profiled passes. */
  nodeUs: Map<string, number>;
  opOf: Map<string, string>;
}

/** Profiles `passes` passes, each one run per slice of the batch (as the engine runs it); per-node times are per pass. */
async function profileOurs(bytes: Uint8Array, slices: Record<string, ort.Tensor>[], passes: number): Promise<Profiled> {
  const events = await profileKernels(bytes, 'disabled', async (session) => {
    for (let i = 0; i < passes; i++) for (const feeds of slices) await session.run(feeds, ['loss']);
  });
  const samples = new Map<string, number[]>();
  const opOf = new Map<string, string>();
  for (const e of events) {
    opOf.set(e.node, e.op);
    const list = samples.get(e.node) ?? [];
    list.push(e.us);
    samples.set(e.node, list);
  }
  // The first run pays one-off allocations: drop it. A pass is one run per slice.
  return { nodeUs: new Map([...samples].map(([n, v]) => [n, median(v.slice(1)) * slices.length])), opOf };
}

/** The layout parameter a flat weight index falls in. */
function paramAt(p: Prepared, index: number): string {
  return p.model.layout.params.find((q) => index >= q.offset && index < q.offset + q.size)?.name ?? '?';
}

export async function benchConvs(opts: { models?: readonly string[]; passes?: number; reps?: number; install?: boolean; log?: (s: string) => void } = {}): Promise<ConvsResult[]> {
  const log = opts.log ?? console.log;
  const python = ensureTorch(opts.install ?? false, log);
  const prepared = preparePeers(opts.models ?? ['lenet', 'wrn-gn-1', 'wrn-gn-3']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-convs-spec-'));
  const torch = new TorchProcess(python, true);
  const out: ConvsResult[] = [];
  try {
    await torch.call({ cmd: 'load', spec: writePeerSpec(prepared, dir) });
    for (const p of prepared) {
      const graph = await optimizeWithWeightInputs(p.artifact, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
      const [c, h, w] = p.entry.config.inputShape;
      const n = p.batch.count;
      const feeds: Record<string, ort.Tensor> = {};
      const firstIndex = new Map<string, number>();
      for (const f of graph.feeds) {
        if (f.kind === 'view') {
          feeds[f.name] = new ort.Tensor('float32', p.weights.subarray(f.offset, f.offset + f.size), f.dims);
          firstIndex.set(f.name, f.offset);
        } else {
          const buffer = new Float32Array(f.length);
          gatherInto(buffer, p.weights, f.src, f.dst, f.runs);
          feeds[f.name] = new ort.Tensor('float32', buffer, f.dims);
          firstIndex.set(f.name, f.src[0]!);
        }
      }
      const weightOfNode = new Map<string, string>();
      for (const node of onnx.ModelProto.decode(graph.bytes).graph?.node ?? []) {
        const idx = firstIndex.get(node.input?.[1] ?? '');
        if (node.opType === 'Conv' && idx !== undefined) weightOfNode.set(node.name ?? '', paramAt(p, idx));
      }
      // The batch in the slices the engine runs it in (src/node/engine/ort.ts examplesPerRun).
      const per = examplesPerRun(p.model, n);
      const slices: Record<string, ort.Tensor>[] = [];
      for (let s = 0; s < n; s += per) {
        const m = Math.min(per, n - s);
        slices.push({
          ...feeds,
          x: new ort.Tensor('float32', p.batch.x.subarray(s * c * h * w, (s + m) * c * h * w), [m, c, h, w]),
          y: new ort.Tensor('int64', BigInt64Array.from(p.batch.y.subarray(s, s + m), (v) => BigInt(v)), [m]),
        });
      }
      const passes = opts.passes ?? (p.model.layout.size > 100_000 ? 30 : 150);
      const ours = await profileOurs(graph.bytes, slices, passes);
      const torchConvs = (await torch.call<{ convs: { weight: string; input: number[]; output: number[]; layout: string; ms: number }[] }>({
        cmd: 'convs',
        model: p.entry.id,
        reps: opts.reps ?? (p.model.layout.size > 100_000 ? 20 : 60),
      })).convs;

      const rows: ConvRow[] = [];
      const oursOtherMs: Record<string, number> = {};
      const convNodes = new Set<string>();
      for (const tc of torchConvs) {
        const node = [...weightOfNode].find(([, wname]) => wname === tc.weight)?.[0];
        const param = p.model.layout.params.find((q) => q.name === tc.weight);
        if (!node || !param) throw new Error(`${p.entry.id}: no onnxruntime convolution for ${tc.weight}`);
        convNodes.add(node);
        const [O, I, kh, kw] = param.shape as [number, number, number, number];
        const [, , ih, iw] = tc.input as [number, number, number, number];
        const [, , oh, ow] = tc.output as [number, number, number, number];
        const stride = Math.round(ih / oh);
        rows.push({
          weight: tc.weight,
          shape: `${I}→${O} ${kh}×${kw} /${stride} @${ih}×${iw}`,
          mflop: (2 * n * O * I * kh * kw * oh * ow) / 1e6,
          oursMs: ours.nodeUs.get(node)! / 1000,
          torchMs: tc.ms,
          torchLayout: tc.layout,
        });
      }
      for (const [node, us] of ours.nodeUs) {
        if (convNodes.has(node)) continue;
        const op = ours.opOf.get(node) ?? '?';
        oursOtherMs[op] = (oursOtherMs[op] ?? 0) + us / 1000;
      }
      const conv = (f: (r: ConvRow) => number) => rows.reduce((s, r) => s + f(r), 0);
      log(`  ${p.entry.label}: convolutions ours ${conv((r) => r.oursMs).toFixed(2)} ms vs PyTorch ${conv((r) => r.torchMs).toFixed(2)} ms`);
      out.push({ model: p.entry.id, label: p.entry.label, rows, oursOtherMs });
    }
  } finally {
    await torch.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** MFLOP per ms is GFLOP/s. */
const gflops = (mflop: number, ms: number) => (ms > 0 ? mflop / ms : NaN);

export function convsTable(results: readonly ConvsResult[]): Table | null {
  if (!results.length) return null;
  const rows: (string | number)[][] = [];
  for (const r of results) {
    for (const c of r.rows) {
      rows.push([r.label, c.weight, c.shape, c.mflop, c.oursMs, gflops(c.mflop, c.oursMs), c.torchMs, gflops(c.mflop, c.torchMs), c.torchLayout, `${(c.torchMs / c.oursMs).toFixed(2)}×`]);
    }
    const sum = (f: (c: ConvRow) => number) => r.rows.reduce((s, c) => s + f(c), 0);
    const mflop = sum((c) => c.mflop);
    rows.push([r.label, '**all convolutions**', '', mflop, sum((c) => c.oursMs), gflops(mflop, sum((c) => c.oursMs)), sum((c) => c.torchMs), gflops(mflop, sum((c) => c.torchMs)), '', `**${(sum((c) => c.torchMs) / sum((c) => c.oursMs)).toFixed(2)}×**`]);
    const other = Object.entries(r.oursOtherMs).sort((a, b) => b[1] - a[1]);
    const otherMs = other.reduce((s, [, ms]) => s + ms, 0);
    rows.push([r.label, 'rest of our pass', other.slice(0, 4).map(([op, ms]) => `${op} ${ms.toFixed(2)}`).join(', '), '', otherMs, '', '', '', '', '']);
  }
  return {
    title: 'Convolutions one by one: onnxruntime (ours, optimised graph) vs PyTorch, batch 32, one thread',
    head: ['model', 'layer', 'shape', 'MFLOP', 'ours ms', 'ours GFLOP/s', 'PyTorch ms', 'PyTorch GFLOP/s', 'PyTorch layout', 'PyTorch ms ÷ ours'],
    rows,
    notes: [
      "Ours: onnxruntime's own profile of the engine's optimised graph, the batch in the slices the engine runs it in (median kernel time per node and run × runs per pass, first run dropped); a convolution node may carry a fused activation or residual add. PyTorch: torch.profiler's CPU time of each aten::conv2d inside whole forward passes (mean over the passes), for each layout variant (NCHW, channels_last input, channels_last from the stem on); the variant with the least total convolution time is shown.",
      '"rest of our pass": every other node of our profile (GroupNorm, activations, pooling, loss, reorders), the largest op types named, ms per pass.',
      'Shape: input channels → output channels, kernel, stride, input size.',
    ],
  };
}

if (process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--models');
  const results = await benchConvs({ models: i >= 0 ? argv[i + 1]!.split(',') : undefined, install: argv.includes('--install') });
  const { textTable } = await import('./lib.ts');
  const t = convsTable(results);
  if (t) console.log(textTable(t));
}
