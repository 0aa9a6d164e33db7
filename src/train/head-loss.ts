/**
 * lm_head + cross-entropy fused, for the training loss: logits are made only for positions that have a target
 * (prompt and padding rows never reach the (·, vocab) matmul), a chunk of rows at a time, and remade in backward
 * instead of kept. With XVERSE's 100K vocabulary this replaces three (B·T, vocab) f64 buffers (logits, their
 * gradient, its transpose) with one (chunk, vocab) at a time, and skips the head for masked rows.
 * Same math as linear + crossEntropy: mean over counted rows, ignore index −100.
 */
import { crossEntropy, linear, Tape, Var } from "./autograd-ops.js";

/** x (N, D) final hidden states, W (V, D) lm_head, targets (N) → mean loss over targets ≠ ignoreIndex. */
export function headCrossEntropy(t: Tape, x: Var, W: Var, targets: Int32Array, D: number, V: number, chunkRows = 256, ignoreIndex = -100): { loss: Var; count: number } {
  const rows: number[] = [];
  for (let n = 0; n < targets.length; n++) if (targets[n] !== ignoreIndex) rows.push(n);
  const count = rows.length;
  const y = new Var(new Float64Array(1), x.requiresGrad || W.requiresGrad);
  if (!count) return { loss: y, count };
  // one chunk: its rows of x as a Var, its targets, and (when recording) a tape holding linear + CE backward
  const chunk = (c0: number, tape: Tape): { xc: Var; loss: Var } => {
    const c1 = Math.min(count, c0 + chunkRows);
    const xc = new Var(new Float64Array((c1 - c0) * D), x.requiresGrad);
    const tg = new Int32Array(c1 - c0);
    for (let r = c0; r < c1; r++) {
      const n = rows[r];
      for (let d = 0; d < D; d++) xc.data[(r - c0) * D + d] = x.data[n * D + d];
      tg[r - c0] = targets[n];
    }
    const { loss } = crossEntropy(tape, linear(tape, xc, W, D, V), tg, V, ignoreIndex);
    return { xc, loss };
  };
  let total = 0;
  for (let c0 = 0; c0 < count; c0 += chunkRows) {
    const { loss } = chunk(c0, new Tape(false));
    total += loss.data[0] * Math.min(chunkRows, count - c0);
  }
  y.data[0] = total / count;
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    for (let c0 = 0; c0 < count; c0 += chunkRows) {
      const t2 = new Tape();
      const { xc, loss } = chunk(c0, t2);
      // the chunk's CE is a mean over its own rows: weight it by its share of all counted rows
      t2.backward(loss, (y.grad[0] * Math.min(chunkRows, count - c0)) / count);
      if (xc.requiresGrad && xc.grad) {
        const gx = x.g();
        for (let r = c0; r < Math.min(count, c0 + chunkRows); r++) {
          const n = rows[r];
          for (let d = 0; d < D; d++) gx[n * D + d] += xc.grad[(r - c0) * D + d];
        }
      }
    }
  });
  return { loss: y, count };
}
