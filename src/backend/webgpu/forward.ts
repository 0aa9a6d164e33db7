/**
 * The whole forward on the GPU, in the model's paper order (model/xverse.ts): per layer RMSNorm → q, k, v →
 * RoPE → KV write → attention → o → residual → RMSNorm → gate, up → SiLU·mul → down → residual; then the final
 * norm and lm_head. Everything is recorded into one command encoder and submitted once; only the logits come
 * back ("none" reads nothing). Activation buffers are allocated for the largest N seen and reused.
 */
/// <reference types="@webgpu/types" />
import type { DeviceForward, DeviceForwardRequest, KvLayout, KvSegment } from "../backend.js";
import { XverseError } from "../../errors.js";
import { USAGE } from "./context.js";
import { kvKind, type KvBinding, type WebGpuKernels } from "./kernels.js";
import { KvArenas, tokenMeta } from "./kv.js";
import { Recorder } from "./recorder.js";
import { fuseRows } from "./fuse.js";
import type { DeviceLayer, Weight } from "../backend.js";

const STORAGE = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;

export class WebGpuForward implements DeviceForward {
  private readonly bufs = new Map<string, GPUBuffer>();
  private readonly vectors = new WeakMap<Float32Array, GPUBuffer>();
  /** Per layer (keyed by its gate weight): the fused [gate; up] weight, or null when they cannot be fused. */
  private readonly gateUp = new WeakMap<Weight, Weight | null>();
  /** Fuse gate and up (fuse.ts); false keeps two matmuls (the parity test compares both). */
  fuse = true;
  private readonly arenas;
  private readonly rec;

  get maxKvLayerBytes(): number {
    return this.kernels.ctx.maxKvLayerBytes;
  }

  constructor(readonly kernels: WebGpuKernels) {
    this.arenas = new KvArenas(kernels.ctx);
    this.rec = new Recorder(kernels.ctx);
  }

  copyKvBlock(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number, dst: number, src: number): void {
    this.arenas.copyBlock(segments, layout, blocksPerSegment, dst, src);
  }

  /** A reusable activation buffer of at least `bytes` (grown, never shrunk). */
  private buf(name: string, bytes: number): GPUBuffer {
    let b = this.bufs.get(name);
    if (!b || b.size < bytes) {
      b?.destroy();
      b = this.kernels.ctx.buffer(Math.max(bytes, (b?.size ?? 0) * 1.5), STORAGE, name);
      this.bufs.set(name, b);
    }
    return b;
  }

  private put(name: string, data: Float32Array | Uint32Array | Int32Array): GPUBuffer {
    const b = this.buf(name, data.byteLength);
    if (data.byteLength) this.kernels.ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }

  /** Norm weights, uploaded once. */
  private vector(v: Float32Array): GPUBuffer {
    let b = this.vectors.get(v);
    if (!b) {
      b = this.kernels.ctx.upload(v);
      this.vectors.set(v, b);
    }
    return b;
  }

  /** The fused [gate; up] weight made for this gate weight (null: not fusable; undefined: not seen yet). */
  fusedFor(gate: Weight): Weight | null | undefined {
    return this.gateUp.get(gate);
  }

  private fusedGateUp(L: DeviceLayer): Weight | null {
    if (!this.fuse) return null;
    let f = this.gateUp.get(L.gate);
    // undefined: not tried yet; a fused weight without handle was released (browser disposeModel): fuse again
    if (f === undefined || (f && !f.handle)) {
      f = fuseRows(this.kernels.ctx, L.gate, L.up);
      this.gateUp.set(L.gate, f);
    }
    return f;
  }

