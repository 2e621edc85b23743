// Tasks/s, round-trip latency, CPU speed-up and memory of taskpool's WorkerPool,
// against a minimal postMessage-per-task pool (bench/_baseline_pool.ts) in the
// same run, on the same task module (bench/_pool_tasks.ts). Also: 1 MiB
// arguments and results (beside a worker fed by postMessage with transfer,
// bench/_transfer_worker.ts), the cost of replacing a crashed worker (beside a
// pool's cold start), and map() beside Promise.all over run().
//
//   deno run -A bench/pool_bench.ts [--quick]
//
// --quick: 2 repetitions per case instead of 5. Each repetition creates fresh
// pools, warms them up, and runs taskpool and the baseline back to back (the
// order alternates between repetitions); the tables show medians.
import { quickFlags } from "./_args.ts";
import { WorkerPool } from "../src/pool/mod.ts";
import { WorkerCrashedError } from "../src/errors.ts";
import { BaselinePool } from "./_baseline_pool.ts";
import { MACHINE_WORK, machineTail, type Tail, tailOf } from "./_tail.ts";
import type { TransferRequest } from "./_transfer_worker.ts";

const flags = quickFlags("deno run -A bench/pool_bench.ts [--quick]");
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
/** Bytes of the large argument (and result) of the large round-trip case. */
const LARGE_BYTES = 2 ** 20;
const LARGE_TRIPS = 200;
const LARGE_WARM_UP = 20;
/** Steady no-op stream (≤ WINDOW in flight) before the crash task is submitted, ms. */
const CRASH_AFTER_MS = 1000;
/** The pre-crash rate is measured over this span just before the crash task, ms. */
const RATE_SPAN_MS = 500;
const BUCKET_MS = 5;
/** The stream goes on this long after the rejection (and the replacement), ms. */
const AFTER_MS = 1000;
/** Throughput counts as back at this fraction of the pre-crash rate. */
const RECOVERED = 0.9;
/** Buckets of the sustained criterion: the mean over this many buckets. */
const SUSTAINED_BUCKETS = 4;
const MAP_TASKS = 100_000;
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
async function guard<T>(what: string, pool: Pick<Pool, "state">, work: Promise<T>): Promise<T> {
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

type Latency = Tail;

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
    return tailOf(micros);
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

// ---- Large arguments ------------------------------------------------------

/** taskpool and the baseline pool (1 worker each), and one worker fed by `postMessage` with transfer. */
type LargeKind = Kind | "postMessage";
/** What the task returns: the argument's length, or the argument. */
type Reply = "length" | "bytes";

const LARGE_KINDS: LargeKind[] = ["taskpool", "baseline", "postMessage"];
const REPLIES: Reply[] = ["length", "bytes"];
const REPLY_LABEL: Record<Reply, string> = {
  length: "1 MB in, number out",
  bytes: "1 MB in, 1 MB out",
};

interface Large {
  p50: number;
  p99: number;
  /** MiB carried per second, both ways counted. */
  mbs: number;
}

/** A fresh LARGE_BYTES array per round trip (a transfer detaches it), marked with `i`. */
function largeArg(i: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(LARGE_BYTES);
  bytes[0] = i & 255;
  bytes[LARGE_BYTES - 1] = (i * 7) & 255;
  return bytes;
}

function checkLarge(what: string, reply: Reply, i: number, value: unknown): void {
  const ok = reply === "length"
    ? value === LARGE_BYTES
    : value instanceof Uint8Array && value.byteLength === LARGE_BYTES &&
      value[0] === (i & 255) && value[LARGE_BYTES - 1] === ((i * 7) & 255);
  if (!ok) {
    const got = value instanceof Uint8Array ? `a Uint8Array of ${value.byteLength}` : String(value);
    throw new Error(`${what}: round trip ${i} returned ${got}`);
  }
}

/**
 * LARGE_WARM_UP untimed round trips, then LARGE_TRIPS timed ones, one at a
 * time; each allocates its argument inside the timed span.
 */
async function largeTrips(
  what: string,
  reply: Reply,
  trip: (bytes: Uint8Array<ArrayBuffer>) => Promise<unknown>,
): Promise<Large> {
  for (let i = 0; i < LARGE_WARM_UP; i++) checkLarge(what, reply, i, await trip(largeArg(i)));
  const ms = new Float64Array(LARGE_TRIPS);
  const began = performance.now();
  for (let i = 0; i < LARGE_TRIPS; i++) {
    const start = performance.now();
    const value = await trip(largeArg(i));
    ms[i] = performance.now() - start;
    checkLarge(what, reply, i, value);
  }
  const seconds = (performance.now() - began) / 1000;
  ms.sort();
  const mib = (LARGE_TRIPS * (reply === "length" ? 1 : 2) * LARGE_BYTES) / 2 ** 20;
  return { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), mbs: mib / seconds };
}

