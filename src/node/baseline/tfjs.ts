// Loads TensorFlow.js (core + one backend + the gradient registry) for the backprop baseline.
//
// Three wrinkles of tfjs 4.22 under Node, all handled here:
//  1. The CommonJS bundles Node loads (`main`) carry no gradient functions; those only exist in the package's
//     ES-module tree (`dist/register_all_gradients.js`), whose relative imports omit `.js` and name
//     directories, which Node's ESM resolver refuses. A tiny resolve hook retries such imports inside
//     node_modules/@tensorflow/ with `.js` / `/index.js`. The gradients register into tfjs' global registry,
//     which the CommonJS engine shares.
//  2. The wasm backend has no `Conv2DBackpropFilter` kernel (the weight gradient of a 2-D convolution): we
//     register one built on its forward Conv2D (see registerWasmConv2dBackpropFilter).
//  3. The wasm backend's MaxPoolGrad is wrong for windows whose values are all negative (tfjs 4.22): replaced.
//     Its native Conv2DBackpropInput is correct but slow: stride-1 cases go to the forward Conv2D instead.
// test/baseline.test.ts checks the gradients against finite differences and against the cpu backend.
//
// Everything else uses stock kernels. Call `loadTfjs()` once per thread before any other use.
import { register } from 'node:module';
import type * as TF from '@tensorflow/tfjs-core';

export type TfjsBackend = 'wasm' | 'cpu';
export type Tf = typeof TF;

/**
 * The backend the baseline uses unless told otherwise: wasm, measured ≈ 50× faster than cpu forward and
 * ≈ 500× faster forward+backward for LeNet at batch 32 on this machine kind (docs/baseline.md).
 * BAFFLE_TFJS_BACKEND=cpu overrides.
 */
export const DEFAULT_TFJS_BACKEND: TfjsBackend = 'wasm';

export function tfjsBackendFromEnv(): TfjsBackend {
  const v = process.env.BAFFLE_TFJS_BACKEND;
  if (v === undefined || v === '') return DEFAULT_TFJS_BACKEND;
  if (v !== 'wasm' && v !== 'cpu') throw new Error(`BAFFLE_TFJS_BACKEND must be 'wasm' or 'cpu', got ${JSON.stringify(v)}`);
  return v;
}

const RESOLVE_HOOK = `
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const parent = context.parentURL ?? '';
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    if (!relative || !parent.includes('/node_modules/@tensorflow/')) throw err;
    for (const suffix of ['.js', '/index.js']) {
      try {
        return await next(specifier + suffix, context);
      } catch {}
    }
    throw err;
  }
}`;

let hookRegistered = false;
let loaded: Promise<Tf> | null = null;
let loadedBackend: TfjsBackend | null = null;

/** tfjs with gradients and the requested backend active (idempotent; one backend per thread). */
export function loadTfjs(backend: TfjsBackend = tfjsBackendFromEnv()): Promise<Tf> {
  if (loaded) {
    if (loadedBackend !== backend) {
      return loaded.then(async (tf) => {
        await tf.setBackend(backend);
        loadedBackend = backend;
        return tf;
      });
    }
    return loaded;
  }
  loadedBackend = backend;
  loaded = (async () => {
    if (!hookRegistered) {
      register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`);
      hookRegistered = true;
    }
    const tf = (await import('@tensorflow/tfjs-core')) as Tf;
    await import('@tensorflow/tfjs-backend-cpu');
    await import('@tensorflow/tfjs-backend-wasm');
    // Side-effect import from the package's ES-module tree (see 1. above).
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    registerWasmConv2dBackpropFilter(tf);
    registerWasmMaxPoolGrad(tf);
    registerWasmConv2dBackpropInput(tf);
    tf.env().set('PROD', true); // skip debug-mode checks (NaN scans) on every kernel
    if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend '${backend}' failed to initialise`);
    await tf.ready();
    return tf;
  })();
  return loaded;
}

