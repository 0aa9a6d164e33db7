/**
 * A progress bar with rate and ETA on stderr. On a terminal it redraws one line; in a log (not a TTY) it prints
 * a line every 5%, so CI logs stay short. Items answered from the cache do not count towards the rate.
 */
export class Progress {
  private done = 0;
  private fresh = 0;
  private readonly started = Date.now();
  private lastPct = -1;
  private lastDraw = 0;

  constructor(private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr, private readonly enabled = true) {}

  tick(label: string, cached = false): void {
    this.done++;
    if (!cached) this.fresh++;
    if (!this.enabled) return;
    const pct = this.total ? Math.floor((100 * this.done) / this.total) : 100;
    const now = Date.now();
    if (this.out.isTTY) {
      if (now - this.lastDraw < 100 && this.done < this.total) return;
      this.lastDraw = now;
      const width = 24, fill = Math.round((width * this.done) / Math.max(1, this.total));
      const bar = "█".repeat(fill) + "░".repeat(width - fill);
      this.out.write(`\r${bar} ${this.done}/${this.total} ${pct}% ${this.rate()} ETA ${this.eta()} ${label}`.slice(0, (this.out.columns || 100) - 1) + "\x1b[K");
      if (this.done === this.total) this.out.write("\n");
    } else if (Math.floor(pct / 5) !== Math.floor(this.lastPct / 5) || this.done === this.total) {
      this.lastPct = pct;
      this.out.write(`[eval] ${this.done}/${this.total} (${pct}%) ${this.rate()} ETA ${this.eta()} ${label}\n`);
    }
  }

  private seconds(): number { return (Date.now() - this.started) / 1000; }

  private rate(): string {
    const s = this.seconds();
    return s > 0 && this.fresh > 0 ? `${(this.fresh / s).toFixed(2)} it/s` : "- it/s";
  }

  /** Remaining time from the rate of items actually computed in this run. */
  private eta(): string {
    const left = this.total - this.done;
    if (left <= 0) return "0s";
    if (this.fresh === 0) return "?";
    return formatDuration((left * this.seconds()) / this.fresh);
  }
}

export function formatDuration(s: number): string {
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
