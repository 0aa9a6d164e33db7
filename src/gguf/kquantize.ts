/**
 * f32 → ggml K-quant blocks (Q2_K … Q6_K, 256 values per super-block) and the two legacy types llama.cpp falls
 * back to for rows that are not a multiple of 256 (Q5_0, Q5_1). Written from the block layouts (ggml-common.h)
 * and the published rules of ggml's reference quantizers:
 * - every sub-block gets a float scale (and min) from a small search that minimizes a weighted error
 *   ("make_qx": symmetric, scale fitted by least squares over a few trial inverse scales; "make_q3": symmetric,
 *   codes refined one at a time; "make_qkx": asymmetric scale + min, least squares over trial scales);
 * - the sub-block scales (and mins) are then themselves quantized against one f16 super-scale (6 bits for
 *   Q3_K / Q4_K / Q5_K, 8 bits for Q6_K, 4 bits for Q2_K), and the codes are recomputed with the scales as
 *   stored, so rounding of the scales is not compounded.
 *
 * Measured RMS error vs f32 (test/gguf/kquant-roundtrip.test.ts: Gaussian rows, 1 % outliers ×6), relative to
 * the rows' RMS: Q2_K 0.328, Q3_K 0.182, Q4_K 0.084, Q5_K 0.042, Q6_K 0.023; Q5_0 0.059, Q5_1 0.044 (and for
 * comparison Q4_0 0.115, Q8_0 0.0074).
 */
import { f32ToF16, f16Table } from "../tensor.js";

const QK = 256;
const fr = Math.fround;
const F16 = f16Table();

/**
 * ggml's nearest_int: round to nearest, ties to even. ggml adds 1.5·2^23 in f32; the same trick with 1.5·2^52 in
 * f64 rounds the (unrounded f64) product the same way except on f32 rounding ties, and runs several times faster
 * than Math.round with a tie fix-up — this is the quantizers' innermost operation.
 */
const MAGIC = 6755399441055744;
const nint = (v: number): number => v + MAGIC - MAGIC;

