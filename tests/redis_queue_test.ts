// The Redis queue against a real redis-server: the shared one of
// TASKPOOL_REDIS_URL (each test under its own queue name), or a private one
// for tests that restart the server.
import assert from "node:assert";
import { type QueueResult, RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { validateJobFile } from "../src/jobs/mod.ts";
import { redisTest, startRedisServer, uniqueKey } from "./_redis.ts";
import { withDir } from "./_temp.ts";
import { Gate } from "./_gate.ts";
import { retryDelay } from "../src/run/_attempt.ts";
import { ACK } from "../src/redis/_scripts.ts";
import { PUSH } from "../src/redis/_push.ts";
import { startProxy } from "./_proxy.ts";
import { jobs, prioritized, results } from "./_queue.ts";
import { type ParsedFamily, parseExposition } from "./_exposition.ts";
import { Depth, MAX_AUTO_EXTRA } from "../src/redis/_depth.ts";
import { PUSH_CHUNK } from "../src/redis/queue.ts";
import { parseListen, renderMetrics } from "../src/dashboard/metrics.ts";
import { exists, until } from "./_wait.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Spawns the CLI with piped output. */
function spawnCli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
}

async function finish(child: Deno.ChildProcess) {
  const output = await child.output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

async function cli(args: string[], env: Record<string, string> = {}) {
  return await finish(spawnCli(args, env));
}

/** Spawns the CLI and collects its output as it comes, for tests that act on what it says. */
function watchCli(args: string[]) {
  const child = spawnCli(args);
  const out = { stdout: "", stderr: "" };
  const read = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) out[key] += chunk;
  };
  const reading = Promise.all([read(child.stdout, "stdout"), read(child.stderr, "stderr")]);
  return {
    child,
    out,
    async end() {
      const status = await child.status;
      await reading;
      return { code: status.code, ...out };
    },
  };
}

// -- Sharing and exactly once --

redisTest("RedisQueue: two consumers share 1,000 jobs and each runs exactly once", async (url) => {
  const name = uniqueKey("share");
  await using queue = await RedisQueue.connect({ url, queue: name });
  const file = jobs(
    Array.from({ length: 1000 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [0] })),
  );
  const receipt = await queue.push(file);
  const a = queue.consume({ workers: 2, heartbeat: 2000 });
  const b = queue.consume({ workers: 2, heartbeat: 2000 });
  const outcomes = await queue.wait(receipt);
  a.stop();
  b.stop();
  const [sa, sb] = await Promise.all([a.done, b.done]);
  assert.deepStrictEqual(outcomes.map((r) => r.id), file.jobs.map((j) => j.id));
  assert(outcomes.every((r) => r.status === "succeeded" && r.result === 0));
  // Each job ran once: one record each, and both consumers did some.
  const client = await RedisClient.connect(url);
  try {
    const records = await results(client, name);
    assert.strictEqual(records.length, 1000);
    assert.strictEqual(new Set(records.map((r) => r.id)).size, 1000);
    assert.strictEqual(sa.succeeded + sb.succeeded, 1000);
    assert(sa.succeeded > 0 && sb.succeeded > 0, `a: ${sa.succeeded}, b: ${sb.succeeded}`);
    assert.strictEqual(await client.send(["LLEN", name]), 0);
    assert.strictEqual(await client.send(["SCARD", `${name}:consumers`]), 0);
    assert.strictEqual(await client.send(["EXISTS", `${name}:processing:${a.id}`]), 0);
  } finally {
    client.close();
  }
});

redisTest("RedisQueue: a consumer holds at most workers + capacity jobs", async (url) => {
  const name = uniqueKey("room");
  await using queue = await RedisQueue.connect({ url, queue: name });
  await queue.push(
    jobs(Array.from({ length: 40 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [200] }))),
  );
  const consumer = queue.consume({ workers: 2, capacity: 3 });
  const client = await RedisClient.connect(url);
  try {
    let most = 0;
    await until("some jobs done", async () => {
      const held = await client.send(["LLEN", `${name}:processing:${consumer.id}`]) as number;
      most = Math.max(most, held, consumer.held);
      return consumer.stats.succeeded >= 10;
    });
    assert(most <= 5, `held ${most}`);
    assert(most >= 4, `held only ${most}: it should fill its room`);
  } finally {
    consumer.stop();
    await consumer.done;
    client.close();
  }
  // Stopping gave nothing up: every job is done or still queued.
  const counts = await queue.counts();
  assert.strictEqual(counts.queued + consumer.stats.succeeded, 40);
  assert.strictEqual(counts.processing, 0);
});

Deno.test("Depth: a set capacity is fixed; unset, the depth follows run time against round trip, within its bounds", () => {
  const fixed = new Depth(2, 3);
  assert.strictEqual(fixed.limit, 5);
  assert.strictEqual(fixed.ran(0.001), false);
  assert.strictEqual(fixed.roundTrip(50), false);
  assert.strictEqual(fixed.limit, 5, "a user's capacity never moves");

  const auto = new Depth(2, undefined);
  assert.strictEqual(auto.limit, 6, "workers + 2 × workers until it has measured both");
  assert.strictEqual(auto.poolCapacity, MAX_AUTO_EXTRA);
  auto.ran(0.01);
  assert.strictEqual(auto.limit, 6, "no round trip measured yet");
  assert.strictEqual(auto.roundTrip(0.3), true, "short jobs: it grows");
  assert.strictEqual(auto.limit, 2 + 60); // 2 workers × 0.3 ms / 0.01 ms
  for (let i = 0; i < 200; i++) auto.ran(0.0001);
  assert.strictEqual(auto.limit, 2 + MAX_AUTO_EXTRA, "never past its most");
  for (let i = 0; i < 200; i++) auto.ran(100);
  assert.strictEqual(auto.limit, 6, "long jobs: back to 2 × workers, never below");
});

redisTest(
  "RedisConsumer: without a capacity, short jobs make it hold more than workers × 3",
  async (url) => {
    const name = uniqueKey("depth");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const receipt = await queue.push(
      jobs(Array.from({ length: 3000 }, (_, i) => ({ id: `j${i}`, task: "#noop", args: [i] }))),
    );
    let most = 0;
    const consumer = queue.consume({
      workers: 1,
      onFinish: () => {
        most = Math.max(most, consumer.held);
      },
    });
    await queue.wait(receipt);
    consumer.stop();
    await consumer.done;
    assert.strictEqual(consumer.stats.succeeded, 3000);
    assert(most > 3, `held at most ${most}: the fixed default would hold 3`);
    assert(most <= 1 + MAX_AUTO_EXTRA, `held ${most}`);
  },
);

// -- Metrics --

