// Groups on the Redis queue (src/redis/_group_lua.ts): concurrency and rate
// limits across consumer processes, no head-of-line blocking, slots freed by
// outcomes, retries, cancels and the recovery of a SIGKILLed consumer;
// against a real server.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { consumerProcess, dropQueue, jobs, queueCli, results } from "./_queue.ts";
import { withDir } from "./_temp.ts";
import { Gate } from "./_gate.ts";
import { exists, until } from "./_wait.ts";

/** A way out of every wait for outcomes: a broken limit fails the test instead of hanging it. */
const WAIT = {
  get signal() {
    return AbortSignal.timeout(60_000);
  },
};

/** Stops consumer processes as a first SIGTERM does, and waits for them. */
async function stop(...children: Deno.ChildProcess[]): Promise<void> {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  await Promise.all(children.map((child) => child.status));
}

/** `[id, start ms, end ms]` of each run in a `timed` log. */
async function spans(log: string): Promise<Array<[string, number, number]>> {
  const starts = new Map<string, number>();
  const list: Array<[string, number, number]> = [];
  for (const line of (await Deno.readTextFile(log)).trim().split("\n")) {
    const [what, id, ms] = line.split(" ");
    if (what === "start") starts.set(id, Number(ms));
    else list.push([id, starts.get(id)!, Number(ms)]);
  }
  return list;
}

