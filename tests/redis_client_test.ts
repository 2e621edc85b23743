import assert from "node:assert";
import {
  parseRedisUrl,
  RedisClient,
  RedisConnectionError,
  RedisError,
  type RedisReply,
} from "../src/redis/mod.ts";
import { INCOMPLETE, RespErrorReply, RespParser, type RespValue } from "../src/redis/_resp.ts";
import { redisTest, startRedisServer, uniqueKey } from "./_redis.ts";

/** `url` with another database index. */
function withDb(url: string, db: number): string {
  const parsed = new URL(url);
  parsed.pathname = `/${db}`;
  return parsed.href;
}

/** Resolves once `check()` is true; fails after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A loopback port with nothing listening on it. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Connects, sends one command, closes. */
async function oneCommand(url: string, args: string[]): Promise<RedisReply> {
  await using redis = await RedisClient.connect(url);
  return await redis.send(args);
}

/** The field `name` of an INFO reply. */
function info(reply: RedisReply, name: string): number {
  const match = String(reply).match(new RegExp(`^${name}:(\\d+)`, "m"));
  assert(match, `INFO has no ${name}`);
  return Number(match[1]);
}

// -- parseRedisUrl --

Deno.test("parseRedisUrl() reads host, port, TLS, user, password and db", () => {
  const cases: [string, ReturnType<typeof parseRedisUrl>][] = [
    ["redis://127.0.0.1", { hostname: "127.0.0.1", port: 6379, tls: false, db: 0 }],
    ["redis://localhost:6380/", { hostname: "localhost", port: 6380, tls: false, db: 0 }],
    ["redis://h:1/15", { hostname: "h", port: 1, tls: false, db: 15 }],
    ["rediss://h:65535/2", { hostname: "h", port: 65535, tls: true, db: 2 }],
    ["redis://[::1]:7000/3", { hostname: "::1", port: 7000, tls: false, db: 3 }],
    [
      "redis://:s3cret@h/1",
      { hostname: "h", port: 6379, tls: false, password: "s3cret", db: 1 },
    ],
    [
      "rediss://al%20ice:p%40ss%3Aw%2Frd@cache.example.com:6390/4",
      {
        hostname: "cache.example.com",
        port: 6390,
        tls: true,
        username: "al ice",
        password: "p@ss:w/rd",
        db: 4,
      },
    ],
  ];
  for (const [url, expected] of cases) assert.deepStrictEqual(parseRedisUrl(url), expected, url);
});

Deno.test("parseRedisUrl() rejects malformed URLs in one line with an example", () => {
  const bad = [
    "",
    "localhost:6379",
    "127.0.0.1",
    "http://localhost:6379",
    "redis://",
    "redis://:pw@/0",
    "redis://h:0",
    "redis://h:99999",
    "redis://h:abc",
    "redis://h/x",
    "redis://h/1/2",
    "redis://h/-1",
    "redis://h/1.5",
    "redis://h/0?db=1",
    "redis://h/0#x",
    "redis://user@h",
    "redis://u:%zz@h",
  ];
  for (const url of bad) {
    assert.throws(
      () => parseRedisUrl(url),
      (error: Error) =>
        error instanceof TypeError && !error.message.includes("\n") &&
        error.message.includes("e.g. redis://127.0.0.1:6379/0"),
      url,
    );
  }
  assert.throws(
    () => parseRedisUrl("redis://user:hunter2@h/x"),
    (error: Error) => !error.message.includes("hunter2") && error.message.includes("user:***@"),
  );
});

// -- Connecting --

Deno.test("RedisClient.connect() reports a refused port in one line naming host and port", async () => {
  const port = closedPort();
  await assert.rejects(
    RedisClient.connect(`redis://127.0.0.1:${port}/0`),
    (error: Error) =>
      error instanceof RedisConnectionError && error.name === "RedisConnectionError" &&
      error.message ===
        `cannot connect to Redis at 127.0.0.1:${port}: connection refused; is redis-server running? (check the Redis URL)`,
  );
});