redisTest(
  "consume --metrics serves Prometheus text that parses, with the consumer's counts, durations, held jobs and workers",
  async (url) => {
    const name = uniqueKey("metrics");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const consumer = watchCli([
      "consume",
      "--redis",
      url,
      "--queue",
      name,
      "--workers",
      "2",
      "--metrics",
      "127.0.0.1:0",
    ]);
    try {
      await until("the metrics address", () => /metrics on (http:\S+)/.test(consumer.out.stderr));
      const endpoint = /metrics on (http:\S+)/.exec(consumer.out.stderr)![1];
      const receipt = await queue.push(jobs([
        { id: "a", task: "#sleep", args: [1] },
        { id: "b", task: "#sleep", args: [2] },
        { id: "c", task: "#sleep", args: [3] },
        { id: "d", task: "#fail", args: ["no"] },
      ]));
      await queue.wait(receipt);
      let families = new Map<string, ParsedFamily>();
      const value = (family: string, labels: Record<string, string>, suffix = "") =>
        families.get(family)!.samples.find((s) =>
          s.name === family + suffix &&
          Object.entries(labels).every(([k, v]) => s.labels[k] === v)
        )?.value;
      await until("every outcome to be counted and recorded", async () => {
        const response = await fetch(endpoint);
        assert.strictEqual(response.status, 200);
        assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
        families = parseExposition(await response.text());
        return value("taskpool_jobs_held", { queue: name }) === 0 &&
          value("taskpool_jobs_total", { status: "failed" }) === 1;
      });
      for (const [family, f] of families) {
        assert(f.help && f.type, `${family} has HELP and TYPE`);
        if (f.type === "counter") assert.match(family, /_total$/);
      }
      assert.strictEqual(value("taskpool_jobs_total", { queue: name, status: "succeeded" }), 3);
      assert.strictEqual(value("taskpool_jobs_total", { queue: name, status: "failed" }), 1);
      assert.strictEqual(value("taskpool_jobs_total", { queue: name, status: "retried" }), 0);
      // The histogram: cumulative buckets in ascending le, +Inf equal to the count.
      const buckets = families.get("taskpool_job_duration_seconds")!.samples
        .filter((s) => s.name.endsWith("_bucket"));
      const bounds = buckets.map((s) => s.labels.le === "+Inf" ? Infinity : Number(s.labels.le));
      assert.deepStrictEqual(bounds, bounds.toSorted((x, y) => x - y));
      assert.strictEqual(bounds.at(-1), Infinity);
      assert(buckets.every((s, i) => i === 0 || s.value >= buckets[i - 1].value), "cumulative");
      assert.strictEqual(buckets.at(-1)!.value, 4);
      assert.strictEqual(value("taskpool_job_duration_seconds", { queue: name }, "_count"), 4);
      assert(value("taskpool_job_duration_seconds", { queue: name }, "_sum")! > 0);
      const idle = value("taskpool_pool_workers", { state: "idle" })!;
      const running = value("taskpool_pool_workers", { state: "running" })!;
      assert.strictEqual(idle + running, 2);
      assert(value("taskpool_process_uptime_seconds", {})! > 0);
      // Anything else is refused.
      const other = await fetch(endpoint.replace("/metrics", "/other"));
      assert.strictEqual(other.status, 404);
      await other.body?.cancel();
      const post = await fetch(endpoint, { method: "POST" });
      assert.strictEqual(post.status, 405);
      await post.body?.cancel();
    } finally {
      consumer.child.kill("SIGTERM");
      const { code } = await consumer.end();
      assert.strictEqual(code, 0);
    }
  },
);

Deno.test("parseListen() reads host:port and refuses anything else in one line", () => {
  assert.deepStrictEqual(parseListen("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepStrictEqual(parseListen("[::1]:0"), { hostname: "::1", port: 0 });
  for (const bad of ["9464", "127.0.0.1", "127.0.0.1:99999", "a b:1", ":80"]) {
    assert.throws(() => parseListen(bad), /--metrics must be host:port, such as 127\.0\.0\.1:9464/);
  }
});

Deno.test("renderMetrics() escapes label values and help, and the parser reads them back", () => {
  const text = renderMetrics([{
    name: "x_total",
    help: "back\\slash and\nnewline",
    type: "counter",
    samples: [{ labels: { q: 'a"b\\c\nd' }, value: 1 }],
  }]);
  const parsed = parseExposition(text);
  assert.deepStrictEqual(parsed.get("x_total")!.samples[0].labels, { q: 'a"b\\c\nd' });
});

// -- Unique jobs --

redisTest(
  "unique: a held key makes a later job a duplicate (also within a push); the key is free again at the outcome",
  async (url) => {
    const name = uniqueKey("unique");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const first = await queue.push(jobs([{ id: "a", task: "#noop", args: [1], key: "k" }]));
      assert.deepStrictEqual(first.duplicates, []);
      const second = await queue.push(jobs([
        { id: "b", task: "#noop", args: [2], key: "k" },
        { id: "c", task: "#noop", args: [3], key: "other" },
        { id: "d", task: "#noop", args: [4], key: "other" },
      ]));
      assert.deepStrictEqual(second.duplicates, [
        { id: "b", heldBy: { id: "a", batch: first.batch }, replaced: false },
        { id: "d", heldBy: { id: "c", batch: second.batch }, replaced: false },
      ]);
      assert.deepStrictEqual(second.ids, ["c"], "wait() waits for what was enqueued");
      assert.strictEqual((await queue.counts()).queued, 2);
      const consumer = queue.consume({ workers: 1 });
      const [a] = await queue.wait(first);
      const [c] = await queue.wait(second);
      assert.deepStrictEqual([a.result, c.result], [1, 3]);
      await until(
        "the keys to be freed",
        async () => (await client.send(["HLEN", `${name}:unique`])) === 0,
      );
      const third = await queue.push(jobs([{ id: "e", task: "#noop", args: [5], key: "k" }]));
      assert.deepStrictEqual(third.duplicates, [], "the key is free once its job has an outcome");
      assert.deepStrictEqual((await queue.wait(third)).map((r) => r.result), [5]);
      consumer.stop();
      await consumer.done;
    } finally {
      client.close();
    }
  },
);

redisTest(
  'unique: onDuplicate "replace" gives a waiting holder the latest entry; a running one is never replaced',
  async (url) => {
    const name = uniqueKey("replace");
    await using gate = await Gate.create();
    await using queue = await RedisQueue.connect({ url, queue: name });
    const held = await queue.push(jobs([{ id: "a", task: "#noop", args: ["first"], key: "k" }]));
    const later = await queue.push(
      jobs([{ id: "b", task: "#noop", args: ["latest"], key: "k", onDuplicate: "replace" }]),
    );
    assert.deepStrictEqual(later.duplicates, [
      { id: "b", heldBy: { id: "a", batch: held.batch }, replaced: true },
    ]);
    assert.strictEqual((await queue.counts()).queued, 1);
    // A holder that runs: gated, so it is running when the next push comes.
    const started = `${gate.path}.started`;
    const running = await queue.push(
      jobs([{ id: "r", task: "#gated", args: [gate.path, "mine", started], key: "busy" }]),
    );
    const consumer = queue.consume({ workers: 2 });
    const [a] = await queue.wait(held);
    assert.strictEqual(a.id, "a");
    assert.strictEqual(
      a.result,
      "latest",
      "the holder ran with the latest arguments, under its id",
    );
    await until("the gated job to start", () => exists(started));
    const tooLate = await queue.push(
      jobs([{ id: "s", task: "#noop", args: ["theirs"], key: "busy", onDuplicate: "replace" }]),
    );
    assert.deepStrictEqual(tooLate.duplicates, [
      { id: "s", heldBy: { id: "r", batch: running.batch }, replaced: false },
    ]);
    await gate.open();
    const [r] = await queue.wait(running);
    assert.strictEqual(r.result, "mine");
    consumer.stop();
    await consumer.done;
  },
);

redisTest("unique: push names the duplicates it did not enqueue", async (url) => {
  const name = uniqueKey("cliunique");
  await withDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ jobs: [{ id: "a", task: `${TASKS}#noop`, args: [1], key: "k" }] }),
    );
    const first = await cli(["push", "--redis", url, "--queue", name, path]);
    assert.strictEqual(first.code, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /duplicate/);
    const batch = /\(batch (\w+)\)/.exec(first.stderr)![1];
    const second = await cli(["push", "--redis", url, "--queue", name, path]);
    assert.strictEqual(second.code, 0, second.stderr);
    assert.match(second.stderr, /pushed 0 job\(s\)/);
    assert.match(
      second.stderr,
      new RegExp(`1 duplicate\\(s\\) not enqueued: a \\(key held by a of batch ${batch}\\)`),
    );
  });
});

redisTest("unique: pushers racing with one key enqueue one job", async (url) => {
  const name = uniqueKey("race");
  const queues = await Promise.all(
    [0, 1, 2, 3].map(() => RedisQueue.connect({ url, queue: name })),
  );
  try {
    const receipts = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          queues[i % 4].push(jobs([{ id: `j${i}`, task: "#noop", args: [i], key: "once" }])),
      ),
    );
    const enqueued = receipts.flatMap((r) => r.ids);
    assert.strictEqual(enqueued.length, 1, `enqueued ${enqueued}`);
    assert.strictEqual(receipts.flatMap((r) => r.duplicates).length, 39);
    assert.strictEqual((await queues[0].counts()).queued, 1);
  } finally {
    for (const queue of queues) await queue.close();
  }
});

