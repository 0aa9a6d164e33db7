/**
 * Loss curves as standalone SVG, like LLaMA-Factory's --plot_loss (training_loss.png): the raw training loss
 * faint, an exponential moving average over it with LLaMA-Factory's weight (1.8·(sigmoid(0.05·n) − 0.5)), and
 * the eval loss as dots.
 */
import type { LogEntry } from "./loop.js";
import { maxOf, minOf } from "../arrays.js";

/** LLaMA-Factory's `smooth`: EMA whose weight grows with the number of points. */
export function smooth(values: number[]): number[] {
  if (values.length === 0) return [];
  const weight = 1.8 * (1 / (1 + Math.exp(-0.05 * values.length)) - 0.5);
  const out: number[] = [];
  let last = values[0];
  for (const v of values) {
    last = last * weight + (1 - weight) * v;
    out.push(last);
  }
  return out;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const step0 = span / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
  return out;
}

export function lossPlotSvg(history: LogEntry[], title = "training loss"): string {
  const train = history.filter((e) => e.loss !== undefined).map((e) => [e.step, e.loss!] as const);
  const evals = history.filter((e) => e.evalLoss !== undefined).map((e) => [e.step, e.evalLoss!] as const);
  const W = 640, H = 400, L = 60, R = 20, T = 40, B = 50;
  const all = [...train, ...evals];
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]).filter(Number.isFinite);
  const x0 = minOf(xs, 0), x1 = maxOf(xs, 1);
  let y0 = ys.length ? minOf(ys) : 0, y1 = ys.length ? maxOf(ys) : 1;
  const pad = (y1 - y0 || 1) * 0.05; y0 -= pad; y1 += pad;
  const px = (x: number): number => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number): number => T + (1 - (y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const line = (pts: (readonly [number, number])[]): string => pts.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
  const sm = smooth(train.map((p) => p[1]));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${L - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<text x="${px(t).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">step</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">loss</text>`);
  if (train.length) {
    parts.push(`<path d="${line(train)}" fill="none" stroke="#1f77b4" stroke-opacity="0.4"/>`,
      `<path d="${line(train.map((p, i) => [p[0], sm[i]] as const))}" fill="none" stroke="#1f77b4" stroke-width="2"/>`);
  }
  for (const [x, y] of evals) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="#d62728"/>`);
  const legend: [string, string][] = [["#1f77b4", "original (faint) / smoothed"], ...(evals.length ? [["#d62728", "eval loss"] as [string, string]] : [])];
  legend.forEach(([c, s], i) => parts.push(`<rect x="${W - R - 190}" y="${T + 6 + i * 18}" width="12" height="12" fill="${c}"/>`,
    `<text x="${W - R - 172}" y="${T + 16 + i * 18}">${esc(s)}</text>`));
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
