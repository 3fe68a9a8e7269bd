// What the page reads from the .tflite file it loaded, with a minimal flatbuffer reader:
// * the model's name and version as its TFLite metadata states them (the "TFLITE_METADATA" buffer, a
//   ModelMetadata flatbuffer); the input contract (labels, crop, resize, background label, threshold) comes in
//   model.json, written by edgekit from the contract inside the model (or beside it);
// * the input and output tensors' type, shape and quantisation (scale, zero point), which the page needs to
//   quantise pixels and dequantise scores as the Python runner does (LiteRT.js does not report them);
// * fixBatchDimension: the exported models have a dynamic batch dimension (shape_signature [-1, 224, 224, 3]),
//   and LiteRT.js refuses a [1, 224, 224, 3] input for it, with no call to resize an input; the page sets the
//   -1 to 1 in its copy of the file before LiteRT.js reads it.

const decoder = new TextDecoder();

// -- a minimal flatbuffer reader (tables, strings, vectors of tables / bytes) --------------------------

class Table {
  constructor(view, position) {
    this.view = view;
    this.position = position;
    this.vtable = position - view.getInt32(position, true);
    this.vtableSize = view.getUint16(this.vtable, true);
  }

  static root(view, offset = 0) {
    return new Table(view, offset + view.getUint32(offset, true));
  }

  field(index) {
    const slot = 4 + 2 * index;
    if (slot >= this.vtableSize) return 0;
    const offset = this.view.getUint16(this.vtable + slot, true);
    return offset ? this.position + offset : 0;
  }

  indirect(index) {
    const at = this.field(index);
    return at ? at + this.view.getUint32(at, true) : 0;
  }

  string(index) {
    const at = this.indirect(index);
    if (!at) return null;
    const length = this.view.getUint32(at, true);
    return decoder.decode(new Uint8Array(this.view.buffer, this.view.byteOffset + at + 4, length));
  }

  bytes(index) {
    const at = this.indirect(index);
    if (!at) return null;
    const length = this.view.getUint32(at, true);
    return new Uint8Array(this.view.buffer, this.view.byteOffset + at + 4, length);
  }

  tables(index) {
    const at = this.indirect(index);
    if (!at) return [];
    const count = this.view.getUint32(at, true);
    const out = [];
    for (let i = 0; i < count; i++) {
      const element = at + 4 + 4 * i;
      out.push(new Table(this.view, element + this.view.getUint32(element, true)));
    }
    return out;
  }

  uint32(index, fallback = 0) {
    const at = this.field(index);
    return at ? this.view.getUint32(at, true) : fallback;
  }

  int8(index, fallback = 0) {
    const at = this.field(index);
    return at ? this.view.getInt8(at) : fallback;
  }

  // A vector of scalars: its first element's position and its length ({ at: 0 } when absent).
  vector(index) {
    const at = this.indirect(index);
    return at ? { at: at + 4, length: this.view.getUint32(at, true) } : { at: 0, length: 0 };
  }

  int32s(index) {
    const { at, length } = this.vector(index);
    return Array.from({ length }, (_, i) => this.view.getInt32(at + 4 * i, true));
  }

  float32s(index) {
    const { at, length } = this.vector(index);
    return Array.from({ length }, (_, i) => this.view.getFloat32(at + 4 * i, true));
  }

  int64s(index) {
    const { at, length } = this.vector(index);
    return Array.from({ length }, (_, i) => Number(this.view.getBigInt64(at + 8 * i, true)));
  }
}