interface WasmTensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}
interface WasmBackendLike {
  wasm: { cwrap(name: string, ret: null, args: string[]): (...a: number[]) => void; HEAPU8: Uint8Array };
  dataIdMap: { get(id: object): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): WasmTensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** A live float32 view of a tensor on the wasm heap (re-take it after anything that may grow the heap). */
function heapView(b: WasmBackendLike, t: WasmTensorInfo): Float32Array {
  return new Float32Array(b.wasm.HEAPU8.buffer, b.dataIdMap.get(t.dataId).memoryOffset, sizeOf(t.shape));
}

/** A zero-filled float32 output (the backend's makeOutput() hands out uninitialised malloc'd memory). */
function zeroedOutput(b: WasmBackendLike, shape: number[]): WasmTensorInfo {
  const out = b.makeOutput(shape, 'float32');
  heapView(b, out).fill(0);
  return out;
}

/**
 * The weight gradient of a 2-D convolution for the wasm backend, which has none. It is itself a convolution,
 * run on the backend's fast (XNNPACK) forward Conv2D: with x zero-padded to x',
 *   dW[kh, kw, ci, co] = Σ_{n, oh, ow} x'[n, oh·s + kh, ow·s + kw, ci] · dy[n, oh, ow, co],
 * i.e. a stride-1 convolution of x' seen as [ci, H', W', n] (examples as channels) with dy seen as a
 * [OH, OW, n, co] filter dilated by the stride s, cropped to kH × kW. (The backend's native
 * Conv3DBackpropFilterV2 with depth 1 would also do, but it is ≈10× slower and wrong for strides > 1.)
 */
function registerWasmConv2dBackpropFilter(tf: Tf): void {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as WasmBackendLike;
      const { x, dy } = inputs as unknown as { x: WasmTensorInfo; dy: WasmTensorInfo };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: 'valid' | 'same' | number;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
        filterShape: [number, number, number, number];
      };
      if (a.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      const temps: WasmTensorInfo[] = [];
      const run = (kernel: string, ins: Record<string, WasmTensorInfo>, at: Record<string, unknown>): WasmTensorInfo => {
        const k = tf.getKernel(kernel, 'wasm');
        if (!k) throw new Error(`wasm kernel ${kernel} missing`);
        const out = k.kernelFunc({ inputs: ins as never, backend, attrs: at as never }) as unknown as WasmTensorInfo;
        temps.push(out);
        return out;
      };
      const { top, bottom, left, right } = info.padInfo;
      const padded =
        top || bottom || left || right
          ? run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 })
          : x;
      const xt = run('Transpose', { x: padded }, { perm: [3, 1, 2, 0] });
      const filter = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
      let out = run(
        'Conv2D',
        { x: xt, filter },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth] },
      );
      const [ci, oh, ow, co] = out.shape as [number, number, number, number];
      if (oh !== info.filterHeight || ow !== info.filterWidth) {
        out = run('Slice', { x: out }, { begin: [0, 0, 0, 0], size: [ci, info.filterHeight, info.filterWidth, co] });
      }
      const dw = tf.getKernel('Transpose', 'wasm')!.kernelFunc({
        inputs: { x: out } as never,
        backend,
        attrs: { perm: [1, 2, 0, 3] } as never,
      }) as unknown as WasmTensorInfo;
      for (const t of temps) if (t !== dw) b.disposeData(t.dataId, true);
      return dw as unknown as TF.TensorInfo;
    },
  });
}

/**
 * The input gradient of a stride-1 convolution for the wasm backend, on its fast forward Conv2D: the full
 * correlation of dy with the kernel flipped in space and transposed in channels,
 *   dx = conv2d(dy, W[kH−1−a, kW−1−b, co, ci], pads kH−1−top / kH−1−bottom, kW−1−left / kW−1−right).
 * The stock native kernel gives the same numbers ≈7× slower; strided convolutions still go to it.
 */
