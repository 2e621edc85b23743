// What the pool's `spin` buys: each value side by side in one run, fresh pools, the order of the
// values rotating between rounds (the machine is shared and noisy: read the medians and ratios).
//
//   deno run -A bench/pool_spin_bench.ts [--quick] [--spins 0,10,50,200]
//
// `spin` is how long (µs) a worker polls the task ring, and the main thread the result ring,
// before sleeping on a futex (at most 10 µs after two polls in a row caught nothing). Per value
// and round, on 2 workers:
// - burst: 100,000 `run("noop", i)` at once, tasks/s, and the CPU of every thread per task;
// - round trip (right after the burst): 5,000 sequential `run("noop")`, p50, p90 and p99 µs;
// - trickle: 1,000 tasks one at a time, a ~1 ms timer between them (a producer slower than the
//   pool, as a consumer fed from Redis is): the CPU per task, including the timer's;
// - idle: CPU ms per second of an open pool after a burst of work.
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";
import { WorkerPool } from "../src/pool/mod.ts";
import { cpuMs } from "./_cpu.ts";

const { values: flags } = benchFlags(
  "deno run -A bench/pool_spin_bench.ts [--quick] [--spins 0,10,50,200]",
  () =>
    parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        spins: { type: "string", default: "0,10,50,200" },
      },
    }),
);
const ROUNDS = flags.quick ? 2 : 5;
const SPINS = flags.spins.split(",").map(Number);
const MODULE = new URL("./_pool_tasks.ts", import.meta.url);
const BURST = 100_000;
const WARM_UP = 20_000;
const TRICKLE = 1_000;
const TRIPS = 5_000;
const IDLE_MS = 1_000;

interface Figures {
  rate: number;
  burstCpuUs: number;
  trickleCpuUs: number;
  p50: number;
  p90: number;
  p99: number;
  idle: number;
}

async function measure(spin: number): Promise<Figures> {
  await using pool = new WorkerPool({ workers: 2, module: MODULE, spin });
  await Promise.all(Array.from({ length: WARM_UP }, (_, i) => pool.run("noop", i)));

  let cpu = cpuMs();
  const start = performance.now();
  const all = new Array<Promise<unknown>>(BURST);
  for (let i = 0; i < BURST; i++) all[i] = pool.run("noop", i);
  await Promise.all(all);
  const rate = BURST / ((performance.now() - start) / 1000);
  const burstCpuUs = (cpuMs() - cpu) * 1000 / BURST;

  // Round trips right after the burst (a stream of tasks, each waiting for the last).
  const trips = new Float64Array(TRIPS);
  for (let i = 0; i < TRIPS; i++) {
    const t = performance.now();
    await pool.run("noop", i);
    trips[i] = (performance.now() - t) * 1000;
  }
  trips.sort();

  // One task at a time with a timer's wait between (~1 ms): the pool always goes idle before the
  // next task, so whatever it spins is spent for nothing.
  cpu = cpuMs();
  for (let i = 0; i < TRICKLE; i++) {
    await pool.run("noop", i);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const trickleCpuUs = (cpuMs() - cpu) * 1000 / TRICKLE;

  await new Promise((resolve) => setTimeout(resolve, 200)); // past every bounded poll
  cpu = cpuMs();
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const idle = (cpuMs() - cpu) / (IDLE_MS / 1000);
  return {
    rate,
    burstCpuUs,
    trickleCpuUs,
    p50: trips[Math.floor(TRIPS * 0.5)],
    p90: trips[Math.floor(TRIPS * 0.9)],
    p99: trips[Math.floor(TRIPS * 0.99)],
    idle,
  };
}

const median = (xs: number[]) => {
  const s = xs.toSorted((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = new Map<number, Figures[]>(SPINS.map((s) => [s, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < SPINS.length; k++) {
    const spin = SPINS[(k + round) % SPINS.length];
    const f = await measure(spin);
    results.get(spin)!.push(f);
    console.error(
      `round ${round + 1} spin ${spin}: ${Math.round(f.rate)} tasks/s, burst ${
        f.burstCpuUs.toFixed(2)
      } µs CPU/task, trickle ${f.trickleCpuUs.toFixed(1)} µs CPU/task, p50 ${
        f.p50.toFixed(1)
      } µs, p90 ${f.p90.toFixed(1)} µs, p99 ${f.p99.toFixed(1)} µs, idle ${f.idle.toFixed(2)} ms/s`,
    );
  }
}

console.log(
  `\nMedians of ${ROUNDS} rounds, 2 workers (burst: ${
    BURST.toLocaleString("en-US")
  } tasks at once; trickle: one task, then a 1 ms timer)\n`,
);
console.log(
  "| spin (µs) | burst tasks/s | burst CPU µs/task | trickle CPU µs/task | round trip p50 µs | p90 µs | p99 µs | idle CPU ms/s |",
);
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const spin of SPINS) {
  const fs = results.get(spin)!;
  const m = (key: keyof Figures, digits: number) => median(fs.map((f) => f[key])).toFixed(digits);
  console.log(
    `| ${spin} | ${Math.round(median(fs.map((f) => f.rate))).toLocaleString("en-US")} | ${
      m("burstCpuUs", 2)
    } | ${m("trickleCpuUs", 1)} | ${m("p50", 1)} | ${m("p90", 1)} | ${m("p99", 1)} | ${
      m("idle", 2)
    } |`,
  );
}
