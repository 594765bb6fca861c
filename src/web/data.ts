// A browser client's own training data: files the person picks, read and checked in the page, prepared in the
// worker as the server's model takes them. The data never leaves the page: only K scalars per round go out.
//
//   IDX files: an images file (magic 0x803, gzipped or not) and a labels file (0x801), told apart by content
//   an image folder: one sub-folder per class, named by its class index (0, 1, …), or named otherwise and then
//                    one per class of the model (numbered in sorted order)
import { DataError } from '../core/data/errors.ts';
import { isGzip, parseIdxImages, parseIdxLabels, type IdxImages } from '../core/data/idx.ts';
import { normalizeSplit } from '../core/data/preprocess.ts';
import { resizeBatchToUnit } from '../core/data/resize.ts';
import type { ClientModel } from '../core/model/artifact.ts';
import type { ClientData } from '../core/protocol/client.ts';

/** What the page hands the worker: raw bytes of the IDX pair, or the images with their class. */
export type PageData =
  | { kind: 'idx'; images: IdxImages; labels: Uint8Array; names: string[] }
  | { kind: 'images'; files: { blob: Blob; label: number; name: string }[]; classes: string[] };

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const IMAGE_TYPES = /\.(png|jpe?g|gif|bmp|webp)$/i;
const IDX_PAIR = 'the two IDX files (train-images-idx3-ubyte and train-labels-idx1-ubyte, gzipped or not)';
const IDX_IMAGES = 0x803;
const IDX_LABELS = 0x801;

/**
 * Reads and checks the picked files before anything connects: a pair of IDX files (images and labels, in
 * any order, gzipped or not), or a folder of images with one sub-folder per class (files that are not images,
 * such as .DS_Store, are left out). Throws DataError with the reason.
 */
export async function readPicked(files: readonly File[]): Promise<PageData> {
  if (files.length === 0) throw new DataError(`no files picked: choose ${IDX_PAIR}, or a folder of images`);
  const fromFolder = files.filter((f) => f.webkitRelativePath !== '');
  if (fromFolder.length > 0) {
    if (fromFolder.length !== files.length) throw new DataError(`both files and a folder are picked: choose either ${IDX_PAIR} or a folder of images, not both`);
    const images = files.filter((f) => IMAGE_TYPES.test(f.name));
    if (images.length === 0) throw new DataError('the folder holds no images (.png, .jpg, .gif, .bmp, .webp): pick the folder that holds one sub-folder of images per class');
    return readImageFolder(images);
  }
  if (files.every((f) => IMAGE_TYPES.test(f.name))) {
    throw new DataError(`${files[0]!.name}: images must sit in one sub-folder per class; pick the folder that holds the class folders with the folder picker (or give ${IDX_PAIR})`);
  }
  if (files.length > 2) throw new DataError(`${files.length} files picked: give exactly ${IDX_PAIR}, or a folder of images`);
  const raw = await Promise.all(
    files.map(async (f) => {
      let b: Uint8Array = new Uint8Array(await f.arrayBuffer());
      if (isGzip(b)) {
        try {
          b = await gunzip(b);
        } catch {
          throw new DataError(`${f.name}: gzip data is corrupt or truncated`);
        }
      }
      return { name: f.name, bytes: b, magic: b.length >= 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false) : -1 };
    }),
  );
  const other = raw.find((r) => r.magic !== IDX_IMAGES && r.magic !== IDX_LABELS);
  if (other) throw new DataError(`${other.name}: not an IDX images or labels file (expected magic 0x00000803 or 0x00000801); give ${IDX_PAIR}`);
  const img = raw.filter((r) => r.magic === IDX_IMAGES);
  const lbl = raw.filter((r) => r.magic === IDX_LABELS);
  if (lbl.length === 0) throw new DataError(`${img.map((r) => r.name).join(' and ')}: IDX images, but no IDX labels file (magic 0x00000801) is picked; give ${IDX_PAIR}`);
  if (img.length === 0) throw new DataError(`${lbl.map((r) => r.name).join(' and ')}: IDX labels, but no IDX images file (magic 0x00000803) is picked; give ${IDX_PAIR}`);
  const parsed = parseIdxImages(img[0]!.bytes, img[0]!.name);
  const labels = parseIdxLabels(lbl[0]!.bytes, lbl[0]!.name);
  if (labels.length !== parsed.count) throw new DataError(`${lbl[0]!.name}: ${labels.length} labels for the ${parsed.count} images of ${img[0]!.name}`);
  if (parsed.count === 0) throw new DataError(`${img[0]!.name}: no images`);
  if (parsed.rows !== parsed.cols) throw new DataError(`${img[0]!.name}: images of ${parsed.rows}×${parsed.cols}; square images are expected`);
  return { kind: 'idx', images: parsed, labels, names: [img[0]!.name, lbl[0]!.name] };
}

