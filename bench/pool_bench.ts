// Tasks/s, round-trip latency, CPU speed-up and memory of taskpool's WorkerPool,
// against a minimal postMessage-per-task pool (bench/_baseline_pool.ts) in the
// same run, on the same task module (bench/_pool_tasks.ts).
//
//   deno run -A bench/pool_bench.ts [--quick]
//
// --quick: 2 repetitions per case instead of 5. Each repetition creates fresh
// pools, warms them up, and runs taskpool and the baseline back to back (the
// order alternates between repetitions); the tables show medians.
import { parseArgs } from "node:util";
import { WorkerPool } from "../src/pool.ts";
import { BaselinePool } from "./_baseline_pool.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean", default: false } },
});
const REPS = flags.quick ? 2 : 5;
const TASKS = new URL("./_pool_tasks.ts", import.meta.url);
/** Untimed no-op tasks each fresh pool runs first. */
const WARM_UP = 5_000;
const THROUGHPUT_TASKS = 100_000;
const WINDOW = 64;
const LATENCY_TASKS = 10_000;
const LATENCY_WARM_UP = 1_000;
const BURN_TASKS = 200;
const BURN_MS = 5;
const MEMORY_TASKS = 1_000_000;
const MEMORY_EVERY = 100_000;
/** A measurement that takes longer than this is reported as hung, and the bench exits. */
const TIMEOUT_MS = 60_000;

type Kind = "taskpool" | "baseline";

/** What the bench needs of either pool. */
interface Pool {
  run(name: string, ...args: unknown[]): Promise<unknown>;
  /** For a hung measurement: what the pool was doing. */
  state(): string;
  close(): Promise<void>;
}

function taskpool(workers: number): { pool: Pool; inner: WorkerPool } {
  const inner = new WorkerPool({ workers, module: TASKS });
  return {
    inner,
    pool: {
      run: (name, ...args) => inner.run(name, ...args),
      state: () => JSON.stringify(inner.stats),
      close: () => inner.close(),
    },
  };
}

function baseline(workers: number): Pool {
  const inner = new BaselinePool(workers);
  return {
    run: (name, ...args) => inner.run(name, ...args),
    state: () => `${inner.pending} pending`,
    close: () => {
      inner.terminate();
      return Promise.resolve();
    },
  };
}

function create(kind: Kind, workers: number): Pool {
  return kind === "taskpool" ? taskpool(workers).pool : baseline(workers);
}

