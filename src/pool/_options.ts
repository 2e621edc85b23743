/**
 * A pool's options, checked at the edge and with their defaults applied:
 * a bad value throws at once, worded as std does ("Cannot create pool as
 * 'workers' must be …: current value is …").
 *
 * @module
 */

import { checkMs, describe } from "../_util.ts";
import { resolveModule } from "./_functions.ts";
import type { WorkerPoolOptions } from "./types.ts";

/** Bytes of a task's arguments or a result per ring slot, unless `slotSize` says otherwise. */
const DEFAULT_POOL_SLOT_SIZE = 4096;
/** The smallest slot: room for an error message that says what went wrong. */
const MIN_POOL_SLOT_SIZE = 256;
/** The largest slot accepted. */
const MAX_POOL_SLOT_SIZE = 1 << 26;
/** The most workers a pool may have. */
const MAX_WORKERS = 1024;
/**
 * Tasks that wait in a pool's queue by default (at least): deep enough that
 * the workers take tasks in large batches and never starve between the
 * main thread's turns (see `WorkerPoolOptions.capacity`).
 */
const DEFAULT_POOL_CAPACITY = 256;
/** The largest queue capacity a pool accepts. */
const MAX_POOL_CAPACITY = 1 << 20;
/**
 * Microseconds an idle worker (and the main thread waiting for results)
 * polls by default, when workers ≤ cores; 10 µs after two polls in a row
 * caught nothing (`channel/_wait.ts`, `pollMs`). With a 10 µs default (and
 * every task waking the idle worker) sequential round trips had a p90 of
 * 21-30 µs here, a wake-up each way for about one trip in ten; now 3.5-4.1
 * µs (bench/pool_latency_bench.ts, README). A pool fed slower than it polls
 * (a task every millisecond) drops to the short poll and burns no more than
 * at the 10 µs default (bench/pool_spin_bench.ts).
 */
const DEFAULT_POOL_SPIN = 50;
/** The largest `spin` a pool accepts, µs. */
const MAX_POOL_SPIN = 10_000;
/** Milliseconds a cancelled running task has by default before its worker is replaced. */
const DEFAULT_ABORT_GRACE = 100;

/** A pool's options, checked, with their defaults. */
export interface PoolSettings {
  workers: number;
  capacity: number;
  slotSize: number;
  /** µs an idle worker polls. */
  spin: number;
  timeout: number | undefined;
  abortGrace: number;
  name: string;
  /** The default module, as a URL string. */
  module: string | undefined;
  /** What each `new Worker` gets. */
  workerOptions: WorkerOptions;
}

/** Checks `options` and applies the defaults; throws a `RangeError` or `TypeError` naming a bad one. */
export function poolSettings(options: WorkerPoolOptions): PoolSettings {
  const cores = navigator.hardwareConcurrency || 1;
  const workers = checkInteger("workers", options.workers ?? cores, 1, MAX_WORKERS);
  const capacity = checkInteger(
    "capacity",
    options.capacity ?? Math.max(workers * 2, DEFAULT_POOL_CAPACITY),
    1,
    MAX_POOL_CAPACITY,
  );
  const slotSize = checkInteger(
    "slotSize",
    options.slotSize ?? DEFAULT_POOL_SLOT_SIZE,
    MIN_POOL_SLOT_SIZE,
    MAX_POOL_SLOT_SIZE,
  );
  const spin = options.spin ?? (workers <= cores ? DEFAULT_POOL_SPIN : 0);
  if (typeof spin !== "number" || !(spin >= 0 && spin <= MAX_POOL_SPIN)) {
    throw new RangeError(
      `Cannot create pool as 'spin' must be a number of microseconds from 0 to ${MAX_POOL_SPIN}: current value is ${
        String(spin)
      }`,
    );
  }
  const timeout = options.timeout === undefined
    ? undefined
    : checkMs(options.timeout, "create pool", "timeout");
  const abortGrace = checkMs(
    options.abortGrace ?? DEFAULT_ABORT_GRACE,
    "create pool",
    "abortGrace",
  );
  const name = options.name ?? "taskpool";
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot create pool as 'name' must be a string: current value is ${String(name)}`,
    );
  }
  const workerOptions: WorkerOptions = { type: "module" };
  if (options.permissions !== undefined && options.permissions !== "inherit") {
    if (!workerOptionsEnabled()) {
      throw new TypeError(
        'Cannot create pool with \'permissions\': Deno needs the --unstable-worker-options flag for worker permissions; run the program with `deno run --unstable-worker-options …` (or add "unstable": ["worker-options"] to deno.json)',
      );
    }
    Object.assign(workerOptions, { deno: { permissions: options.permissions } });
  }
  const module = options.module === undefined
    ? undefined
    : resolveModule(options.module, "Cannot create pool as 'module'");
  return { workers, capacity, slotSize, spin, timeout, abortGrace, name, module, workerOptions };
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const what = min === 1 ? "a positive integer" : `an integer from ${min}`;
    throw new RangeError(
      `Cannot create pool as '${name}' must be ${what} (at most ${max}): current value is ${
        describe(value)
      }`,
    );
  }
  return value;
}

/**
 * Whether this program may give workers their own permissions. Deno ends the
 * process (it does not throw) when a worker asks for them without the flag,
 * so look first: the command line, then a deno.json from here upwards.
 */
function workerOptionsEnabled(): boolean {
  try {
    const args = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    if (args.some((arg) => arg === "--unstable-worker-options" || arg === "--unstable")) {
      return true;
    }
  } catch {
    // not Linux, or no read permission: look at the config
  }
  try {
    let dir = Deno.cwd();
    for (;;) {
      for (const name of ["deno.json", "deno.jsonc"]) {
        try {
          if (/"worker-options"/.test(Deno.readTextFileSync(`${dir}/${name}`))) return true;
        } catch {
          // no such file here
        }
      }
      const parent = dir.replace(/\/[^/]*$/, "");
      if (parent === dir || parent === "") return false;
      dir = parent;
    }
  } catch {
    return false;
  }
}
