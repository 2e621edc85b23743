// Whether the pool's speed holds: many fresh pools in a row, on a quiet machine and beside two busy
// processes (a loaded server), reported as distributions (the slowest pool against the median, not
// only the median); and the CPU an open but idle pool burns.
//
//   deno run -A bench/pool_steady_bench.ts [--quick]
//
// Each fresh pool: 2 workers, default options, 5,000 tasks of warm-up, then 100,000 `run("noop", i)`
// at once, timed. A pool whose queue is shallower than what its workers take between the main
// thread's turns can collapse into one wake-up per batch: that shows as a slow minimum here.
//
// Beside them, the runtime's floor: the same calls and the same `Promise.all` with no pool at all
// (a promise per call, settled 128 per microtask turn), as fresh "pools" in a process of its own
// that starts as cold as this one. Whatever the floor's slowest burst costs, no pool can avoid. And
// where each burst's CPU goes, by thread: the main thread, V8's own threads (GC helpers,
// concurrent compilers), the pool's workers.
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";
import { WorkerPool } from "../src/pool/mod.ts";
import { cpuMs, cpuSplit, threadCpu, type ThreadKind } from "./_cpu.ts";

const { values: flags } = benchFlags(
  "deno run -A bench/pool_steady_bench.ts [--quick]",
  () =>
    parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        // Internal: run this many floor bursts in this (fresh) process, print them as JSON, exit.
        floor: { type: "string" },
        // Internal: measure the idle CPU of this (fresh) process, with "pool" or "none", print it, exit.
        idle: { type: "string" },
      },
    }),
);
const QUIET_POOLS = flags.quick ? 8 : 20;
const LOADED_POOLS = flags.quick ? 5 : 10;
const TASKS = 100_000;
const WARM_UP = 5_000;
/** How long an idle process is watched, ms, after it settled for `SETTLE_MS`. */
const IDLE_MS = 5_000;
/** Past every bounded poll, and the first seconds' collections after a burst. */
const SETTLE_MS = 1_000;
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);

