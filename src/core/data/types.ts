// A dataset as the rest of the system sees it: float32 images in [0,1], NCHW, and byte labels.

export interface Split {
  /** Images, row-major [count, C, H, W], values in [0, 1]. */
  x: Float32Array;
  /** Class labels, one byte per image. */
  y: Uint8Array;
  count: number;
}

export interface Dataset {
  name: string;
  /** [channels, height, width] after preprocessing. */
  inputShape: [number, number, number];
  classes: number;
  train: Split;
  test: Split;
}
