// The dashboard's server against a real Redis: its API, its actions on the
// dead list, its /metrics, and the doors it keeps shut (token, Host, Origin).
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { serveDashboard } from "../src/dashboard/mod.ts";
import { redisTest, startRedisServer, uniqueKey } from "./_redis.ts";
import { dropQueue, jobs } from "./_queue.ts";
import { parseExposition } from "./_exposition.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };

/** A raw HTTP/1.1 request, for what fetch() will not send (another Host). */
async function rawGet(url: string, host: string): Promise<number> {
  const { port } = new URL(url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET /api/queues HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let text = "";
    const buffer = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return Number(text.split(" ")[1]);
  } finally {
    conn.close();
  }
}

/** Pushes jobs that end: two succeed, one fails for good (dead); waits for them. */
async function prepared(url: string, queue: string) {
  await using producer = await RedisQueue.connect({ url, queue });
  const receipt = await producer.push(jobs([
    { id: "ok1", task: "#noop", args: [3] },
    { id: "ok2", command: ["true"] },
    { id: "bad", command: ["sh", "-c", "echo to-the-tail; exit 3"] },
  ]));
  const consumer = producer.consume({ workers: 2 });
  await producer.wait(receipt);
  consumer.stop();
  await consumer.done;
  return receipt;
}

async function cleanup(url: string, queue: string) {
  await using redis = await RedisClient.connect(url);
  await dropQueue(redis, queue);
}

redisTest("dashboard: a queue's groups in the overview and /metrics", async (url) => {
  const queue = uniqueKey("dash-groups");
  try {
    await using producer = await RedisQueue.connect({ url, queue });
    await producer.push(jobs(
      Array.from({ length: 3 }, (_, i) => ({ id: `g${i}`, command: ["true"], group: "api" })),
      "/tmp",
      { groups: { api: { concurrency: 1 } } },
    ));
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: LOCAL,
    });
    const overview = await (await fetch(new URL(`api/overview?queue=${queue}`, dashboard.url)))
      .json();
    assert.deepStrictEqual(overview.groups, [
      { name: "api", limits: { concurrency: 1 }, waiting: 2, running: 1 },
    ]);
    const families = parseExposition(await (await fetch(new URL("metrics", dashboard.url))).text());
    const family = families.get("taskpool_group_jobs")!;
    assert.strictEqual(family.type, "gauge");
    assert.deepStrictEqual(
      family.samples.map((s) => [s.labels.queue, s.labels.group, s.labels.state, s.value]),
      [[queue, "api", "waiting", 2], [queue, "api", "running", 1]],
    );
  } finally {
    await cleanup(url, queue);
  }
});

redisTest(
  "dashboard: the overview, outcomes, detail and metrics of a prepared queue",
  async (url) => {
    const queue = uniqueKey("dash");
    const receipt = await prepared(url, queue);
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: LOCAL,
    });
    const get = async (path: string) => {
      const response = await fetch(new URL(path, dashboard.url));
      assert.strictEqual(response.status, 200, path);
      return response;
    };
    const overview = await (await get(`api/overview?queue=${queue}`)).json();
    assert.strictEqual(overview.queue, queue);
    assert.deepStrictEqual(overview.counts, {
      waiting: 0,
      delayed: 0,
      blocked: 0,
      held: 0,
      dead: 1,
    });
    const failed = await (await get(`api/outcomes?queue=${queue}&failed=1`)).json();
    assert.deepStrictEqual(failed.map((o: { id: string }) => o.id), ["bad"]);
    const all = await (await get(`api/outcomes?queue=${queue}`)).json();
    assert.deepStrictEqual(all.map((o: { id: string }) => o.id).sort(), ["bad", "ok1", "ok2"]);
    const detail = await (await get(`api/outcome?queue=${queue}&record=${failed[0].record}`))
      .json();
    assert.strictEqual(detail.outcome.exitCode, 3);
    assert.match(detail.outcome.output, /to-the-tail/);
    assert.strictEqual(detail.dead.id, "bad");
    assert.strictEqual(detail.dead.batch, receipt.batch);
    assert.strictEqual(JSON.parse(detail.dead.entry).id, "bad");
    // The queue-wide metrics, read by the format's grammar.
    const families = parseExposition(await (await get("metrics")).text());
    const jobsFamily = families.get("taskpool_queue_jobs")!;
    assert.strictEqual(jobsFamily.type, "gauge");
    const states = Object.fromEntries(
      jobsFamily.samples.filter((s) => s.labels.queue === queue).map((
        s,
      ) => [s.labels.state, s.value]),
    );
    assert.deepStrictEqual(states, {
      waiting: 0,
      delayed: 0,
      blocked: 0,
      held: 0,
      dead: 1,
    });
    assert.strictEqual(families.get("taskpool_queue_consumers")!.samples[0].value, 0);
    // Bad input: a clear error, not a crash.
    const unknown = await fetch(new URL("api/overview?queue=nope", dashboard.url));
    assert.strictEqual(unknown.status, 404);
    assert.match((await unknown.json()).error, /no such queue here: "nope"/);
    const badRecord = await fetch(new URL(`api/outcome?queue=${queue}&record=x`, dashboard.url));
    assert.strictEqual(badRecord.status, 400);
    assert.match((await badRecord.json()).error, /"record" must be/);
    await dashboard.close();
    await cleanup(url, queue);
  },
);

