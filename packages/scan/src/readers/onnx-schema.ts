import type { ProtoSchema } from './protobuf-walker.js';

/**
 * The text-bearing fields of ONNX (onnx.proto3). Tensor `raw_data` and the
 * numeric fields are absent, so the walker skips them by length.
 */
export const ONNX_SCHEMA: ProtoSchema = {
  ModelProto: {
    2: { name: 'producer_name', kind: 'string' },
    3: { name: 'producer_version', kind: 'string' },
    4: { name: 'domain', kind: 'string' },
    6: { name: 'doc_string', kind: 'string' },
    7: { name: 'graph', kind: 'message', type: 'GraphProto', single: true },
    14: { name: 'metadata_props', kind: 'string-map' },
    20: { name: 'training_info', kind: 'message', type: 'TrainingInfoProto' },
    25: { name: 'functions', kind: 'message', type: 'FunctionProto' },
  },
  GraphProto: {
    1: { name: 'node', kind: 'message', type: 'NodeProto' },
    2: { name: 'name', kind: 'string' },
    5: { name: 'initializer', kind: 'message', type: 'TensorProto' },
    10: { name: 'doc_string', kind: 'string' },
    11: { name: 'input', kind: 'message', type: 'ValueInfoProto' },
    12: { name: 'output', kind: 'message', type: 'ValueInfoProto' },
    13: { name: 'value_info', kind: 'message', type: 'ValueInfoProto' },
    16: { name: 'metadata_props', kind: 'string-map' },
  },
  NodeProto: {
    1: { name: 'input', kind: 'string' },
    2: { name: 'output', kind: 'string' },
    3: { name: 'name', kind: 'string' },
    4: { name: 'op_type', kind: 'string' },
    5: { name: 'attribute', kind: 'message', type: 'AttributeProto' },
    6: { name: 'doc_string', kind: 'string' },
    7: { name: 'domain', kind: 'string' },
    9: { name: 'metadata_props', kind: 'string-map' },
  },
  AttributeProto: {
    1: { name: 'name', kind: 'string' },
    4: { name: 's', kind: 'string' },
    5: { name: 't', kind: 'message', type: 'TensorProto', single: true },
    6: { name: 'g', kind: 'message', type: 'GraphProto', single: true },
    9: { name: 'strings', kind: 'string' },
    10: { name: 'tensors', kind: 'message', type: 'TensorProto' },
    11: { name: 'graphs', kind: 'message', type: 'GraphProto' },
    13: { name: 'doc_string', kind: 'string' },
  },
  TensorProto: {
    6: { name: 'string_data', kind: 'string' },
    8: { name: 'name', kind: 'string' },
    12: { name: 'doc_string', kind: 'string' },
    13: { name: 'external_data', kind: 'string-map' },
  },
  ValueInfoProto: {
    1: { name: 'name', kind: 'string' },
    3: { name: 'doc_string', kind: 'string' },
    4: { name: 'metadata_props', kind: 'string-map' },
  },
  TrainingInfoProto: {
    1: { name: 'initialization', kind: 'message', type: 'GraphProto', single: true },
    2: { name: 'algorithm', kind: 'message', type: 'GraphProto', single: true },
  },
  FunctionProto: {
    1: { name: 'name', kind: 'string' },
    7: { name: 'node', kind: 'message', type: 'NodeProto' },
    8: { name: 'doc_string', kind: 'string' },
    10: { name: 'domain', kind: 'string' },
    14: { name: 'metadata_props', kind: 'string-map' },
  },
};
