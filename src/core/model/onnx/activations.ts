// Which tensors of a graph are float32 activations, found by following element types through the nodes
// (graph inputs and initializers as declared, Shape → int64, Cast → its `to`, Constant → its value, any other
// op → its first input's type). The shape arithmetic of torch's dynamic reshapes (Shape, Gather, Concat, … on
// int64) thereby drops out without a list of ops.

import { attrInt, DT, type GraphProto, getAttribute, valueElemType } from './proto.ts';

function constantType(node: NonNullable<GraphProto['node']>[number]): number {
  const a = (node.attribute ?? [])[0];
  if (!a) return 0;
  if (a.name === 'value') return a.t?.dataType ?? 0;
  if (a.name === 'value_float' || a.name === 'value_floats') return DT.FLOAT;
  if (a.name === 'value_int' || a.name === 'value_ints') return DT.INT64;
  if (a.name === 'value_string' || a.name === 'value_strings') return DT.STRING;
  return 0;
}

/** Element type of every tensor the graph defines (0 where it cannot be told). */
export function elementTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const i of graph.input ?? []) types.set(i.name ?? '', valueElemType(i));
  for (const t of graph.initializer ?? []) types.set(t.name ?? '', t.dataType ?? 0);
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    let type: number;
    if (op === 'Shape' || op === 'Size') type = DT.INT64;
    else if (op === 'Cast') type = getAttribute(node, 'to') ? attrInt(node, 'to', 0) : 0;
    else if (op === 'Constant') type = constantType(node);
    else type = types.get(node.input?.[0] ?? '') ?? 0;
    // Only the first output inherits: the others are e.g. Dropout's mask or MaxPool's indices.
    const first = node.output?.[0];
    if (first) types.set(first, type);
  }
  return types;
}

/** Outputs of compute nodes that are float32 (Constant nodes excluded), in graph order. */
export function floatActivations(graph: GraphProto): string[] {
  const types = elementTypes(graph);
  const out: string[] = [];
  for (const node of graph.node ?? []) {
    const first = node.output?.[0];
    if (first && node.opType !== 'Constant' && types.get(first) === DT.FLOAT) out.push(first);
  }
  return out;
}
