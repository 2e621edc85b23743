// The progress a Redis consumer stores of its running jobs, in
// `<queue>:progress:<consumer>` (src/redis/_progress.ts), against a real server.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { Gate } from "./_gate.ts";
import { jobs, results } from "./_queue.ts";
import { ProgressBoard } from "../src/redis/_progress.ts";

/** Polls `check` every 50 ms until it gives a value; fails after `ms`. */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The progress hash of a consumer, parsed: ref → fields. */
async function board(
  redis: RedisClient,
  key: string,
): Promise<Map<string, Record<string, unknown>>> {
  const flat = await redis.send(["HGETALL", key]) as string[];
  const map = new Map<string, Record<string, unknown>>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i], JSON.parse(flat[i + 1]));
  return map;
}

redisTest(
  "Redis progress: a running job's progress and start are stored, and removed with its outcome",
  async (url) => {
    const queue = uniqueKey("progress");
    await using redis = await RedisClient.connect(url);
    await using gate = await Gate.create();
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "reports", task: "#reportThenWait", args: [{ done: 3, total: 10 }, gate.path] },
      // Reports nothing: stored once it has run a second.
      { id: "quiet", command: ["sh", "-c", `while [ ! -e '${gate.path}' ]; do sleep 0.02; done`] },
    ]));
    const consumer = producer.consume({ workers: 2 });
    const key = `${queue}:progress:${consumer.id}`;
    const before = Date.now();
    const seen = await until("both jobs in the progress hash", async () => {
      const map = await board(redis, key);
      return map.get(`${receipt.batch}/reports`)?.progress !== undefined &&
          map.has(`${receipt.batch}/quiet`)
        ? map
        : undefined;
    });
    const reports = seen.get(`${receipt.batch}/reports`)!;
    assert.deepStrictEqual(reports.progress, { done: 3, total: 10 });
    assert.strictEqual(reports.id, "reports");
    assert.strictEqual(reports.attempt, 1);
    const quiet = seen.get(`${receipt.batch}/quiet`)!;
    assert.strictEqual(quiet.progress, undefined);
    assert.ok(Math.abs((quiet.started as number) - before) < 60_000, `started ${quiet.started}`);
    await gate.open();
    const outcomes = await producer.wait(receipt);
    assert.deepStrictEqual(outcomes.map((r) => r.status), ["succeeded", "succeeded"]);
    // Removed in the step that recorded the outcomes: gone once they are readable.
    assert.strictEqual(await redis.send(["EXISTS", key]), 0);
    consumer.stop();
    await consumer.done;
    await redis.send(["DEL", `${queue}:results`]);
  },
);

redisTest(
  "Redis progress: a consumer that dies leaves no progress behind once recovered",
  async (url) => {
    const queue = uniqueKey("progress");
    await using redis = await RedisClient.connect(url);
    await using gate = await Gate.create();
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      { id: "a", task: "#reportThenWait", args: [0.25, gate.path] },
    ]));
    const first = producer.consume({ workers: 1 });
    const key = `${queue}:progress:${first.id}`;
    await until("the progress of a", async () => {
      const map = await board(redis, key);
      return map.get(`${receipt.batch}/a`)?.progress === 0.25 ? true : undefined;
    });
    first.cancel(); // as a crash: the job stays in its list, its heartbeat goes
    await first.done;
    assert.strictEqual(await redis.send(["EXISTS", key]), 1);
    await gate.open();
    const second = producer.consume({ workers: 1 });
    const [outcome] = await producer.wait(receipt);
    assert.strictEqual(outcome.status, "succeeded");
    assert.strictEqual(outcome.consumer, second.id);
    assert.strictEqual(
      await redis.send(["EXISTS", key]),
      0,
      "the dead consumer's progress is gone",
    );
    second.stop();
    await second.done;
    assert.strictEqual(await redis.send(["EXISTS", `${queue}:progress:${second.id}`]), 0);
    assert.strictEqual((await results(redis, queue)).length, 1);
    await redis.send(["DEL", `${queue}:results`]);
  },
);

redisTest(
  "Redis progress: a failed attempt waiting for its retry is not shown as running",
  async (url) => {
    const queue = uniqueKey("progress");
    await using redis = await RedisClient.connect(url);
    await using gate = await Gate.create();
    await using producer = await RedisQueue.connect({ url, queue });
    // Reports, fails once the gate opens, and retries an hour later.
    const receipt = await producer.push(jobs([
      { id: "r", task: "#reportThenFail", args: [0.5, gate.path], retries: 1, backoff: "1h" },
    ]));
    const consumer = producer.consume({ workers: 1 });
    const key = `${queue}:progress:${consumer.id}`;
    await until("the progress of r", async () => {
      const map = await board(redis, key);
      return map.get(`${receipt.batch}/r`)?.progress === 0.5 ? true : undefined;
    });
    await gate.open();
    await until(
      "r in the delayed set",
      async () => await redis.send(["ZCARD", `${queue}:delayed`]) === 1 ? true : undefined,
    );
    await until(
      "r gone from the progress hash",
      async () => await redis.send(["EXISTS", key]) === 0 ? true : undefined,
    );
    consumer.stop();
    await consumer.done;
    await redis.send(["DEL", `${queue}:delayed`]);
  },
);

redisTest(
  "Redis progress: push --wait on a terminal shows the longest job's progress",
  async (url) => {
    const queue = uniqueKey("progress");
    await using gate = await Gate.create();
    const dir = await Deno.makeTempDir();
    try {
      const tasks = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
      const file = `${dir}/jobs.json`;
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          jobs: [{ id: "slow", task: `${tasks}#reportThenWait`, args: [0.4, gate.path] }],
        }),
      );
      await using producer = await RedisQueue.connect({ url, queue });
      const consumer = producer.consume({ workers: 1 });
      const cli = new URL("../cli.ts", import.meta.url).pathname;
      const command =
        `env NO_COLOR=1 ${Deno.execPath()} run -A ${cli} push --wait --redis ${url} --queue ${queue} ${file}`;
      // util-linux `script`: a pseudo-terminal, so the live line is drawn.
      const child = new Deno.Command("script", {
        args: ["-qefc", command, "/dev/null"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let screen = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const end = Date.now() + 30_000;
      while (!/longest slow 40%/.test(screen)) {
        const { value, done } = await reader.read();
        if (done || Date.now() > end) break;
        screen += value;
      }
      await gate.open();
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          screen += value;
        }
      })();
      const [status] = await Promise.all([child.status, reading, child.stderr.cancel()]);
      assert.match(screen, /longest slow 40%/);
      assert.strictEqual(status.code, 0, screen);
      consumer.stop();
      await consumer.done;
      await using redis = await RedisClient.connect(url);
      await redis.send(["DEL", `${queue}:results`]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("ProgressBoard: a retry that starts before the next flush owns its attempt's field, and its outcome removes it", () => {
  const board = new ProgressBoard("q:progress:c");
  board.started(0, "b", "job", 1, 0);
  assert.deepStrictEqual(
    board.flush(1500).map((c) => c[0]),
    ["HSET"],
    "written: ran over a second",
  );
  board.retried(0); // its field is to go at the next flush…
  board.started(1, "b", "job", 2, 1600); // …but the retry starts first, on this consumer
  const [write] = board.flush(1700);
  assert.strictEqual(write[0], "HSET", "the retry rewrites the field at once, nothing deletes it");
  assert.strictEqual(JSON.parse(String(write[3])).attempt, 2);
  assert.strictEqual(board.ended(1), "b/job", "its outcome removes the field");
});