Deno.test("RedisClient.connect() rejects bad options and URLs before connecting", async () => {
  for (const bad of [-1, NaN, Infinity, 2 ** 31, "5" as unknown as number]) {
    for (const key of ["connectTimeout", "commandTimeout", "maxReconnectDelay"]) {
      await assert.rejects(
        RedisClient.connect("redis://127.0.0.1:1", { [key]: bad }),
        (error: Error) => error instanceof RangeError && error.message.includes(`'${key}'`),
      );
    }
  }
  await assert.rejects(
    RedisClient.connect("redis://127.0.0.1:1", { maxReconnectDelay: 0 }),
    RangeError,
  );
  for (const name of ["two words", "", "tab\there", "é"]) {
    await assert.rejects(RedisClient.connect("redis://127.0.0.1:1", { name }), /'name'/);
  }
  await assert.rejects(RedisClient.connect("http://127.0.0.1:1"), TypeError);
});

Deno.test("RedisClient.connect() authenticates with a user or a password and explains failures", async () => {
  await using server = await startRedisServer({ password: "top secret" });
  const base = `127.0.0.1:${server.port}`;
  {
    await using admin = await RedisClient.connect(server.url);
    assert.strictEqual(await admin.send(["ACL", "WHOAMI"]), "default");
    const password = "p@ss:w/rd é";
    assert.strictEqual(
      await admin.send(["ACL", "SETUSER", "alice", "on", `>${password}`, "~*", "+@all"]),
      "OK",
    );
    await using alice = await RedisClient.connect(
      `redis://alice:${encodeURIComponent(password)}@${base}/0`,
    );
    assert.strictEqual(await alice.send(["ACL", "WHOAMI"]), "alice");
  }
  const failures: [string, string][] = [
    [`redis://alice:wrong@${base}/0`, "authentication failed: wrong user or password in the URL"],
    [`redis://:wrong@${base}/0`, "authentication failed: wrong user or password in the URL"],
    [`redis://bob:x@${base}/0`, "authentication failed: wrong user or password in the URL"],
    [`redis://${base}/0`, `the server needs a password: put it in the URL`],
  ];
  for (const [url, why] of failures) {
    await assert.rejects(
      RedisClient.connect(url),
      (error: Error) =>
        error instanceof RedisConnectionError && !error.message.includes("\n") &&
        error.message.startsWith(`cannot connect to Redis at ${base}: ${why}`) &&
        !error.message.includes("wrong@") && error.cause instanceof RedisError,
      url,
    );
  }
});

Deno.test("RedisClient.connect() gives up on a server that does not answer in time", async () => {
  await using server = await startRedisServer();
  const pid = info(await oneCommand(server.url, ["INFO", "server"]), "process_id");
  Deno.kill(pid, "SIGSTOP"); // the kernel still accepts connections; Redis answers nothing
  try {
    // A stopped server never answers: only connectTimeout can end this, and the message says it did.
    await assert.rejects(
      RedisClient.connect(server.url, { connectTimeout: 300 }),
      (error: Error) =>
        error instanceof RedisConnectionError &&
        error.message ===
          `cannot connect to Redis at 127.0.0.1:${server.port}: no answer within 300 ms; is the host right? (check the Redis URL)`,
    );
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
  assert.strictEqual(await oneCommand(server.url, ["PING"]), "PONG");
});

redisTest("RedisClient.connect() selects the URL's database", async (url) => {
  const key = uniqueKey();
  await using db0 = await RedisClient.connect(withDb(url, 0));
  await using db3 = await RedisClient.connect(withDb(url, 3));
  try {
    await db0.send(["SET", key, "zero"]);
    await db3.send(["SET", key, "three"]);
    assert.strictEqual(await db0.send(["GET", key]), "zero");
    assert.strictEqual(await db3.send(["GET", key]), "three");
    assert.match(String(await db3.send(["CLIENT", "INFO"])), / db=3 /);
  } finally {
    await Promise.all([db0.send(["DEL", key]), db3.send(["DEL", key])]);
  }
  await assert.rejects(
    RedisClient.connect(withDb(url, 99)),
    (error: Error) =>
      error instanceof RedisConnectionError && /: there is no database 99 /.test(error.message),
  );
});

// -- Replies and encoding --

redisTest("RedisClient.send() decodes strings, integers, nil and arrays", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(url);
  try {
    assert.strictEqual(await redis.send(["PING"]), "PONG");
    assert.strictEqual(await redis.send(["SET", `${key}:s`, "value"]), "OK");
    assert.strictEqual(await redis.send(["GET", `${key}:s`]), "value");
    assert.strictEqual(await redis.send(["GET", `${key}:missing`]), null);
    assert.strictEqual(await redis.send(["SET", `${key}:s`, "x", "NX"]), null);
    assert.strictEqual(await redis.send(["INCR", `${key}:n`]), 1);
    assert.strictEqual(await redis.send(["INCRBY", `${key}:n`, -5]), -4);
    assert.strictEqual(await redis.send(["LPUSH", `${key}:l`, "c", "b", "a"]), 3);
    assert.deepStrictEqual(await redis.send(["LRANGE", `${key}:l`, 0, -1]), ["a", "b", "c"]);
    assert.deepStrictEqual(await redis.send(["LRANGE", `${key}:missing`, 0, -1]), []);
    assert.deepStrictEqual(await redis.send(["MGET", `${key}:s`, `${key}:missing`]), [
      "value",
      null,
    ]);
    assert.strictEqual(await redis.send(["EXISTS", `${key}:s`, `${key}:missing`]), 1);
    // A nil array: BLPOP that times out.
    assert.strictEqual(await redis.send(["BLPOP", `${key}:missing`, 0.01]), null);
  } finally {
    await redis.send(["DEL", `${key}:s`, `${key}:n`, `${key}:l`]);
  }
});

