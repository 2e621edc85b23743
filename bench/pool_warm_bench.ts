// The pool's speed once the process is warm: the JIT has optimised the main
// thread's submit and settle paths (pool_bench.ts measures young processes).
//
//   deno run -A bench/pool_warm_bench.ts [--rounds 8]
//
// Each round: a fresh pool of 2 workers with default options, 200,000 no-ops
// (`run` at once) untimed, then 100,000 `run("noop", i)` at once and a
// `map("noop", inputs)` of 100,000, timed. Beside another tree, through
// bench/compare.ts, the two trees' processes alternate.
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";
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
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);

async function runRate(pool: WorkerPool): Promise<number> {
  const start = performance.now();
  const all = new Array<Promise<unknown>>(N);
  for (let i = 0; i < N; i++) all[i] = pool.run("noop", i);
  const results = await Promise.all(all);
  const rate = N / ((performance.now() - start) / 1000);
  if (results[N - 1] !== N - 1) throw new Error(`wrong result: ${results[N - 1]}`);
  return rate;
}

async function mapRate(pool: WorkerPool): Promise<number> {
  const inputs = Array.from({ length: N }, (_, i) => i);
  const start = performance.now();
  let sum = 0;
  for await (const r of pool.map("noop", inputs)) sum += r as number;
  const rate = N / ((performance.now() - start) / 1000);
  if (sum !== (N * (N - 1)) / 2) throw new Error(`wrong sum: ${sum}`);
  return rate;
}

const rates = { run: [] as number[], map: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  const pool = new WorkerPool({ workers: 2, module: MODULE });
  try {
    await runRate(pool);
    await runRate(pool); // 200,000 untimed: the warm-up
    rates.run.push(await runRate(pool));
    rates.map.push(await mapRate(pool));
    console.error(
      `round ${round + 1}/${ROUNDS}: run ${fmt(rates.run.at(-1)!)}, map ${fmt(rates.map.at(-1)!)}`,
    );
  } finally {
    await pool.close();
  }
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}
const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[xs.length >> 1];

console.log(`## The pool, warm\n`);
console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores. ${ROUNDS} fresh pools of 2 ` +
    `workers in one process, each after 200,000 untimed no-ops; 100,000 no-ops per form.\n`,
);
console.log("| Form | median tasks/s | min | max |");
console.log("| --- | ---: | ---: | ---: |");
for (const form of ["run", "map"] as const) {
  const xs = rates[form];
  console.log(
    `| \`${form}\` | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} |`,
  );
}