redisTest(
  "unique: a keyed job skipped because its dependency failed frees its key",
  async (url) => {
    const name = uniqueKey("skipkey");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const receipt = await queue.push(jobs([
        { id: "bad", task: "#fail", args: ["no"] },
        { id: "d", task: "#noop", args: [1], after: ["bad"], key: "k" },
      ]));
      const consumer = queue.consume({ workers: 1 });
      const outcomes = await queue.wait(receipt);
      assert.deepStrictEqual(outcomes.map((r) => r.status), ["failed", "skipped"]);
      assert.strictEqual(await client.send(["HLEN", `${name}:unique`]), 0, "the key is free");
      consumer.stop();
      await consumer.done;
    } finally {
      client.close();
    }
  },
);

redisTest(
  "unique: a key of the wrong type when a keyed job's dependency ends loses nothing",
  async (url) => {
    const name = uniqueKey("uniquebad");
    await using gate = await Gate.create();
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const receipt = await queue.push(jobs([
        { id: "dep", task: "#gated", args: [gate.path, "x", `${gate.path}.started`] },
        { id: "keyed", task: "#noop", args: [1], after: ["dep"], key: "ks" },
      ]));
      const consumer = queue.consume({ workers: 1 });
      await until("dep to start", () => exists(`${gate.path}.started`));
      await client.send(["SET", `${name}:unique`, "not a hash"]);
      await gate.open();
      await assert.rejects(
        consumer.done,
        /WRONGTYPE the key ".*:unique" holds a string, not a hash/,
      );
      // Nothing written: dep is back in the queue, keyed still blocked on it.
      const ref = `${receipt.batch}/keyed`;
      assert.strictEqual(
        await client.send(["HEXISTS", `${name}:blocked`, ref]),
        1,
        "keyed is kept",
      );
      const queued = (await client.send(["LRANGE", name, 0, -1]) as string[])
        .map((e) => JSON.parse(e).id);
      assert.deepStrictEqual(queued, ["dep"]);
      assert.strictEqual((await results(client, name)).length, 0);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "unique: ids with '|' or a newline keep their key, their delay and their replacement right",
  async (url) => {
    const name = uniqueKey("oddids");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const held = await queue.push(jobs([{ id: "a\nb", task: "#noop", args: [1], key: "k" }]));
    const later = await queue.push(
      jobs([{ id: "c", task: "#noop", args: [2], key: "k", onDuplicate: "replace" }]),
    );
    assert.deepStrictEqual(later.duplicates, [
      { id: "c", heldBy: { id: "a\nb", batch: held.batch }, replaced: true },
    ]);
    const delayed = await queue.push(
      jobs([{ id: "d|e", task: "#noop", args: [3], key: "k2", delay: "10ms" }]),
    );
    const consumer = queue.consume({ workers: 1 });
    assert.deepStrictEqual((await queue.wait(held)).map((r) => [r.id, r.result]), [["a\nb", 2]]);
    assert.deepStrictEqual((await queue.wait(delayed)).map((r) => [r.id, r.status]), [[
      "d|e",
      "succeeded",
    ]]);
    consumer.stop();
    await consumer.done;
  },
);

redisTest(
  "RedisConsumer: the automatic depth shrinks when jobs turn long (no hoarding)",
  async (url) => {
    const name = uniqueKey("shrink");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const receipt = await queue.push(jobs([
      ...Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, task: "#noop", args: [i] })),
      ...Array.from({ length: 100 }, (_, i) => ({ id: `s${i}`, task: "#sleep", args: [20] })),
    ]));
    let longDone = 0;
    let heldLate = Infinity;
    const consumer = queue.consume({
      workers: 1,
      onFinish: (result) => {
        if (result.id.startsWith("s") && ++longDone === 90) heldLate = consumer.held;
      },
    });
    await queue.wait(receipt);
    consumer.stop();
    await consumer.done;
    // With no-op jobs it held up to 65; 90 long jobs later it holds a few.
    assert(heldLate <= 6, `still held ${heldLate} after 90 long jobs`);
  },
);

// -- Dependencies, retries, the dead list --

redisTest(
  "RedisQueue: a push larger than one chunk keeps every dependency, also across chunks",
  async (url) => {
    const name = uniqueKey("chunks");
    await withDir(async (dir) => {
      const log = `${dir}/log`;
      const n = Math.round(PUSH_CHUNK * 1.2);
      // The waiting jobs come first in the file, their dependencies last:
      // a push in file order would queue b0… in one chunk and register a0…
      // in another, after some b had already run.
      const list = [
        ...Array.from({ length: n }, (_, i) => ({
          id: `b${i}`,
          task: "#record",
          args: [log, `b${i}`],
          after: [`a${i}`],
        })),
        ...Array.from(
          { length: n },
          (_, i) => ({ id: `a${i}`, task: "#record", args: [log, `a${i}`] }),
        ),
      ];
      await using queue = await RedisQueue.connect({ url, queue: name });
      // Consuming while the push goes on: a job queued early may finish
      // before the last chunk is in.
      const consumer = queue.consume({ workers: 2 });
      await until("the consumer to register", async () => (await queue.counts()).consumers === 1);
      // Every command the server runs, in order: the PUSH calls of this push.
      const monitor = new Deno.Command("redis-cli", {
        args: ["-u", url, "monitor"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const lines: string[] = [];
      const reading = (async () => {
        let text = "";
        for await (const chunk of monitor.stdout.pipeThrough(new TextDecoderStream())) {
          text += chunk;
          const end = text.lastIndexOf("\n");
          if (end >= 0) {
            lines.push(...text.slice(0, end).split("\n"));
            text = text.slice(end + 1);
          }
        }
      })();
      await until("MONITOR to start", () => lines.includes("OK"));
      // Loaded beforehand, so each call shows once (no NOSCRIPT, then EVAL).
      await using loader = await RedisClient.connect(url);
      await loader.send(["SCRIPT", "LOAD", PUSH.source]);
      const receipt = await queue.push(jobs(list));
      const pushes = () =>
        lines.filter((line) => line.includes(name) && line.includes('\\"jobs\\":'));
      await until("the push's calls to show", () => pushes().length === 4);
      monitor.kill();
      await monitor.status;
      await reading;
      // 2 calls of waiting jobs (1,000 + the rest), then 2 of ready ones.
      const kinds = pushes().map((line) =>
        line.includes('\\"blocked\\":[]')
          ? "ready"
          : line.includes('\\"ready\\":[]')
          ? "blocked"
          : "mixed"
      );
      assert.deepStrictEqual(kinds, ["blocked", "blocked", "ready", "ready"]);
      const outcomes = await queue.wait(receipt, { signal: AbortSignal.timeout(60_000) });
      consumer.stop();
      await consumer.done;
      assert.strictEqual(outcomes.length, 2 * n);
      assert(outcomes.every((r) => r.status === "succeeded"));
      const order = new Map(
        (await Deno.readTextFile(log)).trim().split("\n").map((id, at) => [id, at]),
      );
      assert.strictEqual(order.size, 2 * n, "each job ran once");
      for (let i = 0; i < n; i++) {
        assert(order.get(`a${i}`)! < order.get(`b${i}`)!, `b${i} ran before a${i}`);
      }
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.blocked, counts.queued, counts.processing], [0, 0, 0]);
    });
  },
);

redisTest(
  "RedisQueue: dependencies hold across consumers; a failure skips its dependents",
  async (url) => {
    const name = uniqueKey("deps");
    await withDir(async (dir) => {
      const log = `${dir}/log`;
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(jobs([
        { id: "c", task: "#record", args: [log, "c"], after: ["b"] },
        { id: "a", task: "#sleep", args: [100, log, "a"] },
        { id: "b", task: "#record", args: [log, "b"], after: ["a"] },
        { id: "bad", task: "#fail", args: ["boom"] },
        { id: "x", task: "#record", args: [log, "x"], after: ["bad"] },
        { id: "y", task: "#record", args: [log, "y"], after: ["x", "a"] },
        { id: "twice", task: "#sleep", args: [1], after: ["a", "a"] }, // listed twice, counts once
      ]));
      const one = queue.consume({ workers: 2 });
      const two = queue.consume({ workers: 2 });
      const outcomes = await queue.wait(receipt);
      one.stop();
      two.stop();
      await Promise.all([one.done, two.done]);
      const status = Object.fromEntries(outcomes.map((r) => [r.id, r.status]));
      assert.deepStrictEqual(status, {
        c: "succeeded",
        a: "succeeded",
        b: "succeeded",
        bad: "failed",
        x: "skipped",
        y: "skipped",
        twice: "succeeded",
      });
      assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), ["a", "b", "c"]);
      assert.match(outcomes.find((r) => r.id === "x")!.error!, /"bad" failed/);
      assert.match(outcomes.find((r) => r.id === "y")!.error!, /"x" was skipped/);
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.blocked, counts.queued, counts.processing], [0, 0, 0]);
    });
  },
);