redisTest("RedisClient.send() decodes nested arrays (XRANGE, EXEC)", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(url);
  try {
    const id1 = await redis.send(["XADD", key, "*", "job", "a", "try", 1]);
    const id2 = await redis.send(["XADD", key, "*", "job", "b"]);
    assert.deepStrictEqual(await redis.send(["XRANGE", key, "-", "+"]), [
      [id1, ["job", "a", "try", "1"]],
      [id2, ["job", "b"]],
    ]);
    const [queued, exec] = [redis.send(["MULTI"]), [
      redis.send(["INCR", `${key}:n`]),
      redis.send(["XRANGE", key, "-", "+", "COUNT", 1]),
      redis.send(["EXEC"]),
    ]];
    assert.strictEqual(await queued, "OK");
    assert.deepStrictEqual(await Promise.all(exec), [
      "QUEUED",
      "QUEUED",
      [1, [[id1, ["job", "a", "try", "1"]]]],
    ]);
  } finally {
    await redis.send(["DEL", key, `${key}:n`]);
  }
});

redisTest("RedisClient.send() encodes UTF-8 strings, numbers and raw bytes", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(url);
  try {
    const text = "héllo ✓ 🎉\r\n$3\r\n*";
    await redis.send(["SET", key, text]);
    assert.strictEqual(await redis.send(["GET", key]), text);
    assert.strictEqual(await redis.send(["STRLEN", key]), new TextEncoder().encode(text).length);
    await redis.send(["SET", key, new Uint8Array([0x61, 0x00, 0xce, 0xbb])]);
    assert.strictEqual(await redis.send(["STRLEN", key]), 4);
    assert.strictEqual(await redis.send(["GET", key]), "a\0λ");
    await redis.send(["SET", key, 2.5]);
    assert.strictEqual(await redis.send(["INCRBYFLOAT", key, 0.25]), "2.75");
    assert.strictEqual(await redis.send([new TextEncoder().encode("get"), key]), "2.75");
  } finally {
    await redis.send(["DEL", key]);
  }
});

