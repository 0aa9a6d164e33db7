/**
 * Array helpers for inputs of any length. `a.push(...b)` and `Math.max(...b)` pass every element as a call
 * argument, and V8 throws `RangeError: Maximum call stack size exceeded` somewhere past ~100k arguments — a 200 KB
 * text's ids, a pickle list with 300k APPENDS items. Everything whose length a user controls goes through these.
 */

/** Appends `src` to `dst` in place (the loop form of `dst.push(...src)`); returns `dst`. */
export function pushAll<T>(dst: T[], src: ArrayLike<T> | Iterable<T>): T[] {
  if (isArrayLike(src)) for (let i = 0; i < src.length; i++) dst.push(src[i]);
  else for (const v of src) dst.push(v);
  return dst;
}

/** The smallest value (Infinity for none, as `Math.min()`); NaN if any is NaN, as `Math.min` does. */
export function minOf(values: Iterable<number>, start = Infinity): number {
  let m = start;
  for (const v of values) m = Math.min(m, v);
  return m;
}

/** The largest value (-Infinity for none, as `Math.max()`); NaN if any is NaN, as `Math.max` does. */
export function maxOf(values: Iterable<number>, start = -Infinity): number {
  let m = start;
  for (const v of values) m = Math.max(m, v);
  return m;
}

function isArrayLike<T>(x: ArrayLike<T> | Iterable<T>): x is ArrayLike<T> {
  return typeof (x as ArrayLike<T>).length === "number";
}
