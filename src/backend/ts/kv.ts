/**
 * The reference KV kernels: storing keys/values into paged blocks (f32 / f16 / q8_0) and causal attention that
 * reads the blocks in place. Plain two-pass softmax over one row's scores (O(S) scratch for one query row, never
 * O(T × S)); the native kernels (online softmax per block) are tested against this.
 */
import type { AttentionParams, KvView } from "../backend.js";
import { f16Table, f32ToF16 } from "../../tensor.js";

const fr = Math.fround;
let scores = new Float32Array(0);
let rowBuf = new Float32Array(0);

/** Byte offset of the K (isV 0) or V (isV 1) region of kv.layer in block id b, and its segment. */
function region(kv: KvView, b: number, isV: number): [number, number] {
  const s = Math.floor(b / kv.blocksPerSegment);
  const L = kv.layout;
  return [s, (b - s * kv.blocksPerSegment) * L.blockBytes + (2 * kv.layer + isV) * L.regionBytes];
}

/** q8_0 rounding of one group: d = amax/127 (stored f16), q = roundf(x · (1/d)) as llama.cpp's quantize_row_q8_0. */
function quantizeGroup(x: Float32Array, xo: number, n: number, q: Int8Array, qo: number): number {
  let amax = 0;
  for (let i = 0; i < n; i++) amax = Math.max(amax, Math.abs(x[xo + i]));
  const d = fr(amax / 127);
  const id = d ? fr(1 / d) : 0;
  for (let i = 0; i < n; i++) {
    const v = fr(x[xo + i] * id);
    q[qo + i] = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
  }
  return f32ToF16(d);
}

export function kvWriteRef(kv: KvView, k: Float32Array, v: Float32Array, start: number, T: number): void {
  const L = kv.layout, B = L.blockSize, hd = L.headDim, kvd = L.nKvHeads * hd;
  for (let isV = 0; isV < 2; isV++) {
    const src = isV ? v : k;
    for (let t = 0; t < T; t++) {
      const pos = start + t;
      const [s, base] = region(kv, kv.table[Math.floor(pos / B)], isV);
      const seg = kv.segments[s];
      const row = pos % B;
      for (let h = 0; h < L.nKvHeads; h++) {
        const el = (h * B + row) * hd; // element index inside the region
        const xo = t * kvd + h * hd;
        if (L.type === "f32") seg.f32.set(src.subarray(xo, xo + hd), base / 4 + el);
        else if (L.type === "f16") for (let i = 0; i < hd; i++) seg.u16[base / 2 + el + i] = f32ToF16(src[xo + i]);
        else {
          for (let g = 0; g < hd; g += L.group) {
            seg.u16[(base + L.scaleOffset) / 2 + (el + g) / L.group] = quantizeGroup(src, xo + g, L.group, seg.i8, base + el + g);
          }
        }
      }
    }
  }
}

/** Decodes key or value s of kv head h into out (headDim floats). */
export function kvReadRow(kv: KvView, isV: number, s: number, h: number, out: Float32Array): void {
  const L = kv.layout, B = L.blockSize, hd = L.headDim;
  const [si, base] = region(kv, kv.table[Math.floor(s / B)], isV);
  const seg = kv.segments[si];
  const el = (h * B + (s % B)) * hd;
  if (L.type === "f32") { out.set(seg.f32.subarray(base / 4 + el, base / 4 + el + hd)); return; }
  const lut = f16Table();
  if (L.type === "f16") { for (let i = 0; i < hd; i++) out[i] = lut[seg.u16[base / 2 + el + i]]; return; }
  const so = (base + L.scaleOffset) / 2 + el / L.group;
  for (let i = 0; i < hd; i++) out[i] = seg.i8[base + el + i] * lut[seg.u16[so + Math.floor(i / L.group)]];
}

export function pagedAttentionRef(out: Float32Array, q: Float32Array, kv: KvView, p: AttentionParams): void {
  const { T, past, nHeads, nKvHeads, headDim: hd, scale } = p;
  const S = past + T;
  if (scores.length < S) scores = new Float32Array(S);
  if (rowBuf.length < hd) rowBuf = new Float32Array(hd);
  const group = nHeads / nKvHeads;
  for (let h = 0; h < nHeads; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const last = past + t; // causal: keys 0 … last
      const qo = (t * nHeads + h) * hd;
      let max = -Infinity;
      for (let s = 0; s <= last; s++) {
        kvReadRow(kv, 0, s, kvh, rowBuf);
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[qo + i] * rowBuf[i];
        d *= scale;
        scores[s] = d;
        if (d > max) max = d;
      }
      let sum = 0;
      for (let s = 0; s <= last; s++) {
        const e = Math.exp(scores[s] - max);
        scores[s] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let i = 0; i < hd; i++) out[qo + i] = 0;
      for (let s = 0; s <= last; s++) {
        const w = scores[s] * inv;
        kvReadRow(kv, 1, s, kvh, rowBuf);
        for (let i = 0; i < hd; i++) out[qo + i] += w * rowBuf[i];
      }
    }
  }
}
