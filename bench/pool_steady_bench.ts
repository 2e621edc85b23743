// Whether the pool's speed holds: many fresh pools in a row, on a quiet machine and beside two busy
// processes (a loaded server), reported as distributions (the slowest pool against the median, not
// only the median); and the CPU an open but idle pool burns.
//
//   deno run -A bench/pool_steady_bench.ts [--quick]
//
// Each fresh pool: 2 workers, default options, 5,000 tasks of warm-up, then 100,000 `run("noop", i)`
// at once, timed. A pool whose queue is shallower than what its workers take between the main
// thread's turns can collapse into one wake-up per batch: that shows as a slow minimum here.
import { parseArgs } from "node:util";
import { WorkerPool } from "../src/pool/mod.ts";
import { cpuMs } from "./_cpu.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean", default: false } },
});
const QUIET_POOLS = flags.quick ? 8 : 20;
const LOADED_POOLS = flags.quick ? 5 : 10;
const TASKS = 100_000;
const WARM_UP = 5_000;
const IDLE_MS = 2_000;
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);

/** The CPU time of the calling thread, ms, from schedstat (ns). */
function threadCpuMs(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

/** One pool's run: tasks/s, and the share of the wall time the main thread was on a CPU. */
interface Rep {
  rate: number;
  busy: number;
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
    const cpu = threadCpuMs();
    const start = performance.now();
    if (form === "run") {
      const all = new Array<Promise<unknown>>(TASKS);
      for (let i = 0; i < TASKS; i++) all[i] = pool.run("noop", i);
      await Promise.all(all);
    } else {
      let n = 0;
      for await (const _ of pool.map("noop", Array.from({ length: TASKS }, (_, i) => i))) n++;
      if (n !== TASKS) throw new Error(`map yielded ${n} results`);
    }
    const wall = performance.now() - start;
    return { rate: TASKS / (wall / 1000), busy: (threadCpuMs() - cpu) / wall };
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
 */
async function idleCpu(withPool: boolean): Promise<number> {
  const pool = withPool ? new WorkerPool({ workers: 2, module: MODULE }) : undefined;
  try {
    await Promise.all(Array.from({ length: 50_000 }, (_, i) => pool?.run("noop", i)));
    await new Promise((resolve) => setTimeout(resolve, 200)); // past every bounded poll
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
  idle.pool.push(await idleCpu(true));
  idle.none.push(await idleCpu(false));
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
console.log("\n| Idle process, after a burst of work | CPU ms per second idle (median of 3) |");
console.log("| --- | ---: |");
console.log(`| an open WorkerPool, 2 workers | ${mid(idle.pool).toFixed(2)} |`);
console.log(`| no pool (the runtime alone: the baseline) | ${mid(idle.none).toFixed(2)} |`);
