// The pool's speed once the process is warm: the JIT has optimised the main
// thread's submit and settle paths (pool_bench.ts measures young processes).
// Beside it, in the same process, a fresh pool warmed up as pool_bench.ts
// warms its pools (5,000 tasks): what a pool's new worker isolates cost while
// V8 still compiles their code, with the main thread already warm.
//
//   deno run -A bench/pool_warm_bench.ts [--rounds 8]
//
// Each round: a fresh pool of 2 workers with default options, 200,000 no-ops
// (`run` at once) untimed, then 100,000 `run("noop", i)` at once and a
// `map("noop", inputs)` of 100,000, timed; and another fresh pool, 5,000
// untimed, then 100,000 `run` at once, timed (the two pools' order alternates
// between rounds). Each timed burst also splits the process's CPU time by
// thread: the main thread, V8's own threads (GC helpers and compilers), the
// workers. Beside another tree, through bench/compare.ts, the two trees'
// processes alternate.
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";
import { cpuSplit, threadCpu } from "./_cpu.ts";
import { WorkerPool } from "../src/pool/mod.ts";

const { values: flags } = benchFlags(
  "deno run -A bench/pool_warm_bench.ts [--rounds 8]",
  () =>
    parseArgs({
      args: Deno.args,
      options: { rounds: { type: "string", default: "8" } },
    }),
);
const ROUNDS = Number(flags.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a whole number of at least 1, not "${flags.rounds}"`);
  Deno.exit(2);
}
const N = 100_000;
/** Untimed tasks before a warm pool's timed bursts. */
const WARM_UP = 200_000;
/** Untimed tasks before a fresh pool's timed burst: pool_bench.ts's warm-up. */
const FRESH_WARM_UP = 5_000;
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);

/** µs of CPU per task of the main thread, V8's threads and the workers over one timed burst. */
interface Split {
  main: number;
  v8: number;
  workers: number;
}

/** Times `burst` (N tasks): its rate, and the CPU it took per task by thread. */
async function timed(burst: () => Promise<void>): Promise<{ rate: number; split: Split }> {
  const before = threadCpu();
  const start = performance.now();
  await burst();
  const rate = N / ((performance.now() - start) / 1000);
  const ms = cpuSplit(before, threadCpu());
  const perTask = (x: number) => (x * 1000) / N;
  return {
    rate,
    split: { main: perTask(ms.main), v8: perTask(ms.v8), workers: perTask(ms.worker) },
  };
}

async function runAll(pool: WorkerPool, n: number): Promise<void> {
  const all = new Array<Promise<unknown>>(n);
  for (let i = 0; i < n; i++) all[i] = pool.run("noop", i);
  const results = await Promise.all(all);
  if (results[n - 1] !== n - 1) throw new Error(`wrong result: ${results[n - 1]}`);
}

async function mapAll(pool: WorkerPool, inputs: number[]): Promise<void> {
  let sum = 0;
  for await (const r of pool.map("noop", inputs)) sum += r as number;
  if (sum !== (N * (N - 1)) / 2) throw new Error(`wrong sum: ${sum}`);
}

type Series = "run" | "map" | "fresh";
const rates: Record<Series, number[]> = { run: [], map: [], fresh: [] };
const splits: Record<Series, Split[]> = { run: [], map: [], fresh: [] };

function record(series: Series, result: { rate: number; split: Split }): void {
  rates[series].push(result.rate);
  splits[series].push(result.split);
}

/** A pool after WARM_UP untimed tasks: `run` and `map`, timed. */
async function warmPool(): Promise<void> {
  const pool = new WorkerPool({ workers: 2, module: MODULE });
  try {
    for (let done = 0; done < WARM_UP; done += N) await runAll(pool, N); // bursts of N, untimed
    record("run", await timed(() => runAll(pool, N)));
    const inputs = Array.from({ length: N }, (_, i) => i); // made before the clock starts
    record("map", await timed(() => mapAll(pool, inputs)));
  } finally {
    await pool.close();
  }
}

/** A pool after FRESH_WARM_UP untimed tasks (as pool_bench.ts warms its pools): `run`, timed. */
async function freshPool(): Promise<void> {
  const pool = new WorkerPool({ workers: 2, module: MODULE });
  try {
    await runAll(pool, FRESH_WARM_UP);
    record("fresh", await timed(() => runAll(pool, N)));
  } finally {
    await pool.close();
  }
}

for (let round = 0; round < ROUNDS; round++) {
  if (round % 2 === 0) await warmPool(), await freshPool();
  else await freshPool(), await warmPool();
  console.error(
    `round ${round + 1}/${ROUNDS}: run ${fmt(rates.run.at(-1)!)}, map ${fmt(rates.map.at(-1)!)}, ` +
      `run on fresh workers ${fmt(rates.fresh.at(-1)!)}`,
  );
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}
/** The median; of an even count, the mean of the middle two. */
function median(xs: number[]): number {
  const sorted = xs.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

console.log(`## The pool, warm\n`);
console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores. ${ROUNDS} rounds in one ` +
    `process, each with two fresh pools of 2 workers (their order alternates): one after ` +
    `${fmt(WARM_UP)} untimed no-ops, timed for \`run\` and \`map\`; one after ` +
    `${fmt(FRESH_WARM_UP)} (as pool_bench.ts warms its pools), timed for \`run\` ("fresh ` +
    `workers"). ${fmt(N)} no-ops per burst. CPU: µs per task by thread over the burst (V8's ` +
    `threads: its GC helpers and compilers), medians.\n`,
);
console.log(
  "| Form | median tasks/s | min | max | main thread µs | V8's threads µs | workers µs |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
// The first cell keys a row for bench/compare.ts: the warm rows keep the
// names they had before the fresh pool was added.
const LABELS: Record<Series, string> = {
  run: "`run`",
  map: "`map`",
  fresh: "`run`, fresh workers",
};
for (const series of ["run", "map", "fresh"] as const) {
  const xs = rates[series];
  const cpu = (pick: (s: Split) => number) => median(splits[series].map(pick)).toFixed(2);
  console.log(
    `| ${LABELS[series]} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${
      fmt(Math.max(...xs))
    } | ` +
      `${cpu((s) => s.main)} | ${cpu((s) => s.v8)} | ${cpu((s) => s.workers)} |`,
  );
}
const ratios = rates.run.map((r, i) => r / rates.fresh[i]);
console.log(
  `\nA warm pool's \`run\` against a fresh one's, same round: ${
    median(ratios).toFixed(2)
  }× (median of per-round ratios; min ${Math.min(...ratios).toFixed(2)}, max ${
    Math.max(...ratios).toFixed(2)
  }).`,
);