/** Folders named 0, 1, 2, … are those class indices; otherwise the classes are the folder names in sorted order. */
const numericClasses = (classes: readonly string[]) => classes.every((d) => /^\d+$/.test(d));

function readImageFolder(files: readonly File[]): PageData {
  // webkitRelativePath is picked/class/…/file: the class is the folder that holds the file, below the picked one.
  const parts = (f: File) => f.webkitRelativePath.split('/');
  const loose = files.find((f) => parts(f).length < 3);
  if (loose) throw new DataError(`${loose.webkitRelativePath}: sits in the picked folder itself; images must sit in one sub-folder per class (pick the folder that holds the class folders)`);
  const folderOf = (f: File) => parts(f).at(-2)!;
  const folders = [...new Set(files.map(folderOf))];
  const numeric = numericClasses(folders);
  const classes = numeric ? folders.sort((a, b) => Number(a) - Number(b)) : folders.sort();
  const label = (d: string) => (numeric ? Number(d) : classes.indexOf(d));
  return { kind: 'images', files: files.map((f) => ({ blob: f, label: label(folderOf(f)), name: f.name })), classes };
}

/** Grayscale or RGB pixels of an image drawn at width × height (the browser's own resampling). */
async function drawImage(blob: Blob, name: string, width: number, height: number): Promise<Uint8ClampedArray> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new DataError(`${name}: not an image the browser can decode`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return ctx.getImageData(0, 0, width, height).data;
}

/** The picked data as the model takes it (checked against it: channels, classes), every example this client's. */
export async function prepareForModel(data: PageData, model: ClientModel): Promise<ClientData> {
  const [channels, h, w] = model.preprocess.image;
  let split: { x: Float32Array; y: Uint8Array; count: number };
  if (data.kind === 'idx') {
    if (channels !== 1) throw new DataError(`${data.names[0]}: IDX images are grayscale, the server's model takes ${channels} channels`);
    const bad = data.labels.findIndex((l) => l >= model.classes);
    if (bad >= 0) throw new DataError(`${data.names[1]}: label ${data.labels[bad]} at index ${bad} is out of range 0..${model.classes - 1}`);
    const { pixels, count, rows, cols } = data.images;
    split = { x: resizeBatchToUnit(pixels, count, cols, rows, w, h), y: data.labels, count };
  } else {
    // Named folders (cat, dog, …) are classes by sorted name: that matches the model's class indices only when
    // every class is there (a client without cats would number the dogs 0).
    if (!numericClasses(data.classes) && data.classes.length !== model.classes) {
      throw new DataError(
        `${data.classes.length} class folders (${data.classes.slice(0, 5).join(', ')}${data.classes.length > 5 ? ', …' : ''}) for the server's ` +
          `${model.classes} classes: folders named other than by class index must be one per class; name them 0…${model.classes - 1} instead`,
      );
    }
    const bad = data.files.find((f) => f.label >= model.classes);
    if (bad) throw new DataError(`class ${bad.label} (folder of ${bad.name}) is out of range: the server's model has ${model.classes} classes`);
    const count = data.files.length;
    const x = new Float32Array(count * channels * h * w);
    const y = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const f = data.files[i]!;
      const rgba = await drawImage(f.blob, f.name, w, h);
      const plane = h * w;
      for (let p = 0; p < plane; p++) {
        const r = rgba[4 * p]!;
        const g = rgba[4 * p + 1]!;
        const b = rgba[4 * p + 2]!;
        if (channels === 1) {
          if (Math.abs(r - g) > 2 || Math.abs(g - b) > 2) throw new DataError(`${f.name}: a colour image, but the server's model takes grayscale images`);
          x[i * plane + p] = r / 255;
        } else {
          x[(i * 3 + 0) * plane + p] = r / 255;
          x[(i * 3 + 1) * plane + p] = g / 255;
          x[(i * 3 + 2) * plane + p] = b / 255;
        }
      }
      y[i] = f.label;
    }
    split = { x, y, count };
  }
  normalizeSplit(split, model.preprocess);
  const all = Int32Array.from({ length: split.count }, (_, i) => i);
  return { x: split.x, y: split.y, shardOf: () => all };
}
