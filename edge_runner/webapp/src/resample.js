// The kit's preprocessing in the browser: the same crop and the same resize as Pillow's, pixel for pixel.
//
// The runner brings a photo to the model's input with edge_runner.image.fit: an optional centre crop, then
// Pillow's Image.resize with the contract's filter. A browser's own resize (canvas drawImage, createImageBitmap's
// resize options: bilinear sampling without Pillow's antialiasing, or unspecified filters) would feed the model
// different pixels, so the app resizes here. This is Pillow's two-pass convolution (libImaging/Resample.c):
// the same filters and supports, the same coefficients in 22-bit fixed point, each pass rounded to 8 bits,
// horizontal pass first unless the picture gets wider but shorter (Pillow then shrinks it first). "nearest"
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

function clip8(value) {
  if (value <= 0) return 0;
  if (value >= ONE * 256) return 255;
  return value >> PRECISION_BITS;
}

// One of Pillow's two passes over RGB(X) pixels, RGB out: output pixel (i, j) of `outer` x `inner` sums the
// taps of coefficient row c (i for a vertical pass, j for a horizontal one) over source bytes starting at
// offset + i * outerStep + j * innerStep + first(c) * tapStep, one tap every tapStep bytes.
function convolve(src, outer, inner, coeffs, alongOuter, offset, outerStep, innerStep, tapStep) {
  const out = new Uint8ClampedArray(outer * inner * 3);
  const { ksize, bounds, taps } = coeffs;
  for (let i = 0; i < outer; i++) {
    for (let j = 0; j < inner; j++) {
      const c = alongOuter ? i : j;
      const count = bounds[c * 2 + 1], k = c * ksize;
      let r = HALF, g = HALF, b = HALF;
      for (let t = 0, p = offset + i * outerStep + j * innerStep + bounds[c * 2] * tapStep; t < count; t++, p += tapStep) {
        const w = taps[k + t];
        // 32-bit integer sums, as Pillow's C `int`s: the same values, and V8 keeps them in machine integers.
        r = (r + Math.imul(src[p], w)) | 0;
        g = (g + Math.imul(src[p + 1], w)) | 0;
        b = (b + Math.imul(src[p + 2], w)) | 0;
      }
      const o = (i * inner + j) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

// Along x: rows [rows.first, rows.first + rows.count) of a `width`-pixel-wide image, `stride` bytes a pixel.
function horizontalPass(src, width, stride, outWidth, coeffs, rows) {
  return convolve(src, rows.count, outWidth, coeffs, false, rows.first * width * stride, width * stride, 0, stride);
}

// Along y: every column of a `width`-pixel-wide image.
function verticalPass(src, width, stride, outHeight, coeffs) {
  return convolve(src, outHeight, width, coeffs, true, 0, 0, stride, width * stride);
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

function nearest(src, width, height, stride, outWidth, outHeight) {
  const out = new Uint8ClampedArray(outWidth * outHeight * 3);
  const xs = sourceIndices(width, outWidth), ys = sourceIndices(height, outHeight);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const p = (ys[y] * width + xs[x]) * stride;
      const o = (y * outWidth + x) * 3;
      out[o] = src[p];
      out[o + 1] = src[p + 1];
      out[o + 2] = src[p + 2];
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

// RGBA pixels (an ImageData's data) of `width` x `height` → the model's input pixels, RGB (3 bytes a pixel) of
// outWidth x outHeight, with the contract's crop ("none" | "center") and resize filter.
export function fitRgb(rgba, width, height, outWidth, outHeight, resize = "bilinear", crop = "none") {
  let src = rgba, w = width, h = height, stride = 4;
  if (crop === "center") {
    const box = centreBox(width, height, outWidth, outHeight);
    if (box.width !== width || box.height !== height) {
      const cropped = new Uint8ClampedArray(box.width * box.height * 3);
      for (let y = 0; y < box.height; y++) {
        for (let x = 0; x < box.width; x++) {
          const p = ((y + box.y) * width + x + box.x) * 4;
          const o = (y * box.width + x) * 3;
          cropped[o] = rgba[p];
          cropped[o + 1] = rgba[p + 1];
          cropped[o + 2] = rgba[p + 2];
        }
      }
      src = cropped; w = box.width; h = box.height; stride = 3;
    }
  }
  let rgb;
  if (w === outWidth && h === outHeight) {
    rgb = nearest(src, w, h, stride, w, h);  // a plain copy to RGB
  } else if (resize === "nearest") {
    rgb = nearest(src, w, h, stride, outWidth, outHeight);
  } else {
    const filter = FILTERS[resize];
    if (!filter) throw new Error(`the contract's resize must be one of bilinear, bicubic, lanczos, nearest; received ${resize}`);
    const horizontal = coefficients(w, outWidth, filter);
    const vertical = coefficients(h, outHeight, filter);
    if (outWidth > w && outHeight < h) {
      // Wider but shorter: Pillow shrinks first, so the vertical pass comes first here.
      rgb = verticalPass(src, w, stride, outHeight, vertical);
      rgb = horizontalPass(rgb, w, 3, outWidth, horizontal, { first: 0, count: outHeight });
    } else if (w === outWidth) {
      rgb = verticalPass(src, w, stride, outHeight, vertical);
    } else {
      // Only the source rows the vertical pass reads are resized horizontally (as in Pillow).
      let rows = { first: 0, count: h };
      if (h !== outHeight) {
        const first = vertical.bounds[0];
        rows = { first, count: vertical.bounds[(outHeight - 1) * 2] + vertical.bounds[(outHeight - 1) * 2 + 1] - first };
        for (let i = 0; i < outHeight; i++) vertical.bounds[i * 2] -= first;
      }
      rgb = horizontalPass(src, w, stride, outWidth, horizontal, rows);
      if (h !== outHeight) rgb = verticalPass(rgb, outWidth, 3, outHeight, vertical);
    }
  }
  return rgb;
}

// The same as an RGBA ImageData (to show or compare).
export function fitPixels(rgba, width, height, outWidth, outHeight, resize = "bilinear", crop = "none") {
  const rgb = fitRgb(rgba, width, height, outWidth, outHeight, resize, crop);
  const out = new ImageData(outWidth, outHeight);
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
    out.data[o] = rgb[i];
    out.data[o + 1] = rgb[i + 1];
    out.data[o + 2] = rgb[i + 2];
    out.data[o + 3] = 255;
  }
  return out;
}
