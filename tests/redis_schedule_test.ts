// Recurring and delayed jobs in the Redis queue, against the shared server of
// TASKPOOL_REDIS_URL (each test under its own queue name).
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { ManualClock } from "./_clock.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { withDir } from "./_temp.ts";
import { jobs as file, results } from "./_queue.ts";
import { until } from "./_wait.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

function consumerProcess(url: string, queue: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "consume", "--redis", url, "--queue", queue, "--workers", "2"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** The tick of a run's id (`<job>@<ISO>`), ms since the epoch. */
const tickOf = (id: string) => Date.parse(id.slice(id.indexOf("@") + 1));

// -- Exactly once per tick --

redisTest(
  "schedules: two consumers racing for each tick fire it once (a manual clock)",
  async (url) => {
    const name = uniqueKey("tick");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const receipt = await queue.push(file([{ id: "m", every: "1m", task: "#noop", args: [1] }]));
      assert.deepStrictEqual(receipt.schedules, ["m"]);
      assert.deepStrictEqual(receipt.ids, []);
      const [{ next }] = await queue.schedules();
      // Both consumers read time from clocks the test moves: a minute a step.
      const clocks = [new ManualClock(Date.now()), new ManualClock(Date.now())];
      const consumers = clocks.map((clock) => queue.consume({ workers: 1, clock }));
      for (let step = 1; step <= 5; step++) {
        for (const clock of clocks) clock.advance(next! + (step - 1) * 60_000 - clock.now());
        await until(`tick ${step}`, async () => (await results(client, name)).length === step);
      }
      for (const consumer of consumers) consumer.stop();
      const stats = await Promise.all(consumers.map((c) => c.done));
      const runs = await results(client, name);
      assert.deepStrictEqual(
        runs.map((r) => [r.id, r.status]),
        [0, 1, 2, 3, 4].map((
          k,
        ) => [`m@${new Date(next! + k * 60_000).toISOString()}`, "succeeded"]),
      );
      assert.strictEqual(stats[0].fired + stats[1].fired, 5, "each tick fired by one consumer");
    } finally {
      client.close();
    }
  },
);

redisTest(
  "schedules: three consumers, one SIGKILLed meanwhile: one run per tick, none missed",
  async (url) => {
    const name = uniqueKey("three");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    const children = [0, 1, 2].map(() => consumerProcess(url, name));
    try {
      await queue.push(file([{ id: "s", every: "1s", task: "#noop", args: [1] }]));
      await until("two runs", async () => (await results(client, name)).length >= 2);
      children[0].kill("SIGKILL");
      await children[0].status;
      const seen = (await results(client, name)).length;
      await until("four more runs", async () => (await results(client, name)).length >= seen + 4);
      await queue.unschedule(["s"]);
      for (const child of children.slice(1)) child.kill("SIGTERM");
      await Promise.all(children.map((child) => child.status));
      const ticks = (await results(client, name)).map((r) => tickOf(r.id));
      assert.strictEqual(new Set(ticks).size, ticks.length, `a tick ran twice: ${ticks}`);
      const sorted = ticks.toSorted((a, b) => a - b);
      for (let i = 1; i < sorted.length; i++) {
        assert.strictEqual(sorted[i] - sorted[i - 1], 1000, `a tick was missed: ${sorted}`);
      }
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
      await Promise.all(children.map((child) => child.status));
      client.close();
    }
  },
);

// -- Catching up --

