// The kit's preprocessing in the browser: the same crop and the same resize as Pillow's, pixel for pixel.
//
// The runner brings a photo to the model's input with edge_runner.image.fit: an optional centre crop, then
// Pillow's Image.resize with the contract's filter. A browser's own resize (canvas drawImage, createImageBitmap's
// resize options: bilinear sampling without Pillow's antialiasing, or unspecified filters) would feed the model
// different pixels, so the app resizes here. This is Pillow's two-pass convolution (libImaging/Resample.c):
// the same filters and supports, the same coefficients in 22-bit fixed point, each pass rounded to 8 bits,
// horizontal pass first unless the height shrinks by more than twice as much as the width. "nearest"
// is Pillow's affine scaling. tests/test_webapp.py compares the output with Pillow's on many shapes.

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS = {
  bilinear: { support: 1, weight: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output index, the first input index, the
// number of taps and the taps as integers.
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterScale;  // multiplied, not divided: the same doubles as Pillow's
  const bounds = new Int32Array(outSize * 2);
  const taps = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      weights[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = total !== 0 ? weights[x] / total : weights[x];
      taps[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, taps };
}

// Every pass writes into a Uint8ClampedArray (and reads one): its stores clamp to 0-255, so `sum >> PRECISION_BITS`
// stored there is Pillow's clip8(sum) for any 32-bit sum, and one array type keeps V8's code for the passes
// monomorphic.

// Coefficients are the same for every photo of the same size: the last few are kept.
const cache = new Map();
function cachedCoefficients(inSize, outSize, resize) {
  const key = `${inSize} ${outSize} ${resize}`;
  let coeffs = cache.get(key);
  if (!coeffs) {
    coeffs = coefficients(inSize, outSize, FILTERS[resize]);
    if (cache.size >= 8) cache.delete(cache.keys().next().value);
    cache.set(key, coeffs);
  }
  return coeffs;
}

// The pixels the passes read: bytes `pixels`, `stride` bytes a pixel (red, green and blue first, or blue, green
// and red when `red` is 2, as a BGRX video frame), `rowBytes` a row,
// the picture's first pixel at `offset` (a crop is an offset and a smaller size).

// Pillow's horizontal pass: `rows` rows from `offset` → rows of outWidth RGB pixels in `out`. Two rows at a time:
// the same taps serve both (a third fewer loads and loop steps than one row at a time).
function horizontalPass(src, offset, rowBytes, stride, rows, outWidth, coeffs, out, red = 0) {
  const { ksize, bounds, taps } = coeffs;
  const outRow = outWidth * 3;
  for (let y = 0, row = offset; y < rows; y += 2, row += 2 * rowBytes) {
    const next = y + 1 < rows ? rowBytes : 0;  // an odd last row is computed twice, written once
    for (let x = 0, o = y * outRow; x < outWidth; x++, o += 3) {
      const count = bounds[x * 2 + 1], k = x * ksize;
      let r = HALF, g = HALF, b = HALF, r2 = HALF, g2 = HALF, b2 = HALF;
      for (let t = 0, p = row + bounds[x * 2] * stride; t < count; t++, p += stride) {
        const w = taps[k + t], q = p + next;
        // 32-bit integer sums, as Pillow's C `int`s: the same values, and V8 keeps them in machine integers.
        r = (r + Math.imul(src[p], w)) | 0;
        g = (g + Math.imul(src[p + 1], w)) | 0;
        b = (b + Math.imul(src[p + 2], w)) | 0;
        r2 = (r2 + Math.imul(src[q], w)) | 0;
        g2 = (g2 + Math.imul(src[q + 1], w)) | 0;
        b2 = (b2 + Math.imul(src[q + 2], w)) | 0;
      }
      out[o + red] = r >> PRECISION_BITS;
      out[o + 1] = g >> PRECISION_BITS;
      out[o + 2 - red] = b >> PRECISION_BITS;
      if (next) {
        out[o + outRow + red] = r2 >> PRECISION_BITS;
        out[o + outRow + 1] = g2 >> PRECISION_BITS;
        out[o + outRow + 2 - red] = b2 >> PRECISION_BITS;
      }
    }
  }
  return out;
}

// Pillow's vertical pass over whole rows of bytes: `bytes` bytes of each row from `offset` (every channel alike,
// so the output keeps the input's stride and channel order) → outHeight rows of `bytes` in `out`. A row's taps
// are the same all along it, so they are held in variables for the common counts.
function verticalRows(src, offset, rowBytes, bytes, outHeight, coeffs, out) {
  const { ksize, bounds, taps } = coeffs;
  for (let y = 0, o = 0; y < outHeight; y++, o += bytes) {
    const count = bounds[y * 2 + 1], k = y * ksize;
    const a = offset + bounds[y * 2] * rowBytes, b = a + rowBytes, c = b + rowBytes, d = c + rowBytes, e = d + rowBytes;
    const w0 = taps[k], w1 = count > 1 ? taps[k + 1] : 0, w2 = count > 2 ? taps[k + 2] : 0;
    const w3 = count > 3 ? taps[k + 3] : 0, w4 = count > 4 ? taps[k + 4] : 0;
    if (count === 3) {
      for (let j = 0; j < bytes; j++) {
        out[o + j] = (HALF + Math.imul(src[a + j], w0) + Math.imul(src[b + j], w1) + Math.imul(src[c + j], w2)) >> PRECISION_BITS;
      }
    } else if (count === 4) {
      for (let j = 0; j < bytes; j++) {
        out[o + j] = (HALF + Math.imul(src[a + j], w0) + Math.imul(src[b + j], w1) + Math.imul(src[c + j], w2) +
          Math.imul(src[d + j], w3)) >> PRECISION_BITS;
      }
    } else if (count === 5) {
      for (let j = 0; j < bytes; j++) {
        out[o + j] = (HALF + Math.imul(src[a + j], w0) + Math.imul(src[b + j], w1) + Math.imul(src[c + j], w2) +
          Math.imul(src[d + j], w3) + Math.imul(src[e + j], w4)) >> PRECISION_BITS;
      }
    } else {
      for (let j = 0; j < bytes; j++) {
        let sum = HALF;
        for (let t = 0, p = a + j; t < count; t++, p += rowBytes) sum = (sum + Math.imul(src[p], taps[k + t])) | 0;
        out[o + j] = sum >> PRECISION_BITS;
      }
    }
  }
  return out;
}

// Pillow's vertical pass pixel by pixel: columns of `width` pixels from `offset` → outHeight rows of RGB pixels
// in `out` (when the source has another stride than the output: a vertical-only resize).
function verticalPass(src, offset, rowBytes, stride, width, outHeight, coeffs, out, red = 0) {
  const { ksize, bounds, taps } = coeffs;
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    const count = bounds[y * 2 + 1], k = y * ksize, first = offset + bounds[y * 2] * rowBytes;
    for (let x = 0, column = first; x < width; x++, column += stride) {
      let r = HALF, g = HALF, b = HALF;
      for (let t = 0, p = column; t < count; t++, p += rowBytes) {
        const w = taps[k + t];
        r = (r + Math.imul(src[p], w)) | 0;
        g = (g + Math.imul(src[p + 1], w)) | 0;
        b = (b + Math.imul(src[p + 2], w)) | 0;
      }
      out[o + red] = r >> PRECISION_BITS;
      out[o + 1] = g >> PRECISION_BITS;
      out[o + 2 - red] = b >> PRECISION_BITS;
      o += 3;
    }
  }
  return out;
}

// The horizontal pass's output between the two passes, kept from photo to photo (it is never handed out).
let between = new Uint8ClampedArray(0);
function scratch(size) {
  if (between.length < size) between = new Uint8ClampedArray(size);
  return between;
}

// Pillow's nearest neighbour (ImagingScaleAffine): each source coordinate is (i + 0.5) * scale, accumulated by
// repeated addition as Pillow does it, so rounding lands on the same pixel.
function sourceIndices(inSize, outSize) {
  const scale = inSize / outSize;
  const indices = new Int32Array(outSize);
  let at = scale * 0.5;
  for (let i = 0; i < outSize; i++, at += scale) indices[i] = Math.min(Math.trunc(at), inSize - 1);
  return indices;
}

function nearest(src, offset, rowBytes, stride, width, height, outWidth, outHeight, out, red = 0) {
  const xs = sourceIndices(width, outWidth), ys = sourceIndices(height, outHeight);
  for (let y = 0, o = 0; y < outHeight; y++) {
    const row = offset + ys[y] * rowBytes;
    for (let x = 0; x < outWidth; x++, o += 3) {
      const p = row + xs[x] * stride;
      out[o + red] = src[p];
      out[o + 1] = src[p + 1];
      out[o + 2 - red] = src[p + 2];
    }
  }
  return out;
}

// The largest centred box of the target's aspect ratio, as edge_runner.image.fit crops it.
export function centreBox(width, height, targetWidth, targetHeight) {
  const target = targetWidth / targetHeight;
  if (width / height > target) {
    const w = Math.round(height * target);  // Python's round() halves to even; sizes here never end in .5
    return { x: Math.floor((width - w) / 2), y: 0, width: w, height };
  }
  const h = Math.round(width / target);
  return { x: 0, y: Math.floor((height - h) / 2), width, height: h };
}

// Pixels of `width` x `height` (a Uint8ClampedArray: an ImageData's data, or ycbcr.js's RGB), `stride` bytes a
// pixel (4: RGBA; 3: RGB), red, green and blue first → the model's input pixels, RGB (3 bytes a pixel) of
// outWidth x outHeight, with the contract's crop ("none" | "center") and resize filter: a Uint8ClampedArray
// (`out` when given). `bgr`: the pixels are blue, green, red (and X), as a BGRX video frame.
export function fitRgb(pixels, width, height, outWidth, outHeight, resize = "bilinear", crop = "none", stride = 4, bgr = false, out = null) {
  const red = bgr ? 2 : 0;
  if (resize !== "nearest" && !FILTERS[resize]) {
    throw new Error(`the contract's resize must be one of bilinear, bicubic, lanczos, nearest; received ${resize}`);
  }
  const rowBytes = width * stride;
  let offset = 0, w = width, h = height;
  if (crop === "center") {
    const box = centreBox(width, height, outWidth, outHeight);
    offset = box.y * rowBytes + box.x * stride;
    w = box.width;
    h = box.height;
  }
  const rgb = out || new Uint8ClampedArray(outWidth * outHeight * 3);
  if (w === outWidth && h === outHeight) return nearest(pixels, offset, rowBytes, stride, w, h, w, h, rgb, red);  // a copy
  if (resize === "nearest") return nearest(pixels, offset, rowBytes, stride, w, h, outWidth, outHeight, rgb, red);
  const horizontal = cachedCoefficients(w, outWidth, resize);
  const vertical = cachedCoefficients(h, outHeight, resize);
  if (w === outWidth) return verticalPass(pixels, offset, rowBytes, stride, w, outHeight, vertical, rgb, red);
  if (h === outHeight) return horizontalPass(pixels, offset, rowBytes, stride, h, outWidth, horizontal, rgb, red);
  if (h - outHeight > 0 && h - outHeight > (w - outWidth) * 2) {
    // Pillow (libImaging/Resample.c, since Pillow 13) runs the vertical pass first when the height shrinks by
    // more than twice as many pixels as the width does (a tall photo, or one that gets wider but shorter).
    const tall = verticalRows(pixels, offset, rowBytes, w * stride, outHeight, vertical, scratch(w * stride * outHeight));
    return horizontalPass(tall, 0, w * stride, stride, outHeight, outWidth, horizontal, rgb, red);
  }
  // Only the source rows the vertical pass reads are resized horizontally (as in Pillow): from the first row
  // of the first output row's taps to the last of the last one's.
  const first = vertical.bounds[0];
  const rows = vertical.bounds[(outHeight - 1) * 2] + vertical.bounds[(outHeight - 1) * 2 + 1] - first;
  const wide = horizontalPass(pixels, offset + first * rowBytes, rowBytes, stride, rows, outWidth, horizontal,
    scratch(outWidth * rows * 3), red);
  return verticalRows(wide, -first * outWidth * 3, outWidth * 3, outWidth * 3, outHeight, vertical, rgb);
}

// The same as an RGBA ImageData (to show or compare).
export function fitPixels(pixels, width, height, outWidth, outHeight, resize = "bilinear", crop = "none", stride = 4, bgr = false) {
  const rgb = fitRgb(pixels, width, height, outWidth, outHeight, resize, crop, stride, bgr);
  const out = new ImageData(outWidth, outHeight);
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
    out.data[o] = rgb[i];
    out.data[o + 1] = rgb[i + 1];
    out.data[o + 2] = rgb[i + 2];
    out.data[o + 3] = 255;
  }
  return out;
}