redisTest(
  "dashboard: retry sends a dead job back without its attempts, once; delete removes one",
  async (url) => {
    const queue = uniqueKey("dash");
    await prepared(url, queue);
    await using redis = await RedisClient.connect(url);
    // A second dead record, to delete.
    await redis.send([
      "LPUSH",
      `${queue}:dead`,
      JSON.stringify({ entry: "{", error: "malformed", attempts: 0 }),
    ]);
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: LOCAL,
    });
    const origin = dashboard.url.slice(0, -1);
    const post = (path: string, body: unknown, headers: Record<string, string> = { origin }) =>
      fetch(new URL(`${path}?queue=${queue}`, dashboard.url), {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
    await using reader = await RedisQueue.connect({ url, queue });
    const { records } = await reader.dead();
    const bad = records.find((r) => r.id === "bad")!;
    const malformed = records.find((r) => r.id === undefined)!;
    // Retrying a malformed entry is refused, and leaves it.
    const refused = await (await post("api/dead/retry", { refs: [malformed.ref] })).json();
    assert.deepStrictEqual(refused.actions, [{ ref: malformed.ref, status: "malformed" }]);
    // Two retries at once: one moves it, the other finds it gone.
    const [a, b] = await Promise.all([
      post("api/dead/retry", { refs: [bad.ref] }).then((r) => r.json()),
      post("api/dead/retry", { refs: [bad.ref] }).then((r) => r.json()),
    ]);
    assert.deepStrictEqual([a.actions[0].status, b.actions[0].status].sort(), ["done", "gone"]);
    const waiting = await redis.send(["LRANGE", queue, 0, -1]) as string[];
    assert.strictEqual(waiting.length, 1);
    const entry = JSON.parse(waiting[0]);
    assert.strictEqual(entry.id, "bad");
    assert.strictEqual(entry.attempt, undefined, "the attempt count is reset");
    // Delete the malformed one; the dead list is then empty.
    const deleted = await (await post("api/dead/delete", { refs: [malformed.ref] })).json();
    assert.deepStrictEqual(deleted.actions, [{ ref: malformed.ref, status: "done" }]);
    assert.strictEqual(await redis.send(["LLEN", `${queue}:dead`]), 0);
    // Bad bodies name what is wrong.
    const wrong = await post("api/dead/retry", { refs: ["<script>"] });
    assert.strictEqual(wrong.status, 400);
    assert.match((await wrong.json()).error, /40 hex digits/);
    const notJson = await fetch(new URL(`api/dead/delete?queue=${queue}`, dashboard.url), {
      method: "POST",
      headers: { origin },
      body: "{",
    });
    assert.strictEqual(notJson.status, 400);
    await notJson.body?.cancel();
    await dashboard.close();
    await cleanup(url, queue);
  },
);

