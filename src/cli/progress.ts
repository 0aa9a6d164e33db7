/**
 * A progress bar on stderr for long, countable work (tensors written, items scored): redrawn in place on a
 * terminal, one line per 10 % on pipes and logs (no stream of carriage returns there).
 */
export function progressBar(quiet: boolean): (done: number, total: number, label: string) => void {
  const tty = process.stderr.isTTY === true;
  const t0 = Date.now();
  let lastPct = -1;
  return (done, total, label) => {
    if (quiet) return;
    const width = 30, fill = Math.round((width * done) / total), pct = Math.floor((100 * done) / total);
    const line = `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${done}/${total} ${((Date.now() - t0) / 1000).toFixed(0)}s ${label}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}${done === total ? "\n" : ""}`);
    else if (pct >= lastPct + 10 || done === total) {
      lastPct = pct;
      process.stderr.write(line + "\n");
    }
  };
}

/** Models below this load fast enough that a progress line would only flicker. */
const LOAD_PROGRESS_MIN_BYTES = 1e9;

/**
 * Load progress for LoadModelOptions.onProgress: one line redrawn in place on a terminal ("loading weights
 * 3.1/13.5 GB 23 % 4s"), at most every 100 ms, cleared when done; nothing when stderr is not a terminal (logs
 * and pipes get no stream of carriage returns) or the model is under 1 GB. Undefined when it would never draw.
 */
export function loadProgress(stream: NodeJS.WriteStream = process.stderr): ((done: number, total: number) => void) | undefined {
  if (stream.isTTY !== true) return undefined;
  const t0 = Date.now();
  let last = 0, shown = false;
  return (done, total) => {
    if (total < LOAD_PROGRESS_MIN_BYTES) return;
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    if (done >= total) {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
      return;
    }
    shown = true;
    const gb = (n: number) => (n / 1e9).toFixed(1);
    stream.write(`\r\x1b[Kloading weights ${gb(done)}/${gb(total)} GB ${Math.floor((100 * done) / total)} % ${((now - t0) / 1000).toFixed(0)}s`);
  };
}
