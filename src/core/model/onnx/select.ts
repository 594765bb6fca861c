// Which candidate weights of an imported model to train (candidates and layers: params.ts).
//
// Selectors (`baffle keys`, docs):
//   all            every candidate weight
//   none           no weight (only useful with `baffle inspect`: training needs at least one)
//   name:GLOB      candidates whose tensor name matches GLOB (`*` any run of characters, `?` one character;
//                  the whole name must match), e.g. name:fc.* or name:*bias
//   op:TYPE        candidates used by a node of that op type, e.g. op:Gemm, op:Conv, op:BatchNormalization
//   node:GLOB      candidates used by a node whose name matches GLOB, e.g. node:/classifier/*
//   last:N         candidates of the last N layers (N ≥ 1), e.g. last:1 = the classifier head
//   first:N        candidates of the first N layers
//   !SELECTOR      excludes what SELECTOR matches, after all the includes; a list of exclusions only
//                  means `all` minus them, e.g. !op:BatchNormalization
// A list selects the union of its includes minus the union of its exclusions; an empty list means `all`.
// An entry may hold several selectors separated by commas. A layer is a Conv/Gemm/MatMul node with its
// directly following bias/scale/BatchNormalization nodes; position-based selection matters because exporters
// rename weights (torch folds BatchNorm into the preceding Conv and names the result e.g. onnx::Conv_42).
// A selector that matches no candidate, or a selection that is empty, is refused.

import { ModelError } from '../../errors.ts';
import { analyzeParams, type FloatInitializer, type ParamAnalysis } from './params.ts';
import type { GraphProto, ModelProto } from './proto.ts';

export const SELECTOR_GRAMMAR =
  'Selectors: all, none, name:GLOB, op:TYPE, node:GLOB, last:N, first:N, and !SELECTOR to exclude ' +
  '(e.g. "last:1", "op:Conv,!name:*bias", "node:/classifier/*"); GLOB takes * and ?.';

type Matcher = (t: FloatInitializer, layerCount: number) => boolean;

interface Selector {
  text: string;
  exclude: boolean;
  match: Matcher;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

function parseSelector(raw: string, file: string): Selector {
  const text = raw.trim();
  const exclude = text.startsWith('!');
  const body = exclude ? text.slice(1).trim() : text;
  const bad = (why: string) => new ModelError(`${file}: bad selector '${text}': ${why}`, SELECTOR_GRAMMAR);
  if (body === 'all') return { text, exclude, match: () => true };
  if (body === 'none') return { text, exclude, match: () => false };
  const colon = body.indexOf(':');
  if (colon < 0) throw bad('unknown form');
  const kind = body.slice(0, colon).trim().toLowerCase();
  const arg = body.slice(colon + 1).trim();
  if (arg === '') throw bad(`${kind}: needs an argument`);
  switch (kind) {
    case 'name': {
      const re = globToRegExp(arg);
      return { text, exclude, match: (t) => re.test(t.name) };
    }
    case 'op': {
      const op = arg.toLowerCase();
      return { text, exclude, match: (t) => t.consumers.some((c) => c.opType.toLowerCase() === op) };
    }
    case 'node': {
      const re = globToRegExp(arg);
      return { text, exclude, match: (t) => t.consumers.some((c) => re.test(c.node)) };
    }
    case 'last':
    case 'first': {
      if (!/^\d+$/.test(arg) || Number(arg) < 1) throw bad(`${kind}:N needs a whole number N ≥ 1`);
      const n = Number(arg);
      return kind === 'last'
        ? { text, exclude, match: (t, count) => t.layers.some((l) => l >= count - n) }
        : { text, exclude, match: (t) => t.layers.some((l) => l < n) };
    }
    default:
      throw bad(`unknown kind '${kind}:'`);
  }
}

/** The selectors of a list, each entry split at commas. */
export function parseSelectors(selectors: readonly string[], file: string): Selector[] {
  return selectors.flatMap((s) => s.split(',')).filter((s) => s.trim() !== '').map((s) => parseSelector(s, file));
}

function candidatesSummary(analysis: ParamAnalysis): string {
  const names = analysis.candidates.map((t) => t.name);
  const shown = names.slice(0, 6).join(', ') + (names.length > 6 ? `, … (${names.length} in all)` : '');
  const ops = [...new Set(analysis.candidates.flatMap((t) => t.consumers.map((c) => c.opType)))].join(', ');
  return `Candidates: ${shown}; used by ${ops}; ${analysis.layers.length} layer(s). \`baffle inspect\` lists them all.`;
}

export interface Selection {
  /** Selected candidates, in file order. */
  selected: FloatInitializer[];
  analysis: ParamAnalysis;
}

/**
 * Applies the selectors to the candidates (throws a ModelError for a malformed selector or one that matches
 * no candidate; an empty selection is returned as such).
 */
export function applySelectors(graph: GraphProto, selectors: readonly string[], file: string): Selection {
  const analysis = analyzeParams(graph);
  const parsed = parseSelectors(selectors, file);
  const layerCount = analysis.layers.length;
  for (const s of parsed) {
    if (s.text.replace(/^!\s*/, '') === 'none') continue;
    if (!analysis.candidates.some((t) => s.match(t, layerCount))) {
      throw new ModelError(`${file}: the selector '${s.text}' matches no trainable candidate`, candidatesSummary(analysis));
    }
  }
  const includes = parsed.filter((s) => !s.exclude);
  const excludes = parsed.filter((s) => s.exclude);
  const selected = analysis.candidates.filter(
    (t) => (includes.length === 0 || includes.some((s) => s.match(t, layerCount))) && !excludes.some((s) => s.match(t, layerCount)),
  );
  return { selected, analysis };
}

/** Names of the initializers to train, in the file's initializer order. Throws a ModelError when nothing is. */
export function selectTrainable(proto: ModelProto, selectors: readonly string[], file: string): string[] {
  const { selected, analysis } = applySelectors(proto.graph ?? {}, selectors, file);
  if (selected.length === 0) {
    throw new ModelError(
      `${file}: nothing to train: ${analysis.candidates.length === 0 ? 'the model has no candidate weights' : `the selectors '${selectors.join(',')}' leave no candidate`}`,
      analysis.candidates.length === 0 ? 'baffle trains float32 weights of Conv, Gemm, MatMul, BatchNormalization and bias/scale Add/Mul nodes.' : candidatesSummary(analysis),
    );
  }
  return selected.map((t) => t.name);
}
