// The queue on a real Redis Cluster of three local masters
// (src/redis/_cluster.ts): slots as the server computes them, a queue name
// without a hash tag refused, push, two consumer processes, push --wait,
// retries to the dead list, a SIGKILLed consumer's jobs recovered, the
// queue's slot migrated to another node mid-run and its node restarted
// mid-run, with every job accounted for.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { routingKey, slotOf } from "../src/redis/_cluster.ts";
import { type RedisCluster, redisTest, startRedisCluster } from "./_redis.ts";
import { consumerProcess, jobs, results } from "./_queue.ts";
import { withDir } from "./_temp.ts";
import { Gate } from "./_gate.ts";
import { exists, until } from "./_wait.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
const WAIT = {
  get signal() {
    return AbortSignal.timeout(120_000);
  },
};

/** A connection to one node only (no routing), by port. */
function node(port: number): Promise<RedisClient> {
  return RedisClient.connect(`redis://127.0.0.1:${port}`, { cluster: false });
}

/** The port of the node that serves `slot`, as the first node that answers says. */
async function ownerOf(cluster: RedisCluster, slot: number, also: number[] = []): Promise<number> {
  for (const port of [...cluster.ports, ...also]) {
    let any: RedisClient;
    try {
      any = await node(port);
    } catch {
      continue; // a node killed by the test
    }
    try {
      const ranges = await any.send(["CLUSTER", "SLOTS"]) as [number, number, [string, number]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
      return Number(range[2][1]);
    } finally {
      any.close();
    }
  }
  throw new Error("no node answered");
}

/**
 * Moves `slot` to another node as `redis-cli --cluster reshard` does:
 * IMPORTING on the target, MIGRATING on the source, MIGRATE of its keys in
 * batches until none is left, then the slot assigned to the target on every
 * node. Returns the target's port.
 */
async function migrate(cluster: RedisCluster, slot: number): Promise<number> {
  const from = await ownerOf(cluster, slot);
  const to = cluster.ports.find((port) => port !== from)!;
  const clients = new Map<number, RedisClient>();
  for (const port of cluster.ports) clients.set(port, await node(port));
  try {
    const id = async (port: number) => String(await clients.get(port)!.send(["CLUSTER", "MYID"]));
    const [fromId, toId] = [await id(from), await id(to)];
    await clients.get(to)!.send(["CLUSTER", "SETSLOT", slot, "IMPORTING", fromId]);
    await clients.get(from)!.send(["CLUSTER", "SETSLOT", slot, "MIGRATING", toId]);
    for (;;) {
      const keys = await clients.get(from)!.send([
        "CLUSTER",
        "GETKEYSINSLOT",
        slot,
        100,
      ]) as string[];
      if (keys.length === 0) break;
      await clients.get(from)!.send(["MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", ...keys]);
    }
    for (const port of [to, from, ...cluster.ports.filter((p) => p !== to && p !== from)]) {
      await clients.get(port)!.send(["CLUSTER", "SETSLOT", slot, "NODE", toId]);
    }
    return to;
  } finally {
    for (const client of clients.values()) client.close();
  }
}

Deno.test("Redis Cluster: routingKey picks the key a command names, wherever it sits among the arguments", () => {
  const cases: [string[], string | undefined][] = [
    [["GET", "{q}:a"], "{q}:a"],
    [["EVALSHA", "abc", "2", "{q}:a", "{q}:b", "x"], "{q}:a"],
    [["EVALSHA", "abc", "0", "x"], undefined],
    [["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "{q}:s", ">"], "{q}:s"],
    [["XINFO", "STREAM", "{q}:s"], "{q}:s"],
    [["OBJECT", "ENCODING", "{q}:a"], "{q}:a"],
    [["MEMORY", "USAGE", "{q}:a"], "{q}:a"],
    [["memory", "usage", "{q}:a", "SAMPLES", "0"], "{q}:a"],
    [["MEMORY", "STATS"], undefined],
    [["DEBUG", "OBJECT", "{q}:a"], "{q}:a"],
    [["debug", "digest-value", "{q}:a", "{q}:b"], "{q}:a"],
    ...["SDSLEN", "LISTPACK", "ZIPLIST", "HTSTATS-KEY"].map((sub) =>
      [["DEBUG", sub, "{q}:a"], "{q}:a"] as [string[], string]
    ),
    [["DEBUG", "QUICKLIST", "{q}:a", "1"], "{q}:a"],
    [["DEBUG", "SLEEP", "0"], undefined],
    [["DEBUG", "MALLCTL", "opt.narenas"], undefined],
    [["MIGRATE", "127.0.0.1", "7001", "{q}:a", "0", "5000"], "{q}:a"],
    [["MIGRATE", "h", "1", "", "0", "5", "AUTH", "keys", "KEYS", "{q}:a"], "{q}:a"],
    [["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "keys", "KEYS", "KEYS", "{q}:a"], "{q}:a"],
    [
      ["MIGRATE", "127.0.0.1", "7001", "", "0", "5000", "REPLACE", "KEYS", "{q}:a", "{q}:b"],
      "{q}:a",
    ],
    [["KEYS", "{q}:*"], "{q}"],
    [["KEYS", "*"], undefined],
    [["PING"], undefined],
    [["CLUSTER", "SLOTS"], undefined],
  ];
  for (const [args, key] of cases) assert.strictEqual(routingKey(args), key, args.join(" "));
});

redisTest("Redis Cluster: the queue on three local masters", async () => {
  await using cluster = await startRedisCluster();
  const url = cluster.url;
  await using router = await RedisClient.connect(url);
  assert(router.cluster);

  // One step per scenario: they share the cluster (starting one takes seconds).
  const t = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
    }
  };

  await t("slots are the server's, hash tags included", async () => {
    for (const key of ["foo", "{jobs}", "{jobs}:results", "a{b}c", "{}x", "ñandú", "x{}{y}"]) {
      assert.strictEqual(slotOf(key), await router.send(["CLUSTER", "KEYSLOT", key]), key);
    }
    assert.strictEqual(slotOf("{jobs}:processing:c1"), slotOf("{jobs}"));
  });

  await t("a queue name without a hash tag is refused, saying how to fix it", async () => {
    await assert.rejects(
      RedisQueue.connect({ url, queue: "jobs" }),
      /the queue's name needs a hash tag, such as "\{jobs\}"/,
    );
    await assert.rejects(
      RedisClient.connect(`redis://127.0.0.1:${cluster.ports[0]}/2`),
      /Redis Cluster, which has only database 0; drop "\/2"/,
    );
  });

  await t("push, two consumer processes, retries to the dead list, push --wait", async () => {
    await withDir(async (dir) => {
      const queue = "{main}";
      const a = await consumerProcess(url, queue, { workers: 2, registered: 1 });
      const b = await consumerProcess(url, queue, { workers: 2, registered: 2 });
      try {
        const list: Array<Record<string, unknown>> = Array.from({ length: 60 }, (_, i) => ({
          id: `j${i}`,
          task: "#sleep",
          args: [5],
        }));
        list.push({ id: "bad", task: "#fail", args: ["no"], retries: 1, backoff: "10ms" });
        const file = JSON.stringify({ jobs: list }).replaceAll('"#', `"${TASKS}#`);
        await Deno.writeTextFile(`${dir}/jobs.json`, file);
        const wait = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            CLI,
            "push",
            "--redis",
            url,
            "--queue",
            queue,
            "--wait",
            "--json",
            `${dir}/jobs.json`,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const lines = new TextDecoder().decode(wait.stdout).trim().split("\n").map((l) =>
          JSON.parse(l)
        );
        assert.strictEqual(wait.code, 1); // one failed for good
        assert.strictEqual(lines.length, 61);
        assert.strictEqual(lines.filter((r) => r.status === "succeeded").length, 60);
        const bad = lines.find((r) => r.id === "bad");
        assert.strictEqual(bad.status, "failed");
        assert.strictEqual(bad.attempts, 2);
        assert.strictEqual(await router.send(["LLEN", `${queue}:dead`]), 1);
        const by = new Set(lines.map((r) => r.consumer));
        assert.strictEqual(by.size, 2, "both consumers ran jobs");
      } finally {
        for (const child of [a, b]) child.kill("SIGTERM");
        await Promise.all([a.status, b.status]);
      }
    });
  });

  await t("a consumer SIGKILLed mid-job: another recovers its jobs", async () => {
    await withDir(async (dir) => {
      const queue = "{kill}";
      await using gate = await Gate.create();
      await using producer = await RedisQueue.connect({ url, queue });
      const victim = await consumerProcess(url, queue, { heartbeat: "1s" });
      const receipt = await producer.push(jobs([
        { id: "held", task: "#gated", args: [gate.path, "held", `${dir}/held`] },
        ...Array.from({ length: 10 }, (_, i) => ({ id: `j${i}`, command: ["true"] })),
      ], dir));
      await until("the victim to run a job", () => exists(`${dir}/held`));
      victim.kill("SIGKILL");
      await victim.status;
      await gate.open();
      const rescuer = producer.consume({ workers: 2, heartbeat: 1000 });
      const outcomes = await producer.wait(receipt, WAIT);
      rescuer.stop();
      const stats = await rescuer.done;
      assert(outcomes.every((r) => r.status === "succeeded"));
      assert(stats.recovered >= 1);
      assert.deepStrictEqual(
        [(await producer.counts()).queued, (await producer.counts()).processing],
        [0, 0],
      );
    });
  });

  await t("the queue's slot migrates to another node mid-run: nothing is lost", async () => {
    const queue = "{move}";
    await using producer = await RedisQueue.connect({ url, queue });
    const consumers = [
      producer.consume({ workers: 2, heartbeat: 2000 }),
      producer.consume({ workers: 2, heartbeat: 2000 }),
    ];
    try {
      const receipt = await producer.push(
        jobs(Array.from({ length: 400 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [3] }))),
      );
      await until(
        "some outcomes",
        async () => await router.send(["XLEN", `${queue}:results`]) as number > 50,
      );
      const slot = slotOf(queue);
      const before = await ownerOf(cluster, slot);
      const after = await migrate(cluster, slot);
      assert.notStrictEqual(after, before);
      assert.strictEqual(await ownerOf(cluster, slot), after);
      const outcomes = await producer.wait(receipt, WAIT);
      assert.strictEqual(outcomes.length, 400);
      assert(outcomes.every((r) => r.status === "succeeded"));
      // At least once: every job has an outcome; none is left anywhere.
      const recorded = new Set((await results(router, queue)).map((r) => r.id));
      assert.strictEqual(recorded.size, 400);
      const counts = await producer.counts();
      assert.deepStrictEqual([counts.queued, counts.processing, counts.delayed], [0, 0, 0]);
      await using old = await node(before);
      assert.deepStrictEqual(await old.send(["CLUSTER", "GETKEYSINSLOT", slot, 10]), []);
    } finally {
      for (const consumer of consumers) consumer.stop();
      await Promise.all(consumers.map((consumer) => consumer.done));
    }
  });

  await t("endpoints without a host (null, ?) are the answering node's", async () => {
    for (const port of cluster.ports) {
      await using one = await node(port);
      await one.send(["CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint"]);
    }
    try {
      await using fresh = await RedisClient.connect(url);
      for (const key of ["a", "b", "c", "{x}", "{y}"]) {
        await fresh.send(["SET", key, key]);
        assert.strictEqual(await fresh.send(["GET", key]), key);
      }
    } finally {
      for (const port of cluster.ports) {
        await using one = await node(port);
        await one.send(["CONFIG", "SET", "cluster-preferred-endpoint-type", "ip"]);
      }
    }
  });

  await t(
    "a seed node dies: commands without a key, stop and new clients use the others",
    async () => {
      const queue = "{seed}";
      const owner = await ownerOf(cluster, slotOf(queue));
      const seedPort = cluster.ports.find((port) => port !== owner)!;
      for (const port of cluster.ports) {
        await using one = await node(port);
        await one.send(["CONFIG", "SET", "cluster-require-full-coverage", "no"]);
      }
      const seedFirst = [seedPort, ...cluster.ports.filter((p) => p !== seedPort)]
        .map((port) => `redis://127.0.0.1:${port}`).join(",");
      await using producer = await RedisQueue.connect({ url: seedFirst, queue });
      const consumer = producer.consume({ workers: 2, heartbeat: 2000 });
      try {
        const first = await producer.push(jobs([{ id: "before", command: ["true"] }]));
        assert.strictEqual((await producer.wait(first, WAIT))[0].status, "succeeded");
        await cluster.kill(seedPort);
        const second = await producer.push(jobs([{ id: "after", command: ["true"] }]));
        assert.strictEqual((await producer.wait(second, WAIT))[0].status, "succeeded");
        // A new client whose first seed is dead connects through the next.
        await using late = await RedisClient.connect(seedFirst, { connectTimeout: 2000 });
        assert(late.cluster);
        assert.strictEqual(typeof (await late.send(["TIME"]) as string[])[0], "string");
      } finally {
        consumer.stop();
        await consumer.done;
        await cluster.restart(seedPort);
      }
    },
  );

  await t("the queue's node restarts mid-run: consumers reconnect, nothing is lost", async () => {
    const queue = "{again}";
    await using producer = await RedisQueue.connect({ url, queue });
    const consumer = producer.consume({ workers: 2, heartbeat: 5000 });
    try {
      const receipt = await producer.push(
        jobs(Array.from({ length: 200 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [5] }))),
      );
      await until(
        "some outcomes",
        async () => await router.send(["XLEN", `${queue}:results`]) as number > 20,
      );
      await cluster.restart(await ownerOf(cluster, slotOf(queue)));
      const outcomes = await producer.wait(receipt, WAIT);
      assert(outcomes.every((r) => r.status === "succeeded"));
      const counts = await producer.counts();
      assert.deepStrictEqual([counts.queued, counts.processing], [0, 0]);
    } finally {
      consumer.stop();
      await consumer.done;
    }
  });
}, { sanitizeOps: false, sanitizeResources: false });

redisTest(
  "Redis Cluster: the queue's master fails over to its replica mid-run: the client finds it",
  async () => {
    // A cluster of its own: the other test's steps kill and restart nodes.
    await using cluster = await startRedisCluster();
    const url = cluster.url;
    await using router = await RedisClient.connect(url);
    const queue = "{failover}";
    const master = await ownerOf(cluster, slotOf(queue));
    const replica = await cluster.addReplica(master);
    // The client was never given the replica's address: it finds it in the
    // cluster's map after the failover.
    await using producer = await RedisQueue.connect({ url, queue });
    const consumer = producer.consume({ workers: 2, heartbeat: 10_000 });
    try {
      const receipt = await producer.push(
        jobs(Array.from({ length: 100 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [20] }))),
      );
      await until(
        "some outcomes",
        async () => await router.send(["XLEN", `${queue}:results`]) as number > 10,
      );
      await cluster.kill(master);
      await until("the replica to take over", async () => {
        await using r = await node(replica);
        return String(await r.send(["ROLE"]).then((role) => (role as string[])[0])) === "master";
      }, 60_000);
      const outcomes = await producer.wait(receipt, WAIT);
      // At least once: the replica may lack the last writes before the kill.
      assert.strictEqual(outcomes.length, 100);
      assert.strictEqual(await ownerOf(cluster, slotOf(queue), [replica]), replica);
      // The client that had reached the dead master counts itself connected
      // again once it has read the new map: the dead node is forgotten.
      assert.strictEqual(router.connected, false);
      assert.strictEqual(await router.send(["XLEN", `${queue}:results`]) as number >= 100, true);
      await until("the client to count itself connected", () => router.connected);
    } finally {
      consumer.stop();
      await consumer.done.catch(() => {});
    }
  },
  { sanitizeOps: false, sanitizeResources: false },
);