/** Stores f32 x as f16 at b[o], returns the f16 value as f32 (what a reader will see). */
function putF16(b: Uint8Array, o: number, x: number): number {
  const h = f32ToF16(x);
  b[o] = h & 255;
  b[o + 1] = h >> 8;
  return F16[h];
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/**
 * Symmetric codes in [−nmax, nmax − 1] for x[o … o+n) (L gets code + nmax), weights x² (ggml's rmse_type 1):
 * starts from iscale = −nmax / (the value of largest magnitude), then tries 18 nearby inverse scales and keeps
 * the least-squares scale of the best. Returns the scale (value ≈ scale · (L − nmax)).
 */
function makeQx(n: number, nmax: number, x: Float32Array, o: number, L: Uint8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[o + i]);
    if (a > amax) { amax = a; max = x[o + i]; }
  }
  if (amax < 1e-30) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let best = -1, scale = 0;
  for (let is = -9; is <= 9; is++) {
    const iscale = -(nmax + (is === 0 ? 0 : 0.1 * is)) / max;
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[o + i];
      const l = clamp(nint(iscale * v), -nmax, nmax - 1);
      const w = v * v;
      sumlx += w * v * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && (best < 0 || sumlx * sumlx > best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + clamp(nint(iscale * x[o + i]), -nmax, nmax - 1);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/**
 * Q3_K's sub-block search: symmetric codes in [−nmax, nmax − 1] from iscale = −nmax / max, then up to 5 passes
 * that move single codes when that improves the x²-weighted least-squares fit. L gets code + nmax.
 */
function makeQ3(n: number, nmax: number, x: Float32Array, o: number, L: Int8Array): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[o + i]);
    if (a > amax) { amax = a; max = x[o + i]; }
  }
  if (amax < 1e-30) {
    L.fill(0, 0, n);
    return 0;
  }
  const iscale = -nmax / max;
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[o + i];
    const l = clamp(nint(iscale * v), -nmax, nmax - 1);
    L[i] = l;
    const w = v * v;
    sumlx += w * v * l;
    suml2 += w * l * l;
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[o + i], w = v * v;
      let slx = sumlx - w * v * L[i], sl2 = suml2 - w * L[i] * L[i];
      if (slx > 0 && sl2 > 0) {
        const nl = clamp(nint((v * sl2) / slx), -nmax, nmax - 1);
        if (nl !== L[i]) {
          slx += w * v * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[i] += nmax;
  return suml2 > 0 ? sumlx / suml2 : 0;
}

/**
 * Asymmetric codes in [0, nmax] with value ≈ scale · L − min (min ≥ 0 returned in out[1]), weights w: starts from
 * the range (max − min) / nmax, then tries nstep + 1 inverse scales (nmax + rmin + rdelta · is) / range and fits
 * scale and min by weighted least squares for each, keeping the one with the smallest weighted error (|Δ| when
 * useMad, Δ² otherwise). Returns the scale.
 */
function makeQkx(n: number, nmax: number, x: Float32Array, o: number, w: Float64Array, L: Uint8Array, lo: number,
  aux: Uint8Array, out: Float64Array, rmin: number, rdelta: number, nstep: number, useMad: boolean): number {
  const xs = XS; // the sub-block as f64, read many times below
  let min = x[o], max = x[o], sumW = 0, sumX = 0;
  for (let i = 0; i < n; i++) {
    const v = (xs[i] = x[o + i]);
    if (v < min) min = v;
    if (v > max) max = v;
    sumW += w[i];
    sumX += w[i] * v;
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    out[1] = -min;
    return 0;
  }
  let iscale = nmax / (max - min), scale = 1 / iscale;
  let bestErr = 0;
  for (let i = 0; i < n; i++) {
    let l = nint(iscale * (xs[i] - min));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    const d = scale * l + min - xs[i];
    bestErr += w[i] * (useMad ? Math.abs(d) : d * d);
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nint(iscale * (xs[i] - min));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      aux[i] = l;
      const wl = w[i] * l;
      sumL += wl;
      sumL2 += wl * l;
      sumXL += wl * xs[i];
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    let s = (sumW * sumXL - sumX * sumL) / D, m = (sumL2 * sumX - sumL * sumXL) / D;
    if (m > 0) {
      m = 0;
      s = sumXL / sumL2;
    }
    let e = 0;
    if (useMad) for (let i = 0; i < n; i++) e += w[i] * Math.abs(s * aux[i] + m - xs[i]);
    else for (let i = 0; i < n; i++) { const d = s * aux[i] + m - xs[i]; e += w[i] * d * d; }
    if (e < bestErr) {
      for (let i = 0; i < n; i++) L[lo + i] = aux[i];
      bestErr = e;
      scale = s;
      min = m;
    }
  }
  out[1] = -min;
  return scale;
}
const XS = new Float64Array(32);

function checkLength(name: string, n: number, k: number): void {
  if (n % k !== 0) throw new Error(`${name}: length ${n} is not a multiple of ${k}`);
}

/** Q6_K (210 bytes): ql[128], qh[64], int8 scales[16] (per 16 values), f16 d; value = d · scale · (q − 32). */
export function quantizeQ6_K(x: Float32Array): Uint8Array {
  checkLength("quantizeQ6_K", x.length, QK);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 210);
  const L = new Uint8Array(QK), scales = new Float64Array(16);
  for (let b = 0; b < nb; b++) {
    const o = b * QK, q = out.subarray(b * 210, (b + 1) * 210);
    let maxScale = 0, maxAbs = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQx(16, 32, x, o + 16 * j, L, 16 * j);
      if (Math.abs(scales[j]) > maxAbs) { maxAbs = Math.abs(scales[j]); maxScale = scales[j]; }
    }
    if (maxAbs < 1e-30) continue; // all zero: d = 0 and every byte 0 (codes 32 would also decode to 0)
    const iscale = -128 / maxScale;
    const d = putF16(q, 208, 1 / iscale);
    for (let j = 0; j < 16; j++) q[192 + j] = Math.min(127, nint(iscale * scales[j])) & 255;
    for (let j = 0; j < 16; j++) {
      const sd = fr(d * ((q[192 + j] << 24) >> 24));
      for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = sd ? clamp(nint(x[o + i] / sd), -32, 31) + 32 : 32;
    }
    // column 128n + 32k + l: nibble k / 2 of ql[64n + 32(k % 2) + l], bits 2k of qh[32n + l]
    for (let n = 0; n < 2; n++) {
      for (let l = 0; l < 32; l++) {
        const c = 128 * n + l;
        const q1 = L[c], q2 = L[c + 32], q3 = L[c + 64], q4 = L[c + 96];
        q[64 * n + l] = (q1 & 15) | ((q3 & 15) << 4);
        q[64 * n + 32 + l] = (q2 & 15) | ((q4 & 15) << 4);
        q[128 + 32 * n + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return out;
}

/** Q3_K (110 bytes): hmask[32], qs[64], 12-byte 6-bit scales (biased 32, per 16), f16 d; value = d·(s−32)·(q−4). */
export function quantizeQ3_K(x: Float32Array): Uint8Array {
  checkLength("quantizeQ3_K", x.length, QK);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 110);
  const L = new Uint8Array(QK), Ls = new Int8Array(16), scales = new Float64Array(16), ls = new Uint8Array(16);
  for (let b = 0; b < nb; b++) {
    const o = b * QK, q = out.subarray(b * 110, (b + 1) * 110);
    let maxScale = 0, maxAbs = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3(16, 4, x, o + 16 * j, Ls);
      for (let i = 0; i < 16; i++) L[16 * j + i] = Ls[i];
      if (Math.abs(scales[j]) > maxAbs) { maxAbs = Math.abs(scales[j]); maxScale = scales[j]; }
    }
    if (maxAbs < 1e-30) continue; // d = 0 decodes to zeros whatever the codes
    const iscale = -32 / maxScale;
    const d = putF16(q, 108, 1 / iscale);
    for (let j = 0; j < 16; j++) ls[j] = clamp(nint(iscale * scales[j]), -32, 31) + 32;
    // scale j: low 4 bits in byte j % 8 (low nibble for j < 8, high for j ≥ 8), top 2 bits in byte 8 + j % 4
    for (let j = 0; j < 16; j++) {
      q[96 + (j % 8)] |= (ls[j] & 15) << (j < 8 ? 0 : 4);
      q[96 + 8 + (j % 4)] |= (ls[j] >> 4) << (2 * Math.floor(j / 4));
    }
    for (let j = 0; j < 16; j++) {
      const sd = fr(d * (ls[j] - 32));
      for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = sd ? clamp(nint(x[o + i] / sd), -4, 3) + 4 : 4;
    }
    // column c: third bit in hmask[c % 32] bit c / 32; low 2 bits at bits 2((c % 128) / 32) of qs[32(c / 128) + c % 32]
    for (let c = 0; c < QK; c++) {
      let l = L[c];
      if (l > 3) {
        q[c % 32] |= 1 << (c >> 5);
        l -= 4;
      }
      q[32 + 32 * (c >> 7) + (c % 32)] |= l << (2 * ((c % 128) >> 5));
    }
  }
  return out;
}

/** Q2_K (84 bytes): scales[16] (4-bit scale | 4-bit min << 4, per 16), qs[64], f16 d, f16 dmin. */
export function quantizeQ2_K(x: Float32Array): Uint8Array {
  checkLength("quantizeQ2_K", x.length, QK);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 84);
  const L = new Uint8Array(QK), aux = new Uint8Array(16), w = new Float64Array(16), mm = new Float64Array(2);
  const scales = new Float64Array(16), mins = new Float64Array(16);
  for (let b = 0; b < nb; b++) {
    const o = b * QK, q = out.subarray(b * 84, (b + 1) * 84);
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let i = 0; i < 16; i++) w[i] = Math.abs(x[o + 16 * j + i]);
      scales[j] = makeQkx(16, 3, x, o + 16 * j, w, L, 16 * j, aux, mm, -0.5, 0.1, 15, true);
      mins[j] = mm[1];
      maxScale = Math.max(maxScale, scales[j]);
      maxMin = Math.max(maxMin, mins[j]);
    }
    // (a least-squares scale can come out negative on odd data: clamped to 0, as a 4-bit field must be)
    if (maxScale > 0) {
      const inv = 15 / maxScale;
      for (let j = 0; j < 16; j++) q[j] = clamp(nint(inv * scales[j]), 0, 15);
    }
    if (maxMin > 0) {
      const inv = 15 / maxMin;
      for (let j = 0; j < 16; j++) q[j] |= clamp(nint(inv * mins[j]), 0, 15) << 4;
    }
    const d = putF16(q, 80, maxScale / 15), dmin = putF16(q, 82, maxMin / 15);
    for (let j = 0; j < 16; j++) {
      const sd = fr(d * (q[j] & 15));
      if (!sd) continue; // codes 0: the block decodes to −dmin · m whatever they are
      const dm = fr(dmin * (q[j] >> 4));
      for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = clamp(nint((x[o + i] + dm) / sd), 0, 3);
    }
    // column 128n + 32j + k: bits 2j of qs[32n + k]
    for (let c = 0; c < QK; c++) q[16 + 32 * (c >> 7) + (c % 32)] |= L[c] << (2 * ((c % 128) >> 5));
  }
  return out;
}

