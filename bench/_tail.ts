// The machine's own tail, for benches that time round trips: windows of pure
// computation on one thread, each timed as a round trip is.

/** p50, p90 and p99 of a set of times, µs. */
export interface Tail {
  p50: number;
  p90: number;
  p99: number;
}

/** The quantiles of `micros`, which this sorts in place. */
export function tailOf(micros: Float64Array): Tail {
  micros.sort();
  const at = (q: number) => micros[Math.min(micros.length - 1, Math.ceil(q * micros.length) - 1)];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

/** Additions per window: about a pool's round trip (~2 µs) on these machines. */
export const MACHINE_WORK = 3_000;

/**
 * `windows` windows of MACHINE_WORK additions on this thread, each timed as
 * a round trip is. No pool and no other thread: whatever is slow here (the
 * host taking the CPU away, an interrupt, a timer's tick) is slow for any pool.
 */
export function machineTail(windows: number): Tail {
  const micros = new Float64Array(windows);
  let sum = 0;
  for (let i = 0; i < windows; i++) {
    const start = performance.now();
    for (let j = 0; j < MACHINE_WORK; j++) sum += j ^ i;
    micros[i] = (performance.now() - start) * 1000;
  }
  if (sum < 0) throw new Error("unreachable: a sum of non-negative numbers");
  return tailOf(micros);
}