  async forward(r: DeviceForwardRequest): Promise<Float32Array> {
    const K = this.kernels, ctx = K.ctx;
    ctx.check();
    const seq0 = r.seqs[0].kv;
    for (const s of r.seqs) {
      if (s.kv.segments !== seq0.segments) throw new XverseError("bad_argument", "WebGPU forward: every sequence of one batch must belong to the same KV pool");
    }
    const layout = seq0.layout, B = layout.blockSize;
    const arena = this.arenas.ensure(seq0.segments, layout, seq0.blocksPerSegment);

    const { meta, tables, N } = tokenMeta(r.seqs);
    const H = r.hidden, I = r.intermediate, hd = r.headDim, qd = r.nHeads * hd, kvd = r.nKvHeads * hd;
    const x = this.put("x", r.x.subarray(0, N * H));
    const cos = this.put("cos", r.cos.subarray(0, N * hd / 2)), sin = this.put("sin", r.sin.subarray(0, N * hd / 2));
    const kvb: KvBinding = {
      arenas: arena.layers, perLayer: true, meta: this.put("meta", meta), tables: this.put("tables", tables), N, blockSize: B,
      ...kvKind(layout),
    };
    const xn = this.buf("xn", N * H * 4), q = this.buf("q", N * qd * 4), k = this.buf("k", N * kvd * 4), v = this.buf("v", N * kvd * 4);
    const att = this.buf("att", N * qd * 4), proj = this.buf("proj", N * H * 4);
    const gate = this.buf("gate", N * I * 4), up = this.buf("up", 2 * N * I * 4);
    const rec = this.rec, scale = 1 / Math.sqrt(hd);

    // each residual add is fused with the RMSNorm that follows it (the next block's input norm)
    if (r.layers.length) K.encodeRmsnorm(rec, xn, x, this.vector(r.layers[0].inputNorm), N, H, r.eps);
    for (let l = 0; l < r.layers.length; l++) {
      const L = r.layers[l];
      K.encodeMatmul(rec, q, xn, L.q, N); // (N, nHeads·hd)
      K.encodeMatmul(rec, k, xn, L.k, N); // (N, nKv·hd)
      K.encodeMatmul(rec, v, xn, L.v, N);
      K.encodeRope(rec, q, k, cos, sin, N, r.nHeads, r.nKvHeads, hd);
      K.encodeKvWrite(rec, kvb, l, k, v, r.nKvHeads, hd);
      K.encodeAttention(rec, kvb, l, att, q, r.nHeads, r.nKvHeads, hd, scale);
      K.encodeMatmul(rec, proj, att, L.o, N); // (N, hidden)
      K.encodeAddRmsnorm(rec, xn, x, proj, this.vector(L.postNorm), N, H, r.eps); // x += proj; xn = norm(x)
      const gu = this.fusedGateUp(L);
      if (gu) {
        K.encodeMatmul(rec, up, xn, gu, N); // (N, 2 · intermediate): [gate | up] per token
        K.encodeSiluMulHalves(rec, gate, up, N, I);
      } else {
        K.encodeMatmul(rec, gate, xn, L.gate, N); // (N, intermediate)
        K.encodeMatmul(rec, up, xn, L.up, N);
        K.encodeSiluMul(rec, gate, up, N * I);
      }
      K.encodeMatmul(rec, proj, gate, L.down, N); // (N, hidden)
      const next = r.layers[l + 1];
      if (next) K.encodeAddRmsnorm(rec, xn, x, proj, this.vector(next.inputNorm), N, H, r.eps);
      else if (r.logits === "all") K.encodeAddRmsnorm(rec, xn, x, proj, this.vector(r.norm), N, H, r.eps);
      else K.encodeAdd(rec, x, proj, N * H);
    }
    if (r.logits === "none") {
      rec.submit();
      return new Float32Array(0);
    }
    let rows = N, normed = xn;
    if (r.logits === "last") {
      // the last new token of each sequence: (B, hidden)
      rows = r.seqs.length;
      const last = this.buf("last", rows * H * 4);
      for (let b = 0, end = 0; b < rows; b++) {
        end += r.seqs[b].T;
        rec.copy(x, (end - 1) * H * 4, last, b * H * 4, H * 4);
      }
      normed = this.buf("lastNorm", rows * H * 4);
      K.encodeRmsnorm(rec, normed, last, this.vector(r.norm), rows, H, r.eps);
    } else if (!r.layers.length) {
      K.encodeRmsnorm(rec, xn, x, this.vector(r.norm), N, H, r.eps);
    }
    const logits = this.buf("logits", rows * r.vocab * 4);
    K.encodeMatmul(rec, logits, normed, r.lmHead, rows);
    const got = await K.readF32(logits, rows * r.vocab, rec);
    const out = r.out ?? new Float32Array(rows * r.vocab);
    if (out.length < got.length) throw new XverseError("bad_argument", `forward: the logits buffer holds ${out.length} values, ${got.length} needed`);
    out.set(got);
    return out;
  }
}
