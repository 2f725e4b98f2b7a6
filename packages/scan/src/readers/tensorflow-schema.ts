import type { ProtoSchema } from './protobuf-walker.js';

/**
 * The text-bearing fields of TensorFlow's SavedModel (`saved_model.pb`),
 * frozen GraphDefs (`*.pb`) and Keras' `keras_metadata.pb`. Tensor content is
 * absent from the schema and skipped by length; string tensors (`string_val`)
 * are read, since a constant can hold a key.
 */
export const TENSORFLOW_SCHEMA: ProtoSchema = {
  SavedModel: { 2: { name: 'meta_graphs', kind: 'message', type: 'MetaGraphDef' } },
  MetaGraphDef: {
    1: { name: 'meta_info_def', kind: 'message', type: 'MetaInfoDef', single: true },
    2: { name: 'graph_def', kind: 'message', type: 'GraphDef', single: true },
    4: { name: 'collection_def', kind: 'message-map', type: 'Opaque' },
    5: { name: 'signature_def', kind: 'message-map', type: 'Opaque' },
  },
  MetaInfoDef: {
    1: { name: 'meta_graph_version', kind: 'string' },
    4: { name: 'tags', kind: 'string' },
    5: { name: 'tensorflow_version', kind: 'string' },
    6: { name: 'tensorflow_git_version', kind: 'string' },
    8: { name: 'function_aliases', kind: 'string-map' },
  },
  GraphDef: {
    1: { name: 'node', kind: 'message', type: 'NodeDef' },
    2: { name: 'library', kind: 'message', type: 'FunctionDefLibrary', single: true },
  },
  FunctionDefLibrary: { 1: { name: 'function', kind: 'message', type: 'FunctionDef' } },
  FunctionDef: {
    3: { name: 'node_def', kind: 'message', type: 'NodeDef' },
    5: { name: 'attr', kind: 'message-map', type: 'AttrValue' },
  },
  NodeDef: {
    1: { name: 'name', kind: 'string' },
    2: { name: 'op', kind: 'string' },
    4: { name: 'device', kind: 'string' },
    5: { name: 'attr', kind: 'message-map', type: 'AttrValue' },
  },
  AttrValue: {
    1: { name: 'list', kind: 'message', type: 'ListValue', single: true },
    2: { name: 's', kind: 'string' },
    8: { name: 'tensor', kind: 'message', type: 'TensorProto', single: true },
  },
  ListValue: {
    2: { name: 's', kind: 'string' },
    8: { name: 'tensor', kind: 'message', type: 'TensorProto', single: true },
  },
  TensorProto: { 8: { name: 'string_val', kind: 'string' } },
  Opaque: {},
  SavedMetadata: { 1: { name: 'nodes', kind: 'message', type: 'SavedObject' } },
  SavedObject: {
    2: { name: 'node_path', kind: 'string' },
    3: { name: 'identifier', kind: 'string' },
    4: { name: 'metadata', kind: 'string' },
  },
};