/**
 * Q4_K / Q5_K shared search: 8 sub-blocks of 32, weights rms(x) + |x| (ggml's), asymmetric codes in [0, nmax];
 * scales and mins quantized to 6 bits against d = maxScale / 63, dmin = maxMin / 63. Returns the codes (0 … nmax)
 * per column after rounding with the stored scales; writes d, dmin and the 12 scale bytes at q[0 … 15].
 */
const S45 = {
  aux: new Uint8Array(32), w: new Float64Array(32), mm: new Float64Array(2), scales: new Float64Array(8),
  mins: new Float64Array(8), ls: new Uint8Array(8), lm: new Uint8Array(8),
};
function quantizeQ45Block(x: Float32Array, o: number, nmax: number, q: Uint8Array, L: Uint8Array, rmin: number, nstep: number): void {
  const { aux, w, mm, scales, mins, ls, lm } = S45;
  let sumX2 = 0;
  for (let i = 0; i < QK; i++) sumX2 += x[o + i] * x[o + i];
  const avX = Math.sqrt(sumX2 / QK);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    for (let i = 0; i < 32; i++) w[i] = avX + Math.abs(x[o + 32 * j + i]);
    scales[j] = makeQkx(32, nmax, x, o + 32 * j, w, L, 32 * j, aux, mm, rmin, 0.1, nstep, false);
    mins[j] = mm[1];
    maxScale = Math.max(maxScale, scales[j]);
    maxMin = Math.max(maxMin, mins[j]);
  }
  const invS = maxScale > 0 ? 63 / maxScale : 0, invM = maxMin > 0 ? 63 / maxMin : 0;
  for (let j = 0; j < 8; j++) {
    ls[j] = clamp(nint(invS * scales[j]), 0, 63);
    lm[j] = clamp(nint(invM * mins[j]), 0, 63);
  }
  // the 12-byte field (see unpack_scale_min_k4 in native/src/kquants.h): j < 4 in bytes j, j + 4 (low 6 bits);
  // j ≥ 4: low nibbles in byte j + 4, top 2 bits in the top of bytes j − 4 (scale) and j (min)
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      q[4 + j] |= ls[j];
      q[4 + j + 4] |= lm[j];
    } else {
      q[4 + j + 4] = (ls[j] & 15) | ((lm[j] & 15) << 4);
      q[4 + j - 4] |= (ls[j] >> 4) << 6;
      q[4 + j] |= (lm[j] >> 4) << 6;
    }
  }
  const d = putF16(q, 0, maxScale / 63), dmin = putF16(q, 2, maxMin / 63);
  for (let j = 0; j < 8; j++) {
    const sd = fr(d * ls[j]);
    if (!sd) continue;
    const dm = fr(dmin * lm[j]);
    for (let i = 32 * j; i < 32 * j + 32; i++) L[i] = clamp(nint((x[o + i] + dm) / sd), 0, nmax);
  }
}