/** One dedicated worker; each round trip transfers the array's buffer there (and back). */
async function transferTrips(what: string, reply: Reply): Promise<Large> {
  const worker = new Worker(new URL("./_transfer_worker.ts", import.meta.url), {
    type: "module",
    name: "transfer worker",
  });
  let pending: PromiseWithResolvers<unknown> | undefined;
  worker.onmessage = (event: MessageEvent<unknown>) => {
    pending?.resolve(event.data);
    pending = undefined;
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    pending?.reject(new Error(`${what}: the worker threw: ${event.message}`));
    pending = undefined;
  };
  const trip = (bytes: Uint8Array<ArrayBuffer>) => {
    pending = Promise.withResolvers<unknown>();
    const request: TransferRequest = { bytes, reply };
    worker.postMessage(request, [bytes.buffer]);
    return pending.promise;
  };
  const state = () => pending === undefined ? "no round trip pending" : "a round trip pending";
  try {
    return await guard(what, { state }, largeTrips(what, reply, trip));
  } finally {
    worker.terminate();
  }
}

function large(kind: LargeKind, reply: Reply): Promise<Large> {
  const what = `${kind}, ${REPLY_LABEL[reply]}`;
  if (kind === "postMessage") return transferTrips(what, reply);
  const task = reply === "length" ? "byteLength" : "echoBytes";
  return withPool(
    kind,
    1,
    what,
    (pool) => largeTrips(what, reply, (bytes) => pool.run(task, bytes)),
  );
}

// ---- Crash recovery -------------------------------------------------------

interface Crash {
  /** Tasks/s over RATE_SPAN_MS before the crash task was submitted. */
  rate: number;
  /** Share of the pre-crash 5 ms buckets below RECOVERED × the rate. */
  noisy: number;
  /** The same for the pre-crash runs of SUSTAINED_BUCKETS buckets (mean below). */
  noisySustained: number;
  /** ms from the crash task's submission to its rejection. */
  toRejection: number;
  /** ms from the rejection until `stats.workers` is back to 2. */
  toWorkers: number;
  /** ms from the rejection to the end of the first 5 ms bucket at ≥ RECOVERED × the rate. */
  toBucket: number;
  /** ms from the rejection to the end of the first SUSTAINED_BUCKETS buckets in a row whose mean is. */
  toSustained: number;
  /** Lowest 5 ms bucket from the submission to AFTER_MS after the rejection, × the rate. */
  dip: number;
  /** Completions missing over the submission … AFTER_MS after the rejection, in ms at the rate. */
  lostMs: number;
  /** Longest gap between two completions from the submission on, ms. */
  stall: number;
}

/**
 * A steady stream of no-ops (≤ WINDOW in flight) on a pool of 2 workers; after
 * CRASH_AFTER_MS, one crash() task (Deno.exit(1) in its worker). The stream
 * goes on until AFTER_MS after the rejection, and the worker count is back
 * to 2. Every completion is time-stamped.
 */