redisTest(
  "RedisQueue: retries run again with the attempt count; exhausted ones reach the dead list",
  async (url) => {
    const name = uniqueKey("retry");
    await withDir(async (dir) => {
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(jobs([
        { id: "flaky", task: "#flaky", args: [`${dir}/counter`, 2], retries: 3, backoff: 20 },
        { id: "doomed", task: "#fail", args: ["always"], retries: 2, backoff: 10 },
      ]));
      const retries: string[] = [];
      const consumer = queue.consume({
        workers: 1,
        onRetry: (job, attempt) => retries.push(`${job.id}#${attempt}`),
      });
      const [flaky, doomed] = await queue.wait(receipt);
      consumer.stop();
      await consumer.done;
      assert.strictEqual(flaky.status, "succeeded");
      assert.strictEqual(flaky.attempts, 3);
      assert.strictEqual(doomed.status, "failed");
      assert.strictEqual(doomed.attempts, 3);
      assert.match(doomed.error!, /always/);
      assert.deepStrictEqual(retries.sort(), ["doomed#1", "doomed#2", "flaky#1", "flaky#2"]);
      const client = await RedisClient.connect(url);
      try {
        const dead = (await client.send(["LRANGE", `${name}:dead`, 0, -1]) as string[])
          .map((text) => JSON.parse(text));
        assert.strictEqual(dead.length, 1);
        assert.strictEqual(JSON.parse(dead[0].entry).id, "doomed");
        assert.strictEqual(JSON.parse(dead[0].entry).attempt, 3);
        assert.match(dead[0].error, /always/);
        assert.strictEqual(dead[0].attempts, 3);
        assert.strictEqual(await client.send(["ZCARD", `${name}:delayed`]), 0);
      } finally {
        client.close();
      }
    });
  },
);

Deno.test("retryDelay() doubles the backoff per attempt, with ±50 % jitter, until the retries run out", () => {
  const [job] = jobs([{ id: "j", task: "#fail", args: ["x"], retries: 4, backoff: 1000 }]).jobs;
  for (let attempt = 1; attempt <= 4; attempt++) {
    const base = 1000 * 2 ** (attempt - 1);
    const waits = Array.from({ length: 200 }, () => retryDelay(job, attempt));
    for (const wait of waits) {
      assert(wait >= 0.5 * base && wait <= 1.5 * base, `attempt ${attempt}: ${wait} ms`);
    }
    // Jitter: spread over the range, not one value (200 draws all in one
    // quarter of it would mean no jitter; by chance, 1 in 4^199).
    assert(Math.min(...waits) < 0.75 * base && Math.max(...waits) > 1.25 * base, `${waits}`);
  }
  assert.strictEqual(retryDelay(job, 5), -1, "no retry after the last");
});

redisTest(
  "RedisQueue: a retry waits in <queue>:delayed, due after its backoff",
  async (url) => {
    const name = uniqueKey("delayed");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const before = Date.now();
      await queue.push(
        jobs([{ id: "later", task: "#fail", args: ["not yet"], retries: 2, backoff: 60_000 }]),
      );
      const consumer = queue.consume({ workers: 1 });
      await until("the retry to be scheduled", async () => {
        return await client.send(["ZCARD", `${name}:delayed`]) === 1;
      });
      const after = Date.now();
      consumer.stop();
      await consumer.done;
      const [member, score] = await client.send([
        "ZRANGE",
        `${name}:delayed`,
        0,
        -1,
        "WITHSCORES",
      ]) as string[];
      // Due 60 s ±50 % after the failure, which came between our two clock reads.
      const due = Number(score);
      assert(due >= before + 30_000 && due <= after + 90_000, `due in ${due - after} ms`);
      const entry = JSON.parse(member.slice(member.indexOf("|") + 1));
      assert.deepStrictEqual([entry.id, entry.attempt], ["later", 2]);
      // Nowhere else meanwhile: not queued, not held, not dead, no outcome recorded.
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing], [0, 0]);
      assert.strictEqual(await client.send(["LLEN", `${name}:dead`]), 0);
      assert.strictEqual(await client.send(["XLEN", `${name}:results`]), 0);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisQueue.push() tags entries with the push's batch and queues higher priority first",
  async (url) => {
    const name = uniqueKey("batch");
    await withDir(async (dir) => {
      const log = `${dir}/log`;
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(jobs([
        { id: "low", task: "#record", args: [log, "low"], priority: -1 },
        { id: "plain", task: "#record", args: [log, "plain"] },
        { id: "high", task: "#record", args: [log, "high"], priority: 5 },
        { id: "plain2", task: "#record", args: [log, "plain2"] },
        { id: "dep", task: "#record", args: [log, "dep"], after: ["low"], priority: 9 },
      ]));
      const other = await queue.push(jobs([{ id: "low", task: "#record", args: [log, "x"] }]));
      assert.notStrictEqual(other.batch, receipt.batch, "each push has its own batch");
      const client = await RedisClient.connect(url);
      try {
        // Priority 0 in the list, any other in <queue>:priority (`<seq>|<entry>`).
        const listed = await client.send(["LRANGE", name, 0, -1]) as string[];
        const ranked = (await prioritized(client, name)).map(({ entry }) => entry);
        const entries = [...listed, ...ranked].map((text) => JSON.parse(text));
        const batches = Object.fromEntries(entries.map((e) => [`${e.id}@${e.batch}`, e.batch]));
        for (const id of ["low", "plain", "high", "plain2"]) {
          assert.strictEqual(batches[`${id}@${receipt.batch}`], receipt.batch, id);
        }
        assert.strictEqual(batches[`low@${other.batch}`], other.batch);
      } finally {
        client.close();
      }
      // One worker takes them one at a time: the start order is the queue's order.
      const consumer = queue.consume({ workers: 1, capacity: 1 });
      await queue.wait(receipt);
      await queue.wait(other);
      consumer.stop();
      await consumer.done;
      const order = (await Deno.readTextFile(log)).trim().split("\n");
      // Priority across both pushes, then the order they were pushed in: the
      // second push's "x" (0) before the first one's "low" (-1). "dep" waits
      // for "low" whatever its priority.
      assert.deepStrictEqual(order.filter((id) => id !== "dep"), [
        "high",
        "plain",
        "plain2",
        "x",
        "low",
      ]);
      assert(order.indexOf("dep") > order.indexOf("low"), `${order}`);
    });
  },
);

