// The Redis queue against a private local redis-server (persistence off):
// jobs per second end to end (push of N no-op task jobs → every outcome
// recorded and read back, acks included) with 1 and 2 consumers, each a
// `cli.ts consume` process with one worker; the latency from push to result
// (one job at a time); and, in the same run, `redis-benchmark -t lpush,lpop`
// for the scale of what the server alone does.
//
//   deno run -A bench/redis_bench.ts [--quick]
import { quickFlags } from "./_args.ts";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { validateJobFile } from "../src/jobs/mod.ts";
import { startRedisServer } from "../tests/_redis.ts";
import { cpuMsOf } from "./_cpu.ts";
import { startConsumers, stopConsumers } from "./_consumers.ts";

const flags = quickFlags("deno run -A bench/redis_bench.ts [--quick]");
const RUNS = flags.quick ? 1 : 3;
const JOBS = flags.quick ? 2000 : 10_000;
const LATENCY_SAMPLES = flags.quick ? 100 : 500;
const tasks = new URL("./_pool_tasks.ts", import.meta.url).pathname;

const server = await startRedisServer();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

/**
 * What each job of a throughput run carries besides its task: nothing, a
 * priority, a unique key, or one of 10 groups of concurrency 4.
 */
type Shape = "plain" | "priority" | "keyed" | "grouped";

function file(n: number, prefix: string, shape: Shape = "plain") {
  const checked = validateJobFile(
    {
      jobs: Array.from({ length: n }, (_, i) => ({
        id: `${prefix}${i}`,
        task: `${tasks}#noop`,
        args: [i],
        ...(shape === "priority" ? { priority: 5 } : {}),
        ...(shape === "keyed" ? { key: `${prefix}-key-${i}` } : {}),
        ...(shape === "grouped" ? { group: `g${i % 10}` } : {}),
      })),
      ...(shape === "grouped"
        ? {
          groups: Object.fromEntries(
            Array.from({ length: 10 }, (_, g) => [`g${g}`, { concurrency: 4 }]),
          ),
        }
        : {}),
    },
    "/tmp/bench.json",
  );
  if (!checked.ok) throw new Error("bench file invalid");
  return checked.file;
}

/** The consumers' CPU per job of each throughput run, µs, by case. */
const consumerCpu = new Map<string, number[]>();
/** Redis commands per job (every command the server ran: pushes, takes, acks, reads), by case. */
const commandsPerJob = new Map<string, number[]>();
/** The server's CPU per job, µs, by case. */
const redisCpu = new Map<string, number[]>();

/** The server's total commands run and CPU seconds so far (INFO). */
async function serverTotals(): Promise<{ calls: number; cpu: number }> {
  await using client = await RedisClient.connect(server.url);
  const stats = await client.send(["INFO", "commandstats"]) as string;
  const cpuInfo = await client.send(["INFO", "cpu"]) as string;
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(cpuInfo)![1]);
  return { calls, cpu: field("used_cpu_sys") + field("used_cpu_user") };
}

function record(map: Map<string, number[]>, key: string, value: number): void {
  map.set(key, [...(map.get(key) ?? []), value]);
}

/** Seconds from the start of the push until every outcome has been read. */
async function throughput(
  n: number,
  run: number,
  extra: string[] = [],
  shape: Shape = "plain",
): Promise<number> {
  await using queue = await RedisQueue.connect({
    url: server.url,
    queue: `tp${n}-${run}-${extra.join("")}-${shape}`,
  });
  const children = await startConsumers(server.url, queue, n, extra);
  try {
    const cpu = () => children.reduce((sum, child) => sum + cpuMsOf(child.pid), 0);
    const jobs = file(JOBS, `j${run}`, shape);
    const totals = await serverTotals();
    const cpuBefore = cpu();
    const started = performance.now();
    const receipt = await queue.push(jobs);
    const results = await queue.wait(receipt);
    const seconds = (performance.now() - started) / 1000;
    const key = `${n}${extra.join(" ")}${shape === "plain" ? "" : shape}`;
    record(consumerCpu, key, (cpu() - cpuBefore) * 1000 / JOBS);
    const after = await serverTotals();
    // Less the HELLO/INFO calls of the first reading's connection, which the second counts.
    record(commandsPerJob, key, (after.calls - totals.calls - 3) / JOBS);
    record(redisCpu, key, (after.cpu - totals.cpu) * 1e6 / JOBS);
    if (results.some((r) => r.status !== "succeeded")) throw new Error("a job failed");
    return seconds;
  } finally {
    await stopConsumers(children);
  }
}

/** Jobs of the big push (no consumer): its time, and how far this process's RSS rose meanwhile. */
const BIG_PUSH = flags.quick ? 20_000 : 100_000;

async function bigPush(run: number): Promise<{ ms: number; peakMb: number }> {
  await using queue = await RedisQueue.connect({ url: server.url, queue: `big-${run}` });
  const jobs = file(BIG_PUSH, "p");
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 1);
  const started = performance.now();
  await queue.push(jobs);
  const ms = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, Deno.memoryUsage().rss);
  const client = await RedisClient.connect(server.url);
  await client.send(["DEL", `big-${run}`]);
  client.close();
  return { ms, peakMb: (peak - before) / 2 ** 20 };
}