redisTest(
  "RedisClient.send() rejects an error reply with RedisError naming the command",
  async (url) => {
    const key = uniqueKey();
    await using redis = await RedisClient.connect(url);
    try {
      await redis.send(["SET", key, "a string"]);
      const [before, wrong, after] = await Promise.allSettled([
        redis.send(["GET", key]),
        redis.send(["lpush", key, "x"]),
        redis.send(["GET", key]),
      ]);
      assert.deepStrictEqual(before, { status: "fulfilled", value: "a string" });
      assert.deepStrictEqual(after, { status: "fulfilled", value: "a string" });
      assert(wrong.status === "rejected");
      assert(wrong.reason instanceof RedisError);
      assert.strictEqual(wrong.reason.name, "RedisError");
      assert.strictEqual(wrong.reason.command, "LPUSH");
      assert.strictEqual(
        wrong.reason.message,
        "Redis error for LPUSH: WRONGTYPE Operation against a key holding the wrong kind of value",
      );
      // An error inside EXEC's array rejects the EXEC.
      await redis.send(["MULTI"]);
      await redis.send(["LPUSH", key, "x"]);
      await assert.rejects(
        redis.send(["EXEC"]),
        (error: Error) => error instanceof RedisError && error.command === "EXEC",
      );
      assert(redis.connected);
    } finally {
      await redis.send(["DEL", key]);
    }
  },
);

redisTest("RedisClient.send() rejects empty commands and bad timeouts", async (url) => {
  await using redis = await RedisClient.connect(url);
  await assert.rejects(redis.send([]), TypeError);
  for (const timeout of [-1, NaN, Infinity, 2 ** 31, "5" as unknown as number]) {
    await assert.rejects(redis.send(["PING"], { timeout }), /'timeout'/);
  }
  assert.strictEqual(await redis.send(["PING"]), "PONG");
});

Deno.test("RedisClient.send() pipelines 10,000 commands of one tick, in order", async () => {
  await using server = await startRedisServer();
  await using redis = await RedisClient.connect(server.url);
  const key = uniqueKey();
  const readsBefore = info(await redis.send(["INFO", "stats"]), "total_reads_processed");
  const replies = Array.from({ length: 10_000 }, () => redis.send(["INCR", key]));
  const expected = Array.from({ length: 10_000 }, (_, i) => i + 1);
  assert.deepStrictEqual(await Promise.all(replies), expected);
  // ~310 KB written at once reach the server in a few dozen reads, not one per command.
  const reads = info(await redis.send(["INFO", "stats"]), "total_reads_processed") - readsBefore;
  assert(reads < 1000, `the server needed ${reads} reads`);
});

redisTest("RedisClient.send() round-trips a 5 MB value byte for byte", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(url);
  try {
    const unit = "0123456789abcdef✓é"; // multi-byte characters may fall on any read boundary
    const value = unit.repeat(Math.ceil(5_000_000 / unit.length)) + crypto.randomUUID();
    const bytes = new TextEncoder().encode(value);
    await redis.send(["SET", key, value]);
    const [length, got, again] = await Promise.all([
      redis.send(["STRLEN", key]),
      redis.send(["GET", key]),
      redis.send(["GET", key]),
    ]);
    assert.strictEqual(length, bytes.length);
    assert(got === value, "the value came back different");
    assert(again === value, "the second value came back different");
    await redis.send(["SET", key, bytes]);
    assert(await redis.send(["GET", key]) === value, "the byte value came back different");
  } finally {
    await redis.send(["DEL", key]);
  }
});

redisTest("RespParser parses real replies split at any byte", async (url) => {
  const key = uniqueKey();
  const commands = [
    `SET ${key} héllo✓`,
    `GET ${key}`,
    `GET ${key}:missing`,
    `RPUSH ${key}:l a b`,
    `LRANGE ${key}:l 0 -1`,
    `LRANGE ${key}:missing 0 -1`,
    `XADD ${key}:x 1-1 f v`,
    `XRANGE ${key}:x - +`,
    `LPUSH ${key} x`,
    `BLPOP ${key}:missing 0.01`,
    `DEL ${key} ${key}:l ${key}:x`,
  ];
  const expected: RespValue[] = [
    "OK",
    "héllo✓",
    null,
    2,
    ["a", "b"],
    [],
    "1-1",
    [["1-1", ["f", "v"]]],
    new RespErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value"),
    null,
    3,
  ];
  const wire = await rawExchange(url, commands);
  assert.deepStrictEqual(parse([wire]), expected);
  for (let at = 0; at <= wire.length; at++) {
    assert.deepStrictEqual(parse([wire.subarray(0, at), wire.subarray(at)]), expected, `at ${at}`);
  }
  const bytes = Array.from(wire, (_, i) => wire.subarray(i, i + 1));
  assert.deepStrictEqual(parse(bytes), expected);
});

