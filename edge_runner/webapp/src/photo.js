// A photo file → its pixels as Pillow decodes it (edge_runner.core.image.open_image): EXIF orientation applied,
// no colour-profile conversion, transparent pixels on white.
//
// JPEGs (what cameras and phones write) take the fast way: the file's bytes are read once, WebCodecs'
// ImageDecoder decodes them without a canvas, and the page finishes the decode as libjpeg-turbo does (ycbcr.js),
// so the pixels are Pillow's, bit for bit. A JPEG much larger than the model's input is decoded at 1/2, 1/4 or
// 1/8 of its size by the JPEG decoder itself, as the runner's Pillow "draft" mode does (open_image): the same
// scale, chosen the same way, gives the same pixels, and a phone's 12-megapixel photo decodes in a fraction of
// the time. Anything else (PNG, WebP, GIF, BMP; a JPEG the fast way cannot take; a
// browser without ImageDecoder) is decoded by createImageBitmap and read back from a canvas, as before.

import { SUBSAMPLING, ycbcrToRgb } from "./ycbcr.js";

// A VideoFrame's rotation (degrees clockwise) and flip, as ImageDecoder reports the EXIF orientation → that
// orientation (1-8).
const ORIENTATIONS = { "0 false": 1, "0 true": 2, "180 false": 3, "180 true": 4, "90 true": 5, "90 false": 6, "270 true": 7, "270 false": 8 };
// The RGB frame formats ImageDecoder gives (opaque JPEGs: X), and where red sits in each pixel.
const RED_AT = { RGBX: 0, RGBA: 0, BGRX: 2, BGRA: 2 };

// edge_runner.core.image.DRAFT_MARGIN: a JPEG is decoded at reduced size down to this multiple of the input.
const DRAFT_MARGIN = 2;

function isJpeg(bytes) {
  return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

// A JPEG's stored width and height (its frame header, before EXIF orientation), or null.
function jpegSize(bytes) {
  let p = 2;
  while (p + 9 < bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const marker = bytes[p + 1];
    if (marker === 0xff) { p += 1; continue; }  // fill bytes
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { p += 2; continue; }  // no length
    // Start of frame: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[p + 5] << 8) | bytes[p + 6], width: (bytes[p + 7] << 8) | bytes[p + 8] };
    }
    p += 2 + ((bytes[p + 2] << 8) | bytes[p + 3]);
  }
  return null;
}

// Pillow's JpegImageFile.draft("RGB", (side, side)) with side = the input's larger side x DRAFT_MARGIN: the largest
// of 8, 4, 2 that both sides can be divided by and stay at least `side` (1: full size).
function draftScale(size, input) {
  if (!size || !input) return 1;
  const side = Math.max(input[0], input[1]) * DRAFT_MARGIN;
  const scale = Math.min(Math.floor(size.width / side), Math.floor(size.height / side));
  return [8, 4, 2].find((s) => scale >= s) || 1;
}

// Pillow's ImageOps.exif_transpose on RGB pixels (3 bytes a pixel) for orientations 2-8: the output pixel (x, y)
// is the source's (sx, sy). Returns the new pixels and size.
function orient(src, width, height, orientation) {
  const swap = orientation >= 5;
  const w = swap ? height : width, h = swap ? width : height;
  const out = new Uint8ClampedArray(w * h * 3);
  for (let y = 0, o = 0; y < h; y++) {
    for (let x = 0; x < w; x++, o += 3) {
      let sx = x, sy = y;
      if (orientation === 2) sx = width - 1 - x;
      else if (orientation === 3) { sx = width - 1 - x; sy = height - 1 - y; }
      else if (orientation === 4) sy = height - 1 - y;
      else if (orientation === 5) { sx = y; sy = x; }
      else if (orientation === 6) { sx = y; sy = height - 1 - x; }
      else if (orientation === 7) { sx = width - 1 - y; sy = height - 1 - x; }
      else if (orientation === 8) { sx = width - 1 - y; sy = x; }
      const p = (sy * width + sx) * 3;
      out[o] = src[p];
      out[o + 1] = src[p + 1];
      out[o + 2] = src[p + 2];
    }
  }
  return { pixels: out, width: w, height: h };
}

// A decoded frame's pixels → { pixels, stride, bgr }: an RGB frame as it is (BGRX: 4 bytes a pixel, blue first),
// YCbCr planes converted to RGB (3 bytes a pixel); null for a format the page does not take.
async function framePixels(image, width, height) {
  const buffer = new Uint8ClampedArray(image.allocationSize());
  const layout = await image.copyTo(buffer);
  if (SUBSAMPLING[image.format]) return { pixels: ycbcrToRgb(buffer, layout, image.format, width, height), stride: 3, bgr: false };
  const red = RED_AT[image.format];
  if (red === undefined || layout[0].offset !== 0 || layout[0].stride !== width * 4) return null;
  return { pixels: buffer, stride: 4, bgr: red === 2 };
}