redisTest("RedisQueue: maxResults trims <queue>:results to about that many", async (url) => {
  const name = uniqueKey("trim");
  await using queue = await RedisQueue.connect({ url, queue: name, maxResults: 5 });
  await queue.push(
    jobs(Array.from({ length: 250 }, (_, i) => ({ id: `j${i}`, task: "#noop", args: [i] }))),
  );
  let finished = 0;
  const consumer = queue.consume({ workers: 2, onFinish: () => finished++ });
  await until("every job", () => finished === 250);
  consumer.stop();
  await consumer.done;
  const client = await RedisClient.connect(url);
  try {
    // MAXLEN ~: Redis trims whole nodes of the stream (100 entries by default),
    // never below the limit.
    const kept = await client.send(["XLEN", `${name}:results`]) as number;
    assert(kept >= 5 && kept < 250, `kept ${kept} of 250`);
    const [[, fields]] = await client.send([
      "XREVRANGE",
      `${name}:results`,
      "+",
      "-",
      "COUNT",
      1,
    ]) as [
      string,
      string[],
    ][];
    assert.strictEqual(JSON.parse(fields[fields.indexOf("data") + 1]).status, "succeeded");
  } finally {
    client.close();
  }
});

redisTest(
  "RedisQueue: malformed entries reach the dead list and the consumer carries on",
  async (url) => {
    const name = uniqueKey("malformed");
    const client = await RedisClient.connect(url);
    const bad = [
      "not json {",
      "[1, 2]",
      JSON.stringify({ id: 7, task: `${TASKS}#sleep` }),
      JSON.stringify({ id: "no-kind" }),
      JSON.stringify({ id: "typo", task: `${TASKS}#sleep`, retires: 2 }),
      JSON.stringify({ id: "deps", task: `${TASKS}#sleep`, after: ["x"] }),
      JSON.stringify({ id: "attempt", task: `${TASKS}#sleep`, attempt: 0 }),
    ];
    const good = JSON.stringify({ id: "fine", task: `${TASKS}#sleep`, args: [1] });
    try {
      await client.send(["LPUSH", name, ...bad, good]);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const finished: QueueResult[] = [];
      const consumer = queue.consume({ workers: 1, onFinish: (r) => finished.push(r) });
      await until("all eight entries", () => finished.length === 8);
      consumer.stop();
      const stats = await consumer.done;
      assert.strictEqual(stats.malformed, 7);
      assert.strictEqual(stats.succeeded, 1);
      const dead = (await client.send(["LRANGE", `${name}:dead`, 0, -1]) as string[])
        .map((text) => JSON.parse(text));
      assert.deepStrictEqual(dead.map((d) => d.entry).sort(), [...bad].sort());
      const why = (entry: string) => dead.find((d) => d.entry === entry).error as string;
      assert.match(why(bad[0]), /not JSON/);
      assert.match(why(bad[1]), /expected a job object, got an array/);
      assert.match(why(bad[2]), /id: expected a non-empty string/);
      assert.match(why(bad[3]), /needs "task"/);
      assert.match(why(bad[4]), /retires.*did you mean "retries"/);
      assert.match(why(bad[5]), /after: .*push the job file/);
      assert.match(why(bad[6]), /attempt: expected a positive integer/);
      assert.strictEqual(await client.send(["LLEN", name]), 0);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisQueue: relative task paths resolve against the consumer's base directory",
  async (url) => {
    const name = uniqueKey("base");
    const here = await Deno.makeTempDir();
    const there = await Deno.makeTempDir();
    try {
      // The same module path in two checkouts; the consumer's is the one that runs.
      await Deno.mkdir(`${here}/tasks`);
      await Deno.mkdir(`${there}/tasks`);
      await Deno.writeTextFile(`${here}/tasks/where.ts`, 'export const where = () => "here";');
      await Deno.writeTextFile(`${there}/tasks/where.ts`, 'export const where = () => "there";');
      const checked = validateJobFile(
        { jobs: [{ id: "w", task: "./tasks/where.ts#where" }] },
        `${here}/jobs.json`,
      );
      assert(checked.ok);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(checked.file, { base: here });
      const client = await RedisClient.connect(url);
      try {
        const [entry] = await client.send(["LRANGE", name, 0, -1]) as string[];
        assert.strictEqual(JSON.parse(entry).task, "./tasks/where.ts#where");
      } finally {
        client.close();
      }
      const consumer = queue.consume({ workers: 1, base: there });
      const [result] = await queue.wait(receipt);
      consumer.stop();
      await consumer.done;
      assert.strictEqual(result.result, "there");
    } finally {
      await Deno.remove(here, { recursive: true });
      await Deno.remove(there, { recursive: true });
    }
  },
);

// -- Faults --

redisTest(
  "consume: a consumer killed with SIGKILL mid-job has its jobs recovered by another",
  async (url) => {
    const name = uniqueKey("kill");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const receipt = await queue.push(
      jobs(Array.from({ length: 30 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [100] }))),
    );
    const victim = spawnCli([
      "consume",
      "--redis",
      url,
      "--queue",
      name,
      "--workers",
      "2",
      "--heartbeat",
      "1s",
    ]);
    const client = await RedisClient.connect(url);
    try {
      // Kill it once it holds jobs and has finished some.
      await until("the victim to hold jobs", async () => {
        const members = await client.send(["SMEMBERS", `${name}:consumers`]) as string[];
        if (members.length !== 1) return false;
        const held = await client.send(["LLEN", `${name}:processing:${members[0]}`]) as number;
        const done = await client.send(["XLEN", `${name}:results`]) as number;
        return held > 0 && done > 0;
      });
      const [victimId] = await client.send(["SMEMBERS", `${name}:consumers`]) as string[];
      victim.kill("SIGKILL");
      await victim.status;
      const orphaned = await client.send(["LLEN", `${name}:processing:${victimId}`]) as number;
      assert(orphaned > 0);
      const rescuer = queue.consume({ workers: 2, heartbeat: 1000 });
      const outcomes = await queue.wait(receipt);
      rescuer.stop();
      const stats = await rescuer.done;
      assert(outcomes.every((r) => r.status === "succeeded"));
      assert(stats.recovered >= orphaned, `recovered ${stats.recovered} of ${orphaned}`);
      assert.strictEqual(await client.send(["EXISTS", `${name}:processing:${victimId}`]), 0);
      assert.strictEqual(await client.send(["SISMEMBER", `${name}:consumers`, victimId]), 0);
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing], [0, 0]);
    } finally {
      client.close();
      await victim.stdout.cancel().catch(() => {});
      await victim.stderr.cancel().catch(() => {});
    }
  },
);

Deno.test("RedisQueue: the server restarted mid-run; the consumer reconnects and nothing is lost", async () => {
  // Persistence on (an append-only file), as a production server would have it.
  const server = await startRedisServer({ persist: true });
  try {
    const name = "restart";
    await using queue = await RedisQueue.connect({ url: server.url, queue: name });
    const receipt = await queue.push(
      jobs(Array.from({ length: 200 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [20] }))),
    );
    const consumer = queue.consume({ workers: 2, heartbeat: 5000 });
    await until("some jobs done", () => consumer.stats.succeeded >= 30);
    await server.restart();
    // What the restarted server holds of the outcomes; the rest must reach it too.
    const client = await RedisClient.connect(server.url);
    const before = await client.send(["XLEN", `${name}:results`]) as number;
    client.close();
    assert(before < 200, `all ${before} jobs were done before the restart`);
    const outcomes = await queue.wait(receipt);
    consumer.stop();
    const stats = await consumer.done;
    assert.strictEqual(outcomes.length, 200);
    assert(outcomes.every((r) => r.status === "succeeded"));
    assert(stats.succeeded >= 200);
    const counts = await queue.counts();
    assert.deepStrictEqual([counts.queued, counts.processing, counts.consumers], [0, 0, 0]);
  } finally {
    await server.stop();
  }
});