/** Sends inline commands on a fresh socket and returns the server's bytes, all of them. */
async function rawExchange(url: string, commands: string[]): Promise<Uint8Array> {
  const { hostname, port } = parseRedisUrl(url);
  const conn = await Deno.connect({ hostname, port });
  try {
    await conn.write(new TextEncoder().encode(commands.map((c) => `${c}\r\n`).join("")));
    const chunks: Uint8Array[] = [];
    // Count the replies with the parser under test; the exact-split checks then verify it.
    const counter = new RespParser();
    let replies = 0;
    while (replies < commands.length) {
      const space = counter.space();
      const n = await conn.read(space);
      assert(n !== null, "the server closed the connection");
      chunks.push(space.slice(0, n));
      counter.commit(n);
      while (counter.next() !== INCOMPLETE) replies++;
    }
    const wire = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
    chunks.reduce((at, c) => (wire.set(c, at), at + c.length), 0);
    return wire;
  } finally {
    conn.close();
  }
}

function parse(chunks: Uint8Array[]): RespValue[] {
  const parser = new RespParser();
  const out: RespValue[] = [];
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length;) {
      const space = parser.space();
      const n = Math.min(space.length, chunk.length - at);
      space.set(chunk.subarray(at, at + n));
      parser.commit(n);
      at += n;
      for (let reply = parser.next(); reply !== INCOMPLETE; reply = parser.next()) out.push(reply);
    }
  }
  return out;
}

// -- Timeouts --

Deno.test("RedisClient.send() times out a command, then works again after reconnecting", async () => {
  await using server = await startRedisServer();
  await using redis = await RedisClient.connect(server.url, { commandTimeout: 5000 });
  // Left alone, DEBUG SLEEP 1 answers OK after a second: rejected with this message, the timeout cut it.
  const [sleep, behind] = await Promise.allSettled([
    redis.send(["DEBUG", "SLEEP", 1], { timeout: 200 }),
    redis.send(["PING"]),
  ]);
  assert(sleep.status === "rejected" && sleep.reason instanceof RedisConnectionError);
  assert.strictEqual(sleep.reason.message, "Redis did not answer DEBUG within 200 ms");
  // The command behind it shares the out-of-sync connection, so it is failed too.
  assert(behind.status === "rejected" && behind.reason instanceof RedisConnectionError);
  assert.match(behind.reason.message, /DEBUG timed out.*may or may not have run/);
  assert.strictEqual(await redis.send(["PING"]), "PONG");
  assert(redis.connected);
});

redisTest("RedisClient.send() lets a blocking command wait past commandTimeout", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(url, { commandTimeout: 300 });
  await using other = await RedisClient.connect(url);
  let start = Date.now();
  assert.strictEqual(await redis.send(["BLPOP", key, 1], { timeout: 3000 }), null);
  assert(Date.now() - start >= 900, "BLPOP returned early");
  start = Date.now();
  const popped = redis.send(["BLPOP", key, 5], { timeout: 0 });
  await new Promise((resolve) => setTimeout(resolve, 600));
  await other.send(["RPUSH", key, "job"]);
  assert.deepStrictEqual(await popped, [key, "job"]);
  assert(Date.now() - start >= 600);
  // Without its own timeout, the blocking command is cut by commandTimeout.
  await assert.rejects(redis.send(["BLPOP", key, 1]), /did not answer BLPOP within 300 ms/);
});

// -- Reconnecting --

