import type { FormatReader } from '../reader-context.js';
import { ONNX_SCHEMA } from './onnx-schema.js';
import { walkProtobuf } from './protobuf-walker.js';

/** ONNX models: `metadata_props`, doc strings, producer fields, names and string initializers. */
export const readOnnx: FormatReader = (source, location, ctx) =>
  walkProtobuf(source, ONNX_SCHEMA, 'ModelProto', '', location, ctx);