redisTest(
  "RedisQueue: connections cut again and again mid-run: every job still runs exactly once",
  async (url) => {
    const name = uniqueKey("blip");
    const clientName = `blip-${name.slice(-8)}`;
    await using queue = await RedisQueue.connect({ url, queue: name, name: clientName });
    const receipt = await queue.push(
      jobs(Array.from({ length: 300 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [2] }))),
    );
    const consumer = queue.consume({ workers: 2 });
    const client = await RedisClient.connect(url);
    try {
      for (const after of [30, 100, 170, 240]) {
        await until(`${after} jobs done`, () => consumer.stats.succeeded >= after);
        const list = await client.send(["CLIENT", "LIST"]) as string;
        for (const line of list.split("\n")) {
          if (!line.includes(` name=${clientName} `)) continue;
          const id = /\bid=(\d+)/.exec(line)![1];
          await client.send(["CLIENT", "KILL", "ID", id]).catch(() => {});
        }
      }
      const outcomes = await queue.wait(receipt);
      consumer.stop();
      await consumer.done;
      assert(outcomes.every((r) => r.status === "succeeded"));
      const records = await results(client, name);
      assert.strictEqual(records.length, 300, "a job was recorded twice (or lost)");
      assert.strictEqual(new Set(records.map((r) => r.id)).size, 300);
      assert.strictEqual(consumer.stats.succeeded, 300, "a job ran twice");
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing, counts.consumers], [0, 0, 0]);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisConsumer: an outcome recorded whose reply was lost is sent again and recorded once",
  async (url) => {
    const name = uniqueKey("lostack");
    const client = await RedisClient.connect(url);
    await using proxy = startProxy(url);
    try {
      // Loaded beforehand, so the consumer's first ACK is an EVALSHA that runs.
      const sha = await client.send(["SCRIPT", "LOAD", ACK.source]) as string;
      proxy.count(sha);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(jobs([{ id: "once", task: "#sleep", args: [1] }]));
      const acked = proxy.swallowAfter(sha);
      await using through = await RedisQueue.connect({
        url: proxy.url,
        queue: name,
        commandTimeout: 1000,
      });
      const warnings: string[] = [];
      const consumer = through.consume({ workers: 1, onWarning: (w) => warnings.push(w) });
      await acked; // the ACK went to the server; its reply will not come back
      await until(
        "the ACK to record the outcome",
        async () => (await results(client, name)).length === 1,
      );
      proxy.cut(); // the connection drops with the reply lost
      const [outcome] = await queue.wait(receipt);
      await until("the consumer to let the entry go", () => consumer.stats.succeeded === 1);
      consumer.stop();
      await consumer.done;
      assert.strictEqual(outcome.status, "succeeded");
      assert(
        proxy.count(sha) >= 2,
        `the ACK was sent ${proxy.count(sha)} time(s); it should be sent again`,
      );
      assert(warnings.length > 0, "the lost connection is reported as a warning");
      const records = await results(client, name);
      assert.deepStrictEqual(records.map((r) => r.id), ["once"], "recorded once");
      assert.deepStrictEqual(consumer.stats.unrecorded, []);
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing], [0, 0]);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisConsumer: a server that stops answering mid-run (a frozen network), then answers again: each job runs once",
  async (url) => {
    const name = uniqueKey("frozen");
    const client = await RedisClient.connect(url);
    await using proxy = startProxy(url);
    try {
      await using queue = await RedisQueue.connect({ url, queue: name });
      const receipt = await queue.push(
        jobs(Array.from({ length: 60 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [2] }))),
      );
      await using through = await RedisQueue.connect({
        url: proxy.url,
        queue: name,
        commandTimeout: 500,
        connectTimeout: 500,
      });
      const warnings: string[] = [];
      const consumer = through.consume({ workers: 2, onWarning: (w) => warnings.push(w) });
      await until("20 jobs done", () => consumer.stats.succeeded >= 20);
      proxy.freeze();
      const before = proxy.accepted;
      // Silence, no error: the consumer's commands time out and it reconnects,
      // into the same silence, at least twice.
      await until(
        "two reconnects into the frozen network",
        () => proxy.accepted >= before + 2,
        60_000,
      );
      assert(warnings.length > 0, "the consumer says it lost the connection");
      proxy.thaw();
      const outcomes = await queue.wait(receipt);
      await until("the consumer to let every entry go", () => consumer.stats.succeeded === 60);
      consumer.stop();
      await consumer.done;
      assert(outcomes.every((r) => r.status === "succeeded"));
      const records = await results(client, name);
      assert.strictEqual(records.length, 60, "a job was recorded twice (or lost)");
      assert.strictEqual(new Set(records.map((r) => r.id)).size, 60);
      assert.strictEqual(consumer.stats.succeeded, 60, "a job ran twice");
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing, counts.consumers], [0, 0, 0]);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisConsumer: a key of the wrong type stops it with the error; nothing is lost",
  async (url) => {
    const name = uniqueKey("badkey");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      await queue.push(
        jobs(Array.from({ length: 5 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [1] }))),
      );
      await client.send(["SET", `${name}:results`, "not a stream"]);
      const consumer = queue.consume({ workers: 1 });
      await assert.rejects(
        consumer.done,
        /the queue's keys: WRONGTYPE the key ".*:results" holds a string, not a stream/,
      );
      // Every job is back in the queue, none recorded, none dropped.
      const counts = await queue.counts();
      assert.deepStrictEqual([counts.queued, counts.processing, counts.consumers], [5, 0, 0]);
    } finally {
      client.close();
    }
  },
);

redisTest(
  "RedisConsumer: a key that turns to the wrong type mid-run stops it, naming the key; no job is lost",
  async (url) => {
    const name = uniqueKey("badlater");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const client = await RedisClient.connect(url);
    try {
      const receipt = await queue.push(
        jobs(Array.from({ length: 40 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [1] }))),
      );
      const tenDone = Promise.withResolvers<void>();
      let finished = 0;
      const consumer = queue.consume({
        workers: 1,
        onFinish: () => {
          if (++finished === 10) tenDone.resolve();
        },
      });
      await tenDone.promise;
      // In one step (an ACK must not record in between): the records so far
      // move aside, kept, and the key turns into a string.
      await client.send([
        "EVAL",
        "redis.call('RENAME', KEYS[1], KEYS[2]) redis.call('SET', KEYS[1], 'not a stream')",
        2,
        `${name}:results`,
        `${name}:kept`,
      ]);
      await assert.rejects(
        consumer.done,
        /the queue's keys: WRONGTYPE the key ".*:results" holds a string, not a stream/,
      );
      // Each job is recorded, or back in the queue: an ACK that failed wrote
      // nothing and left its entry to be given back.
      const kept = await client.send(["XRANGE", `${name}:kept`, "-", "+"]) as [string, string[]][];
      const recorded = new Set(kept.map(([, fields]) => fields[fields.indexOf("id") + 1]));
      const queued = (await client.send(["LRANGE", name, 0, -1]) as string[])
        .map((text) => JSON.parse(text).id as string);
      await client.send(["DEL", `${name}:results`]); // counts() reads it
      const counts = await queue.counts();
      assert.strictEqual(counts.processing, 0, "nothing left in a processing list");
      for (const job of receipt.ids) {
        assert(recorded.has(job) || queued.includes(job), `${job} was lost`);
      }
      // The tenth had finished, not necessarily been recorded.
      assert(
        recorded.size >= 9 && queued.length > 0,
        `${recorded.size} recorded, ${queued.length} queued`,
      );
    } finally {
      client.close();
    }
  },
);

redisTest("RedisQueue.wait() ends when aborted, also while it connects", async (url) => {
  const name = uniqueKey("abort");
  await using queue = await RedisQueue.connect({ url, queue: name });
  const receipt = await queue.push(jobs([{ id: "never", task: "#sleep", args: [1] }]));
  for (const when of [0, 50]) {
    const stop = new AbortController();
    const waiting = queue.wait(receipt, { signal: stop.signal });
    if (when > 0) await new Promise((resolve) => setTimeout(resolve, when));
    stop.abort(new Error("enough"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("wait() ignored the abort")), 5000);
    });
    await assert.rejects(Promise.race([waiting, late]), /enough/);
    clearTimeout(timer);
  }
});