/** Q4_K (144 bytes): f16 d, f16 dmin, 12-byte scales/mins (per 32), qs[128]; value = d·sc·q − dmin·m. */
export function quantizeQ4_K(x: Float32Array): Uint8Array {
  checkLength("quantizeQ4_K", x.length, QK);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 144);
  const L = new Uint8Array(QK);
  for (let b = 0; b < nb; b++) {
    const q = out.subarray(b * 144, (b + 1) * 144);
    quantizeQ45Block(x, b * QK, 15, q, L, -1, 20);
    // column 64g + k: low nibble of qs[32g + k]; 64g + 32 + k: high nibble
    for (let g = 0; g < 4; g++) for (let k = 0; k < 32; k++) q[16 + 32 * g + k] = L[64 * g + k] | (L[64 * g + 32 + k] << 4);
  }
  return out;
}

/** Q5_K (176 bytes): as Q4_K plus qh[32] (fifth bits: bit j of qh[k] for column 32j + k). */
export function quantizeQ5_K(x: Float32Array): Uint8Array {
  checkLength("quantizeQ5_K", x.length, QK);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 176);
  const L = new Uint8Array(QK);
  for (let b = 0; b < nb; b++) {
    const q = out.subarray(b * 176, (b + 1) * 176);
    quantizeQ45Block(x, b * QK, 31, q, L, -0.5, 15);
    for (let c = 0; c < QK; c++) if (L[c] > 15) q[16 + (c % 32)] |= 1 << (c >> 5);
    for (let g = 0; g < 4; g++) {
      for (let k = 0; k < 32; k++) q[48 + 32 * g + k] = (L[64 * g + k] & 15) | ((L[64 * g + 32 + k] & 15) << 4);
    }
  }
  return out;
}

