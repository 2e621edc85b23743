// Priorities across pushes in a Redis queue (src/redis/_scripts.ts, ENQUEUE
// and TAKE_ONE): a consumer takes the highest priority first, equal
// priorities first in first out, a plain LPUSH is priority 0.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { dropQueue, jobs, prioritized } from "./_queue.ts";
import { withDir } from "./_temp.ts";
import { FIRE, PROMOTE, RECOVER, RETRY, runScript, TAKE, WAKE } from "../src/redis/_scripts.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;

/** Runs the queue's jobs on one worker, one held at a time; the order they started in. */
async function runInOrder(
  queue: RedisQueue,
  log: string,
  receipts: { batch: string; ids: string[]; from: string }[],
) {
  const consumer = queue.consume({ workers: 1, capacity: 1 });
  for (const receipt of receipts) {
    // A deadline: a job never taken fails the test instead of hanging it.
    await queue.wait({ ...receipt, duplicates: [], schedules: [] }, {
      signal: AbortSignal.timeout(30_000),
    });
  }
  consumer.stop();
  await consumer.done;
  return (await Deno.readTextFile(log)).trim().split("\n");
}

for (const highFirst of [false, true]) {
  redisTest(
    `priorities: 10 before 0 across pushes, pushed ${
      highFirst ? "high first" : "low first"
    }; equal ones in push order`,
    async (url) => {
      await withDir(async (dir) => {
        const name = uniqueKey("prio");
        const log = `${dir}/log`;
        await using redis = await RedisClient.connect(url);
        await using queue = await RedisQueue.connect({ url, queue: name });
        const low = jobs(
          Array.from(
            { length: 4 },
            (_, i) => ({ id: `low${i}`, task: "#record", args: [log, `low${i}`] }),
          ),
        );
        const high = jobs(
          Array.from({ length: 4 }, (_, i) => ({
            id: `high${i}`,
            task: "#record",
            args: [log, `high${i}`],
            priority: 10,
          })),
        );
        const receipts = [];
        for (const file of highFirst ? [high, low] : [low, high]) {
          receipts.push(await queue.push(file));
        }
        const order = await runInOrder(queue, log, receipts);
        assert.deepStrictEqual(order, [
          "high0",
          "high1",
          "high2",
          "high3",
          "low0",
          "low1",
          "low2",
          "low3",
        ]);
        // No wake marker or entry is left behind.
        assert.strictEqual(await redis.send(["LLEN", name]), 0);
        assert.strictEqual(await redis.send(["EXISTS", `${name}:priority`]), 0);
        await dropQueue(redis, name);
      });
    },
  );
}

redisTest(
  "priorities: a plain LPUSH is priority 0, between a pushed 5 and a pushed -5, first in first out with other 0s",
  async (url) => {
    await withDir(async (dir) => {
      const name = uniqueKey("prio");
      const log = `${dir}/log`;
      await using redis = await RedisClient.connect(url);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const first = await queue.push(jobs([
        { id: "minus", task: "#record", args: [log, "minus"], priority: -5 },
        { id: "zero", task: "#record", args: [log, "zero"] },
      ]));
      // By hand, as any program would: no batch, no priority.
      const entry = { id: "by-hand", task: `${TASKS}#record`, args: [log, "by-hand"], batch: "" };
      await redis.send(["LPUSH", name, JSON.stringify(entry)]);
      const second = await queue.push(jobs([
        { id: "plus", task: "#record", args: [log, "plus"], priority: 5 },
      ]));
      const handRun = { batch: "", ids: ["by-hand"], from: first.from };
      const order = await runInOrder(queue, log, [first, second, handRun]);
      assert.deepStrictEqual(order, ["plus", "zero", "by-hand", "minus"]);
      await dropQueue(redis, name);
    });
  },
);

redisTest(
  "priorities: a waiting prioritized job can be cancelled, and a retry comes back by its priority",
  async (url) => {
    await withDir(async (dir) => {
      const name = uniqueKey("prio");
      const log = `${dir}/log`;
      await using redis = await RedisClient.connect(url);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(jobs([
        { id: "gone", task: "#record", args: [log, "gone"], priority: 3 },
        { id: "kept", task: "#record", args: [log, "kept"], priority: 3 },
      ]));
      const [report] = await queue.cancel(["gone"]);
      assert.deepStrictEqual([report.found, report.status], ["waiting", "cancelled"]);
      assert.strictEqual(await redis.send(["ZCARD", `${name}:priority`]), 1);
      const order = await runInOrder(queue, log, [{ ...receipt, ids: ["kept"] }]);
      assert.deepStrictEqual(order, ["kept"]);
      // A retry due (PROMOTE) goes back by its priority, not to the list.
      const retry = JSON.stringify({
        id: "again",
        command: ["true"],
        priority: 7,
        attempt: 2,
        batch: "b",
      });
      await redis.send(["ZADD", `${name}:delayed`, 1, `tok|${retry}`]);
      await runScript(redis, PROMOTE, [`${name}:delayed`, name], [10]);
      assert.strictEqual(await redis.send(["LLEN", name]), 0);
      assert.deepStrictEqual(await prioritized(redis, name), [{ entry: retry, priority: 7 }]);
      await dropQueue(redis, name);
    });
  },
);