redisTest("RedisQueue: identical entries that fail keep one retry each", async (url) => {
  const name = uniqueKey("same");
  const client = await RedisClient.connect(url);
  try {
    const entry = JSON.stringify({
      id: "x",
      task: `${TASKS}#fail`,
      args: ["again"],
      retries: 1,
      backoff: 10,
    });
    await client.send(["LPUSH", name, entry, entry]);
    await using queue = await RedisQueue.connect({ url, queue: name });
    const consumer = queue.consume({ workers: 1 });
    await until("both in the dead list", async () => {
      return await client.send(["LLEN", `${name}:dead`]) === 2;
    });
    consumer.stop();
    const stats = await consumer.done;
    assert.strictEqual(stats.retried, 2);
    assert.strictEqual(stats.failed, 2);
    assert.strictEqual(await client.send(["XLEN", `${name}:results`]), 2);
  } finally {
    client.close();
  }
});

redisTest(
  "RedisConsumer: a retry without a token (an older version's) is still promoted and run",
  async (url) => {
    const name = uniqueKey("legacy");
    const client = await RedisClient.connect(url);
    try {
      const entry = JSON.stringify({ id: "old", task: `${TASKS}#sleep`, args: [1], attempt: 2 });
      await client.send(["ZADD", `${name}:delayed`, 0, entry]);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const finished: QueueResult[] = [];
      const consumer = queue.consume({ workers: 1, onFinish: (r) => finished.push(r) });
      await until("the old retry to run", () => finished.length === 1);
      consumer.stop();
      await consumer.done;
      assert.deepStrictEqual([finished[0].id, finished[0].status, finished[0].attempts], [
        "old",
        "succeeded",
        2,
      ]);
    } finally {
      client.close();
    }
  },
);

redisTest("RedisConsumer: cancel() while it connects leaves nothing registered", async (url) => {
  const name = uniqueKey("early");
  await using queue = await RedisQueue.connect({ url, queue: name });
  const consumer = queue.consume({ workers: 1 });
  consumer.cancel();
  await consumer.done;
  const client = await RedisClient.connect(url);
  try {
    assert.strictEqual(await client.send(["SCARD", `${name}:consumers`]), 0);
    assert.strictEqual(await client.send(["EXISTS", `${name}:heartbeat:${consumer.id}`]), 0);
  } finally {
    client.close();
  }
});

redisTest(
  "RedisConsumer: commandTimeout 0 (no timeouts) lets an idle consumer block quietly",
  async (url) => {
    const name = uniqueKey("notimeout");
    await using queue = await RedisQueue.connect({ url, queue: name, commandTimeout: 0 });
    const warnings: string[] = [];
    const consumer = queue.consume({
      workers: 1,
      heartbeat: 300,
      onWarning: (w) => warnings.push(w),
    });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // ten idle BLMOVEs of 100 ms
    consumer.stop();
    await consumer.done;
    assert.deepStrictEqual(warnings, []);
  },
);

// -- The command line --

redisTest("consume: SIGTERM stops taking jobs, finishes and records the held ones", async (url) => {
  const name = uniqueKey("drain");
  await using gate = await Gate.create();
  await using queue = await RedisQueue.connect({ url, queue: name });
  // The jobs hold until the test opens the gate: the consumer fills its room
  // (2 workers + 2) and can finish nothing before the signal.
  await queue.push(
    jobs(
      Array.from({ length: 20 }, (_, i) => ({ id: `j${i}`, task: "#gated", args: [gate.path, i] })),
    ),
  );
  const consumer = watchCli([
    "consume",
    "--redis",
    url,
    "--queue",
    name,
    "--workers",
    "2",
    "--capacity",
    "2",
    "--json",
  ]);
  const client = await RedisClient.connect(url);
  try {
    await until(
      "the consumer to fill its room",
      async () => (await queue.counts()).processing === 4,
    );
    consumer.child.kill("SIGTERM");
    await until("the stop", () => consumer.out.stderr.includes("stopping: no new jobs"));
    await gate.open();
    const run = await consumer.end();
    assert.strictEqual(run.code, 0, run.stderr);
    const done = run.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.strictEqual(done.length, 4, "the held jobs, no more");
    assert(done.every((r) => r.status === "succeeded"));
    // Finished ones were recorded; the rest are still queued; nothing held.
    const counts = await queue.counts();
    assert.strictEqual(counts.queued + done.length, 20);
    assert.deepStrictEqual([counts.processing, counts.consumers], [0, 0]);
    assert.strictEqual(await client.send(["XLEN", `${name}:results`]), done.length);
    assert.match(run.stderr, /stopping: no new jobs/);
  } finally {
    client.close();
  }
});

redisTest(
  "consume: a second signal exits at once and leaves held jobs for recovery",
  async (url) => {
    const name = uniqueKey("twice");
    await using queue = await RedisQueue.connect({ url, queue: name });
    const receipt = await queue.push(
      jobs(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, task: "#sleep", args: [2000] }))),
    );
    const consumer = watchCli(["consume", "--redis", url, "--queue", name, "--workers", "2"]);
    await until("the consumer to hold jobs", async () => (await queue.counts()).processing >= 2);
    consumer.child.kill("SIGINT");
    // The second signal once the first was taken (two at once may arrive as one).
    await until("the stop", () => consumer.out.stderr.includes("stopping: no new jobs"));
    consumer.child.kill("SIGINT");
    const run = await consumer.end();
    assert.strictEqual(run.code, 130, run.stderr);
    assert.match(run.stderr, /exiting at once/);
    // Another consumer recovers them at once (the heartbeat was removed) and finishes all six.
    const rescuer = queue.consume({ workers: 6 });
    const outcomes = await queue.wait(receipt);
    rescuer.stop();
    const stats = await rescuer.done;
    assert(outcomes.every((r) => r.status === "succeeded"));
    assert(stats.recovered >= 2);
  },
);

redisTest("push --wait reports every job once and exits like a local run", async (url) => {
  const name = uniqueKey("wait");
  await withDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        jobs: [
          ...Array.from({ length: 50 }, (_, i) => ({
            id: `ok${i}`,
            task: `${TASKS}#sleep`,
            args: [1],
          })),
          { id: "bad", task: `${TASKS}#fail`, args: ["nope"] },
          { id: "after-bad", task: `${TASKS}#sleep`, args: [1], after: ["bad"] },
          { id: "cmd", command: ["sh", "-c", "echo hi"] },
        ],
      }),
    );
    await using queue = await RedisQueue.connect({ url, queue: name });
    const consumer = queue.consume({ workers: 2 });
    const run = await cli(["push", "--queue", name, "--wait", "--json", path], {
      TASKPOOL_REDIS_URL: url,
    });
    consumer.stop();
    await consumer.done;
    assert.strictEqual(run.code, 1, run.stderr);
    const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.strictEqual(lines.length, 53);
    assert.strictEqual(new Set(lines.map((l) => l.id)).size, 53);
    const status = Object.fromEntries(lines.map((l) => [l.id, l.status]));
    assert.strictEqual(status.bad, "failed");
    assert.strictEqual(status["after-bad"], "skipped");
    assert.strictEqual(status.cmd, "succeeded");
    assert.strictEqual(lines.filter((l) => l.status === "succeeded").length, 51);
    assert.match(run.stderr, /pushed 53 job\(s\)/);

    // All good: exit 0. Invalid file: exit 2, nothing pushed.
    await Deno.writeTextFile(path, JSON.stringify({ jobs: [{ id: "a", command: ["true"] }] }));
    const again = queue.consume({ workers: 1 });
    const ok = await cli(["push", "--redis", url, "--queue", name, "--wait", path]);
    again.stop();
    await again.done;
    assert.strictEqual(ok.code, 0, ok.stderr);
    await Deno.writeTextFile(path, JSON.stringify({ jobs: [{ id: "a", after: ["zz"] }] }));
    const before = await queue.counts();
    const invalid = await cli(["push", "--redis", url, "--queue", name, path]);
    assert.strictEqual(invalid.code, 2);
    assert.match(invalid.stderr, /nothing was pushed/);
    assert.deepStrictEqual(await queue.counts(), before);
  });
});