/** Push one job, wait for its outcome, again and again: ms each. */
async function latency(): Promise<number[]> {
  await using queue = await RedisQueue.connect({ url: server.url, queue: "latency" });
  const children = await startConsumers(server.url, queue, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < LATENCY_SAMPLES + 20; i++) {
      const one = file(1, `l${i}-`);
      const started = performance.now();
      await queue.wait(await queue.push(one));
      if (i >= 20) samples.push(performance.now() - started); // the first ones warm up
    }
  } finally {
    await stopConsumers(children);
  }
  return samples;
}

async function redisBenchmark(): Promise<Record<string, number>> {
  const output = await new Deno.Command("redis-benchmark", {
    args: ["-p", String(server.port), "-t", "lpush,lpop", "-n", "100000", "-q"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout).replaceAll("\r", "\n");
  const rates: Record<string, number> = {};
  for (const match of text.matchAll(/^(LPUSH|LPOP): ([\d.]+) requests per second/gm)) {
    rates[match[1]] = Number(match[2]);
  }
  return rates;
}

try {
  const one: number[] = [];
  const two: number[] = [];
  const deep: number[] = [];
  const eight: number[] = [];
  const prioritized: number[] = [];
  const keyed: number[] = [];
  const grouped: number[] = [];
  const grouped2: number[] = [];
  const pushMs: number[] = [];
  const pushMb: number[] = [];
  const lpush: number[] = [];
  const lpop: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const rates = await redisBenchmark();
    lpush.push(rates.LPUSH);
    lpop.push(rates.LPOP);
    one.push(await throughput(1, run));
    two.push(await throughput(2, run));
    eight.push(await throughput(1, run, ["--capacity", "7"]));
    deep.push(await throughput(1, run, ["--capacity", "16"]));
    prioritized.push(await throughput(1, run, [], "priority"));
    keyed.push(await throughput(1, run, [], "keyed"));
    grouped.push(await throughput(1, run, [], "grouped"));
    grouped2.push(await throughput(2, run, [], "grouped"));
    const big = await bigPush(run);
    pushMs.push(big.ms);
    pushMb.push(big.peakMb);
    console.error(`run ${run + 1}/${RUNS} done`);
  }
  const samples = await latency();

  console.log(`## The Redis queue\n`);
  console.log(
    `Deno ${Deno.version.deno}, navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}, ` +
      `a private redis-server on loopback (persistence off). ${JOBS} no-op task jobs pushed at ` +
      `once, timed from the push until every outcome was read back; each consumer is a ` +
      `\`cli.ts consume --workers 1\` process, at its default depth unless the row says otherwise. ` +
      `Medians of ${RUNS}.\n`,
  );
  const per = (key: string) =>
    `${median(consumerCpu.get(key)!).toFixed(1)} | ${
      median(commandsPerJob.get(key)!).toFixed(1)
    } | ${median(redisCpu.get(key)!).toFixed(1)}`;
  console.log("| | jobs/s | consumers' CPU µs/job | Redis commands/job | Redis CPU µs/job |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  console.log(`| 1 consumer | ${Math.round(JOBS / median(one))} | ${per("1")} |`);
  console.log(`| 2 consumers | ${Math.round(JOBS / median(two))} | ${per("2")} |`);
  console.log(
    `| 1 consumer, \`--capacity 7\` (8 held) | ${Math.round(JOBS / median(eight))} | ${
      per("1--capacity 7")
    } |`,
  );
  console.log(
    `| 1 consumer, \`--capacity 16\` | ${Math.round(JOBS / median(deep))} | ${
      per("1--capacity 16")
    } |`,
  );
  console.log(
    `| 1 consumer, every job \`priority: 5\` | ${Math.round(JOBS / median(prioritized))} | ${
      per("1priority")
    } |`,
  );
  console.log(
    `| 1 consumer, every job with its own \`key\` | ${Math.round(JOBS / median(keyed))} | ${
      per("1keyed")
    } |`,
  );
  console.log(
    `| 1 consumer, 10 groups of \`concurrency: 4\` | ${Math.round(JOBS / median(grouped))} | ${
      per("1grouped")
    } |`,
  );
  console.log(
    `| 2 consumers, 10 groups of \`concurrency: 4\` | ${Math.round(JOBS / median(grouped2))} | ${
      per("2grouped")
    } |`,
  );
  console.log(`| \`redis-benchmark\` LPUSH (requests/s) | ${Math.round(median(lpush))} | | | |`);
  console.log(`| \`redis-benchmark\` LPOP (requests/s) | ${Math.round(median(lpop))} | | | |`);
  console.log(
    `\n| push of ${BIG_PUSH.toLocaleString("en-US")} jobs, no consumer | ms | RSS rise, MB |`,
  );
  console.log("| --- | ---: | ---: |");
  console.log(`| push | ${median(pushMs).toFixed(0)} | ${median(pushMb).toFixed(1)} |`);
  console.log(
    `\nPush to result, one job at a time (${samples.length} samples): p50 ${
      percentile(samples, 0.5).toFixed(2)
    } ms, p99 ${percentile(samples, 0.99).toFixed(2)} ms.`,
  );
} finally {
  await server.stop();
}