/** The CPU time of the calling thread, ms, from schedstat (ns). */
function threadCpuMs(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

/**
 * One pool's run: tasks/s, the share of the wall time the main thread was on
 * a CPU, and the CPU of each kind of thread, µs per task.
 */
interface Rep {
  rate: number;
  busy: number;
  split: Record<ThreadKind, number>;
}

/** Times `burst` (of TASKS tasks) as a `Rep`. */
async function timed(burst: () => Promise<void>): Promise<Rep> {
  const threads = threadCpu();
  const cpu = threadCpuMs();
  const start = performance.now();
  await burst();
  const wall = performance.now() - start;
  const busy = (threadCpuMs() - cpu) / wall;
  const split = cpuSplit(threads, threadCpu());
  for (const kind of Object.keys(split) as ThreadKind[]) split[kind] *= 1000 / TASKS;
  return { rate: TASKS / (wall / 1000), busy, split };
}

/**
 * A stand-in for a pool with no workers and no ring: `run` makes a promise
 * as the pool does (a module-level executor), and a pump settles 128 per
 * microtask turn, in call order, with the call's argument.
 */
class NoPool {
  static #captured: (value: unknown) => void = () => {};
  static #capture = (resolve: (value: unknown) => void) => NoPool.#captured = resolve;
  #settle: Array<((value: unknown) => void) | undefined> = [];
  #values: number[] = [];
  #head = 0;
  #pumping = false;

  run(_task: string, value: number): Promise<unknown> {
    const promise = new Promise(NoPool.#capture);
    this.#settle.push(NoPool.#captured);
    this.#values.push(value);
    if (!this.#pumping) {
      this.#pumping = true;
      queueMicrotask(() => void this.#pump());
    }
    return promise;
  }

  async #pump(): Promise<void> {
    while (this.#head < this.#settle.length) {
      const end = Math.min(this.#settle.length, this.#head + 128);
      for (; this.#head < end; this.#head++) {
        this.#settle[this.#head]!(this.#values[this.#head]);
        this.#settle[this.#head] = undefined;
      }
      await null;
    }
    this.#pumping = false;
  }
}

/** 100,000 `run("noop", i)` at once through `pool`, each result checked. */
async function allAtOnce(pool: { run(task: string, i: number): Promise<unknown> }): Promise<void> {
  const all = new Array<Promise<unknown>>(TASKS);
  for (let i = 0; i < TASKS; i++) all[i] = pool.run("noop", i);
  const results = await Promise.all(all);
  for (let i = 0; i < TASKS; i++) if (results[i] !== i) throw new Error(`task ${i}: ${results[i]}`);
}

/** One fresh `NoPool`, warmed up as a pool is, then a timed burst. */
async function freshFloor(): Promise<Rep> {
  const pool = new NoPool();
  await Promise.all(Array.from({ length: WARM_UP }, (_, i) => pool.run("noop", i)));
  return await timed(() => allAtOnce(pool));
}

if (flags.floor !== undefined) {
  const reps: Rep[] = [];
  for (let i = 0; i < Number(flags.floor); i++) reps.push(await freshFloor());
  console.log(JSON.stringify(reps));
  Deno.exit(0);
}

if (flags.idle !== undefined) {
  console.log(JSON.stringify(await idleCpu(flags.idle === "pool")));
  Deno.exit(0);
}

/** Runs `--<flag> <value>` of this bench in a fresh process of its own; what it printed, parsed. */
async function inItsOwnProcess<T>(flag: string, value: string): Promise<T> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, `--${flag}`, value],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`the ${flag} process exited with ${output.code}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** `count` floor bursts in a fresh process of their own (as cold as this one was). */
function floorInItsOwnProcess(count: number): Promise<Rep[]> {
  return inItsOwnProcess("floor", String(count));
}

/**
 * One fresh pool: its tasks/s over 100,000 no-ops at once (`map` when asked),
 * and how busy the main thread was meanwhile. A collapse into wake-ups leaves
 * the main thread idle (it waits for sleeping workers); a slow pool whose main
 * thread was busy throughout was slow in its own code (JIT tiering, GC).
 */
async function freshPool(form: "run" | "map"): Promise<Rep> {
  const pool = new WorkerPool({ workers: 2, module: MODULE });
  try {
    await Promise.all(Array.from({ length: WARM_UP }, (_, i) => pool.run("noop", i)));
    if (form === "run") return await timed(() => allAtOnce(pool));
    return await timed(async () => {
      let n = 0;
      for await (const _ of pool.map("noop", Array.from({ length: TASKS }, (_, i) => i))) n++;
      if (n !== TASKS) throw new Error(`map yielded ${n} results`);
    });
  } finally {
    await pool.close();
  }
}

/** Two processes that keep a core busy each, until the returned function stops them. */
function busyNeighbours(): () => Promise<void> {
  const children = [0, 1].map(() =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "for (;;) {}"],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  return async () => {
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(children.map((child) => child.status));
  };
}

/**
 * CPU ms per second this process burns while idle: with an open pool after a
 * burst of work, or with no pool at all (the runtime's own, the baseline).
 * Each in a fresh process (`--idle`): in a process that has run many pools,
 * the runtime alone burned 1.4–7 ms/s for seconds after (collections, threads
 * ending), more than the pool it was to be compared with.
 */
async function idleCpu(withPool: boolean): Promise<number> {
  const pool = withPool ? new WorkerPool({ workers: 2, module: MODULE }) : undefined;
  try {
    await Promise.all(Array.from({ length: 50_000 }, (_, i) => pool?.run("noop", i)));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const before = cpuMs();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    return (cpuMs() - before) / (IDLE_MS / 1000);
  } finally {
    await pool?.close();
  }
}

function describe(rates: number[]): { min: number; p10: number; median: number } {
  const sorted = rates.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { min: sorted[0], p10: at(0.1), median: at(0.5) };
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

const show = (rep: Rep) =>
  `${fmt(rep.rate)} tasks/s, main thread busy ${(100 * rep.busy).toFixed(0)} %`;

const series: Array<{ label: string; reps: Rep[] }> = [];
{
  const reps = await floorInItsOwnProcess(QUIET_POOLS);
  reps.forEach((rep, i) => console.error(`floor ${i + 1}/${QUIET_POOLS}: ${show(rep)}`));
  series.push({
    label: `${QUIET_POOLS} bursts with no pool (the runtime's floor), quiet, own process`,
    reps,
  });
}
for (const form of ["run", "map"] as const) {
  const reps: Rep[] = [];
  for (let i = 0; i < QUIET_POOLS; i++) {
    reps.push(await freshPool(form));
    console.error(`quiet ${form} ${i + 1}/${QUIET_POOLS}: ${show(reps.at(-1)!)}`);
  }
  series.push({ label: `${QUIET_POOLS} fresh pools, \`${form}\`, quiet machine`, reps });
}
{
  const stop = busyNeighbours();
  const reps: Rep[] = [];
  try {
    for (let i = 0; i < LOADED_POOLS; i++) {
      reps.push(await freshPool("run"));
      console.error(`loaded run ${i + 1}/${LOADED_POOLS}: ${show(reps.at(-1)!)}`);
    }
  } finally {
    await stop();
  }
  series.push({ label: `${LOADED_POOLS} fresh pools, \`run\`, 2 busy processes beside`, reps });
}
const idle = { pool: [] as number[], none: [] as number[] };
for (let i = 0; i < 3; i++) {
  idle.pool.push(await inItsOwnProcess<number>("idle", "pool"));
  idle.none.push(await inItsOwnProcess<number>("idle", "none"));
  console.error(`idle ${i + 1}/3: pool ${idle.pool[i]} ms/s, none ${idle.none[i]} ms/s`);
}
const mid = (xs: number[]) => xs.toSorted((a, b) => a - b)[1];