redisTest("RedisClient reconnects after CLIENT KILL with its db and name", async (url) => {
  const key = uniqueKey();
  await using redis = await RedisClient.connect(withDb(url, 3), { name: "taskpool-test" });
  await using admin = await RedisClient.connect(url);
  try {
    await redis.send(["SET", key, "in db 3"]);
    const id = await redis.send(["CLIENT", "ID"]);
    const blocked = redis.send(["BLPOP", `${key}:none`, 10], { timeout: 0 }).catch((e) => e);
    await until(async () =>
      /cmd=blpop/.test(String(await admin.send(["CLIENT", "LIST", "ID", String(id)])))
    );
    assert.strictEqual(await admin.send(["CLIENT", "KILL", "ID", String(id)]), 1);
    const error = await blocked;
    assert(error instanceof RedisConnectionError, String(error));
    assert.match(
      error.message,
      /lost \(the server closed the connection\) before BLPOP got its reply; it may or may not have run/,
    );
    assert(!redis.connected);
    assert.strictEqual(await redis.send(["GET", key]), "in db 3");
    assert(redis.connected);
    assert.notStrictEqual(await redis.send(["CLIENT", "ID"]), id);
    assert.strictEqual(await redis.send(["CLIENT", "GETNAME"]), "taskpool-test");
  } finally {
    await redis.send(["DEL", key]);
  }
});

