// `baffle inspect model.onnx`: what the importer sees in a model, as data (describeModel) and as the text the
// command prints (formatDescription). Problems are listed, not thrown, so that one look shows them all; only
// malformed selectors (or selectors that match nothing) throw, as they would on import.

import { ModelError } from '../../errors.ts';
import {
  dataInputs, dataTypeName, type Dim, formatDims, type Int64, isDefaultDomain, type ModelProto, toInt, valueDims,
  valueElemType, type ValueInfoProto,
} from './proto.ts';
import { modelProblems } from './read.ts';
import { applySelectors } from './select.ts';
import { unsupportedNodes } from './supported.ts';
import { buildTrainingGraph, findLogits } from './training.ts';

export interface TensorSummary {
  name: string;
  type: string;
  dims: Dim[] | null;
}

export interface InitializerSummary {
  name: string;
  type: string;
  dims: number[];
  size: number;
  /** Nodes using it, as "OpType:nodeName". */
  consumers: string[];
  candidate: boolean;
  /** Why it is not a candidate (null for candidates). */
  why: string | null;
  layers: number[];
  /** Whether the selectors train it. */
  trainable: boolean;
}

export interface ModelDescription {
  file: string;
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** The tensor trained on as logits (null when the outputs do not allow one: see problems). */
  logits: { tensor: string; output: string; skipped: 'Softmax' | 'LogSoftmax' | null } | null;
  nodes: number;
  /** Nodes per op type, most frequent first. */
  opCounts: { opType: string; count: number }[];
  unsupported: { index: number; name: string; opType: string; message: string }[];
  /** Every reason import would refuse the model (but for running it: the probe). */
  problems: string[];
  notes: string[];
  /** Every float initializer, in file order. */
  initializers: InitializerSummary[];
  layers: { index: number; opType: string; node: string }[];
  selectors: string[];
  totals: { trainable: number; trainableTensors: number; frozen: number; candidates: number; candidateTensors: number };
}

function summary(v: ValueInfoProto): TensorSummary {
  return { name: v.name ?? '', type: dataTypeName(valueElemType(v)), dims: valueDims(v) };
}

export function describeModel(proto: ModelProto, selectors: readonly string[] = ['all'], file = 'the model'): ModelDescription {
  const graph = proto.graph ?? {};
  const problems = modelProblems(proto, file).map((e) => e.message);
  const notes: string[] = [];

  let logits: ModelDescription['logits'] = null;
  try {
    const choice = findLogits(graph, file);
    logits = { tensor: choice.logits, output: choice.output.name ?? '', skipped: choice.skipped };
    notes.push(...choice.notes);
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    problems.push(e.message);
  }

  const { selected, analysis } = applySelectors(graph, selectors, file);
  const trained = new Set(selected.map((t) => t.name));
  if (selected.length === 0) problems.push(`${file}: nothing to train with the selectors '${selectors.join(',')}'`);
  else if (problems.length === 0) {
    // The remaining refusals (input shape, image shape) are those of building the training graph.
    try {
      const built = buildTrainingGraph(proto, [...trained], { file, source: { kind: 'onnx', file, sha256: '', producer: '' } });
      notes.push(...built.notes.filter((n) => !notes.includes(n)));
    } catch (e) {
      if (!(e instanceof ModelError)) throw e;
      problems.push(e.message);
    }
  }

  const counts = new Map<string, number>();
  for (const n of graph.node ?? []) {
    const op = isDefaultDomain(n.domain) ? n.opType ?? '' : `${n.domain}:${n.opType}`;
    counts.set(op, (counts.get(op) ?? 0) + 1);
  }
  const initializers: InitializerSummary[] = analysis.initializers.map((t) => ({
    name: t.name,
    type: dataTypeName(t.dataType),
    dims: t.dims,
    size: t.size,
    consumers: t.consumers.map((c) => `${c.opType}:${c.node}`),
    candidate: t.candidate,
    why: t.reason,
    layers: t.layers,
    trainable: trained.has(t.name),
  }));
  const sum = (list: InitializerSummary[]) => list.reduce((n, t) => n + t.size, 0);
  const candidates = initializers.filter((t) => t.candidate);
  const trainable = initializers.filter((t) => t.trainable);
  return {
    file,
    irVersion: toInt(proto.irVersion as Int64),
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' ') || 'unknown',
    opsets: (proto.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toInt(o.version as Int64) })),
    inputs: dataInputs(graph).map(summary),
    outputs: (graph.output ?? []).map(summary),
    logits,
    nodes: (graph.node ?? []).length,
    opCounts: [...counts].map(([opType, count]) => ({ opType, count })).sort((a, b) => b.count - a.count || a.opType.localeCompare(b.opType)),
    unsupported: unsupportedNodes(graph, file).map((u) => ({ index: u.index, name: u.name, opType: u.opType, message: u.message })),
    problems,
    notes,
    initializers,
    layers: analysis.layers.map((l) => ({ index: l.index, opType: l.opType, node: l.node })),
    selectors: [...selectors],
    totals: {
      trainable: sum(trainable),
      trainableTensors: trainable.length,
      frozen: sum(candidates) - sum(trainable),
      candidates: sum(candidates),
      candidateTensors: candidates.length,
    },
  };
}

