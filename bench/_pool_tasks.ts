// Task module of bench/pool_bench.ts, loaded by taskpool's workers and by the
// baseline pool's workers alike (and of the Redis and sight benches).
import { taskProgress } from "../src/pool/task_signal.ts";

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

/** Returns the length of its bytes: a large argument, a small result. */
export function byteLength(bytes: Uint8Array): number {
  return bytes.byteLength;
}

/** Returns its bytes: a large argument and a large result. */
export function echoBytes(bytes: Uint8Array): Uint8Array {
  return bytes;
}

/** Ends its worker: `Deno.exit()` in a worker ends that worker alone. Never settles. */
export async function crash(): Promise<never> {
  Deno.exit(1);
  await new Promise(() => {});
}

/** Sums `n` numbers in a loop; returns the sum (the baseline of `countWithProgress`). */
export function count(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += i;
  return sum;
}

/** As `count`, and reports its progress at every step. */
export function countWithProgress(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += i;
    taskProgress(i / n);
  }
  return sum;
}

/** Returns its argument after reporting progress once: a no-op job that reports. */
export function noopProgress(x: number): number {
  taskProgress(0.5);
  return x;
}
