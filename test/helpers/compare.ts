/** max |a[aOff+i] − b[bOff+i]| over n elements. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, aOff = 0, bOff = 0, n = a.length - aOff): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(a[aOff + i] - b[bOff + i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}