const WIDTH = 118;

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(1, width - 1))}…`;
}

/** Lines of `prefix` and then the pieces, joined by `sep`, breaking between pieces (continuations indented). */
function wrap(prefix: string, pieces: string[], sep = ' '): string[] {
  const lines: string[] = [];
  let line = prefix;
  pieces.forEach((piece, i) => {
    const text = i < pieces.length - 1 ? piece + sep.trimEnd() : piece;
    if (line.trim() !== '' && line.length + text.length > WIDTH) {
      lines.push(line.trimEnd());
      line = ' '.repeat(prefix.length);
    }
    line += text + (i < pieces.length - 1 ? ' ' : '');
  });
  lines.push(line.trimEnd());
  return lines;
}

const count = (n: number) => n.toLocaleString('en-US');

/** Shortens s to width by cutting out its middle (tensor names differ at both ends). */
function clipMiddle(s: string, width: number): string {
  if (s.length <= width) return s;
  const head = Math.ceil((width - 1) / 2);
  return `${s.slice(0, head)}…${s.slice(s.length - (width - 1 - head))}`;
}

/** Splits text into lines of at most `width` characters, at spaces where it can. */
function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (let word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = '';
    }
    while (word.length > width) {
      lines.push(word.slice(0, width));
      word = word.slice(width);
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * A table whose columns but the last are capped at `caps` (numbers right-aligned in column 3). The last column
 * wraps within the room the others leave; when that is too little it goes below each row, indented.
 */
function table(header: string[], rows: string[][], caps: number[]): string[] {
  const widths = caps.map((cap, c) => Math.min(cap, Math.max(header[c]!.length, ...rows.map((r) => r[c]!.length))));
  const start = 2 + widths.reduce((n, w) => n + w + 2, 0);
  const below = WIDTH - start < 40;
  const lines: string[] = [];
  for (const [r, cells] of [header, ...rows].entries()) {
    const fixed = widths.map((w, c) => (c === 3 ? clipMiddle(cells[c]!, w).padStart(w) : clipMiddle(cells[c]!, w).padEnd(w)));
    const last = cells[cells.length - 1]!;
    if (below) {
      lines.push(`  ${fixed.join('  ')}`.trimEnd());
      if (r > 0) for (const piece of wrapText(last, WIDTH - 6)) lines.push(`      ${piece}`);
      continue;
    }
    const pieces = wrapText(last, WIDTH - start);
    lines.push(`  ${[...fixed, pieces[0]!].join('  ')}`.trimEnd());
    for (const piece of pieces.slice(1)) lines.push(`${' '.repeat(start)}${piece}`);
  }
  return lines;
}

/** The text `baffle inspect` prints. */
export function formatDescription(d: ModelDescription): string {
  const out: string[] = [];
  const opsets = d.opsets.map((o) => `${o.domain} ${o.version}`).join(', ');
  out.push(clip(`${d.file}: ONNX IR ${d.irVersion}, opset ${opsets}, made by ${d.producer}`, WIDTH));
  for (const i of d.inputs) out.push(clip(`  input   ${i.name}  ${i.type} ${formatDims(i.dims)}`, WIDTH));
  for (const o of d.outputs) out.push(clip(`  output  ${o.name}  ${o.type} ${formatDims(o.dims)}`, WIDTH));
  if (d.logits) {
    out.push(clip(`  logits  ${d.logits.tensor}${d.logits.skipped ? ` (input of the final ${d.logits.skipped}, which training skips)` : ''}`, WIDTH));
  }
  out.push(...wrap(`  nodes   ${d.nodes}: `, d.opCounts.map((c) => `${c.opType} ${c.count}`), ', '));
  out.push(`  layers  ${d.layers.length}`);
  if (d.unsupported.length > 0) {
    out.push(...wrap('  unsupported ', d.unsupported.map((u) => `${u.opType}${u.name ? ` (${u.name})` : ` (#${u.index})`}`), ', '));
  }
  out.push('');

  const rows = d.initializers.map((t) => [
    t.name,
    t.type,
    `[${t.dims.join(', ')}]`,
    count(t.size),
    t.layers.length ? t.layers.join(',') : '-',
    t.trainable ? 'yes' : t.candidate ? 'no' : '-',
    t.candidate ? t.consumers.join(' ') : `not a weight: ${t.why ?? ''}${t.consumers.length ? `; ${t.consumers.join(' ')}` : ''}`,
  ]);
  out.push(...table(['initializer', 'type', 'dims', 'elements', 'layer', 'train', 'used by'], rows, [44, 8, 20, 12, 6, 5]));
  out.push('');

  const t = d.totals;
  out.push(clip(`  trainable ${count(t.trainable)} elements in ${t.trainableTensors} tensor(s) (selectors: ${d.selectors.join(',') || 'all'}); ` +
    `frozen ${count(t.frozen)}; candidates ${count(t.candidates)} in ${t.candidateTensors} tensor(s)`, WIDTH));
  for (const n of d.notes) out.push(...wrap('  note: ', n.split(' ')));
  if (d.problems.length === 0) out.push('  no problems found (an import also runs the model once in onnxruntime)');
  else for (const p of d.problems) out.push(...wrap('  problem: ', p.split(' ')));
  return out.join('\n');
}