// schema.fbs: Model { version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata }
const MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4, MODEL_METADATA = 6;
// SubGraph { tensors, inputs, outputs, ... }; Tensor { shape, type, buffer, name, quantization, is_variable,
// sparsity, shape_signature }; QuantizationParameters { min, max, scale, zero_point }
const SUBGRAPH_TENSORS = 0, SUBGRAPH_INPUTS = 1, SUBGRAPH_OUTPUTS = 2;
const TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_NAME = 3, TENSOR_QUANTIZATION = 4, TENSOR_SHAPE_SIGNATURE = 7;
const QUANT_SCALE = 2, QUANT_ZERO_POINT = 3;
// TensorType, as numpy names the dtypes the runner accepts (others are named by number in errors)
const TENSOR_TYPES = { 0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8" };
// Metadata { name, buffer }; Buffer { data, offset, size }
const ENTRY_NAME = 0, ENTRY_BUFFER = 1, BUFFER_DATA = 0;
// metadata_schema.fbs: ModelMetadata { name, description, version, subgraph_metadata, author, license }
const META_FIELDS = { name: 0, description: 1, version: 2, author: 4, license: 5 };

function modelTable(bytes) {
  if (bytes.length < 8 || decoder.decode(bytes.subarray(4, 8)) !== "TFL3") {
    throw new Error("not a TFLite model (no 'TFL3' identifier)");
  }
  return Table.root(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

export function readMetadata(bytes) {
  const model = modelTable(bytes);
  const entry = model.tables(MODEL_METADATA).find((item) => item.string(ENTRY_NAME) === "TFLITE_METADATA");
  if (!entry) return {};
  const buffer = model.tables(MODEL_BUFFERS)[entry.uint32(ENTRY_BUFFER)];
  const data = buffer ? buffer.bytes(BUFFER_DATA) : null;
  if (!data || data.length < 8) return {};
  const meta = Table.root(new DataView(data.buffer, data.byteOffset, data.byteLength));
  const out = {};
  for (const [key, index] of Object.entries(META_FIELDS)) {
    const value = meta.string(index);
    if (value !== null) out[key] = value;
  }
  return out;
}

function describeTensor(tensor) {
  const type = tensor.int8(TENSOR_TYPE);
  const at = tensor.indirect(TENSOR_QUANTIZATION);
  const params = at ? new Table(tensor.view, at) : null;
  const scales = params ? params.float32s(QUANT_SCALE) : [];
  const zeros = params ? params.int64s(QUANT_ZERO_POINT) : [];
  return {
    name: tensor.string(TENSOR_NAME),
    dtype: TENSOR_TYPES[type] || `type ${type}`,
    shape: tensor.int32s(TENSOR_SHAPE),
    // As the Python interpreter's get_input_details()["quantization"]: (0.0, 0) when not quantised.
    scale: scales.length ? scales[0] : 0,
    zeroPoint: zeros.length ? zeros[0] : 0,
  };
}

// The first subgraph's input and output tensors: [{ name, dtype, shape, scale, zeroPoint }, ...] each.
export function readTensors(bytes) {
  const [subgraph] = modelTable(bytes).tables(MODEL_SUBGRAPHS);
  if (!subgraph) throw new Error("the model has no subgraph");
  const tensors = subgraph.tables(SUBGRAPH_TENSORS);
  const pick = (index) => subgraph.int32s(index).map((i) => describeTensor(tensors[i]));
  return { inputs: pick(SUBGRAPH_INPUTS), outputs: pick(SUBGRAPH_OUTPUTS) };
}

// Sets a dynamic batch dimension (-1 first in a tensor's shape_signature) to 1, in place, in every tensor of
// every subgraph: what converting with a fixed batch of 1 would have written. Other dimensions are left as they
// are. Returns how many tensors it changed.
export function fixBatchDimension(bytes) {
  const model = modelTable(bytes);
  let changed = 0;
  for (const subgraph of model.tables(MODEL_SUBGRAPHS)) {
    for (const tensor of subgraph.tables(SUBGRAPH_TENSORS)) {
      const { at, length } = tensor.vector(TENSOR_SHAPE_SIGNATURE);
      if (length > 0 && tensor.view.getInt32(at, true) === -1) {
        tensor.view.setInt32(at, 1, true);
        changed += 1;
      }
    }
  }
  return changed;
}
