// A JPEG's decoded YCbCr planes → RGB pixels, as libjpeg-turbo makes them when Pillow decodes the photo.
//
// Chromium's WebCodecs ImageDecoder hands most JPEGs over as they are stored: the Y, Cb and Cr planes straight from
// the inverse DCT (VideoFrame format I420 for 4:2:0 chroma, I422 for 4:2:2, I444 for 4:4:4), before any chroma
// upsampling or colour conversion. The browser's own YUV→RGB conversion (VideoFrame.copyTo with an RGB format,
// or drawing the frame) is not libjpeg's, so the page does that last step itself, with libjpeg-turbo's integer
// arithmetic (jdsample.c: "fancy" triangular upsampling, the default; jdcolor.c: ycc_rgb_convert's tables), which
// its SIMD code reproduces bit for bit. The result is the RGB Pillow gets from the same file (tested on photos of
// every subsampling against Pillow, and in the benchmark on every photo's model input).

const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x) => Math.trunc(x * (1 << SCALEBITS) + 0.5);

// jdcolor.c build_ycc_rgb_table: R = Y + Cr_r[Cr], G = Y + ((Cb_g[Cb] + Cr_g[Cr]) >> 16), B = Y + Cb_b[Cb].
const CR_R = new Int32Array(256), CB_B = new Int32Array(256), CR_G = new Int32Array(256), CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (fix(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (fix(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -fix(0.71414) * x;
  CB_G[i] = -fix(0.34414) * x + ONE_HALF;
}

// Chroma formats the page converts, and how much each chroma plane is subsampled (horizontally, vertically).
export const SUBSAMPLING = { I420: [2, 2], I422: [2, 1], I444: [1, 1] };

// One row of chroma upsampled to full width (jdsample.c). `near` and `far` are the chroma rows nearer to and
// further from the output row (h2v2; for h2v1 and h1v1 both are the row itself), `width` chroma samples each,
// starting at offsets n and f of `plane`; out receives 2 * width (or width) samples.
function upsampleRow(plane, n, f, width, h, v, out) {
  if (h === 1) {
    for (let i = 0; i < width; i++) out[i] = plane[n + i];
    return;
  }
  if (v === 1) {  // h2v1_fancy_upsample
    let value = plane[n];
    out[0] = value;
    out[1] = (value * 3 + plane[n + 1] + 2) >> 2;
    for (let i = 1; i < width - 1; i++) {
      value = plane[n + i] * 3;
      out[2 * i] = (value + plane[n + i - 1] + 1) >> 2;
      out[2 * i + 1] = (value + plane[n + i + 1] + 2) >> 2;
    }
    value = plane[n + width - 1];
    out[2 * width - 2] = (value * 3 + plane[n + width - 2] + 1) >> 2;
    out[2 * width - 1] = value;
    return;
  }
  // h2v2_fancy_upsample: column sums 3 * nearer row + further row, then 3 * this column + the neighbour
  let last = plane[n] * 3 + plane[f];
  let now = last;
  let next = plane[n + 1] * 3 + plane[f + 1];
  out[0] = (now * 4 + 8) >> 4;
  out[1] = (now * 3 + next + 7) >> 4;
  for (let i = 1; i < width - 1; i++) {
    last = now;
    now = next;
    next = plane[n + i + 1] * 3 + plane[f + i + 1];
    out[2 * i] = (now * 3 + last + 8) >> 4;
    out[2 * i + 1] = (now * 3 + next + 7) >> 4;
  }
  out[2 * width - 2] = (next * 3 + now + 8) >> 4;
  out[2 * width - 1] = (next * 4 + 7) >> 4;
}

// The planes of a decoded JPEG (a VideoFrame's copyTo: one buffer, `layout` = [{ offset, stride }] for Y, Cb,
// Cr) of `width` x `height` pixels in `format` (a key of SUBSAMPLING) → RGB, 3 bytes a pixel: a
// Uint8ClampedArray of width * height * 3 (its stores clamp to 0-255, as libjpeg's range_limit does). libjpeg
// upsamples chroma planes of fewer than 3 samples a row by plain replication, not "fancy"; those (images under 5
// pixels wide) are refused here: the caller decodes them another way.
export function ycbcrToRgb(planes, layout, format, width, height) {
  const [h, v] = SUBSAMPLING[format];
  const chromaWidth = Math.ceil(width / h), chromaHeight = Math.ceil(height / v);
  if (h === 2 && chromaWidth < 3) throw new Error(`a ${width}-pixel-wide ${format} image is too narrow`);
  const [Y, U, V] = layout;
  const out = new Uint8ClampedArray(width * height * 3);
  const cb = new Int32Array(chromaWidth * h), cr = new Int32Array(chromaWidth * h);
  for (let y = 0, o = 0; y < height; y++) {
    // The chroma row of this output row and (h2v2) its other neighbour, edge rows repeated as libjpeg does.
    const row = v === 1 ? y : y >> 1;
    const other = v === 1 ? row : (y & 1) === 0 ? Math.max(row - 1, 0) : Math.min(row + 1, chromaHeight - 1);
    upsampleRow(planes, U.offset + row * U.stride, U.offset + other * U.stride, chromaWidth, h, v, cb);
    upsampleRow(planes, V.offset + row * V.stride, V.offset + other * V.stride, chromaWidth, h, v, cr);
    for (let x = 0, luma = Y.offset + y * Y.stride; x < width; x++, o += 3) {
      const l = planes[luma + x], b = cb[x], r = cr[x];
      out[o] = l + CR_R[r];
      out[o + 1] = l + ((CB_G[b] + CR_G[r]) >> SCALEBITS);
      out[o + 2] = l + CB_B[b];
    }
  }
  return out;
}