redisTest("dashboard: a token guards every request; Host and Origin are checked", async (url) => {
  const queue = uniqueKey("dash");
  // Beyond loopback, no token: refused at the start.
  await assert.rejects(
    serveDashboard({ queues: [queue], redis: { url }, listen: { hostname: "0.0.0.0", port: 0 } }),
    /without a token: anyone who reaches it could retry and delete jobs/,
  );
  // Loopback without a token: a Host that is not loopback is refused (DNS rebinding).
  {
    await using open = await serveDashboard({ queues: [queue], redis: { url }, listen: LOCAL });
    assert.strictEqual(await rawGet(open.url, "evil.example"), 403);
    assert.strictEqual(await rawGet(open.url, `localhost:${new URL(open.url).port}`), 200);
    // A cross-origin POST is refused, and one without Origin too.
    const cross = await fetch(new URL(`api/dead/delete?queue=${queue}`, open.url), {
      method: "POST",
      headers: { origin: "http://evil.example" },
      body: JSON.stringify({ all: true }),
    });
    assert.strictEqual(cross.status, 403);
    await cross.body?.cancel();
    const bare = await fetch(new URL(`api/dead/delete?queue=${queue}`, open.url), {
      method: "POST",
      body: JSON.stringify({ all: true }),
    });
    assert.strictEqual(bare.status, 403);
    await bare.body?.cancel();
  }
  const token = "s3cret-token";
  await using guarded = await serveDashboard({
    queues: [queue],
    redis: { url },
    listen: { hostname: "0.0.0.0", port: 0 },
    token,
  });
  const base = `http://127.0.0.1:${new URL(guarded.url).port}/`;
  for (const path of ["", "app.js", "api/queues", `api/overview?queue=${queue}`, "metrics"]) {
    const response = await fetch(new URL(path, base));
    assert.strictEqual(response.status, 401, path);
    await response.body?.cancel();
  }
  const wrong = await fetch(new URL("api/queues", base), {
    headers: { authorization: "Bearer nope" },
  });
  assert.strictEqual(wrong.status, 401);
  await wrong.body?.cancel();
  const bearer = await fetch(new URL("api/queues", base), {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.deepStrictEqual(await bearer.json(), [queue]);
  // The one-time link sets the cookie and drops the token from the address.
  const link = await fetch(new URL(`?token=${token}&queue=${queue}`, base), { redirect: "manual" });
  assert.strictEqual(link.status, 303);
  assert.strictEqual(link.headers.get("location"), `/?queue=${encodeURIComponent(queue)}`);
  const cookie = link.headers.get("set-cookie")!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  await link.body?.cancel();
  const page = await fetch(base, { headers: { cookie: cookie.split(";")[0] } });
  assert.strictEqual(page.status, 200);
  assert.match(page.headers.get("content-security-policy")!, /script-src 'self'/);
  await page.body?.cancel();
  // With the cookie but from another origin: refused.
  const cross = await fetch(new URL(`api/dead/delete?queue=${queue}`, base), {
    method: "POST",
    headers: { cookie: cookie.split(";")[0], origin: "http://evil.example" },
    body: JSON.stringify({ all: true }),
  });
  assert.strictEqual(cross.status, 403);
  await cross.body?.cancel();
  await guarded.close();
});

redisTest(
  "dashboard: the CLI serves until a signal, and refuses a listen beyond loopback without a token",
  async (url) => {
    const queue = uniqueKey("dash");
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const run = (args: string[], env: Record<string, string> = {}) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "dashboard", "--redis", url, ...args],
        env: { NO_COLOR: "1", ...env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      });
    const refused = await run(["--queue", queue, "--listen", "0.0.0.0:0"]).output();
    assert.strictEqual(refused.code, 2);
    assert.match(
      new TextDecoder().decode(refused.stderr),
      /taskpool dashboard: Cannot serve the dashboard on 0\.0\.0\.0 without a token.*--token/,
    );
    const badListen = await run(["--listen", "8080"]).output();
    assert.strictEqual(badListen.code, 2);
    assert.match(new TextDecoder().decode(badListen.stderr), /--listen must be host:port/);

    const child = run(["--queue", queue, "--queue", `${queue}-b`, "--listen", "0.0.0.0:0"], {
      TASKPOOL_DASHBOARD_TOKEN: "tok",
    }).spawn();
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/on (http:\S+)/.test(text)) {
      const { value, done } = await lines.read();
      if (done) break;
      text += value;
    }
    const address = /on (http:\/\/\S+?)\/? /.exec(text)?.[1];
    assert.ok(address, text);
    assert.match(text, /\?token=<token> once/, "the token itself is not printed");
    const port = new URL(address).port;
    const response = await fetch(`http://127.0.0.1:${port}/api/queues`, {
      headers: { authorization: "Bearer tok" },
    });
    assert.deepStrictEqual(await response.json(), [queue, `${queue}-b`]);
    child.kill("SIGTERM");
    const [status] = await Promise.all([child.status, lines.cancel(), child.stdout.cancel()]);
    assert.strictEqual(status.code, 0);
  },
);

