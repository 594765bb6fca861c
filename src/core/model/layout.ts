// Ops implementation #1: records the parameter layout (declaration order, one flat vector) by running the
// model definition on shapes only.

import type { ConvOptions, ModelDef, Ops } from './ops.ts';
import * as S from './shapes.ts';
import type { Activation, InitSpec, ParamLayout, ParamSpec } from './types.ts';

/** An activation for the recorder is just its per-example shape. */
export interface ShapeOnly {
  shape: readonly number[];
}

export class LayoutRecorder implements Ops<ShapeOnly, ParamSpec> {
  readonly params: ParamSpec[] = [];
  /** Elements of the largest tensor an op produced (per example). */
  largest = 0;
  private offset = 0;
  private readonly names = new Set<string>();

  private out(shape: readonly number[]): ShapeOnly {
    this.largest = Math.max(this.largest, S.sizeOf(shape));
    return { shape };
  }

  shape(x: ShapeOnly): readonly number[] {
    return x.shape;
  }
  param(name: string, shape: readonly number[], init: InitSpec): ParamSpec {
    if (this.names.has(name)) throw new Error(`duplicate parameter name "${name}"`);
    if (!shape.every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`parameter "${name}": bad shape [${shape}]`);
    this.names.add(name);
    const size = S.sizeOf(shape);
    const spec: ParamSpec = { name, shape: [...shape], offset: this.offset, size, init };
    this.offset += size;
    this.params.push(spec);
    return spec;
  }
  conv2d(x: ShapeOnly, w: ParamSpec, b: ParamSpec | null, opts: ConvOptions): ShapeOnly {
    return this.out(S.conv2dShape(x.shape, w.shape, b?.shape ?? null, opts));
  }
  linear(x: ShapeOnly, w: ParamSpec, b: ParamSpec | null): ShapeOnly {
    return this.out(S.linearShape(x.shape, w.shape, b?.shape ?? null));
  }
  groupNorm(x: ShapeOnly, groups: number): ShapeOnly {
    return this.out(S.groupNormShape(x.shape, groups));
  }
  act(x: ShapeOnly, _kind: Activation): ShapeOnly {
    return x;
  }
  maxPool(x: ShapeOnly, k: number, stride: number): ShapeOnly {
    return this.out(S.maxPoolShape(x.shape, k, stride));
  }
  globalAvgPool(x: ShapeOnly): ShapeOnly {
    return this.out(S.globalAvgPoolShape(x.shape));
  }
  flatten(x: ShapeOnly): ShapeOnly {
    return this.out(S.flattenShape(x.shape));
  }
  add(a: ShapeOnly, b: ShapeOnly): ShapeOnly {
    return this.out(S.addShape(a.shape, b.shape));
  }

  layout(): ParamLayout {
    return { params: this.params.map((p) => ({ ...p, shape: [...p.shape] })), size: this.offset };
  }
}

export interface Traced {
  layout: ParamLayout;
  /** Per-example output shape of the definition (e.g. [classes]). */
  outputShape: readonly number[];
  /** Elements of the largest intermediate tensor, per example. */
  largestActivation: number;
}

/** Runs `def` on shapes only: the parameter layout and the output shape. */
export function traceLayout(def: ModelDef, inputShape: readonly number[]): Traced {
  const rec = new LayoutRecorder();
  const out = def(rec, { shape: [...inputShape] });
  return { layout: rec.layout(), outputShape: out.shape, largestActivation: Math.max(rec.largest, S.sizeOf(inputShape)) };
}

/** A view of one parameter's values inside the flat weight vector. */
export function paramView(weights: Float32Array, spec: ParamSpec): Float32Array {
  return weights.subarray(spec.offset, spec.offset + spec.size);
}