redisTest(
  "priorities: a push of prioritized jobs onto an empty list wakes blocked consumers with markers, which no take returns",
  async (url) => {
    const name = uniqueKey("prio");
    await using redis = await RedisClient.connect(url);
    await using queue = await RedisQueue.connect({ url, queue: name });
    await redis.send(["SADD", `${name}:consumers`, "c1", "c2"]);
    await queue.push(jobs([
      { id: "a", command: ["true"], priority: 1 },
      { id: "b", command: ["true"], priority: 9 },
      { id: "c", command: ["true"], priority: 5 },
    ]));
    // One marker per registered consumer (they may all be blocked on the list), no more.
    assert.deepStrictEqual(await redis.send(["LRANGE", name, 0, -1]), [WAKE, WAKE]);
    const taken = await runScript(redis, TAKE, [name, `${name}:processing:c1`], [
      10,
      "0",
    ]) as string[];
    assert.deepStrictEqual(taken.map((entry) => JSON.parse(entry).id), ["b", "c", "a"]);
    assert.strictEqual(await redis.send(["LLEN", name]), 0, "the markers were dropped");
    const held = await redis.send(["LRANGE", `${name}:processing:c1`, 0, -1]) as string[];
    assert.ok(!held.includes(WAKE), "no marker is held");
    assert.strictEqual(held.length, 3);
    await dropQueue(redis, name);
  },
);

redisTest(
  "priorities: a consumer blocked on an empty queue runs a prioritized job pushed later",
  async (url) => {
    const name = uniqueKey("prio");
    await using redis = await RedisClient.connect(url);
    await using queue = await RedisQueue.connect({ url, queue: name });
    const consumer = queue.consume({ workers: 1 });
    while ((await queue.counts()).consumers < 1) await new Promise((r) => setTimeout(r, 20));
    const receipt = await queue.push(jobs([{ id: "urgent", command: ["true"], priority: 100 }]));
    const [outcome] = await queue.wait(receipt, { signal: AbortSignal.timeout(30_000) });
    assert.strictEqual(outcome.status, "succeeded");
    consumer.stop();
    await consumer.done;
    assert.strictEqual(await redis.send(["LLEN", name]), 0, "no marker left");
    await dropQueue(redis, name);
  },
);

redisTest(
  "priorities: an idle consumer takes the higher priority of one push first",
  async (url) => {
    await withDir(async (dir) => {
      const name = uniqueKey("prio");
      const log = `${dir}/log`;
      await using redis = await RedisClient.connect(url);
      await using queue = await RedisQueue.connect({ url, queue: name });
      // Registered and idle before the push: it waits on the list.
      const consumer = queue.consume({ workers: 1, capacity: 1 });
      while ((await queue.counts()).consumers < 1) await new Promise((r) => setTimeout(r, 20));
      const receipt = await queue.push(jobs([
        { id: "low", task: "#record", args: [log, "low"] },
        { id: "high", task: "#record", args: [log, "high"], priority: 10 },
      ]));
      await queue.wait(receipt, { signal: AbortSignal.timeout(30_000) });
      consumer.stop();
      await consumer.done;
      assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), ["high", "low"]);
      await dropQueue(redis, name);
    });
  },
);

redisTest("priorities: wake markers are not counted as waiting jobs", async (url) => {
  const name = uniqueKey("prio");
  await using redis = await RedisClient.connect(url);
  await using queue = await RedisQueue.connect({ url, queue: name });
  await redis.send(["SADD", `${name}:consumers`, "c1", "c2"]);
  await queue.push(
    jobs([{ id: "a", command: ["true"], priority: 1 }, { id: "b", command: ["true"] }]),
  );
  // One marker per prioritized job, at most one per consumer: b and one marker.
  assert.deepStrictEqual(await redis.send(["LRANGE", name, -1, -1]), [WAKE]);
  assert.strictEqual(await redis.send(["LLEN", name]), 2);
  assert.strictEqual((await queue.counts()).queued, 2);
  await dropQueue(redis, name);
});