/** The most runs that overlapped at any instant (one ending at t does not overlap one starting at t). */
function mostAtOnce(runs: Array<[string, number, number]>): number {
  const events = runs.flatMap(([, start, end]) => [[start, 1], [end, -1]]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // ends first at the same ms
  let now = 0;
  let most = 0;
  for (const [, step] of events) most = Math.max(most, now += step);
  return most;
}

/** `<queue>:groupactive:<group>`'s size and `<queue>:group:<group>`'s: slots held, jobs held back. */
async function groupKeys(redis: RedisClient, queue: string, group: string) {
  return {
    active: await redis.send(["SCARD", `${queue}:groupactive:${group}`]),
    held: await redis.send(["ZCARD", `${queue}:group:${group}`]),
  };
}

redisTest("groups: a push holds back what the limits do not let in, in order", async (url) => {
  const queue = uniqueKey("group-push");
  await using redis = await RedisClient.connect(url);
  await using producer = await RedisQueue.connect({ url, queue });
  /** The list's jobs in the order consumers take them (from its tail). */
  const takeOrder = async () =>
    (await redis.send(["LRANGE", queue, 0, -1]) as string[]).map((e) => JSON.parse(e).id)
      .reverse();
  await producer.push(jobs([{ id: "early", command: ["true"] }]));
  const list = Array.from({ length: 10 }, (_, i) => ({
    id: `g${i}`,
    command: ["true"],
    group: "api",
  }));
  list.push({ id: "free", command: ["true"] } as (typeof list)[0]);
  list.push({ id: "urgent", command: ["true"], group: "api", priority: 5 } as (typeof list)[0]);
  await producer.push(jobs(list, "/tmp", { groups: { api: { concurrency: 3 } } }));
  // Three let in (the highest priority first), the ungrouped one queued, eight held.
  const prioritized = (await redis.send(["ZRANGE", `${queue}:priority`, 0, -1]) as string[])
    .map((m) => JSON.parse(m.slice(m.indexOf("|") + 1)).id);
  assert.deepStrictEqual(prioritized, ["urgent"]);
  // In line with the other jobs, first in first out: none jumps ahead of
  // "early", nor of its push's ungrouped jobs (let in after them).
  assert.deepStrictEqual(await takeOrder(), ["early", "free", "g0", "g1"]);
  assert.deepStrictEqual(await groupKeys(redis, queue, "api"), { active: 3, held: 8 });
  assert.strictEqual((await producer.counts()).queued, 13);
  const [info] = await producer.groups();
  assert.deepStrictEqual(info, { name: "api", limits: { concurrency: 3 }, waiting: 8, running: 3 });
  // Raising the limit lets two more in at once, first in first out.
  assert.strictEqual(await producer.setGroup("api", { concurrency: 5 }), 6);
  assert.deepStrictEqual(await takeOrder(), ["early", "free", "g0", "g1", "g2", "g3"]);
  // A keyed job of a group: held like the others, and its key held meanwhile.
  const keyed = await producer.push(jobs([
    { id: "k", task: "#noop", args: ["old"], group: "api", key: "only" },
    { id: "k2", task: "#noop", args: ["new"], group: "api", key: "only", onDuplicate: "replace" },
  ]));
  assert.deepStrictEqual(keyed.ids, ["k"]);
  assert.deepStrictEqual(keyed.duplicates.map((d) => [d.id, d.heldBy.id, d.replaced]), [
    ["k2", "k", true],
  ]);
  // The holder waits in its group: replaced there, in its place, under its own id.
  const held = await redis.send(["ZRANGE", `${queue}:group:api`, -1, -1]) as string[];
  const entry = JSON.parse(held[0].slice(held[0].indexOf("|") + 1));
  assert.strictEqual(entry.id, "k");
  assert.deepStrictEqual(entry.args, ["new"]);
  // The same again: an identical entry replaces it in place, and loses nothing.
  const again = await producer.push(jobs([
    { id: "k3", task: "#noop", args: ["new"], group: "api", key: "only", onDuplicate: "replace" },
  ]));
  assert.deepStrictEqual(again.duplicates.map((d) => d.replaced), [true]);
  assert.deepStrictEqual(await groupKeys(redis, queue, "api"), { active: 5, held: 7 });
  // A rate added to a group counts the jobs it let in already as pending.
  await producer.setGroup("api", { concurrency: 5, rate: "1/10s" });
  assert.strictEqual(await redis.send(["SCARD", `${queue}:grouppending:api`]), 5);
  await producer.setGroup("api", { concurrency: 5 });
  assert.strictEqual(await redis.send(["EXISTS", `${queue}:grouppending:api`]), 0);
  assert.deepStrictEqual(await groupKeys(redis, queue, "api"), { active: 5, held: 7 });
  await assert.rejects(
    producer.setGroup("api", { concurrency: 0 }),
    /concurrency: expected an integer/,
  );
  await assert.rejects(producer.setGroup("", {}), /the group's name/);
  await dropQueue(redis, queue);
});

redisTest(
  "groups: concurrency 2 across two consumers of 4 workers each: never more than 2 at once",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-conc");
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const a = await consumerProcess(url, queue, { workers: 4, registered: 1 });
      const b = await consumerProcess(url, queue, { workers: 4, registered: 2 });
      try {
        // The limit must hold across processes, so a batch counts only if
        // both consumers ran some of it. Which one takes a freed slot is a
        // race (the one that freed it is awake), and now and then one takes
        // a whole batch: then another batch, five at most.
        const ran: string[][] = [];
        for (let batch = 0; ran.at(-1)?.length !== 2; batch++) {
          if (batch === 5) assert.fail(`five batches each ran on one consumer: ${ran.join(" | ")}`);
          const log = `${dir}/log.${batch}`;
          const list = Array.from({ length: 24 }, (_, i) => ({
            id: `b${batch}j${i}`,
            task: "#timed",
            args: [30, log, `j${i}`],
            group: "db",
          }));
          const receipt = await producer.push(
            jobs(list, dir, { groups: { db: { concurrency: 2 } } }),
          );
          const outcomes = await producer.wait(receipt, WAIT);
          assert(outcomes.every((r) => r.status === "succeeded"));
          const runs = await spans(log);
          assert.strictEqual(runs.length, 24);
          assert(mostAtOnce(runs) <= 2, `${mostAtOnce(runs)} ran at once`);
          ran.push([...new Set(outcomes.map((r) => r.consumer!))]);
        }
        assert.deepStrictEqual(await groupKeys(redis, queue, "db"), { active: 0, held: 0 });
      } finally {
        await stop(a, b);
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "groups: a rate of 5/1s: the k-th start comes no sooner than k/5 windows after the push",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-rate");
      const log = `${dir}/log`;
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const a = await consumerProcess(url, queue, { workers: 4, registered: 1 });
      try {
        const pushed = Date.now();
        const list = Array.from({ length: 15 }, (_, i) => ({
          id: `j${i}`,
          task: "#timed",
          args: [1, log, `j${i}`],
          group: "api",
        }));
        const receipt = await producer.push(jobs(list, dir, { groups: { api: { rate: "5/1s" } } }));
        const outcomes = await producer.wait(receipt, WAIT);
        assert(outcomes.every((r) => r.status === "succeeded"));
        // Releases are at most 5 in any 1 s (a sliding window) and a job starts
        // after its release: so the k-th start (k from 0) is at least
        // floor(k / 5) s after the first release, itself after the push.
        const starts = (await spans(log)).map(([, start]) => start).sort((x, y) => x - y);
        assert.strictEqual(starts.length, 15);
        for (let k = 0; k < starts.length; k++) {
          const earliest = pushed + Math.floor(k / 5) * 1000 - 1; // -1: ms rounding of two clocks
          assert(starts[k] >= earliest, `start ${k} at +${starts[k] - pushed} ms`);
        }
        const [info] = await producer.groups();
        assert.strictEqual(info.waiting, 0);
        assert.strictEqual(info.running, 0);
        assert(info.started! <= 5);
      } finally {
        await stop(a);
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "groups: a rate counts starts: jobs let in while the only worker is busy do not start in a burst",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-burst");
      const log = `${dir}/log`;
      await using gate = await Gate.create();
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const a = await consumerProcess(url, queue, { workers: 1, registered: 1 });
      try {
        const long = await producer.push(jobs([
          { id: "long", task: "#gated", args: [gate.path, "long", `${dir}/long`] },
        ], dir));
        await until("long to start", () => exists(`${dir}/long`));
        const list = Array.from({ length: 6 }, (_, i) => ({
          id: `r${i}`,
          task: "#timed",
          args: [1, log, `r${i}`],
          group: "api",
        }));
        const receipt = await producer.push(jobs(list, dir, { groups: { api: { rate: "2/1s" } } }));
        // Two are let in, the rest held; the one worker is busy meanwhile.
        await until(
          "the group to hold four",
          async () => (await groupKeys(redis, queue, "api")).held === 4,
        );
        // Two windows with the worker still busy: nothing more is let in (a
        // rate that counted jobs let in, not started, would have let in four).
        await new Promise((resolve) => setTimeout(resolve, 2100));
        assert.deepStrictEqual(await groupKeys(redis, queue, "api"), { active: 2, held: 4 });
        assert.strictEqual(await redis.send(["SCARD", `${queue}:grouppending:api`]), 2);
        const opened = Date.now();
        await gate.open();
        await producer.wait(long, WAIT);
        const outcomes = await producer.wait(receipt, WAIT);
        assert(outcomes.every((r) => r.status === "succeeded"));
        // At most 2 starts in any second from when the worker came free:
        // the k-th start (k from 0) is at least floor(k / 2) s after it.
        const starts = (await spans(log)).map(([, start]) => start).sort((x, y) => x - y);
        for (let k = 0; k < starts.length; k++) {
          const earliest = opened + Math.floor(k / 2) * 1000 - 1;
          assert(starts[k] >= earliest, `start ${k} at +${starts[k] - opened} ms`);
        }
      } finally {
        await stop(a);
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "groups: a full group does not delay an ungrouped job pushed after it, nor hold a consumer's room",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-hol");
      const log = `${dir}/log`;
      await using gate = await Gate.create();
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      // One consumer with 2 workers: the first grouped job holds one.
      const a = await consumerProcess(url, queue, { workers: 2, registered: 1 });
      try {
        const grouped = await producer.push(jobs(
          [
            { id: "g1", task: "#gated", args: [gate.path, "g1", `${dir}/g1`], group: "slow" },
            { id: "g2", task: "#record", args: [log, "g2"], group: "slow" },
            { id: "g3", task: "#record", args: [log, "g3"], group: "slow" },
          ],
          dir,
          { groups: { slow: { concurrency: 1 } } },
        ));
        await until("g1 to start", () => exists(`${dir}/g1`));
        const free = await producer.push(jobs([
          { id: "u1", task: "#record", args: [log, "u1"] },
          { id: "u2", task: "#record", args: [log, "u2"] },
        ], dir));
        const done = await producer.wait(free, WAIT);
        assert(done.every((r) => r.status === "succeeded"));
        // The ungrouped jobs ran while g2 and g3 wait in their group, not in the queue.
        assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n").sort(), [
          "u1",
          "u2",
        ]);
        assert.deepStrictEqual(await groupKeys(redis, queue, "slow"), { active: 1, held: 2 });
        assert.strictEqual(await redis.send(["LLEN", queue]), 0);
        await gate.open();
        const rest = await producer.wait(grouped, WAIT);
        assert(rest.every((r) => r.status === "succeeded"));
        const lines = (await Deno.readTextFile(log)).trim().split("\n");
        assert.deepStrictEqual(lines.slice(2), ["g2", "g3"]); // in order, one at a time
        assert.deepStrictEqual(await groupKeys(redis, queue, "slow"), { active: 0, held: 0 });
      } finally {
        await stop(a);
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "groups: a consumer SIGKILLed while running a grouped job: its slot comes back with the job's recovery",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-kill");
      await using gate = await Gate.create();
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const victim = await consumerProcess(url, queue, {
        workers: 2,
        registered: 1,
        heartbeat: "1s",
      });
      let rescuer: Deno.ChildProcess | undefined;
      try {
        const receipt = await producer.push(jobs(
          [
            { id: "k1", task: "#gated", args: [gate.path, "k1", `${dir}/k1`], group: "one" },
            { id: "k2", command: ["true"], group: "one" },
            { id: "k3", command: ["true"], group: "one" },
          ],
          dir,
          { groups: { one: { concurrency: 1 } } },
        ));
        await until("k1 to start", () => exists(`${dir}/k1`));
        victim.kill("SIGKILL");
        await victim.status;
        assert.deepStrictEqual(await groupKeys(redis, queue, "one"), { active: 1, held: 2 });
        await Deno.remove(`${dir}/k1`);
        // Another consumer recovers k1 once the victim's heartbeat expires:
        // k1 runs again in the slot it held; its outcome frees it for k2, k3.
        rescuer = await consumerProcess(url, queue, { workers: 2, registered: 2, heartbeat: "1s" });
        await until("k1 to run again", () => exists(`${dir}/k1`));
        assert.deepStrictEqual(await groupKeys(redis, queue, "one"), { active: 1, held: 2 });
        await gate.open();
        const outcomes = await producer.wait(receipt, WAIT);
        assert.deepStrictEqual(outcomes.map((r) => r.status), [
          "succeeded",
          "succeeded",
          "succeeded",
        ]);
        assert.deepStrictEqual(await groupKeys(redis, queue, "one"), { active: 0, held: 0 });
        // Each recorded once.
        const recorded = (await results(redis, queue)).map((r) => r.id).sort();
        assert.deepStrictEqual(recorded, ["k1", "k2", "k3"]);
      } finally {
        await stop(victim, ...(rescuer ? [rescuer] : []));
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "groups: a retry frees its slot while it waits; cancel finds a job held by its group",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("group-retry");
      const log = `${dir}/log`;
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const a = await consumerProcess(url, queue, { workers: 2, registered: 1 });
      try {
        const receipt = await producer.push(jobs(
          [
            { id: "f", task: "#fail", args: ["no"], retries: 1, backoff: "1h", group: "one" },
            { id: "h", task: "#record", args: [log, "h"], group: "one" },
          ],
          dir,
          { groups: { one: { concurrency: 1 } } },
        ));
        // f failed and waits an hour for its retry: h got the slot and ran.
        await until("h to run", () => exists(log));
        await until(
          "f's retry to wait",
          async () => await redis.send(["ZCARD", `${queue}:delayed`]) === 1,
        );
        const later = await producer.push(jobs([
          { id: "x", task: "#gated", args: [`${dir}/never`], group: "one" },
          { id: "y", command: ["true"], group: "one" },
        ], dir));
        await until("x to start", async () => (await groupKeys(redis, queue, "one")).held === 1);
        const reports = await producer.cancel(["f", "y", "x"], { wait: 10_000 });
        const by = Object.fromEntries(reports.map((r) => [r.id, r]));
        assert.strictEqual(by.f.found, "delayed");
        assert.strictEqual(by.y.found, "waiting");
        assert.strictEqual(by.x.found, "running");
        assert.strictEqual(by.x.status, "cancelled");
        const outcomes = [
          ...await producer.wait(receipt, WAIT),
          ...await producer.wait(later, WAIT),
        ];
        assert.deepStrictEqual(
          outcomes.map((r) => `${r.id} ${r.status}`),
          ["f cancelled", "h succeeded", "x cancelled", "y cancelled"],
        );
        assert.deepStrictEqual(await groupKeys(redis, queue, "one"), { active: 0, held: 0 });
      } finally {
        await stop(a);
        await dropQueue(redis, queue);
      }
    });
  },
);

redisTest(
  "cli groups: lists each group's limits and jobs; sets a group's limits by hand",
  async (url) => {
    const queue = uniqueKey("group-cli");
    await using redis = await RedisClient.connect(url);
    await using producer = await RedisQueue.connect({ url, queue });
    await producer.push(jobs(
      Array.from({ length: 4 }, (_, i) => ({ id: `j${i}`, command: ["true"], group: "api" })),
      "/tmp",
      { groups: { api: { concurrency: 1, rate: "10/1m" } } },
    ));
    const cli = (...args: string[]) => queueCli("groups", url, queue, args);
    const listed = await cli();
    assert.strictEqual(listed.code, 0);
    assert.strictEqual(
      listed.stdout,
      "api  concurrency 1, rate 10/1m  3 waiting  1 running  0 started this window\n",
    );
    const set = await cli("api", "--concurrency", "3");
    assert.strictEqual(set.code, 0);
    // The rate is kept.
    assert.strictEqual(
      set.stdout,
      "api  concurrency 3, rate 10/1m  1 waiting  3 running  0 started this window\n",
    );
    const bad = await cli("api", "--rate", "lots");
    assert.strictEqual(bad.code, 2);
    assert.match(bad.stderr, /--rate must be starts per window such as "10\/1s"/);
    const lifted = await cli("api", "--unlimited", "--json");
    assert.deepStrictEqual(JSON.parse(lifted.stdout), {
      name: "api",
      limits: {},
      waiting: 0,
      running: 4,
    });
    await dropQueue(redis, queue);
  },
);