/** Reads SSE snapshots of `queue` until `check` accepts one; then the snapshot. */
async function snapshotUntil(
  base: string,
  queue: string,
  check: (snapshot: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const response = await fetch(new URL(`api/events?queue=${encodeURIComponent(queue)}`, base));
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const end = Date.now() + 30_000;
  try {
    while (Date.now() < end) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      let cut;
      while ((cut = text.indexOf("\n\n")) >= 0) {
        const event = text.slice(0, cut);
        text = text.slice(cut + 2);
        const data = /^event: snapshot\ndata: (.*)$/s.exec(event)?.[1];
        if (data === undefined) continue;
        const snapshot = JSON.parse(data);
        if (check(snapshot)) return snapshot;
      }
    }
    throw new Error("no snapshot passed the check within 30 s");
  } finally {
    await reader.cancel();
  }
}

redisTest(
  "dashboard: the chart counts every outcome by status, whoever recorded it",
  async (url) => {
    const queue = uniqueKey("dash");
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: LOCAL,
    });
    // The dashboard reads before anything happens; then 5 succeed, 2 fail, 1 is skipped.
    await snapshotUntil(dashboard.url, queue, () => true);
    await using producer = await RedisQueue.connect({ url, queue });
    const receipt = await producer.push(jobs([
      ...Array.from({ length: 5 }, (_, i) => ({ id: `ok${i}`, command: ["true"] })),
      { id: "bad1", command: ["false"] },
      { id: "bad2", command: ["false"] },
      { id: "never", command: ["true"], after: ["bad1"] },
    ]));
    const consumer = producer.consume({ workers: 2 });
    await producer.wait(receipt);
    consumer.stop();
    await consumer.done;
    const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
    const snapshot = await snapshotUntil(dashboard.url, queue, (s) => {
      const t = s.throughput as Record<string, number[]>;
      return sum(t.succeeded) + sum(t.failed) + sum(t.skipped) >= 8;
    });
    const t = snapshot.throughput as Record<string, number[]>;
    assert.deepStrictEqual(
      [sum(t.succeeded), sum(t.failed), sum(t.skipped), sum(t.cancelled)],
      [5, 2, 1, 0],
    );
    await dashboard.close();
    await cleanup(url, queue);
  },
);

redisTest(
  "dashboard: close() ends at once whatever the clients do; a huge body is refused unread",
  async (url) => {
    const queue = uniqueKey("dash");
    const dashboard = await serveDashboard({ queues: [queue], redis: { url }, listen: LOCAL });
    const port = Number(new URL(dashboard.url).port);
    const send = async (text: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(text));
      return conn;
    };
    const head = `Host: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}`;
    // Refused on its Content-Length: 100 MB are never read into memory.
    const huge = await send(
      `POST /api/dead/delete?queue=${queue} HTTP/1.1\r\n${head}\r\nContent-Length: ${
        100 * 2 ** 20
      }\r\n\r\n{`,
    );
    const buffer = new Uint8Array(1024);
    const n = await huge.read(buffer);
    assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 413/);
    huge.close();
    // A page that stops reading its events, and an action whose body never arrives.
    const idle = await send(`GET /api/events?queue=${queue} HTTP/1.1\r\n${head}\r\n\r\n`);
    const slow = await send(
      `POST /api/dead/delete?queue=${queue} HTTP/1.1\r\n${head}\r\nContent-Length: 100\r\n\r\n{"all":`,
    );
    const started = performance.now();
    await dashboard.close();
    // Bounded by its own limit (3 s), not by the clients: generous for a busy machine.
    assert.ok(performance.now() - started < 20_000, "close() returned");
    idle.close();
    slow.close();
  },
);