redisTest("push --wait: SIGINT stops waiting with 130 and the jobs stay queued", async (url) => {
  const name = uniqueKey("waitint");
  await withDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(path, JSON.stringify({ jobs: [{ id: "a", command: ["true"] }] }));
    const child = spawnCli(["push", "--redis", url, "--queue", name, "--wait", path]);
    await using queue = await RedisQueue.connect({ url, queue: name });
    await until("the push", async () => (await queue.counts()).queued === 1);
    child.kill("SIGINT");
    const run = await finish(child);
    assert.strictEqual(run.code, 130, run.stderr);
    assert.match(run.stderr, /the jobs stay queued/);
    assert.strictEqual((await queue.counts()).queued, 1);
  });
});

Deno.test("consume and push: a wrong URL, a refused connection, no URL: one line each", async () => {
  const wrong = await cli(["consume", "--redis", "http://localhost:6379"]);
  assert.strictEqual(wrong.code, 2);
  assert.strictEqual(wrong.stderr.trim().split("\n").length, 1, wrong.stderr);
  assert.match(wrong.stderr, /redis:\/\//);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const refused = await cli(["consume", "--redis", `redis://127.0.0.1:${port}/0`]);
  assert.strictEqual(refused.code, 1);
  assert.strictEqual(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*refused`));
  const none = await cli(["consume"], { TASKPOOL_REDIS_URL: "" });
  assert.strictEqual(none.code, 2);
  assert.match(none.stderr, /TASKPOOL_REDIS_URL/);
  const usage = await cli(["consume", "--nope"]);
  assert.strictEqual(usage.code, 2);
  assert.match(usage.stderr, /Usage: taskpool consume/);
  const heartbeat = await cli(["consume", "--heartbeat", "soon", "--redis", "redis://x"]);
  assert.strictEqual(heartbeat.code, 2);
  assert.match(heartbeat.stderr, /--heartbeat must be a duration/);
  const short = await cli(["consume", "--heartbeat", "50ms", "--redis", "redis://x"]);
  assert.strictEqual(short.code, 2);
  assert.match(short.stderr, /at least 100ms/);
  const base = await cli(["consume", "--base", "/no/such/dir", "--redis", "redis://x"]);
  assert.strictEqual(base.code, 2);
  assert.match(base.stderr, /--base must be a directory, got "\/no\/such\/dir"/);
  const pushUsage = await cli(["push", "a.json", "b.json"]);
  assert.strictEqual(pushUsage.code, 2);
  assert.match(pushUsage.stderr, /give one job file/);
});

redisTest(
  "consume and push: a queue key that is not a list is a one-line error, nothing half done",
  async (url) => {
    const name = uniqueKey("wrongtype");
    const client = await RedisClient.connect(url);
    const dir = await Deno.makeTempDir();
    try {
      await client.send(["SET", name, "not a list"]);
      const consume = await cli(["consume", "--redis", url, "--queue", name]);
      assert.strictEqual(consume.code, 1);
      assert.match(consume.stderr, /WRONGTYPE the key ".*" holds a string, not a list/);
      const path = `${dir}/jobs.json`;
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          jobs: [{ id: "a", command: ["true"] }, { id: "b", command: ["true"], after: ["a"] }],
        }),
      );
      const push = await cli(["push", "--redis", url, "--queue", name, path]);
      assert.strictEqual(push.code, 1);
      assert.strictEqual(push.stderr.trim().split("\n").length, 1, push.stderr);
      assert.match(push.stderr, /holds a string, not a list: choose another --queue/);
      assert.strictEqual(await client.send(["EXISTS", `${name}:blocked`, `${name}:pending`]), 0);
    } finally {
      client.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// -- A consumer stops even when Redis is gone --

/** The CLI's output, or a failure if it has not exited within `ms` (it is killed then). */
async function finishWithin(child: Deno.ChildProcess, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the consumer did not exit within ${ms} ms of its signal`));
    }, ms);
  });
  try {
    return await Promise.race([finish(child), late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("consume: holding nothing, a consumer whose Redis is gone ends at the first signal", async () => {
  const server = await startRedisServer();
  const name = uniqueKey("gone");
  const child = spawnCli(["consume", "--redis", server.url, "--queue", name, "--workers", "1"]);
  try {
    const client = await RedisClient.connect(server.url);
    await until(
      "the consumer to register",
      async () => (await client.send(["SCARD", `${name}:consumers`])) === 1,
    );
    client.close();
  } finally {
    await server.stop();
  }
  child.kill("SIGTERM");
  const run = await finishWithin(child, 20_000);
  assert.strictEqual(run.code, 0, run.stderr);
  assert.match(run.stderr, /heartbeat expires by itself/);
});

Deno.test("consume: a held job's outcome that Redis cannot take is given up after --grace, named, exit 1", async () => {
  await withDir(async (dir) => {
    const server = await startRedisServer();
    const name = uniqueKey("grace");
    const log = `${dir}/log`;
    let child: Deno.ChildProcess;
    try {
      await using queue = await RedisQueue.connect({ url: server.url, queue: name });
      await queue.push(jobs([{ id: "held", task: "#span", args: [500, log, "held"] }]));
      child = spawnCli([
        "consume",
        ...["--redis", server.url, "--queue", name, "--workers", "1", "--grace", "1s"],
      ]);
      await until(
        "the job to start",
        async () => (await Deno.readTextFile(log).catch(() => "")).includes("start held"),
      );
    } finally {
      await server.stop();
    }
    child.kill("SIGTERM");
    const run = await finishWithin(child, 30_000);
    assert.strictEqual(run.code, 1, run.stderr);
    assert.match(run.stderr, /could not record the outcome of held before the grace ran out/);
    assert.match(run.stderr, new RegExp(`${name}:processing:`));
    // It ran to its end: only the record is missing.
    assert.match(await Deno.readTextFile(log), /end held/);
  });
});

redisTest(
  "consume: an entry that is not UTF-8 goes to the dead list once, with its byte offset",
  async (url) => {
    const name = uniqueKey("bytes");
    const client = await RedisClient.connect(url);
    try {
      // `{"id":"x` then a lone continuation byte at offset 8: not UTF-8.
      const bad = new Uint8Array([...new TextEncoder().encode('{"id":"x'), 0x80, 0x22, 0x7d]);
      await client.send(["LPUSH", name, bad]);
      await using queue = await RedisQueue.connect({ url, queue: name });
      const consumer = queue.consume({ workers: 1 });
      await until(
        "the entry to reach the dead list",
        async () => (await client.send(["LLEN", `${name}:dead`])) === 1,
      );
      consumer.stop();
      const stats = await consumer.done;
      assert.strictEqual(stats.malformed, 1);
      assert.strictEqual(stats.succeeded + stats.failed, 0);
      const [record] = await client.send(["LRANGE", `${name}:dead`, 0, -1]) as string[];
      const dead = JSON.parse(record);
      assert.match(dead.error, /not valid UTF-8 at byte offset 8 \(of 11\)/);
      assert.deepStrictEqual(
        Uint8Array.from(atob(dead.entryBase64), (c) => c.charCodeAt(0)),
        bad,
      );
      // Removed exactly: nothing left to run again, in the queue or a processing list.
      assert.strictEqual(await client.send(["LLEN", name]), 0);
      assert.deepStrictEqual(await client.send(["KEYS", `${name}:processing:*`]), []);
    } finally {
      client.close();
    }
  },
);
