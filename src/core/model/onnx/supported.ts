// The ONNX ops an imported model may use: those whose forward pass is the same on every call for the same
// weights and batch (BAFFLE's K perturbed passes must differ only by the perturbation), in the default domain.
// InstanceNormalization (per-example statistics) and Selu are there for the zoo's own graphs (GroupNorm, SELU).

import { ModelError } from '../../errors.ts';
import { attrInt, type GraphProto, isDefaultDomain, type NodeProto, nodeLabel } from './proto.ts';

/** Supported op types of the default ONNX domain, grouped as the refusal hint lists them. */
const OP_GROUPS: readonly (readonly string[])[] = [
  ['Gemm', 'MatMul', 'Conv', 'BatchNormalization', 'InstanceNormalization'],
  ['Add', 'Sub', 'Mul', 'Div', 'Sqrt', 'Pow', 'Erf', 'ReduceMean'],
  ['Relu', 'LeakyRelu', 'Selu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Tanh', 'Gelu', 'Softmax', 'LogSoftmax'],
  ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'Pad'],
  ['Flatten', 'Reshape', 'Transpose', 'Concat', 'Slice', 'Squeeze', 'Unsqueeze', 'Gather', 'Shape', 'Cast'],
  ['Dropout', 'Identity', 'Constant'],
];

export const SUPPORTED_OPS: ReadonlySet<string> = new Set(OP_GROUPS.flat());

export const SUPPORTED_HINT = `Supported ops: ${OP_GROUPS.map((g) => g.join(', ')).join('; ')}.`;

/** Advice for ops that a different export setting avoids. */
const OP_ADVICE: Record<string, string> = {
  LayerNormalization: 'torch exports nn.LayerNorm as one LayerNormalization node from opset 17: export with opset_version=16 to get it as supported elementwise ops',
  PRelu: 'replace nn.PReLU by nn.LeakyReLU, or export the model with its PReLU slopes as a fixed LeakyRelu',
};

const BN_TRAINING =
  'BAFFLE runs K perturbed forward passes on the same minibatch: in training mode each pass would normalise with ' +
  "the batch's statistics and update the running ones, so the passes would not differ only by the perturbation. " +
  'Export the model in eval mode (model.eval() before torch.onnx.export); inference-mode BatchNormalization with ' +
  'frozen statistics is a per-channel affine map and imports fine.';

/** A node the importer cannot train through, with the reason (a ModelError message) and its hint. */
export interface UnsupportedNode {
  index: number;
  name: string;
  opType: string;
  domain: string;
  message: string;
  hint: string;
}

function problem(node: NodeProto, index: number, message: string, hint: string): UnsupportedNode {
  return { index, name: node.name ?? '', opType: node.opType ?? '', domain: node.domain ?? '', message, hint };
}

/** Every node the importer refuses, in graph order (an empty list when the graph is fine). */
export function unsupportedNodes(graph: GraphProto, file: string): UnsupportedNode[] {
  const out: UnsupportedNode[] = [];
  (graph.node ?? []).forEach((node, index) => {
    const op = node.opType ?? '';
    if (!isDefaultDomain(node.domain)) {
      out.push(problem(node, index, `${file}: ${nodeLabel(node, index)} belongs to the op domain '${node.domain}', not to standard ONNX`,
        'baffle imports standard ONNX ops only. Export the original model again (a file saved after onnxruntime ' +
        'optimisations or by a converter with custom ops has contrib ops).'));
      return;
    }
    if (!SUPPORTED_OPS.has(op)) {
      const advice = OP_ADVICE[op];
      const where = node.name ? `node #${index} '${node.name}'` : `node #${index}`;
      out.push(problem(node, index, `${file}: unsupported op ${op} (${where}): baffle cannot import it`,
        (advice ? `${advice}. ` : '') + SUPPORTED_HINT));
      return;
    }
    if (op === 'BatchNormalization' && (attrInt(node, 'training_mode', 0) === 1 || (node.output ?? []).filter(Boolean).length > 1)) {
      out.push(problem(node, index, `${file}: ${nodeLabel(node, index)} is in training mode (training_mode=1 or running-statistics outputs)`, BN_TRAINING));
    }
    if (op === 'Dropout' && (node.input?.[2] ?? '') !== '') {
      out.push(problem(node, index, `${file}: ${nodeLabel(node, index)} has a training_mode input: dropout would draw a new mask on every pass`,
        'Export the model in eval mode (model.eval() before torch.onnx.export), where Dropout is the identity.'));
    }
  });
  return out;
}

/** Throws the first problem of unsupportedNodes() as a ModelError. */
export function checkSupported(graph: GraphProto, file: string): void {
  const all = unsupportedNodes(graph, file);
  const first = all[0];
  if (!first) return;
  const others = new Set(all.slice(1).map((u) => u.opType));
  others.delete(first.opType);
  const more = all.length > 1 ? ` (${all.length} nodes in all${others.size ? `, also ${[...others].join(', ')}` : ''})` : '';
  throw new ModelError(first.message + more, first.hint);
}