Deno.test("RedisClient survives a server restart", async () => {
  await using server = await startRedisServer();
  await using redis = await RedisClient.connect(server.url, {
    commandTimeout: 1000,
    maxReconnectDelay: 200,
  });
  assert.strictEqual(await redis.send(["SET", "k", "before"]), "OK");
  const outcomes: Promise<RedisReply | Error>[] = [];
  let succeeded = 0;
  let sending = true;
  const sender = (async () => {
    while (sending) {
      outcomes.push(
        redis.send(["INCR", "n"]).then((n) => (succeeded++, n), (error) => error),
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  // Counts of INCRs that came back, not sleeps: some before the restart, some after.
  await until(() => succeeded >= 3, 20_000);
  await server.restart();
  await until(async () => (await redis.send(["PING"]).catch(() => "")) === "PONG", 20_000);
  const before = succeeded;
  await until(() => succeeded >= before + 3, 20_000);
  sending = false;
  await sender;
  const settled = await Promise.all(outcomes);
  const failed = settled.filter((o) => o instanceof Error);
  for (const error of failed) assert(error instanceof RedisConnectionError, String(error));
  // The restarted server is empty: INCRs after it count from 1 again, so the
  // last one is below the number that succeeded (three or more on each side).
  assert.strictEqual(await redis.send(["GET", "k"]), null);
  const last = settled.findLast((o) => typeof o === "number");
  assert(typeof last === "number" && last <= succeeded - 3, `last ${last} of ${succeeded}`);
});

Deno.test("RedisClient reconnects to a restarted server that kept its data", async () => {
  await using server = await startRedisServer({ persist: true });
  await using redis = await RedisClient.connect(server.url);
  assert.strictEqual(await redis.send(["RPUSH", "jobs", "a", "b"]), 2);
  await server.restart();
  assert.deepStrictEqual(await redis.send(["LRANGE", "jobs", 0, -1], { timeout: 5000 }), [
    "a",
    "b",
  ]);
});

Deno.test("RedisClient.send() waits for a reconnect, then times out if the server stays down", async () => {
  const server = await startRedisServer();
  try {
    await using redis = await RedisClient.connect(server.url, { maxReconnectDelay: 100 });
    await server.stop();
    await until(() => !redis.connected);
    await assert.rejects(
      redis.send(["SET", "k", "late"], { timeout: 300 }),
      (error: Error) =>
        error instanceof RedisConnectionError &&
        /^Redis did not answer SET within 300 ms: still reconnecting \(cannot connect to Redis at 127.0.0.1:\d+: connection refused; .*\)$/
          .test(error.message),
    );
    // Sent while the server is down (not connected, by the until above); it waits for the restart.
    const later = redis.send(["PING"], { timeout: 30_000 });
    await server.restart();
    assert.strictEqual(await later, "PONG");
    // The SET that timed out while waiting was dropped, not sent to the new server.
    assert.strictEqual(await redis.send(["GET", "k"]), null);
  } finally {
    await server.stop();
  }
});

Deno.test("RedisClient with reconnect: false fails every send after a drop at once", async () => {
  await using server = await startRedisServer();
  await using redis = await RedisClient.connect(server.url, { reconnect: false });
  await using admin = await RedisClient.connect(server.url);
  const id = await redis.send(["CLIENT", "ID"]);
  await admin.send(["CLIENT", "KILL", "ID", String(id)]);
  await until(() => !redis.connected);
  // "At once": settled before any timer, however busy the machine.
  const first = await Promise.race([
    redis.send(["PING"], { timeout: 0 }).then(() => "answered", (error) => error),
    new Promise((resolve) => setTimeout(() => resolve("still waiting"), 0)),
  ]);
  assert(
    first instanceof RedisConnectionError && /reconnect is off/.test(first.message),
    String(first),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert(!redis.connected, "it reconnected");
});

// -- Closing --

redisTest(
  "RedisClient.close() rejects pending and later commands and is idempotent",
  async (url) => {
    const redis = await RedisClient.connect(url);
    assert(redis.connected);
    const pending = [
      redis.send(["BLPOP", uniqueKey(), 5], { timeout: 0 }),
      redis.send(["PING"]),
    ];
    redis.close();
    assert(!redis.connected);
    for (const promise of pending) {
      await assert.rejects(
        promise,
        (error: Error) => error instanceof RedisConnectionError && /closed/.test(error.message),
      );
    }
    redis.close();
    await redis[Symbol.asyncDispose]();
    await assert.rejects(redis.send(["PING"]), /cannot send PING: .* is closed/);
  },
);

Deno.test("RedisClient.close() while reconnecting stops the attempts", async () => {
  const server = await startRedisServer();
  const redis = await RedisClient.connect(server.url);
  await server.stop();
  await until(() => !redis.connected);
  const waiting = redis.send(["PING"], { timeout: 0 });
  await new Promise((resolve) => setTimeout(resolve, 150)); // a few attempts fail meanwhile
  redis.close();
  await assert.rejects(waiting, /closed before PING was sent/);
  // The sanitizers fail this test if a timer or socket is left behind.
});

// -- TLS --

Deno.test("RedisClient.connect() speaks TLS to a rediss:// URL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskpool-tls-" });
  const port = closedPort();
  let server: Deno.ChildProcess | undefined;
  try {
    await makeCertificates(dir);
    server = new Deno.Command("redis-server", {
      args: [
        ...["--port", "0", "--tls-port", `${port}`, "--bind", "127.0.0.1"],
        ...["--save", "", "--appendonly", "no", "--tls-auth-clients", "no"],
        ...["--tls-cert-file", `${dir}/server.pem`, "--tls-key-file", `${dir}/server.key`],
        ...["--tls-ca-cert-file", `${dir}/ca.pem`],
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await until(async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return true;
      } catch {
        return false;
      }
    });
    const url = `rediss://localhost:${port}/2`;
    // This process does not trust the test CA: the handshake fails, in one line.
    await assert.rejects(
      RedisClient.connect(url),
      (error: Error) =>
        error instanceof RedisConnectionError && !error.message.includes("\n") &&
        error.message.startsWith(`cannot connect to Redis at localhost:${port} over TLS: `),
    );
    // A process that trusts it (deno --cert) connects, selects db 2 and talks.
    const client = new URL("../src/redis/client.ts", import.meta.url).href;
    const script = `import { RedisClient } from "${client}";
      await using redis = await RedisClient.connect("${url}");
      console.log(JSON.stringify(await Promise.all([redis.send(["PING"]), redis.send(["CLIENT", "INFO"])])));`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--cert", `${dir}/ca.pem`, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert(output.success, stderr);
    const [pong, info] = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.strictEqual(pong, "PONG");
    assert.match(info, / db=2 /);
  } finally {
    server?.kill();
    await server?.status;
    await Deno.remove(dir, { recursive: true });
  }
});

/** A CA and a server certificate for localhost and 127.0.0.1, signed by it, in `dir`. */
async function makeCertificates(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/san.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const steps = [
    "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=taskpool-test-ca -keyout ca.key -out ca.pem",
    "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr",
    "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.pem",
  ];
  for (const step of steps) {
    const { success, stderr } = await new Deno.Command("openssl", {
      args: step.split(" "),
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(success, `openssl ${step}: ${new TextDecoder().decode(stderr)}`);
  }
}