console.log(`## Does the pool's speed hold?\n`);
console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores. Each row: fresh pools in a ` +
    `row in one process, 2 workers, default options, ${fmt(WARM_UP)} tasks of warm-up, then ` +
    `${fmt(TASKS)} no-ops at once (tasks/s). "Slowest / median" is the collapse check; the ` +
    `main thread's busy share (its CPU time over the wall time) tells a collapse (the main thread ` +
    `idle, waiting for sleeping workers) from a pool slow in its own code (busy: JIT, GC).\n`,
);
console.log(
  "| Series | min | p10 | median | slowest / median | main thread busy, slowest pool | " +
    "main thread busy, least |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const { label, reps } of series) {
  const rates = reps.map((rep) => rep.rate);
  const { min, p10, median } = describe(rates);
  const slowest = reps[rates.indexOf(min)];
  const least = Math.min(...reps.map((rep) => rep.busy));
  console.log(
    `| ${label} | ${fmt(min)} | ${fmt(p10)} | ${fmt(median)} | ${(min / median).toFixed(2)} | ` +
      `${(100 * slowest.busy).toFixed(0)} % | ${(100 * least).toFixed(0)} % |`,
  );
}
console.log(
  "\nWhere a burst's CPU goes, µs per task, by thread (medians over the series; a thread's CPU " +
    "counts only while it lives, so workers that end before a burst does are missed: none do):\n",
);
console.log("| Series | wall | main thread | V8's threads (GC, compilers) | workers | other |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
const median = (xs: number[]) => describe(xs).median;
for (const { label, reps } of series) {
  const part = (kind: ThreadKind) => median(reps.map((rep) => rep.split[kind])).toFixed(2);
  console.log(
    `| CPU of: ${label} | ${median(reps.map((rep) => 1e6 / rep.rate)).toFixed(2)} | ${
      part("main")
    } | ` +
      `${part("v8")} | ${part("worker")} | ${part("other")} |`,
  );
}
console.log("\n| Idle process, after a burst of work | CPU ms per second idle (median of 3) |");
console.log("| --- | ---: |");
console.log(`| an open WorkerPool, 2 workers | ${mid(idle.pool).toFixed(2)} |`);
console.log(`| no pool (the runtime alone: the baseline) | ${mid(idle.none).toFixed(2)} |`);
