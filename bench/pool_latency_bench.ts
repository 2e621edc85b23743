// Round trips of a pool fed one task at a time, each awaited before the next (a request/response
// loop): p50, p90 and p99 over many fresh pools, beside the machine's own tail in the same
// process (the same number of windows of pure computation on one thread, timed alike).
//
//   deno run -A bench/pool_latency_bench.ts [--quick]
//
// Each fresh pool: 2 workers, default options, 1,000 untimed round trips, then 10,000 timed. The
// table shows the median over pools of each pool's quantiles (the tail of one pool is noisy here:
// the host takes the CPU away now and then, as the machine's own row shows). For a before/after,
// run it through bench/compare.ts against a worktree of the older commit.
import { quickFlags } from "./_args.ts";
import { WorkerPool } from "../src/pool/mod.ts";
import { MACHINE_WORK, machineTail, type Tail, tailOf } from "./_tail.ts";

const flags = quickFlags("deno run -A bench/pool_latency_bench.ts [--quick]");
const POOLS = flags.quick ? 4 : 12;
const WARM_UP = 1_000;
const TRIPS = 10_000;
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);

async function pool(): Promise<Tail> {
  await using pool = new WorkerPool({ workers: 2, module: MODULE });
  for (let i = 0; i < WARM_UP; i++) await pool.run("noop", i);
  const micros = new Float64Array(TRIPS);
  for (let i = 0; i < TRIPS; i++) {
    const start = performance.now();
    const value = await pool.run("noop", i);
    micros[i] = (performance.now() - start) * 1000;
    if (value !== i) throw new Error(`task ${i} returned ${value}`);
  }
  return tailOf(micros);
}

const pools: Tail[] = [];
const machines: Tail[] = [];
for (let i = 0; i < POOLS; i++) {
  pools.push(await pool());
  machines.push(machineTail(TRIPS));
  const [p, m] = [pools.at(-1)!, machines.at(-1)!];
  console.error(
    `pool ${i + 1}/${POOLS}: p50 ${p.p50.toFixed(1)} p90 ${p.p90.toFixed(1)} p99 ${
      p.p99.toFixed(1)
    } µs; machine p99 ${m.p99.toFixed(1)} µs`,
  );
}
const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (label: string, tails: Tail[]) =>
  `| ${label} | ${median(tails.map((t) => t.p50)).toFixed(1)} | ${
    median(tails.map((t) => t.p90)).toFixed(1)
  } | ${median(tails.map((t) => t.p99)).toFixed(1)} |`;

console.log(`## Round trips, one task at a time\n`);
console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores. ${POOLS} fresh pools ` +
    `(2 workers, default options), each ${WARM_UP.toLocaleString("en-US")} untimed round trips ` +
    `of \`await run("noop", i)\`, then ${TRIPS.toLocaleString("en-US")} timed; after each pool, ` +
    `as many windows of ${
      MACHINE_WORK.toLocaleString("en-US")
    } additions on this thread, timed alike. ` +
    `Medians over the pools of each one's quantiles.\n`,
);
console.log("| Series | p50 µs | p90 µs | p99 µs |");
console.log("| --- | ---: | ---: | ---: |");
console.log(row("round trip through the pool", pools));
console.log(row("the machine's own tail (no pool, one thread)", machines));