function registerWasmConv2dBackpropInput(tf: Tf): void {
  const existing = tf.getKernel('Conv2DBackpropInput', 'wasm') as (TF.KernelConfig & { baffle?: boolean }) | undefined;
  if (!existing || existing.baffle) return;
  const stock = existing.kernelFunc;
  tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  const config = {
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    baffle: true,
    setupFunc: existing.setupFunc,
    kernelFunc: (args: { inputs: unknown; backend: unknown; attrs?: unknown }) => {
      const { inputs, backend, attrs } = args;
      const b = backend as WasmBackendLike;
      const { dy, filter } = inputs as { dy: WasmTensorInfo; filter: WasmTensorInfo };
      const a = attrs as {
        strides: number | [number, number];
        pad: 'valid' | 'same' | number;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
        inputShape: [number, number, number, number];
      };
      const info = tf.backend_util.computeConv2DInfo(
        a.inputShape,
        filter.shape as [number, number, number, number],
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      const { top, bottom, left, right } = info.padInfo;
      const kh = info.filterHeight;
      const kw = info.filterWidth;
      const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
      if (a.dataFormat === 'NCHW' || info.strideHeight !== 1 || info.strideWidth !== 1 || pads.some((p) => p < 0)) {
        return stock(args as never);
      }
      const k = (name: string) => {
        const kernel = tf.getKernel(name, 'wasm');
        if (!kernel) throw new Error(`wasm kernel ${name} missing`);
        return kernel.kernelFunc;
      };
      const flipped = k('Reverse')({ inputs: { x: filter } as never, backend: backend as never, attrs: { dims: [0, 1] } as never }) as unknown as WasmTensorInfo;
      const wf = k('Transpose')({ inputs: { x: flipped } as never, backend: backend as never, attrs: { perm: [0, 1, 3, 2] } as never }) as unknown as WasmTensorInfo;
      b.disposeData(flipped.dataId, true);
      const [pt, pb, pl, pr] = pads as [number, number, number, number];
      const pad = pt === pb && pl === pr && pt === pl ? pt : ([[0, 0], [pt, pb], [pl, pr], [0, 0]] as const);
      const dx = k('Conv2D')({
        inputs: { x: dy, filter: wf } as never,
        backend: backend as never,
        attrs: { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] } as never,
      }) as unknown as WasmTensorInfo;
      b.disposeData(wf.dataId, true);
      return dx as unknown as TF.TensorInfo;
    },
  };
  tf.registerKernel(config as unknown as TF.KernelConfig);
}

/**
 * MaxPool's input gradient for the wasm backend, in TypeScript on the wasm heap. The stock native kernel
 * drops the gradient of windows whose values are all negative (it seems to start its running max at 0), which
 * Hardswish activations produce all the time. Ties go to the first maximum in row-major window order, as in
 * the cpu backend and PyTorch.
 */
function registerWasmMaxPoolGrad(tf: Tf): void {
  const existing = tf.getKernel('MaxPoolGrad', 'wasm') as (TF.KernelConfig & { baffle?: boolean }) | undefined;
  if (existing?.baffle) return;
  if (existing) tf.unregisterKernel('MaxPoolGrad', 'wasm');
  const config = {
    kernelName: 'MaxPoolGrad',
    backendName: 'wasm',
    baffle: true,
    kernelFunc: ({ inputs, backend, attrs }: { inputs: unknown; backend: unknown; attrs?: unknown }) => {
      const b = backend as WasmBackendLike;
      const { dy, input } = inputs as { dy: WasmTensorInfo; input: WasmTensorInfo };
      const a = attrs as {
        filterSize: number | [number, number];
        strides: number | [number, number];
        pad: 'valid' | 'same' | number;
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
      };
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        a.filterSize,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const dx = zeroedOutput(b, input.shape);
      const xv = heapView(b, input);
      const dyv = heapView(b, dy);
      const dxv = heapView(b, dx);
      const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
      const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      for (let n = 0; n < N; n++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            for (let c = 0; c < C; c++) {
              let best = -Infinity;
              let at = -1;
              for (let i = 0; i < kh; i++) {
                const h = oh * sh - top + i;
                if (h < 0 || h >= H) continue;
                for (let j = 0; j < kw; j++) {
                  const w = ow * sw - left + j;
                  if (w < 0 || w >= W) continue;
                  const idx = ((n * H + h) * W + w) * C + c;
                  const v = xv[idx]!;
                  if (v > best || at < 0) {
                    best = v;
                    at = idx;
                  }
                }
              }
              if (at >= 0) dxv[at] += dyv[((n * OH + oh) * OW + ow) * C + c]!;
            }
          }
        }
      }
      return dx as unknown as TF.TensorInfo;
    },
  };
  tf.registerKernel(config as unknown as TF.KernelConfig);
}
