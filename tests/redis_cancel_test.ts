// Cancel from anywhere (src/redis/_cancel.ts): waiting, delayed, blocked and
// running jobs (a task and a command, on consumer processes), each outcome
// recorded once, against a real server.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { consumerProcess, dropQueue, jobs, queueCli, results } from "./_queue.ts";
import { withDir } from "./_temp.ts";
import { Gate } from "./_gate.ts";
import { exists, until } from "./_wait.ts";

/** `cli.ts cancel …`: its exit code and output. */
function cancelCli(url: string, queue: string, args: string[]) {
  return queueCli("cancel", url, queue, args);
}

redisTest(
  "cancel: waiting, delayed and blocked jobs are removed and recorded once; dependents skipped, keys freed",
  async (url) => {
    const queue = uniqueKey("cancel");
    await using redis = await RedisClient.connect(url);
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "w", command: ["true"], key: "only-one" },
      { id: "dep", command: ["true"] },
      { id: "after-dep", command: ["true"], after: ["dep"] },
      { id: "later", command: ["true"], delay: "1h" },
      { id: "keep", command: ["true"] },
    ]));
    const reports = await producer.cancel(["w", "dep", "later", "nope"]);
    const by = Object.fromEntries(reports.map((r) => [r.id, r]));
    assert.strictEqual(by.w.found, "waiting");
    assert.strictEqual(by.w.status, "cancelled");
    assert.strictEqual(by.later.found, "delayed");
    assert.strictEqual(by.dep.found, "waiting");
    assert.strictEqual(by.nope.found, "unknown");
    // What is left: keep waiting; nothing delayed or blocked.
    const waiting = (await redis.send(["LRANGE", queue, 0, -1]) as string[]).map((e) =>
      JSON.parse(e).id
    );
    assert.deepStrictEqual(waiting, ["keep"]);
    assert.strictEqual(await redis.send(["ZCARD", `${queue}:delayed`]), 0);
    assert.strictEqual(await redis.send(["HLEN", `${queue}:blocked`]), 0);
    assert.strictEqual(await redis.send(["HLEN", `${queue}:pending`]), 0);
    // Each recorded once; the key is free for a new job.
    const outcomes = (await results(redis, queue)).map((r) => `${r.id}:${r.status}`).sort();
    assert.deepStrictEqual(outcomes, [
      "after-dep:skipped",
      "dep:cancelled",
      "later:cancelled",
      "w:cancelled",
    ]);
    const again = await producer.push(jobs([{ id: "w2", command: ["true"], key: "only-one" }]));
    assert.deepStrictEqual(again.duplicates, []);
    // A second cancel finds them finished: the dependent was skipped with dep.
    const second = await producer.cancel(["w", "after-dep"], { batch: receipt.batch });
    assert.deepStrictEqual(second.map((r) => [r.id, r.found, r.status]).sort(), [
      ["after-dep", "finished", "skipped"],
      ["w", "finished", "cancelled"],
    ]);
    await dropQueue(redis, queue);
  },
);

redisTest(
  "cancel: a blocked job is cancelled, and its dependency's success later releases nothing",
  async (url) => {
    const queue = uniqueKey("cancel");
    await using redis = await RedisClient.connect(url);
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "first", command: ["true"] },
      { id: "second", command: ["true"], after: ["first"] },
    ]));
    const [report] = await producer.cancel(["second"]);
    assert.deepStrictEqual([report.found, report.status], ["blocked", "cancelled"]);
    const consuming = producer.consume({ workers: 1 });
    const [first] = await producer.wait({ ...receipt, ids: ["first"] });
    assert.strictEqual(first.status, "succeeded");
    consuming.stop();
    await consuming.done;
    assert.strictEqual(await redis.send(["LLEN", queue]), 0, "second was not released");
    const outcomes = (await results(redis, queue)).map((r) => `${r.id}:${r.status}`).sort();
    assert.deepStrictEqual(outcomes, ["first:succeeded", "second:cancelled"]);
    await dropQueue(redis, queue);
  },
);

