// Task module of bench/pool_bench.ts, loaded by taskpool's workers and by the
// baseline pool's workers alike.

/** Returns its argument: the round trip alone. */
export function noop(x: number): number {
  return x;
}

/** Busy-loops on the CPU for about `ms` milliseconds; returns the loop count. */
export function burn(ms: number): number {
  const end = performance.now() + ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins;
}
