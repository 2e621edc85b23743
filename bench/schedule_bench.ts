// The cost of recurring jobs on the Redis queue: 1,000 jobs of `every: "1s"` on 2 consumer
// processes (`cli.ts consume --workers 2`) against a private redis-server, for a few seconds.
// Reported: how late each run started after its tick (p50, p99, max), whether every tick ran
// exactly once, and the Redis commands per tick (script-internal ones included).
//
//   deno run -A bench/schedule_bench.ts [--quick]
import { quickFlags } from "./_args.ts";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { validateJobFile } from "../src/jobs/mod.ts";
import { startRedisServer } from "../tests/_redis.ts";

const flags = quickFlags("deno run -A bench/schedule_bench.ts [--quick]");
const SCHEDULES = flags.quick ? 200 : 1000;
const SECONDS = flags.quick ? 4 : 8;
const cli = new URL("../cli.ts", import.meta.url).pathname;
const tasks = new URL("./_pool_tasks.ts", import.meta.url).pathname;

await using server = await startRedisServer();
const client = await RedisClient.connect(server.url);
await using queue = await RedisQueue.connect({ url: server.url, queue: "{ticks}" });

const checked = validateJobFile({
  jobs: Array.from({ length: SCHEDULES }, (_, i) => ({
    id: `s${i}`,
    every: "1s",
    task: `${tasks}#noop`,
    args: [i],
  })),
}, "/tmp/bench.json");
if (!checked.ok) throw new Error("bench file invalid");

/** Redis's own count of each command, from INFO commandstats. */
async function commandCounts(): Promise<Map<string, number>> {
  const info = await client.send(["INFO", "commandstats"]) as string;
  const counts = new Map<string, number>();
  for (const match of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
    counts.set(match[1], Number(match[2]));
  }
  return counts;
}

const children = [0, 1].map(() =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      cli,
      "consume",
      "--redis",
      server.url,
      "--queue",
      queue.name,
      "--workers",
      "2",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn()
);
while ((await queue.counts()).consumers < 2) await new Promise((r) => setTimeout(r, 50));
await queue.push(checked.file);
// Measure whole seconds of ticks after a first one to settle.
const first = Math.ceil(Date.now() / 1000) * 1000 + 1000;
const last = first + (SECONDS - 1) * 1000;
while (Date.now() < first) await new Promise((r) => setTimeout(r, 5));
const before = await commandCounts();
while (Date.now() < last + 1000) await new Promise((r) => setTimeout(r, 50));
const after = await commandCounts();
await queue.unschedule(checked.file.jobs.map((job) => job.id));
for (const child of children) child.kill("SIGTERM");
await Promise.all(children.map((child) => child.status));

const records = await client.send(["XRANGE", `${queue.name}:results`, "-", "+"]) as [
  string,
  string[],
][];
const late: number[] = [];
const runs = new Map<string, number>();
for (const [, fields] of records) {
  const result = JSON.parse(fields[fields.indexOf("data") + 1]);
  const tick = Date.parse(result.id.slice(result.id.indexOf("@") + 1));
  if (tick < first || tick > last) continue;
  runs.set(result.id, (runs.get(result.id) ?? 0) + 1);
  if (result.start !== undefined) late.push(result.start - tick);
}
client.close();
const expected = SCHEDULES * SECONDS;
const twice = [...runs.values()].filter((n) => n > 1).length;
late.sort((a, b) => a - b);
const at = (q: number) => late[Math.min(late.length - 1, Math.floor(q * late.length))];
let total = 0;
for (const [name, calls] of after) total += calls - (before.get(name) ?? 0);
const top = [...after].map(([name, calls]) => [name, calls - (before.get(name) ?? 0)] as const)
  .filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).slice(0, 8);

console.log(`## Recurring jobs on the Redis queue\n`);
console.log(
  `${SCHEDULES} jobs of \`every: "1s"\` (a no-op task each) on 2 consumer processes of 2 workers, ` +
    `${SECONDS} s of ticks measured; Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ` +
    `one private redis-server.\n`,
);
console.log("| Measure | value |");
console.log("| --- | ---: |");
console.log(`| ticks due in the window | ${expected} |`);
console.log(`| ticks run (each once) | ${runs.size} |`);
console.log(`| ticks run more than once | ${twice} |`);
console.log(`| run started after its tick, p50 ms | ${at(0.5).toFixed(1)} |`);
console.log(`| run started after its tick, p99 ms | ${at(0.99).toFixed(1)} |`);
console.log(`| run started after its tick, max ms | ${late.at(-1)!.toFixed(1)} |`);
console.log(
  `| Redis commands per tick, all (the run's own take and ack included) | ${
    (total / expected).toFixed(1)
  } |`,
);
console.log(
  `\nTop commands in the window: ${
    top.map(([n, c]) => `${n} ${(c / expected).toFixed(2)}/tick`).join(", ")
  }.`,
);