// RGB, 3 bytes a pixel, from pixels of `stride` 3 or 4 (for orient).
function toRgb({ pixels, stride, bgr }, width, height) {
  if (stride === 3 && !bgr) return pixels;
  const out = new Uint8ClampedArray(width * height * 3);
  const red = bgr ? 2 : 0;
  for (let p = 0, o = 0; o < out.length; p += stride, o += 3) {
    out[o] = pixels[p + red];
    out[o + 1] = pixels[p + 1];
    out[o + 2] = pixels[p + 2 - red];
  }
  return out;
}

// The fast way for a JPEG's bytes: { pixels, stride, bgr, width, height }, or null when it cannot take it.
// `input` = the model's [width, height], for the draft scale (null: full size).
async function decodeJpeg(bytes, input, steps) {
  const size = jpegSize(bytes);
  const scale = draftScale(size, input);
  let feed;
  const init = {
    data: new ReadableStream({ start(controller) { feed = controller; } }),
    type: "image/jpeg", colorSpaceConversion: "none", preferAnimation: false,
  };
  if (scale > 1) {
    // Chromium's JPEG decoder picks its DCT scale from the size asked for: ceil(side / scale) is Pillow's scale.
    init.desiredWidth = Math.ceil(size.width / scale);
    init.desiredHeight = Math.ceil(size.height / scale);
  }
  const decoder = new ImageDecoder(init);
  try {
    const start = performance.now();
    // Handed the whole file at once, Chromium gives most JPEGs as their YCbCr planes, which ycbcr.js turns into
    // RGB in JavaScript. Asked to decode while the file's last two bytes (its end marker) are still to come, it
    // decodes to RGB with libjpeg-turbo's own SIMD colour conversion: the same pixels, in less time.
    feed.enqueue(bytes.subarray(0, bytes.length - 2));
    await decoder.tracks.ready;
    const decoding = decoder.decode({ frameIndex: 0 });
    feed.enqueue(bytes.subarray(bytes.length - 2));
    feed.close();
    const { image } = await decoding;
    steps.frame_ms = performance.now() - start;
    try {
      const orientation = ORIENTATIONS[`${image.rotation} ${image.flip}`];  // unknown in browsers without them
      const { x, y, width, height } = image.visibleRect;
      if (!orientation || x !== 0 || y !== 0 || width < 5) return null;
      if (scale > 1 && (width !== init.desiredWidth || height !== init.desiredHeight)) return null;
      const start = performance.now();
      const frame = await framePixels(image, width, height);
      steps.pixels_ms = performance.now() - start;
      steps.format = image.format;
      if (!frame) return null;
      if (orientation === 1) return { ...frame, width, height };
      return { ...orient(toRgb(frame, width, height), width, height, orientation), stride: 3, bgr: false };
    } finally {
      image.close();
    }
  } finally {
    decoder.close();
  }
}

const canvas = typeof document === "object" ? document.createElement("canvas") : null;

// `source` (an image, a video, a bitmap) drawn on white → its RGBA pixels (an ImageData's data).
export function pixelsOf(source, width, height, target = canvas) {
  target.width = width;
  target.height = height;
  const context = target.getContext("2d", { willReadFrequently: true });
  context.fillStyle = "#fff";  // transparent photos on white, as the runner composites them
  context.fillRect(0, 0, width, height);
  context.drawImage(source, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

// The browser's own decode, then a canvas: { pixels (RGBA), stride: 4, bgr: false, width, height }.
async function decodeWithCanvas(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch (error) {
    throw new Error(`${name}: not an image (the browser cannot decode it)`);
  }
  const { width, height } = bitmap;
  const pixels = pixelsOf(bitmap, width, height);
  bitmap.close();
  return { pixels, stride: 4, bgr: false, width, height };
}

// A photo file → { pixels (a Uint8ClampedArray), stride (bytes a pixel: 3 RGB, 4 RGBA or BGRX), bgr (blue first),
// width, height, how ("ImageDecoder" or "canvas"), read_ms, decode_ms (reading included), steps: { frame_ms
// (ImageDecoder), pixels_ms (the frame's pixels copied, planes converted to RGB), format (the frame's) } }. `input`: the model's [width, height], which decides the
// draft scale of a large JPEG as the runner's does (null: always full size).
export async function decodePhoto(file, input = null) {
  const start = performance.now();
  const bytes = new Uint8Array(await file.arrayBuffer());
  const read_ms = performance.now() - start;
  let decoded = null;
  const steps = {};
  if (isJpeg(bytes) && typeof ImageDecoder === "function") {
    try {
      decoded = await decodeJpeg(bytes, input, steps);
    } catch (error) {
      decoded = null;  // the canvas gets its chance, and names the file if it cannot decode it either
    }
  }
  const how = decoded ? "ImageDecoder" : "canvas";
  if (!decoded) decoded = await decodeWithCanvas(file, file.name);
  return { ...decoded, how, read_ms, steps, decode_ms: performance.now() - start };
}
