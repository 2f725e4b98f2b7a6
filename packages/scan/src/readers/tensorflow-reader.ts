import type { FormatReader } from '../reader-context.js';
import { walkProtobuf } from './protobuf-walker.js';
import { TENSORFLOW_SCHEMA } from './tensorflow-schema.js';

/** TensorFlow protobufs, by file name: a SavedModel, Keras' saved metadata, or a frozen GraphDef. */
export const readTensorflow: FormatReader = (source, location, ctx, name) => {
  const base = name.split('/').pop() ?? name;
  const root = base === 'saved_model.pb' ? 'SavedModel' : base === 'keras_metadata.pb' ? 'SavedMetadata' : 'GraphDef';
  return walkProtobuf(source, TENSORFLOW_SCHEMA, root, '', location, ctx);
};
