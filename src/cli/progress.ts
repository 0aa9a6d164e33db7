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