/** Q5_0 (22 bytes per 32): f16 d = max / −16 (max = the value of largest magnitude); q = min(31, ⌊x/d + 16.5⌋). */
export function quantizeQ5_0(x: Float32Array): Uint8Array {
  checkLength("quantizeQ5_0", x.length, 32);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 22);
  for (let b = 0; b < nb; b++) {
    const o = 32 * b, q = out.subarray(22 * b, 22 * b + 22);
    let amax = 0, max = 0;
    for (let i = 0; i < 32; i++) if (Math.abs(x[o + i]) > amax) { amax = Math.abs(x[o + i]); max = x[o + i]; }
    const d = fr(max / -16), id = d ? fr(1 / d) : 0;
    putF16(q, 0, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const a = Math.min(31, Math.trunc(fr(fr(x[o + j] * id) + 16.5)));
      const c = Math.min(31, Math.trunc(fr(fr(x[o + 16 + j] * id) + 16.5)));
      q[6 + j] = (a & 15) | ((c & 15) << 4);
      qh |= ((a >> 4) << j) | ((c >> 4) << (j + 16));
    }
    q[2] = qh & 255; q[3] = (qh >>> 8) & 255; q[4] = (qh >>> 16) & 255; q[5] = qh >>> 24;
  }
  return out;
}

/** Q5_1 (24 bytes per 32): f16 d = (max − min) / 31, f16 m = min; q = min(31, ⌊(x − min)/d + 0.5⌋). */
export function quantizeQ5_1(x: Float32Array): Uint8Array {
  checkLength("quantizeQ5_1", x.length, 32);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 24);
  for (let b = 0; b < nb; b++) {
    const o = 32 * b, q = out.subarray(24 * b, 24 * b + 24);
    let min = Infinity, max = -Infinity;
    for (let i = 0; i < 32; i++) { min = Math.min(min, x[o + i]); max = Math.max(max, x[o + i]); }
    const d = fr((max - min) / 31), id = d ? fr(1 / d) : 0;
    putF16(q, 0, d);
    putF16(q, 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const a = Math.min(31, Math.trunc(fr(fr(fr(x[o + j] - min) * id) + 0.5)));
      const c = Math.min(31, Math.trunc(fr(fr(fr(x[o + 16 + j] - min) * id) + 0.5)));
      q[8 + j] = (a & 15) | ((c & 15) << 4);
      qh |= ((a >> 4) << j) | ((c >> 4) << (j + 16));
    }
    q[4] = qh & 255; q[5] = (qh >>> 8) & 255; q[6] = (qh >>> 16) & 255; q[7] = qh >>> 24;
  }
  return out;
}