function crashRecovery(): Promise<Crash> {
  const what = "taskpool, crash recovery";
  const { pool, inner } = taskpool(2);
  const measure = async (): Promise<Crash> => {
    await warmUp(what, pool);
    const stamps = new Float64Array(4_000_000);
    let stamped = 0;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let next = 0, inFlight = 0, sum = 0, bad = 0, stopping = false;
    let submitted = NaN, rejected = NaN, restored = NaN;
    const watchWorkers = (now: number) => {
      if (inner.stats.workers === 2) restored = now;
    };
    // Also polled from a timer, should completions stop altogether.
    const poll = setInterval(() => {
      if (!Number.isNaN(rejected) && Number.isNaN(restored)) watchWorkers(performance.now());
    }, 1);
    const start = performance.now();
    const submitCrash = (now: number) => {
      submitted = now;
      inner.run("crash").then(
        () => reject(new Error(`${what}: crash() returned`)),
        (error) => {
          rejected = performance.now();
          if (!(error instanceof WorkerCrashedError)) {
            reject(new Error(`${what}: crash() rejected with ${error}, not WorkerCrashedError`));
          }
          watchWorkers(rejected);
        },
      );
    };
    const launch = () => {
      const i = next++;
      inFlight++;
      inner.run("noop", i).then((value) => {
        const now = performance.now();
        if (stamped < stamps.length) stamps[stamped++] = now;
        if (value !== i) bad++;
        sum += value as number;
        inFlight--;
        if (Number.isNaN(submitted)) {
          if (now - start >= CRASH_AFTER_MS) submitCrash(now);
        } else if (!Number.isNaN(rejected)) {
          if (Number.isNaN(restored)) watchWorkers(now);
          else if (now - rejected >= AFTER_MS) stopping = true;
        }
        if (!stopping) launch();
        else if (inFlight === 0) resolve();
      }, reject);
    };
    for (let k = 0; k < WINDOW; k++) launch();
    try {
      await promise;
    } finally {
      clearInterval(poll);
    }
    checkNoops(what, next, sum, bad);
    if (stamped === stamps.length) throw new Error(`${what}: more completions than stamps`);
    const times = stamps.subarray(0, stamped);
    /** Completions in [from, to). */
    const within = (from: number, to: number) => lowerBound(times, to) - lowerBound(times, from);
    const rate = within(submitted - RATE_SPAN_MS, submitted) / RATE_SPAN_MS; // per ms
    const full = RECOVERED * rate * BUCKET_MS;
    let low = 0, lowSustained = 0;
    const preBuckets = RATE_SPAN_MS / BUCKET_MS;
    const preRuns = preBuckets - SUSTAINED_BUCKETS + 1;
    for (let k = 0; k < preBuckets; k++) {
      const from = submitted - RATE_SPAN_MS + k * BUCKET_MS;
      if (within(from, from + BUCKET_MS) < full) low++;
      if (
        k < preRuns && within(from, from + SUSTAINED_BUCKETS * BUCKET_MS) < SUSTAINED_BUCKETS * full
      ) {
        lowSustained++;
      }
    }
    const buckets: number[] = [];
    for (let from = rejected; from + BUCKET_MS <= rejected + AFTER_MS; from += BUCKET_MS) {
      buckets.push(within(from, from + BUCKET_MS));
    }
    const firstBucket = buckets.findIndex((n) => n >= full);
    let firstSustained = -1;
    for (let k = SUSTAINED_BUCKETS - 1; k < buckets.length && firstSustained < 0; k++) {
      let n = 0;
      for (let j = k - SUSTAINED_BUCKETS + 1; j <= k; j++) n += buckets[j];
      if (n >= full * SUSTAINED_BUCKETS) firstSustained = k;
    }
    let dip = Infinity;
    for (let from = submitted; from + BUCKET_MS <= rejected + AFTER_MS; from += BUCKET_MS) {
      dip = Math.min(dip, within(from, from + BUCKET_MS) / (rate * BUCKET_MS));
    }
    const span = rejected + AFTER_MS - submitted;
    const lostMs = (rate * span - within(submitted, rejected + AFTER_MS)) / rate;
    let stall = 0;
    for (let k = lowerBound(times, submitted) + 1; k < times.length; k++) {
      stall = Math.max(stall, times[k] - times[k - 1]);
    }
    return {
      rate: rate * 1000,
      noisy: low / preBuckets,
      noisySustained: lowSustained / preRuns,
      toRejection: rejected - submitted,
      toWorkers: restored - rejected,
      toBucket: firstBucket < 0 ? Infinity : (firstBucket + 1) * BUCKET_MS,
      toSustained: firstSustained < 0 ? Infinity : (firstSustained + 1) * BUCKET_MS,
      dip,
      lostMs,
      stall,
    };
  };
  return guard(what, pool, measure()).finally(() => guard(`${what} close`, pool, pool.close()));
}