redisTest(
  "cancel: a running task and a running command on a consumer process are aborted, recorded cancelled once, not retried",
  async (url) => {
    await withDir(async (dir) => {
      const queue = uniqueKey("cancel");
      await using redis = await RedisClient.connect(url);
      await using producer = await RedisQueue.connect({ url, queue });
      const marker = `taskpool-cancel-${crypto.randomUUID()}`;
      await producer.push(jobs([
        {
          id: "task",
          task: "#untilAborted",
          args: [`${dir}/task-started`, `${dir}/task-aborted`],
          retries: 3,
        },
        {
          id: "command",
          // A process group: a grandchild that must end too.
          command: [
            "sh",
            "-c",
            `touch ${dir}/command-started; sh -c 'sleep 300; : ${marker}' & wait`,
          ],
          retries: 3,
        },
        { id: "next", command: ["true"], after: ["task"] },
      ]));
      const child = await consumerProcess(url, queue);
      try {
        await until(
          "both running",
          async () => await exists(`${dir}/task-started`) && await exists(`${dir}/command-started`),
        );
        const cancelled = await cancelCli(url, queue, ["task", "command"]);
        assert.strictEqual(cancelled.code, 0, cancelled.stderr);
        assert.match(cancelled.stdout, /^task \(batch \S+\): cancelled while running on \S+$/m);
        assert.match(cancelled.stdout, /^command \(batch \S+\): cancelled while running on \S+$/m);
        // The task sees its signal abort; the command's whole group ends.
        await until("the task to see its abort", () => exists(`${dir}/task-aborted`));
        assert.match(await Deno.readTextFile(`${dir}/task-aborted`), /cancelled/);
        await until("the grandchild to end", async () => {
          const found = await new Deno.Command("pgrep", { args: ["-f", marker] }).output();
          return found.code === 1;
        });
      } finally {
        child.kill("SIGTERM");
        await child.status;
      }
      const outcomes = (await results(redis, queue)).map((r) => `${r.id}:${r.status}:${r.attempts}`)
        .sort();
      assert.deepStrictEqual(outcomes, [
        "command:cancelled:1",
        "next:skipped:0",
        "task:cancelled:1",
      ]);
      assert.strictEqual(await redis.send(["ZCARD", `${queue}:delayed`]), 0, "no retry");
      assert.strictEqual(await redis.send(["EXISTS", `${queue}:cancel`]), 0, "no request left");
      assert.strictEqual(await redis.send(["LLEN", `${queue}:dead`]), 0, "cancelled is not dead");
      await dropQueue(redis, queue);
    });
  },
);

redisTest(
  "cancel: the CLI exits 1 for an unknown id, 2 without ids or batch, and cancels a whole batch",
  async (url) => {
    const queue = uniqueKey("cancel");
    await using redis = await RedisClient.connect(url);
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "a", command: ["true"] },
      { id: "b", command: ["true"], delay: "1h" },
    ]));
    const other = await producer.push(jobs([{ id: "a", command: ["true"] }]));
    const unknown = await cancelCli(url, queue, ["ghost"]);
    assert.strictEqual(unknown.code, 1);
    assert.match(unknown.stdout, /^ghost: unknown/m);
    const usage = await cancelCli(url, queue, []);
    assert.strictEqual(usage.code, 2);
    assert.match(usage.stderr, /give job ids, or --batch/);
    const batch = await cancelCli(url, queue, ["--batch", receipt.batch, "--json"]);
    assert.strictEqual(batch.code, 0, batch.stderr);
    const lines = batch.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepStrictEqual(
      lines.map((l) => `${l.id}:${l.found}`).sort(),
      ["a:waiting", "b:delayed"],
    );
    // The other push's "a" is untouched.
    const left = (await redis.send(["LRANGE", queue, 0, -1]) as string[]).map((e) =>
      JSON.parse(e).batch
    );
    assert.deepStrictEqual(left, [other.batch]);
    await dropQueue(redis, queue);
  },
);

redisTest(
  "cancel: a running job that fails before its consumer reads the cancel is recorded cancelled, not retried",
  async (url) => {
    const queue = uniqueKey("cancel");
    await using redis = await RedisClient.connect(url);
    await using gate = await Gate.create();
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "x", task: "#reportThenFail", args: [0.5, gate.path], retries: 3, backoff: "1ms" },
    ]));
    const consumer = producer.consume({ workers: 1 });
    await until(
      "x running",
      async () => await redis.send(["LLEN", `${queue}:processing:${consumer.id}`]) === 1,
    );
    const [report] = await producer.cancel(["x"], { wait: 0 });
    assert.strictEqual(report.found, "running");
    await gate.open(); // it fails now, most likely before the consumer's next heartbeat
    const [outcome] = await producer.wait(receipt, { signal: AbortSignal.timeout(30_000) });
    consumer.stop();
    await consumer.done;
    assert.deepStrictEqual([outcome.status, outcome.attempts], ["cancelled", 1]);
    assert.strictEqual(await redis.send(["ZCARD", `${queue}:delayed`]), 0, "no retry");
    assert.strictEqual(await redis.send(["EXISTS", `${queue}:cancel`]), 0);
    await dropQueue(redis, queue);
  },
);
