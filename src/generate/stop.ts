/**
 * Stop strings over a streamed text: finds the earliest stop and holds back any tail that might still
 * become one, so a stop string never leaks into the stream.
 */
export class StopMatcher {
  private text = "";
  private emitted = 0;
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.maxLen = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Adds a delta; returns the text now safe to emit and whether a stop string was hit. */
  push(delta: string): { text: string; stopped: boolean } {
    this.text += delta;
    if (!this.stops.length) return this.take(this.text.length, false);
    let cut = -1;
    const from = Math.max(0, this.emitted - this.maxLen);
    for (const s of this.stops) {
      if (!s) continue;
      const i = this.text.indexOf(s, from);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) return this.take(cut, true);
    // hold back the longest tail that is a prefix of some stop string
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) { hold = k; break; }
      }
    }
    return this.take(this.text.length - hold, false);
  }

  /** The held-back tail, at the end of a generation that did not stop on a string. */
  flush(): string {
    return this.take(this.text.length, false).text;
  }

  private take(upTo: number, stopped: boolean): { text: string; stopped: boolean } {
    const out = upTo > this.emitted ? this.text.slice(this.emitted, upTo) : "";
    this.emitted = Math.max(this.emitted, upTo);
    if (stopped) this.text = this.text.slice(0, upTo);
    return { text: out, stopped };
  }
}
