// The model in the page: LiteRT.js (Google's LiteRT runtime for the web: XNNPACK in WebAssembly), with the
// quantisation the Python runner applies around its interpreter (edge_runner/core/quantization.py), so the page
// turns the same pixels into the same scores. LiteRT.js only runs the graph: it reports no tensor's scale or
// zero point, so those come from the .tflite itself (tflite.js).

import { loadLiteRt, loadAndCompile, supportsFeature, Tensor } from "./litert/core.js";
import { fixBatchDimension, readTensors } from "./tflite.js";

// The WebAssembly builds sit in wasm/ beside this file. LiteRT.js picks one itself: litert_wasm_internal (relaxed
// SIMD, whose dot-product instructions XNNPACK's int8 kernels use) or, in a browser without relaxed SIMD,
// litert_wasm_compat_internal. Both are single-threaded (the threaded build needs a cross-origin-isolated page).
const WASM_FOLDER = new URL("wasm/", import.meta.url).href;
export const BUILDS = { relaxed: "WebAssembly relaxed SIMD", compat: "WebAssembly, compat build (no relaxed SIMD)" };
// The tensor types LiteRT.js accepts from JavaScript (its DATATYPES) that a classifier's input or output can be.
const TAKEN = new Set(["float32", "uint8"]);
const INTEGER_RANGES = { uint8: [0, 255], int8: [-128, 127] };

// numpy's round(): halves to even.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// RGB pixels (0-255, the contract's value range: normalisation lives in the graph) → the input tensor's values,
// as quantize_input does: float tensors take the pixels as they are; integer ones q = round(p / scale) + zero
// point (p + zero point when scale is 1), clipped to the type. The kit's int8 models take uint8 with scale 1,
// zero point 0: the pixels themselves.
export function quantizeInput(rgb, tensor) {
  const { dtype, scale, zeroPoint } = tensor;
  if (dtype === "float32") return Float32Array.from(rgb);
  const range = INTEGER_RANGES[dtype];
  if (!range || !(scale > 0)) throw new Error(`the model's input tensor is ${dtype} (scale ${scale}): not a type the page can fill`);
  if (dtype === "uint8" && scale === 1 && zeroPoint === 0) return new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length);
  const out = dtype === "uint8" ? new Uint8Array(rgb.length) : new Int8Array(rgb.length);
  const step = Math.fround(scale);
  for (let i = 0; i < rgb.length; i++) {
    // float32 division as numpy does it (exact in doubles, then rounded to float32 once)
    const q = (scale === 1 ? rgb[i] : roundHalfEven(Math.fround(rgb[i] / step))) + zeroPoint;
    out[i] = q < range[0] ? range[0] : q > range[1] ? range[1] : q;
  }
  return out;
}

// The output tensor's values → float32 probabilities, as dequantize_output does: (q - zero point) * scale.
export function dequantizeOutput(values, tensor) {
  if (tensor.dtype === "float32") return Float32Array.from(values);
  const scale = Math.fround(tensor.scale);
  return Float32Array.from(values, (q) => Math.fround((q - tensor.zeroPoint) * scale));
}

function checkTensors(tensors) {
  if (tensors.inputs.length !== 1 || tensors.outputs.length !== 1) {
    throw new Error(`expected 1 input and 1 output tensor, found ${tensors.inputs.length} and ${tensors.outputs.length}`);
  }
  for (const [role, tensor] of [["input", tensors.inputs[0]], ["output", tensors.outputs[0]]]) {
    if (!TAKEN.has(tensor.dtype)) {
      throw new Error(`the model's ${role} tensor is ${tensor.dtype}; LiteRT.js in the page takes float32 or uint8 ` +
        "(what the kit exports: float32, float16, dynamic and int8 variants)");
    }
  }
}

// Loads LiteRT.js and compiles the model (the .tflite's bytes, left unchanged); returns the engine:
// { build, input, output, scores(rgb) → Promise<Float32Array> in label order }.
export async function loadEngine(bytes) {
  const tensors = readTensors(bytes);
  checkTensors(tensors);
  const [input, output] = [tensors.inputs[0], tensors.outputs[0]];
  const relaxed = await supportsFeature("relaxedSimd");
  try {
    await loadLiteRt(WASM_FOLDER);
  } catch (error) {
    throw new Error(`LiteRT.js's WebAssembly cannot start in this browser (${error.message || error})`);
  }
  const copy = bytes.slice();  // the page keeps the file as served; LiteRT.js gets a batch of 1
  fixBatchDimension(copy);
  let model;
  try {
    model = await loadAndCompile(copy, { accelerator: "wasm", cpuOptions: { numThreads: 1 } });
  } catch (error) {
    throw new Error(`LiteRT.js cannot load the model (${error.message || error})`);
  }
  const shape = input.shape.map((size) => (size < 0 ? 1 : size));
  return {
    build: relaxed ? BUILDS.relaxed : BUILDS.compat,
    input,
    output,
    async scores(rgb) {
      const tensor = new Tensor(quantizeInput(rgb, input), shape);
      let outputs;
      try {
        outputs = await model.run([tensor]);
      } finally {
        tensor.delete();  // LiteRT.js's tensors live in the WebAssembly heap until deleted
      }
      try {
        return dequantizeOutput(outputs[0].toTypedArray(), output);
      } finally {
        outputs.forEach((item) => item.delete());
      }
    },
  };
}
