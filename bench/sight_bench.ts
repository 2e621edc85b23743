// What sight costs (#15), each beside its own baseline in the same run:
//
// 1. Progress in the pool: a task that calls taskProgress() at every step of
//    a tight loop against the same loop without it (2 workers, 8 tasks of
//    N steps): ns per call, and the ratio of the two runs' times, with and
//    without an onProgress listener.
// 2. Progress through Redis: one `cli.ts consume` process running no-op jobs
//    that report progress once each, against no-op jobs that do not (jobs/s).
// 3. A dashboard watching a queue at full speed: the same consumer's jobs/s
//    with no dashboard, and with a dashboard and one open page (a real
//    headless Chromium when one is installed, else an SSE client reading the
//    page's event stream).
//
// Rounds alternate the cases; the tables show medians and ratios.
//
//   deno run -A bench/sight_bench.ts [--quick]
import { quickFlags } from "./_args.ts";
import { WorkerPool } from "../src/pool/mod.ts";
import { RedisQueue } from "../src/redis/mod.ts";
import { validateJobFile } from "../src/jobs/mod.ts";
import { serveDashboard } from "../src/dashboard/mod.ts";
import { startRedisServer } from "../tests/_redis.ts";
import { Browser, chromiumPath } from "../tests/_cdp.ts";
import { startConsumers, stopConsumers } from "./_consumers.ts";

const flags = quickFlags("deno run -A bench/sight_bench.ts [--quick]");
const ROUNDS = flags.quick ? 2 : 5;
const STEPS = flags.quick ? 2_000_000 : 10_000_000;
const TASKS = 8;
const JOBS = flags.quick ? 3000 : 10_000;
const tasks = new URL("./_pool_tasks.ts", import.meta.url).href;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// -- 1. Progress in the pool --

async function loops(name: string, listen: boolean): Promise<number> {
  await using pool = new WorkerPool({ workers: 2 });
  await pool.run({ module: tasks, name: "count", args: [1000] }); // workers up, module loaded
  let reports = 0;
  const onProgress = listen ? () => reports++ : undefined;
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: TASKS },
      () => pool.run({ module: tasks, name, args: [STEPS], onProgress }),
    ),
  );
  return performance.now() - started;
}

const plain: number[] = [];
const reporting: number[] = [];
const reportingListened: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  plain.push(await loops("count", false));
  reporting.push(await loops("countWithProgress", false));
  reportingListened.push(await loops("countWithProgress", true));
}
const perCall = (ms: number[]) =>
  ((median(ms) - median(plain)) * 1e6 / (TASKS * STEPS / 2)).toFixed(1); // 2 workers in parallel
console.log(
  `\n## Progress in the pool: ${TASKS} tasks of ${STEPS.toLocaleString("en")} steps, 2 workers\n`,
);
console.log("| case | median ms | vs plain loop | ns per taskProgress call |");
console.log("| --- | ---: | ---: | ---: |");
console.log(`| plain loop | ${median(plain).toFixed(0)} | 1.00× | |`);
console.log(
  `| taskProgress every step, no listener | ${median(reporting).toFixed(0)} | ${
    (median(reporting) / median(plain)).toFixed(2)
  }× | ${perCall(reporting)} |`,
);
console.log(
  `| taskProgress every step, onProgress | ${median(reportingListened).toFixed(0)} | ${
    (median(reportingListened) / median(plain)).toFixed(2)
  }× | ${perCall(reportingListened)} |`,
);

// -- 2 and 3. Redis: progress, and a dashboard watching --

const server = await startRedisServer();

function file(name: string) {
  const checked = validateJobFile({
    jobs: Array.from(
      { length: JOBS },
      (_, i) => ({ id: `j${i}`, task: `${tasks}#${name}`, args: [i] }),
    ),
  }, "/tmp/bench.json");
  if (!checked.ok) throw new Error("bench file invalid");
  return checked.file;
}

/** Jobs/s of one consumer process (one worker) on a fresh queue. */
async function throughput(queueName: string, task: string): Promise<number> {
  await using queue = await RedisQueue.connect({ url: server.url, queue: queueName });
  const children = await startConsumers(server.url, queue, 1);
  try {
    const jobs = file(task);
    const started = performance.now();
    const results = await queue.wait(await queue.push(jobs));
    if (results.some((r) => r.status !== "succeeded")) throw new Error("a job failed");
    return JOBS / ((performance.now() - started) / 1000);
  } finally {
    await stopConsumers(children);
  }
}

/** A dashboard on `queueName` with one page open on it; closes both when disposed. */
async function watched(queueName: string, browser: Browser | undefined) {
  const dashboard = await serveDashboard({
    queues: [queueName],
    redis: { url: server.url },
    listen: { hostname: "127.0.0.1", port: 0 },
  });
  if (browser !== undefined) {
    const page = await browser.newPage(`${dashboard.url}?queue=${encodeURIComponent(queueName)}`);
    await page.waitFor("document.body.dataset.updated", "the page's first snapshot");
    return {
      async [Symbol.asyncDispose]() {
        await page.close();
        await dashboard.close();
      },
    };
  }
  const response = await fetch(
    new URL(`api/events?queue=${encodeURIComponent(queueName)}`, dashboard.url),
  );
  const reading = (async () => {
    for await (const _ of response.body!) { /* as a page would */ }
  })().catch(() => {});
  return {
    async [Symbol.asyncDispose]() {
      await response.body?.cancel().catch(() => {});
      await dashboard.close();
      await reading;
    },
  };
}

const browser = chromiumPath() ? await Browser.launch() : undefined;
const quiet: number[] = [];
const noisy: number[] = [];
const bare: number[] = [];
const watchedRates: number[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    quiet.push(await throughput(`quiet-${round}`, "noop"));
    noisy.push(await throughput(`noisy-${round}`, "noopProgress"));
    bare.push(await throughput(`bare-${round}`, "noop"));
    {
      await using _ = await watched(`watched-${round}`, browser);
      watchedRates.push(await throughput(`watched-${round}`, "noop"));
    }
  }
} finally {
  await browser?.close();
  await server.stop();
}
const rate = (xs: number[]) => Math.round(median(xs)).toLocaleString("en");
console.log(
  `\n## Through Redis: one consumer process, one worker, ${JOBS.toLocaleString("en")} no-op jobs\n`,
);
console.log("| case | median jobs/s | ratio |");
console.log("| --- | ---: | ---: |");
console.log(`| jobs that report nothing | ${rate(quiet)} | 1.00× |`);
console.log(
  `| jobs that report progress once | ${rate(noisy)} | ${
    (median(noisy) / median(quiet)).toFixed(2)
  }× |`,
);
console.log(`| no dashboard | ${rate(bare)} | 1.00× |`);
console.log(
  `| dashboard + one open page (${browser ? "headless Chromium" : "SSE client"}) | ${
    rate(watchedRates)
  } | ${(median(watchedRates) / median(bare)).toFixed(2)}× |`,
);