redisTest(
  "schedules: after 3 s without a consumer, catchUp one fires one run for the gap; skip none",
  async (url) => {
    for (const catchUp of ["one", "skip"]) {
      const name = uniqueKey(`gap-${catchUp}`);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const client = await RedisClient.connect(url);
      try {
        await queue.push(file([{ id: "g", every: "1s", catchUp, task: "#noop", args: [1] }]));
        const first = queue.consume({ workers: 1 });
        await until("a run", async () => (await results(client, name)).length >= 1);
        first.stop();
        await first.done;
        const before = (await results(client, name)).map((r) => tickOf(r.id));
        const last = Math.max(...before);
        // Nothing runs the queue for over three ticks.
        await until("three ticks to pass", () => Date.now() >= last + 3500);
        const second = queue.consume({ workers: 1 });
        await until(
          "a run after the gap",
          async () => (await results(client, name)).some((r) => tickOf(r.id) > last + 3000),
        );
        second.stop();
        await second.done;
        const gap = (await results(client, name)).map((r) => tickOf(r.id))
          .filter((t) => t > last && t <= last + 3000);
        if (catchUp === "one") assert.strictEqual(gap.length, 1, `ticks in the gap: ${gap}`);
        else assert.deepStrictEqual(gap, [], "catchUp skip ran a missed tick");
      } finally {
        await queue.unschedule(["g"]);
        client.close();
      }
    }
  },
);

// -- Overlap across consumers --

redisTest(
  "schedules: overlap skip records a tick skipped while its run runs on any consumer",
  async (url) => {
    await withDir(async (dir) => {
      const name = uniqueKey("overlap");
      await using queue = await RedisQueue.connect({ url, queue: name });
      const client = await RedisClient.connect(url);
      const log = `${dir}/log`;
      try {
        await queue.push(file([{
          id: "slow",
          every: "1s",
          task: "#span",
          args: [2500, log, "run"],
        }]));
        const consumers = [queue.consume({ workers: 2 }), queue.consume({ workers: 2 })];
        await until("a skip and a run", async () => {
          const all = await results(client, name);
          return all.some((r) => r.status === "skipped") &&
            all.some((r) => r.status === "succeeded");
        });
        await queue.unschedule(["slow"]);
        for (const consumer of consumers) consumer.stop();
        await Promise.all(consumers.map((c) => c.done));
        // No two runs at once: the log's starts and ends alternate.
        const events = (await Deno.readTextFile(log)).trim().split("\n");
        events.forEach((line, i) =>
          assert.strictEqual(line.split(" ")[0], i % 2 ? "end" : "start")
        );
      } finally {
        client.close();
      }
    });
  },
);

// -- Delayed jobs --

redisTest("push: a job with delay starts no earlier than the delay after the push", async (url) => {
  const name = uniqueKey("delay");
  await using queue = await RedisQueue.connect({ url, queue: name });
  const pushed = Date.now();
  const receipt = await queue.push(
    file([{ id: "d", delay: "1500ms", task: "#stamp", args: [0] }, {
      id: "after-d",
      task: "#stamp",
      args: [0],
      after: ["d"],
      delay: "2s",
    }]),
  );
  assert.strictEqual((await queue.counts()).delayed, 1);
  const consumer = queue.consume({ workers: 2 });
  const outcomes = await queue.wait(receipt);
  consumer.stop();
  await consumer.done;
  const started = Object.fromEntries(outcomes.map((r) => [r.id, r.result as number]));
  assert(started.d >= pushed + 1500, `d started ${started.d - pushed} ms after the push`);
  assert(started["after-d"] >= pushed + 2000, "a dependent's own delay holds too");
});

// -- The command line --

redisTest("cli: schedules lists a pushed recurring job; unschedule removes it", async (url) => {
  await withDir(async (dir) => {
    const name = uniqueKey("list");
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        jobs: [{ id: "nightly", cron: "0 2 * * *", timezone: "Europe/Berlin", command: ["true"] }],
      }),
    );
    const run = async (...args: string[]) => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, ...args, "--redis", url, "--queue", name],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    };
    const push = await run("push", path);
    assert.strictEqual(push.code, 0, push.stderr);
    assert.match(push.stderr, /registered 1 recurring job\(s\): nightly/);
    const list = await run("schedules");
    assert.match(
      list.stdout,
      /^nightly {2}cron 0 2 \* \* \* {2}Europe\/Berlin {2}next \d{4}-.*T0[01]:00:00\.000Z/,
    );
    const gone = await run("unschedule", "nightly", "nosuch");
    assert.strictEqual(gone.code, 1, gone.stderr);
    assert.match(gone.stderr, /nightly: removed/);
    assert.match(gone.stderr, /nosuch: not registered/);
    assert.match((await run("schedules")).stderr, /no recurring job/);
  });
});