/** Rejects after TIMEOUT_MS with the pool's state, so that a hang is reported, not waited out. */
async function guard<T>(what: string, pool: Pool, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} hung for ${TIMEOUT_MS} ms (${pool.state()})`)),
      TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sum of 0 … n - 1. */
function triangle(n: number): number {
  return (n * (n - 1)) / 2;
}

function checkNoops(what: string, n: number, sum: number, bad: number): void {
  if (bad !== 0 || sum !== triangle(n)) {
    throw new Error(
      `${what}: ${bad} results differ from their input; sum ${sum}, expected ${triangle(n)}`,
    );
  }
}

/** `n` no-op tasks at once; every result must equal its input. */
async function allAtOnce(what: string, pool: Pool, n: number): Promise<void> {
  const promises = new Array<Promise<unknown>>(n);
  for (let i = 0; i < n; i++) promises[i] = pool.run("noop", i);
  const results = await Promise.all(promises);
  let sum = 0, bad = 0;
  for (let i = 0; i < n; i++) {
    const value = results[i] as number;
    if (value !== i) bad++;
    sum += value;
  }
  checkNoops(what, n, sum, bad);
}

/**
 * `n` no-op tasks with at most `window` outstanding: each completion starts
 * the next task. `onLaunch(i)` is called before task `i` starts.
 */
async function windowed(
  what: string,
  pool: Pool,
  n: number,
  window: number,
  onLaunch?: (i: number) => void,
): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  let next = 0, done = 0, sum = 0, bad = 0;
  const launch = () => {
    const i = next++;
    onLaunch?.(i);
    pool.run("noop", i).then((value) => {
      if (value !== i) bad++;
      sum += value as number;
      done++;
      if (next < n) launch();
      else if (done === n) resolve();
    }, reject);
  };
  for (let k = 0; k < Math.min(window, n); k++) launch();
  await promise;
  checkNoops(what, n, sum, bad);
}

async function warmUp(what: string, pool: Pool): Promise<void> {
  await guard(`${what} warm-up`, pool, allAtOnce(`${what} warm-up`, pool, WARM_UP));
}

/** Runs `measure` on a fresh, warmed-up pool, and closes the pool. */
async function withPool<T>(
  kind: Kind,
  workers: number,
  what: string,
  measure: (pool: Pool) => Promise<T>,
): Promise<T> {
  const pool = create(kind, workers);
  try {
    await warmUp(what, pool);
    return await guard(what, pool, measure(pool));
  } finally {
    await guard(`${what} close`, pool, pool.close());
  }
}

// ---- Cases ----------------------------------------------------------------

interface ThroughputCase {
  label: string;
  workers: number;
  /** Outstanding tasks at most; 0: all at once. */
  window: number;
}

const THROUGHPUT: ThroughputCase[] = [
  { label: `2 workers, ${count(THROUGHPUT_TASKS)} at once`, workers: 2, window: 0 },
  { label: `2 workers, ≤ ${WINDOW} in flight`, workers: 2, window: WINDOW },
  { label: `4 workers, ${count(THROUGHPUT_TASKS)} at once`, workers: 4, window: 0 },
  { label: `4 workers, ≤ ${WINDOW} in flight`, workers: 4, window: WINDOW },
];

function throughput(kind: Kind, c: ThroughputCase): Promise<number> {
  const what = `${kind}, ${c.label}`;
  return withPool(kind, c.workers, what, async (pool) => {
    const start = performance.now();
    if (c.window === 0) await allAtOnce(what, pool, THROUGHPUT_TASKS);
    else await windowed(what, pool, THROUGHPUT_TASKS, c.window);
    return THROUGHPUT_TASKS / ((performance.now() - start) / 1000);
  });
}

interface Latency {
  p50: number;
  p99: number;
}

function latency(kind: Kind): Promise<Latency> {
  const what = `${kind}, latency`;
  return withPool(kind, 2, what, async (pool) => {
    for (let i = 0; i < LATENCY_WARM_UP; i++) {
      if (await pool.run("noop", i) !== i) throw new Error(`${what}: wrong warm-up result`);
    }
    const micros = new Float64Array(LATENCY_TASKS);
    for (let i = 0; i < LATENCY_TASKS; i++) {
      const start = performance.now();
      const value = await pool.run("noop", i);
      micros[i] = (performance.now() - start) * 1000;
      if (value !== i) throw new Error(`${what}: task ${i} returned ${value}`);
    }
    micros.sort();
    return { p50: quantile(micros, 0.5), p99: quantile(micros, 0.99) };
  });
}

/** Seconds for BURN_TASKS tasks of burn(BURN_MS), all at once. */
function burn(kind: Kind, workers: number): Promise<number> {
  const what = `${kind}, burn with ${workers} worker(s)`;
  return withPool(kind, workers, what, async (pool) => {
    // Compile burn() in every worker before the clock starts.
    await Promise.all(Array.from({ length: 4 * workers }, () => pool.run("burn", 1)));
    const start = performance.now();
    const results = await Promise.all(
      Array.from({ length: BURN_TASKS }, () => pool.run("burn", BURN_MS)),
    );
    const seconds = (performance.now() - start) / 1000;
    const bad = results.filter((r) => typeof r !== "number" || !(r > 0)).length;
    if (bad !== 0) throw new Error(`${what}: ${bad} results are not positive numbers`);
    return seconds;
  });
}

interface Memory {
  seconds: number;
  rss: number[];
  heap: number[];
}

function sample(memory: Memory): void {
  const { rss, heapUsed } = Deno.memoryUsage();
  memory.rss.push(rss / 2 ** 20);
  memory.heap.push(heapUsed / 2 ** 20);
}

/** MEMORY_TASKS no-ops through `await submit` (taskpool's backpressure); result promises are not kept. */
function memoryTaskpool(): Promise<Memory> {
  const what = "taskpool, memory";
  const { pool, inner } = taskpool(2);
  const memory: Memory = { seconds: 0, rss: [], heap: [] };
  const measure = async () => {
    await warmUp(what, pool);
    sample(memory);
    const start = performance.now();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let done = 0, sum = 0, bad = 0;
    for (let i = 0; i < MEMORY_TASKS; i++) {
      const handle = await inner.submit("noop", i);
      handle.result.then((value) => {
        if (value !== i) bad++;
        sum += value as number;
        if (++done === MEMORY_TASKS) resolve();
      }, reject);
      if ((i + 1) % MEMORY_EVERY === 0) sample(memory);
    }
    await promise;
    memory.seconds = (performance.now() - start) / 1000;
    sample(memory);
    checkNoops(what, MEMORY_TASKS, sum, bad);
    return memory;
  };
  return guard(what, pool, measure()).finally(() => guard(`${what} close`, pool, pool.close()));
}

/** MEMORY_TASKS no-ops, ≤ WINDOW in flight (the baseline has no backpressure of its own). */
function memoryBaseline(): Promise<Memory> {
  const what = "baseline, memory";
  const memory: Memory = { seconds: 0, rss: [], heap: [] };
  const pool = baseline(2);
  const measure = async () => {
    await warmUp(what, pool);
    sample(memory);
    const start = performance.now();
    await windowed(what, pool, MEMORY_TASKS, WINDOW, (i) => {
      if (i > 0 && i % MEMORY_EVERY === 0) sample(memory);
    });
    memory.seconds = (performance.now() - start) / 1000;
    sample(memory);
    return memory;
  };
  return guard(what, pool, measure()).finally(() => guard(`${what} close`, pool, pool.close()));
}

// ---- Helpers --------------------------------------------------------------

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function median(xs: number[]): number {
  const s = xs.toSorted((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function count(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

function log(run: number, kind: Kind, label: string, value: string): void {
  console.error(`rep ${run + 1}/${REPS}  ${kind.padEnd(8)}  ${label.padEnd(34)} ${value}`);
}

// ---- Run ------------------------------------------------------------------

const KINDS: Kind[] = ["taskpool", "baseline"];
const rates = new Map(KINDS.map((k) => [k, THROUGHPUT.map(() => [] as number[])]));
const p50s = new Map(KINDS.map((k) => [k, [] as number[]]));
const p99s = new Map(KINDS.map((k) => [k, [] as number[]]));
const burn1 = new Map(KINDS.map((k) => [k, [] as number[]]));
const burn2 = new Map(KINDS.map((k) => [k, [] as number[]]));
const speedups = new Map(KINDS.map((k) => [k, [] as number[]]));

// Memory first, so that its RSS readings do not carry what the timed cases left behind.
const began = performance.now();
console.error(`memory: taskpool, ${count(MEMORY_TASKS)} tasks through await submit()`);
const memories = new Map<Kind, Memory>();
try {
  memories.set("taskpool", await memoryTaskpool());
  console.error(`memory: baseline, ${count(MEMORY_TASKS)} tasks, ≤ ${WINDOW} in flight`);
  memories.set("baseline", await memoryBaseline());
} catch (error) {
  console.error(error);
  Deno.exit(1);
}
const memorySeconds = (performance.now() - began) / 1000;

try {
  for (let run = 0; run < REPS; run++) {
    // Alternate the order, so neither pool always runs first.
    const kinds = run % 2 === 0 ? KINDS : KINDS.toReversed();
    for (const [k, c] of THROUGHPUT.entries()) {
      for (const kind of kinds) {
        const r = await throughput(kind, c);
        rates.get(kind)![k].push(r);
        log(run, kind, c.label, `${count(r).padStart(11)} tasks/s`);
      }
    }
    for (const kind of kinds) {
      const { p50, p99 } = await latency(kind);
      p50s.get(kind)!.push(p50);
      p99s.get(kind)!.push(p99);
      log(run, kind, "round trip, 2 workers", `p50 ${p50.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs`);
    }
    for (const kind of kinds) {
      const t1 = await burn(kind, 1);
      const t2 = await burn(kind, 2);
      burn1.get(kind)!.push(t1);
      burn2.get(kind)!.push(t2);
      speedups.get(kind)!.push(t1 / t2);
      log(
        run,
        kind,
        `${BURN_TASKS} × burn(${BURN_MS})`,
        `1 worker ${t1.toFixed(3)} s, 2 workers ${t2.toFixed(3)} s, ×${(t1 / t2).toFixed(2)}`,
      );
    }
  }
} catch (error) {
  // Open pools keep the program alive: exit rather than wait for them.
  console.error(error);
  Deno.exit(1);
}
const elapsed = (performance.now() - began) / 1000;

// ---- Report ---------------------------------------------------------------

console.log(`## WorkerPool vs a postMessage-per-task pool\n`);
console.log(
  `Baseline: N workers fed round-robin with one \`worker.postMessage({ id, name, args })\` per ` +
    `task, results matched through a \`Map\` of pending ids (bench/_baseline_pool.ts); both pools ` +
    `run the same task module (bench/_pool_tasks.ts).\n`,
);
console.log(
  `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${Deno.build.os}/${Deno.build.arch}, ` +
    `navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}. ` +
    `One memory run per pool first (${memorySeconds.toFixed(1)} s), then the median of ${REPS} ` +
    `repetitions per timed case (${
      elapsed.toFixed(1)
    } s in all). Fresh pools per measurement, each warmed ` +
    `up with ${count(WARM_UP)} tasks first; WorkerPool with its defaults ` +
    `(capacity = 2 × workers, spin 50 µs when workers ≤ cores, else 0).\n`,
);

console.log(`### No-op throughput (${count(THROUGHPUT_TASKS)} tasks of \`noop(i)\`)\n`);
console.log("| Case | taskpool tasks/s | baseline tasks/s | taskpool / baseline |");
console.log("| --- | ---: | ---: | ---: |");
for (const [k, c] of THROUGHPUT.entries()) {
  const tp = median(rates.get("taskpool")![k]);
  const bl = median(rates.get("baseline")![k]);
  console.log(`| ${c.label} | ${count(tp)} | ${count(bl)} | ${(tp / bl).toFixed(2)}× |`);
}
console.log(
  `\n"At once": \`Promise.all\` of ${count(THROUGHPUT_TASKS)} \`run("noop", i)\`. ` +
    `"In flight": each completion starts the next \`run\`. Every result is checked against its input.\n`,
);

console.log(
  `### Round trip, 2 workers (${count(LATENCY_TASKS)} sequential \`await run("noop", i)\` ` +
    `after ${count(LATENCY_WARM_UP)})\n`,
);
console.log("| Pool | p50 µs | p99 µs |");
console.log("| --- | ---: | ---: |");
for (const kind of KINDS) {
  console.log(
    `| ${kind} | ${median(p50s.get(kind)!).toFixed(1)} | ${median(p99s.get(kind)!).toFixed(1)} |`,
  );
}
const p50Ratio = median(p50s.get("baseline")!) / median(p50s.get("taskpool")!);
const p99Ratio = median(p99s.get("baseline")!) / median(p99s.get("taskpool")!);
console.log(
  `| baseline / taskpool (> 1: taskpool faster) | ${p50Ratio.toFixed(2)}× | ${
    p99Ratio.toFixed(2)
  }× |\n`,
);

console.log(
  `### CPU-bound speed-up (${BURN_TASKS} tasks of \`burn(${BURN_MS})\` at once, ` +
    `${((BURN_TASKS * BURN_MS) / 1000).toFixed(1)} s of CPU)\n`,
);
console.log("| Pool | 1 worker s | 2 workers s | speed-up (t1 / t2) |");
console.log("| --- | ---: | ---: | ---: |");
for (const kind of KINDS) {
  console.log(
    `| ${kind} | ${median(burn1.get(kind)!).toFixed(3)} | ${
      median(burn2.get(kind)!).toFixed(3)
    } | ` +
      `${median(speedups.get(kind)!).toFixed(2)}× |`,
  );
}
console.log(`\nThe speed-up is the median of the per-repetition ratios.\n`);

console.log(`### Memory over ${count(MEMORY_TASKS)} no-op tasks, 2 workers (one run each)\n`);
console.log(
  "| Pool | How tasks are fed | tasks/s | RSS start / peak / end MB | heap start / peak / end MB |",
);
console.log("| --- | --- | ---: | ---: | ---: |");
const feeds: Record<Kind, string> = {
  taskpool: "`await submit()`, results counted, promises not kept",
  baseline: `≤ ${WINDOW} in flight`,
};
for (const kind of KINDS) {
  const m = memories.get(kind)!;
  const triple = (xs: number[]) =>
    `${xs[0].toFixed(1)} / ${Math.max(...xs).toFixed(1)} / ${xs[xs.length - 1].toFixed(1)}`;
  console.log(
    `| ${kind} | ${feeds[kind]} | ${count(MEMORY_TASKS / m.seconds)} | ${triple(m.rss)} | ${
      triple(m.heap)
    } |`,
  );
}
console.log(
  `\nSampled with \`Deno.memoryUsage()\` after the warm-up, every ${count(MEMORY_EVERY)} tasks ` +
    `submitted, and once all had completed (no forced GC). RSS is the whole process (workers ` +
    `are threads in it); heap is the main isolate's. Every sample, in MB:\n`,
);
for (const kind of KINDS) {
  const m = memories.get(kind)!;
  console.log(`- ${kind} RSS: ${m.rss.map((x) => x.toFixed(0)).join(", ")}`);
  console.log(`- ${kind} heap: ${m.heap.map((x) => x.toFixed(1)).join(", ")}`);
}