redisTest(
  "priorities: a dead consumer's jobs go back by their priority; a key of the wrong type loses nothing",
  async (url) => {
    const name = uniqueKey("prio");
    await using redis = await RedisClient.connect(url);
    const entry = (id: string, priority?: number) =>
      JSON.stringify({ id, command: ["true"], ...(priority ? { priority } : {}), batch: "b" });
    // A consumer that died holding three jobs (no heartbeat).
    await redis.send(["SADD", `${name}:consumers`, "dead"]);
    await redis.send([
      "RPUSH",
      `${name}:processing:dead`,
      entry("urgent", 10),
      entry("plain"),
      entry("later", -5),
    ]);
    await runScript(redis, RECOVER, [`${name}:consumers`, name], [`${name}:`, "me"]);
    assert.deepStrictEqual(
      (await redis.send(["LRANGE", name, 0, -1]) as string[]).filter((e) => e !== WAKE)
        .map((e) => JSON.parse(e).id),
      ["plain"],
    );
    const ranked = (await prioritized(redis, name)).map(({ entry }) => JSON.parse(entry).id);
    assert.deepStrictEqual(ranked, ["urgent", "later"]);
    // <queue>:priority of the wrong type: PROMOTE refuses before it removes anything.
    await redis.send(["DEL", `${name}:priority`]);
    await redis.send(["SET", `${name}:priority`, "x"]);
    await redis.send(["ZADD", `${name}:delayed`, 1, `tok|${entry("retry", 3)}`]);
    await assert.rejects(runScript(redis, PROMOTE, [`${name}:delayed`, name], [10]), /WRONGTYPE/);
    assert.strictEqual(
      await redis.send(["ZCARD", `${name}:delayed`]),
      1,
      "the retry is still there",
    );
    await dropQueue(redis, name);
  },
);

redisTest(
  "priorities: a run of a recurring job is queued by its priority when its tick fires",
  async (url) => {
    const name = uniqueKey("prio");
    await using redis = await RedisClient.connect(url);
    const run = JSON.stringify({
      id: "nightly@t",
      command: ["true"],
      priority: 9,
      schedule: "nightly",
      batch: "",
    });
    await redis.send(["HSET", `${name}:schedules`, "nightly", "{}"]);
    await redis.send(["ZADD", `${name}:ticks`, 1000, "nightly"]);
    const fired = await runScript(
      redis,
      FIRE,
      [`${name}:ticks`, `${name}:schedules`, name, `${name}:active`, `${name}:results`],
      ["nightly", 1000, 2000, run, "allow", "nightly@t", `${name}:`, 100],
    );
    assert.strictEqual(fired, 1);
    assert.deepStrictEqual(await prioritized(redis, name), [{ entry: run, priority: 9 }]);
    await dropQueue(redis, name);
  },
);

redisTest(
  "priorities: a recovered entry with a NaN priority goes back as 0; RETRY of an entry another consumer holds is 0 even when cancelled",
  async (url) => {
    const name = uniqueKey("prio");
    await using redis = await RedisClient.connect(url);
    const plain = (id: string) => JSON.stringify({ id, command: ["true"], batch: "b" });
    const nan = '{"id":"nan","command":["true"],"priority":NaN,"batch":"b"}';
    await redis.send(["SADD", `${name}:consumers`, "dead"]);
    await redis.send(["RPUSH", `${name}:processing:dead`, plain("e1"), nan, plain("e2")]);
    await runScript(redis, RECOVER, [`${name}:consumers`, name], [`${name}:`, "me"]);
    const back = await redis.send(["LRANGE", name, 0, -1]) as string[];
    assert.strictEqual(back.length, 3, "all three back, once each");
    assert.strictEqual(await redis.send(["EXISTS", `${name}:processing:dead`]), 0);
    // RETRY by a consumer that no longer holds the entry (recovered, taken by another).
    await redis.send(["DEL", name]);
    await redis.send(["RPUSH", `${name}:processing:other`, plain("j")]);
    await redis.send(["SADD", `${name}:cancel`, "b/j"]);
    const reply = await runScript(
      redis,
      RETRY,
      [`${name}:processing:mine`, name, `${name}:delayed`, `${name}:cancel`],
      [plain("j"), `tok|${plain("j")}`, 10, "b/j"],
    );
    assert.strictEqual(reply, 0, "not ours: nothing to record");
    assert.strictEqual(
      await redis.send(["SISMEMBER", `${name}:cancel`, "b/j"]),
      1,
      "the cancel stays for the holder",
    );
    await dropQueue(redis, name);
  },
);