/** The first index of `sorted` whose value is ≥ `x`. */
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface ColdStart {
  /** ms the constructor took (it starts the workers). */
  construct: number;
  /** ms from before the constructor to the first task's result. */
  firstTask: number;
}

/** A fresh pool of 2 workers and its first task, from nothing. */
async function coldStart(kind: Kind): Promise<ColdStart> {
  const what = `${kind}, cold start`;
  const start = performance.now();
  const pool = create(kind, 2);
  const constructed = performance.now();
  try {
    const value = await guard(what, pool, pool.run("noop", 1));
    const firstTask = performance.now() - start;
    if (value !== 1) throw new Error(`${what}: noop(1) returned ${value}`);
    return { construct: constructed - start, firstTask };
  } finally {
    await guard(`${what} close`, pool, pool.close());
  }
}

// ---- map vs Promise.all(run) ----------------------------------------------

interface MapVsAll {
  /** tasks/s through `for await (… of pool.map("noop", inputs))`. */
  map: number;
  /** tasks/s through `await Promise.all(inputs.map((i) => pool.run("noop", i)))`. */
  all: number;
}

/** Both forms twice on one warmed-up pool of 2 workers, in the order A B B A (which goes first alternates). */
function mapVsAll(run: number): Promise<MapVsAll> {
  const what = "taskpool, map vs Promise.all(run)";
  const { pool, inner } = taskpool(2);
  const inputs = Array.from({ length: MAP_TASKS }, (_, i) => i);
  const viaMap = async () => {
    let n = 0, sum = 0, bad = 0;
    for await (const value of inner.map<number>("noop", inputs)) {
      if (value !== n) bad++;
      sum += value as number;
      n++;
    }
    if (n !== MAP_TASKS) throw new Error(`${what}: map yielded ${n} results, not ${MAP_TASKS}`);
    checkNoops(`${what}, map`, MAP_TASKS, sum, bad);
  };
  const viaAll = async () => {
    const results = await Promise.all(inputs.map((i) => inner.run("noop", i)));
    let sum = 0, bad = 0;
    for (let i = 0; i < MAP_TASKS; i++) {
      const value = results[i] as number;
      if (value !== i) bad++;
      sum += value;
    }
    checkNoops(`${what}, Promise.all`, MAP_TASKS, sum, bad);
  };
  const measure = async (): Promise<MapVsAll> => {
    await warmUp(what, pool);
    const seconds = { map: 0, all: 0 };
    const forms: ("map" | "all")[] = run % 2 === 0
      ? ["map", "all", "all", "map"]
      : ["all", "map", "map", "all"];
    for (const form of forms) {
      const start = performance.now();
      await (form === "map" ? viaMap() : viaAll());
      seconds[form] += (performance.now() - start) / 1000;
    }
    return { map: (2 * MAP_TASKS) / seconds.map, all: (2 * MAP_TASKS) / seconds.all };
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

function log(run: number, kind: string, label: string, value: string): void {
  console.error(`rep ${run + 1}/${REPS}  ${kind.padEnd(11)}  ${label.padEnd(34)} ${value}`);
}

// ---- Run ------------------------------------------------------------------

const KINDS: Kind[] = ["taskpool", "baseline"];
const rates = new Map(KINDS.map((k) => [k, THROUGHPUT.map(() => [] as number[])]));
const p50s = new Map(KINDS.map((k) => [k, [] as number[]]));
const p90s = new Map(KINDS.map((k) => [k, [] as number[]]));
const p99s = new Map(KINDS.map((k) => [k, [] as number[]]));
const machine: Latency[] = [];
const burn1 = new Map(KINDS.map((k) => [k, [] as number[]]));
const burn2 = new Map(KINDS.map((k) => [k, [] as number[]]));
const speedups = new Map(KINDS.map((k) => [k, [] as number[]]));
const larges = new Map(
  LARGE_KINDS.map((k) => [k, new Map(REPLIES.map((r) => [r, [] as Large[]]))]),
);
const crashes: Crash[] = [];
const colds = new Map(KINDS.map((k) => [k, [] as ColdStart[]]));
const mapRates: MapVsAll[] = [];

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
      const { p50, p90, p99 } = await latency(kind);
      p50s.get(kind)!.push(p50);
      p90s.get(kind)!.push(p90);
      p99s.get(kind)!.push(p99);
      log(
        run,
        kind,
        "round trip, 2 workers",
        `p50 ${p50.toFixed(1)} µs, p90 ${p90.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs`,
      );
    }
    machine.push(machineTail(LATENCY_TASKS));
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
    // The first kind rotates between repetitions.
    const largeKinds = [...LARGE_KINDS.slice(run % 3), ...LARGE_KINDS.slice(0, run % 3)];
    for (const reply of REPLIES) {
      for (const kind of largeKinds) {
        const r = await large(kind, reply);
        larges.get(kind)!.get(reply)!.push(r);
        log(
          run,
          kind,
          REPLY_LABEL[reply],
          `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.mbs.toFixed(0)} MB/s`,
        );
      }
    }
    const c = await crashRecovery();
    crashes.push(c);
    log(
      run,
      "taskpool",
      "crash recovery",
      `${count(c.rate)} tasks/s before; rejected after ${c.toRejection.toFixed(1)} ms; ` +
        `2 workers ${c.toWorkers.toFixed(1)} ms later; ≥ 90 % bucket ${c.toBucket} ms, ` +
        `sustained ${c.toSustained} ms; dip ${(100 * c.dip).toFixed(0)} %, ` +
        `lost ${c.lostMs.toFixed(1)} ms, longest gap ${c.stall.toFixed(1)} ms`,
    );
    for (const kind of kinds) {
      const cold = await coldStart(kind);
      colds.get(kind)!.push(cold);
      log(
        run,
        kind,
        "cold start, 2 workers",
        `constructor ${cold.construct.toFixed(1)} ms, first result ${cold.firstTask.toFixed(1)} ms`,
      );
    }
    const m = await mapVsAll(run);
    mapRates.push(m);
    log(
      run,
      "taskpool",
      `${count(MAP_TASKS)} no-ops, 2 workers`,
      `map ${count(m.map)} tasks/s, Promise.all(run) ${count(m.all)} tasks/s`,
    );
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
    `(capacity = the larger of 2 × workers and 256, spin 50 µs, 10 µs after two empty polls, when workers ≤ cores, else 0).\n`,
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
console.log("| Pool | p50 µs | p90 µs | p99 µs |");
console.log("| --- | ---: | ---: | ---: |");
for (const kind of KINDS) {
  console.log(
    `| ${kind} | ${median(p50s.get(kind)!).toFixed(1)} | ${median(p90s.get(kind)!).toFixed(1)} | ${
      median(p99s.get(kind)!).toFixed(1)
    } |`,
  );
}
const ratio = (of: Map<Kind, number[]>) =>
  (median(of.get("baseline")!) / median(of.get("taskpool")!)).toFixed(2);
console.log(
  `| baseline / taskpool (> 1: taskpool faster) | ${ratio(p50s)}× | ${ratio(p90s)}× | ${
    ratio(p99s)
  }× |`,
);
console.log(
  `| no pool: ${count(MACHINE_WORK)} additions on one thread, timed alike (the machine's own ` +
    `tail) | ${median(machine.map((m) => m.p50)).toFixed(1)} | ${
      median(machine.map((m) => m.p90)).toFixed(1)
    } | ${median(machine.map((m) => m.p99)).toFixed(1)} |\n`,
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

const ms = (x: number, digits = 1) => Number.isFinite(x) ? x.toFixed(digits) : "never";

console.log(
  `\n### Large arguments: 1 MiB \`Uint8Array\`, 1 worker (${LARGE_TRIPS} sequential round ` +
    `trips after ${LARGE_WARM_UP})\n`,
);
console.log(
  "| Case | Pool | p50 ms | p99 ms | MB/s | p50 / postMessage p50 | MB/s / postMessage MB/s |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
const LARGE_NAMES: Record<LargeKind, string> = {
  taskpool: "taskpool `run`",
  baseline: "baseline pool (postMessage, copied)",
  postMessage: "postMessage with transfer",
};
for (const reply of REPLIES) {
  const of = (kind: LargeKind) => larges.get(kind)!.get(reply)!;
  const ref = of("postMessage");
  const refP50 = median(ref.map((r) => r.p50));
  const refMbs = median(ref.map((r) => r.mbs));
  for (const kind of LARGE_KINDS) {
    const rs = of(kind);
    const p50 = median(rs.map((r) => r.p50));
    const p99 = median(rs.map((r) => r.p99));
    const mbs = median(rs.map((r) => r.mbs));
    console.log(
      `| ${REPLY_LABEL[reply]} | ${LARGE_NAMES[kind]} | ${p50.toFixed(3)} | ${p99.toFixed(3)} | ` +
        `${mbs.toFixed(0)} | ${(p50 / refP50).toFixed(2)}× | ${(mbs / refMbs).toFixed(2)}× |`,
    );
  }
}
console.log(
  `\nA fresh \`new Uint8Array(${count(LARGE_BYTES)})\` per round trip, allocated inside the ` +
    `timed span in every case (a transfer detaches the buffer it sends). taskpool: ` +
    `\`run("byteLength", bytes)\` / \`run("echoBytes", bytes)\` with the default slotSize ` +
    `(4096 bytes), so the array goes by its postMessage side path (the worker fetches it; a ` +
    `large result is posted back). Baseline pool: one structured-clone postMessage each way. ` +
    `postMessage with transfer: one dedicated worker, the ArrayBuffer transferred there and ` +
    `(for "1 MB out") back (bench/_transfer_worker.ts). MB/s = MiB carried per second over ` +
    `the ${LARGE_TRIPS} trips, both directions counted (1 MiB per trip for "number out", 2 ` +
    `for "1 MB out"). Medians of ${REPS} per-repetition p50, p99 and MB/s; ratios > 1 in the ` +
    `p50 column mean slower than postMessage with transfer.\n`,
);

console.log(
  `### Replacing a crashed worker (2 workers, no-op stream ≤ ${WINDOW} in flight, ` +
    `\`crash()\` after ${CRASH_AFTER_MS} ms)\n`,
);
console.log("| Measure | median | min | max |");
console.log("| --- | ---: | ---: | ---: |");
const crashRow = (label: string, xs: number[], digits = 1) => {
  const finite = xs.filter(Number.isFinite);
  const lo = finite.length === xs.length ? Math.min(...xs) : Math.min(...finite);
  console.log(
    `| ${label} | ${ms(median(xs), digits)} | ${ms(lo, digits)} | ${ms(Math.max(...xs), digits)} |`,
  );
};
console.log(
  `| Steady rate before the crash, tasks/s | ${count(median(crashes.map((c) => c.rate)))} | ` +
    `${count(Math.min(...crashes.map((c) => c.rate)))} | ` +
    `${count(Math.max(...crashes.map((c) => c.rate)))} |`,
);
crashRow(
  `Pre-crash ${BUCKET_MS} ms buckets below ${RECOVERED * 100} % of that rate, %`,
  crashes.map((c) => 100 * c.noisy),
  0,
);
crashRow(
  `Pre-crash ${SUSTAINED_BUCKETS * BUCKET_MS} ms runs below ${RECOVERED * 100} % on average, %`,
  crashes.map((c) => 100 * c.noisySustained),
  0,
);
crashRow("`crash()` submitted → its WorkerCrashedError, ms", crashes.map((c) => c.toRejection));
crashRow("(a) rejection → `stats.workers` back to 2, ms", crashes.map((c) => c.toWorkers));
crashRow(
  `(b) rejection → first ${BUCKET_MS} ms bucket at ≥ ${RECOVERED * 100} %, ms`,
  crashes.map((c) => c.toBucket),
);
crashRow(
  `(b') rejection → first ${SUSTAINED_BUCKETS * BUCKET_MS} ms (${SUSTAINED_BUCKETS} buckets) ` +
    `at ≥ ${RECOVERED * 100} % on average, ms`,
  crashes.map((c) => c.toSustained),
);
crashRow(
  `Lowest ${BUCKET_MS} ms bucket after the submission, % of the rate`,
  crashes.map((c) => 100 * c.dip),
  0,
);
crashRow(
  "Longest gap between two completions after the submission, ms",
  crashes.map((c) => c.stall),
);
crashRow(
  `Work lost (submission → ${AFTER_MS} ms after the rejection), ms at the steady rate`,
  crashes.map((c) => c.lostMs),
);
for (const kind of KINDS) {
  const name = kind === "taskpool" ? "`new WorkerPool({ workers: 2 })`" : "`new BaselinePool(2)`";
  crashRow(`Cold start: ${name} constructor, ms`, colds.get(kind)!.map((c) => c.construct));
  crashRow(
    `Cold start: ${name} + first \`noop\` result, ms`,
    colds.get(kind)!.map((c) => c.firstTask),
  );
}
console.log(
  `\nOne fresh pool per repetition (${REPS}), warmed up with ${count(WARM_UP)} tasks; ` +
    `\`crash()\` calls \`Deno.exit(1)\` in its worker. Every completion is time-stamped; the ` +
    `steady rate is over the ${RATE_SPAN_MS} ms before the submission; buckets after the ` +
    `rejection start at the rejection, and a time in (b) / (b') is the end of the qualifying ` +
    `bucket ("never": not within ${AFTER_MS} ms). (a) is polled at every completion and every ` +
    `1 ms timer; \`stats.workers\` counts the replacement once its \`new Worker()\` returned, ` +
    `before it loaded its module. The longest gap between completions shows how long the ` +
    `main thread did not settle results. Work lost = (rate × span − completions in the ` +
    `span) / rate: negative when the stream ran faster after the crash. Cold starts: a ` +
    `fresh pool of 2 workers, from before the constructor to the first result, in the same ` +
    `repetitions.\n`,
);

console.log(`### \`map\` vs \`Promise.all(run)\`, 2 workers (${count(MAP_TASKS)} no-ops)\n`);
console.log("| Form | tasks/s | min | max |");
console.log("| --- | ---: | ---: | ---: |");
const forms: [string, number[]][] = [
  ['`for await (const r of pool.map("noop", inputs))`', mapRates.map((m) => m.map)],
  ['`await Promise.all(inputs.map((i) => pool.run("noop", i)))`', mapRates.map((m) => m.all)],
];
for (const [label, xs] of forms) {
  console.log(
    `| ${label} | ${count(median(xs))} | ${count(Math.min(...xs))} | ${count(Math.max(...xs))} |`,
  );
}
const mapRatios = mapRates.map((m) => m.map / m.all);
console.log(
  `| map / Promise.all (median of per-repetition ratios) | ${median(mapRatios).toFixed(2)}× | ` +
    `${Math.min(...mapRatios).toFixed(2)}× | ${Math.max(...mapRatios).toFixed(2)}× |`,
);
console.log(
  `\nOne fresh pool per repetition, warmed up; each form runs twice on it, A B B A (which ` +
    `goes first alternates between repetitions), and its rate is ${count(2 * MAP_TASKS)} ` +
    `tasks over its two runs' time. Results are checked in order (map yields in input order) ` +
    `and summed.`,
);
