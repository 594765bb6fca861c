// Bilinear resize of 8-bit grayscale images, bit-exact with Pillow's `Image.resize(size, Image.BILINEAR)`
// (Pillow >= 7, "resample with support", src/libImaging/Resample.c):
//
//  * Separable, two passes: horizontal first (into an 8-bit intermediate image), then vertical.
//  * Per axis, scale = inSize / outSize; the filter is stretched by filterscale = max(scale, 1), so
//    downscaling antialiases (support = 1 * filterscale) and upscaling interpolates (support = 1).
//  * Output pixel i has its center at (i + 0.5) * scale in input coordinates; the taps are the input
//    pixels j in [trunc(center - support + 0.5), trunc(center + support + 0.5)) clipped to the image,
//    weighted by tri((j - center + 0.5) / filterscale) and normalized to sum 1.
//  * The weights are converted to fixed point with PRECISION_BITS = 32 - 8 - 2 = 22 bits (rounded half away
//    from zero); each output is (2^21 + sum(pixel * weight)) >> 22, clipped to [0, 255].
//  * A pass whose input and output sizes are equal is skipped (as Pillow does for a full-image box).
//
// Coefficients are computed once per (inSize, outSize) pair; `makeResizer` returns a function that resizes
// many images of the same shape without allocating.

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

/** Fixed-point coefficients for one axis. */
interface AxisCoeffs {
  inSize: number;
  outSize: number;
  /** Taps per output pixel (slots beyond a pixel's own tap count are zero). */
  ksize: number;
  /** First input index for each output pixel. */
  start: Int32Array;
  /** Number of taps actually used for each output pixel. */
  count: Int32Array;
  /** outSize * ksize fixed-point weights. */
  k: Int32Array;
}

function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

const BILINEAR_SUPPORT = 1;

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter over the full input range. */
function precomputeCoeffs(inSize: number, outSize: number): AxisCoeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = BILINEAR_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bilinearFilter((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { inSize, outSize, ksize, start, count, k };
}

/** Pillow's clip8: arithmetic shift right by PRECISION_BITS, clamped to a byte. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes one image: reads srcW*srcH bytes of `src` starting at `srcOffset` (row-major), writes dstW*dstH
 * bytes into `dst` starting at `dstOffset`.
 */
export type Resizer = (src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number) => void;

/** Precomputes the coefficients for resizing srcW×srcH images to dstW×dstH, and returns the resize function. */
export function makeResizer(srcW: number, srcH: number, dstW: number, dstH: number): Resizer {
  for (const [what, v] of [['srcW', srcW], ['srcH', srcH], ['dstW', dstW], ['dstH', dstH]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`resize: ${what} must be a positive integer, got ${v}`);
  }
  const needH = srcW !== dstW;
  const needV = srcH !== dstH;
  const vert = precomputeCoeffs(srcH, dstH);
  // Rows of the source the vertical pass reads (all of them in practice, kept for fidelity with Pillow).
  const yFirst = needV ? vert.start[0]! : 0;
  const yLast = needV ? vert.start[dstH - 1]! + vert.count[dstH - 1]! : srcH;
  const tmpRows = yLast - yFirst;
  const horiz = needH ? precomputeCoeffs(srcW, dstW) : null;
  const tmpW = needH ? dstW : srcW;
  const tmp = new Uint8Array(tmpW * tmpRows);

  return (src, srcOffset, dst, dstOffset) => {
    // Horizontal pass: source rows yFirst..yLast-1 -> tmp (tmpRows × tmpW).
    let inp: Uint8Array;
    let inpOff: number;
    if (horiz) {
      const { ksize, start, count, k } = horiz;
      for (let y = 0; y < tmpRows; y++) {
        const rowOff = srcOffset + (y + yFirst) * srcW;
        const outOff = y * dstW;
        for (let xx = 0; xx < dstW; xx++) {
          const base = rowOff + start[xx]!;
          const n = count[xx]!;
          const kb = xx * ksize;
          let ss = HALF;
          for (let x = 0; x < n; x++) ss += src[base + x]! * k[kb + x]!;
          tmp[outOff + xx] = clip8(ss);
        }
      }
      inp = tmp;
      inpOff = 0;
    } else {
      inp = src;
      inpOff = srcOffset + yFirst * srcW;
    }
    // Vertical pass: (tmpRows × tmpW) -> dst (dstH × tmpW).
    if (needV) {
      const { ksize, start, count, k } = vert;
      for (let yy = 0; yy < dstH; yy++) {
        const kb = yy * ksize;
        const n = count[yy]!;
        const rowBase = inpOff + (start[yy]! - yFirst) * tmpW;
        const outOff = dstOffset + yy * tmpW;
        for (let xx = 0; xx < tmpW; xx++) {
          let ss = HALF;
          let p = rowBase + xx;
          for (let y = 0; y < n; y++, p += tmpW) ss += inp[p]! * k[kb + y]!;
          dst[outOff + xx] = clip8(ss);
        }
      }
    } else {
      dst.set(inp.subarray(inpOff, inpOff + tmpW * dstH), dstOffset);
    }
  };
}

/** Resizes a single srcW×srcH 8-bit grayscale image (row-major) to dstW×dstH, like PIL's BILINEAR resize. */
export function resizeBilinear(src: Uint8Array, srcW: number, srcH: number, dstW: number, dstH: number): Uint8Array {
  if (src.length < srcW * srcH) {
    throw new RangeError(`resize: source has ${src.length} bytes, expected ${srcW}×${srcH} = ${srcW * srcH}`);
  }
  const dst = new Uint8Array(dstW * dstH);
  makeResizer(srcW, srcH, dstW, dstH)(src, 0, dst, 0);
  return dst;
}

/** float32(i / 255) for every byte value. */
export const BYTE_TO_UNIT = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) t[i] = i / 255;
  return t;
})();

/**
 * Resizes `count` consecutive srcW×srcH single-channel byte images (packed in `pixels`) to dstW×dstH and
 * returns them as float32 in [0, 1] (value / 255), packed [count, 1, dstH, dstW].
 */
export function resizeBatchToUnit(
  pixels: Uint8Array,
  count: number,
  srcW: number,
  srcH: number,
  dstW: number,
  dstH: number,
): Float32Array {
  const srcSize = srcW * srcH;
  const dstSize = dstW * dstH;
  if (pixels.length < count * srcSize) {
    throw new RangeError(`resize: ${count} images of ${srcW}×${srcH} need ${count * srcSize} bytes, got ${pixels.length}`);
  }
  const resize = makeResizer(srcW, srcH, dstW, dstH);
  const out = new Float32Array(count * dstSize);
  const img = new Uint8Array(dstSize);
  for (let i = 0; i < count; i++) {
    resize(pixels, i * srcSize, img, 0);
    const o = i * dstSize;
    for (let j = 0; j < dstSize; j++) out[o + j] = BYTE_TO_UNIT[img[j]!]!;
  }
  return out;
}
