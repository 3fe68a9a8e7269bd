// The model's name and version as its TFLite metadata states them (the "TFLITE_METADATA" buffer, a
// ModelMetadata flatbuffer), read from the .tflite file the page loaded. MediaPipe reads the same metadata
// for its labels; the input contract (labels, crop, resize, background label, threshold) comes in model.json,
// written by edgekit from the contract inside the model (or beside it).

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
}

// schema.fbs: Model { version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata }
const MODEL_BUFFERS = 4, MODEL_METADATA = 6;
// Metadata { name, buffer }; Buffer { data, offset, size }
const ENTRY_NAME = 0, ENTRY_BUFFER = 1, BUFFER_DATA = 0;
// metadata_schema.fbs: ModelMetadata { name, description, version, subgraph_metadata, author, license }
const META_FIELDS = { name: 0, description: 1, version: 2, author: 4, license: 5 };

export function readMetadata(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8 || decoder.decode(bytes.subarray(4, 8)) !== "TFL3") {
    throw new Error("not a TFLite model (no 'TFL3' identifier)");
  }
  const model = Table.root(view);
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