redisTest(
  "dashboard: a queue it cannot read is an error, not stale numbers; a busy port is a clear error",
  async () => {
    await using server = await startRedisServer();
    const queue = uniqueKey("dash");
    const warnings: string[] = [];
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url: server.url, commandTimeout: 500 },
      listen: LOCAL,
      onWarning: (message) => warnings.push(message),
    });
    const overview = await fetch(new URL(`api/overview?queue=${queue}`, dashboard.url));
    assert.strictEqual(overview.status, 200);
    await overview.body?.cancel();
    const port = Number(new URL(dashboard.url).port);
    await assert.rejects(
      serveDashboard({
        queues: [queue],
        redis: { url: server.url },
        listen: { hostname: "127.0.0.1", port },
      }),
      /the address is in use; choose another --listen/,
    );
    await server.stop();
    let status = 0;
    const end = Date.now() + 30_000;
    while (status !== 503 && Date.now() < end) {
      const response = await fetch(new URL(`api/overview?queue=${queue}`, dashboard.url));
      status = response.status;
      await response.body?.cancel();
      if (status !== 503) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.strictEqual(status, 503);
    const metrics = await fetch(new URL("metrics", dashboard.url));
    assert.strictEqual(metrics.status, 503);
    assert.match(await metrics.text(), /cannot read queue/);
    assert.ok(warnings.some((w) => /cannot read queue/.test(w)), warnings.join("\n"));
    await dashboard.close();
  },
);

redisTest(
  "dashboard: the token's edges: any case of Bearer, no open redirect, a bad cookie is 401, no Origin needs the header",
  async (url) => {
    const queue = uniqueKey("dash");
    const token = "t0k";
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: LOCAL,
      token,
    });
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(new URL(path, dashboard.url), { headers, redirect: "manual" });
    const lower = await get("api/queues", { authorization: `bearer ${token}` });
    assert.strictEqual(lower.status, 200);
    await lower.body?.cancel();
    const port = Number(new URL(dashboard.url).port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(
      `GET //evil.example/?token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    ));
    let head = "";
    const buffer = new Uint8Array(4096);
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    conn.close();
    assert.match(head, /^HTTP\/1\.1 303/);
    assert.match(
      head,
      /\r\nlocation: \/evil\.example\/\r\n/i,
      "a path on this server, not //evil.example",
    );
    const badCookie = await get("api/queues", { cookie: "taskpool_dashboard=%E0%A4%A" });
    assert.strictEqual(badCookie.status, 401);
    await badCookie.body?.cancel();
    const post = (headers: Record<string, string>) =>
      fetch(new URL(`api/dead/delete?queue=${queue}`, dashboard.url), {
        method: "POST",
        headers,
        body: JSON.stringify({ all: true }),
      });
    const basic = await post({
      cookie: `taskpool_dashboard=${token}`,
      authorization: "Basic eDp5",
    });
    assert.strictEqual(basic.status, 403, "no Origin, and no token in the header");
    await basic.body?.cancel();
    const bearer = await post({ authorization: `Bearer ${token}` });
    assert.strictEqual(bearer.status, 200, "no Origin, the token in the header: a script");
    await bearer.body?.cancel();
    const proxied = await post({
      cookie: `taskpool_dashboard=${token}`,
      origin: `https://127.0.0.1:${port}`,
    });
    assert.strictEqual(proxied.status, 200, "its own page behind a TLS proxy");
    await proxied.body?.cancel();
    await dashboard.close();
  },
);

redisTest(
  "dashboard: a dead run of a recurring job comes back as a one-off, outside its schedule's count",
  async (url) => {
    const queue = uniqueKey("dash");
    await using redis = await RedisClient.connect(url);
    const entry = {
      id: "tick@2026-11-30T10:00:00.000Z",
      command: ["true"],
      schedule: "tick",
      batch: "",
    };
    await redis.send([
      "LPUSH",
      `${queue}:dead`,
      JSON.stringify({ entry: JSON.stringify({ ...entry, attempt: 2 }), error: "x", attempts: 2 }),
    ]);
    await using reader = await RedisQueue.connect({ url, queue });
    const [dead] = (await reader.dead()).records;
    assert.deepStrictEqual(await reader.retryDead([dead.ref]), [{ ref: dead.ref, status: "done" }]);
    const [queued] = await redis.send(["LRANGE", queue, 0, -1]) as string[];
    const back = JSON.parse(queued);
    assert.strictEqual(back.schedule, undefined);
    assert.strictEqual(back.attempt, undefined);
    assert.strictEqual(back.id, entry.id);
    await cleanup(url, queue);
  },
);
