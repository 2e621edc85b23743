import assert from "node:assert";
import {
  checkTasks,
  JobFileError,
  parseDuration,
  plan,
  readJobFile,
  validateJobFile,
} from "../mod.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
const FILE = "/tmp/project/jobs.json";

/** The problems of a file that must be invalid. */
function problems(data: unknown): string[] {
  const result = validateJobFile(data, FILE);
  assert(!result.ok, "expected problems");
  return result.problems.map((p) => `${p.path}: ${p.message}`);
}

// -- readJobFile --

Deno.test("readJobFile() gives a one-line error for every unreadable file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = async (name: string, text: string) => {
      await Deno.writeTextFile(`${dir}/${name}`, text);
      return `${dir}/${name}`;
    };
    const cases: Array<[string, RegExp]> = [
      [`${dir}/missing.json`, /no such file/],
      [dir, /is a directory/],
      [await write("empty.json", "  \n"), /the file is empty/],
      [
        await write("broken.json", '{\n  "jobs": [\n    { "id": "a", }\n  ]\n}'),
        /not valid JSON: .*line 3, column/,
      ],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(readJobFile(path), (error: Error) => {
        assert(error instanceof JobFileError);
        assert.match(error.message, message);
        assert(!error.message.includes("\n"), "one line");
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// -- validateJobFile --

Deno.test("validateJobFile() reports every problem with its JSON path and a fix", () => {
  const found = problems({
    workers: 0,
    jobz: [],
    defaults: { retries: -1, timout: "1s" },
    jobs: [
      { id: "a", task: "./t.ts#run", after: ["thumb-9"] },
      { id: "a", command: ["true"] },
      { id: "b", task: "no-hash", args: "x" },
      { id: "c", command: [] },
      { id: "d", command: ["x"], timeout: "soon", priorty: 1 },
      { id: "e" },
      { id: "f", task: "./t.ts#run", command: ["x"] },
      { task: "./t.ts#run" },
      "not a job",
      { id: "g", command: ["x"], after: ["h", 3], retries: 1.5 },
      { id: "h", command: ["x"], after: ["a"], backoff: -5 },
      { id: "i", command: ["x"], after: [3, "zzz"] },
    ],
  });
  const expect = [
    /^jobz: unknown field "jobz"; did you mean "jobs"\?/,
    /^workers: expected an integer from 1 to 1024, got number 0/,
    /^defaults\.timout: unknown field "timout"; did you mean "timeout"\?/,
    /^defaults\.retries: expected an integer from 0 to 100/,
    /^jobs\[0\]\.after\[0\]: unknown job "thumb-9"/,
    /^jobs\[1\]\.id: duplicate id "a" \(also jobs\[0\]\)/,
    /^jobs\[2\]\.task: expected "path\/to\/module\.ts#exportName"/,
    /^jobs\[2\]\.args: expected an array/,
    /^jobs\[3\]\.command: expected a non-empty array of strings/,
    /^jobs\[4\]\.priorty: unknown field "priorty"; did you mean "priority"\?/,
    /^jobs\[4\]\.timeout: expected a duration such as "500ms"/,
    /^jobs\[5\]: needs "task" .* or "command"/,
    /^jobs\[6\]: has both "task" and "command"/,
    /^jobs\[7\]\.id: missing/,
    /^jobs\[8\]: expected a job object, got the string/,
    /^jobs\[9\]\.retries: expected an integer/,
    /^jobs\[9\]\.after\[1\]: expected a job id, got number 3/,
    /^jobs\[10\]\.backoff: expected a duration/,
    // Its place in the file, not among the entries that were ids.
    /^jobs\[11\]\.after\[1\]: unknown job "zzz"/,
  ];
  for (const pattern of expect) {
    assert(
      found.some((line) => pattern.test(line)),
      `no problem matches ${pattern}:\n${found.join("\n")}`,
    );
  }
});

Deno.test("validateJobFile() names a dependency cycle", () => {
  const found = problems({
    jobs: [
      { id: "a", command: ["x"], after: ["b"] },
      { id: "b", command: ["x"], after: ["c"] },
      { id: "c", command: ["x"], after: ["a"] },
      { id: "d", command: ["x"], after: ["d"] },
    ],
  });
  assert(found.some((line) => /dependency cycle: a → b → c → a/.test(line)), found.join("\n"));
  assert(found.some((line) => /jobs\[3\]\.after\[0\]: a job cannot wait for itself/.test(line)));
});

Deno.test("validateJobFile() rejects what is not a job file at all", () => {
  for (const data of [null, 3, "jobs", [], { jobs: {} }, {}]) {
    assert.strictEqual(validateJobFile(data, FILE).ok, false);
  }
  // Values built in code may even be circular: still problems, not a throw.
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  assert.strictEqual(
    validateJobFile({ jobs: [{ id: "a", task: loop, command: loop }] }, FILE).ok,
    false,
  );
  const ring: unknown[] = [];
  ring.push(ring);
  for (const key of ["command", "cron", "every", "at", "delay", "timezone", "overlap"]) {
    const job = { id: "a", command: ["x"], every: "1s", [key]: ring };
    assert.strictEqual(validateJobFile({ jobs: [job] }, FILE).ok, false, key);
  }
});

Deno.test("validateJobFile() applies defaults and resolves paths against the file", () => {
  const result = validateJobFile({
    workers: 3,
    defaults: { retries: 2, backoff: "1s", timeout: "1.5m", priority: 4 },
    jobs: [
      { id: "t", task: "./tasks/x.ts#run", args: [1] },
      { id: "c", command: ["ls"], cwd: "../out", env: { A: "1" }, retries: 0, priority: 9 },
    ],
  }, FILE);
  assert(result.ok);
  const [t, c] = result.file.jobs;
  assert.strictEqual(result.file.workers, 3);
  assert.deepStrictEqual(
    [t.kind, t.module, t.name, t.args, t.retries, t.backoff, t.timeout, t.priority],
    ["task", "file:///tmp/project/tasks/x.ts", "run", [1], 2, 1000, 90_000, 4],
  );
  assert.deepStrictEqual([c.kind, c.command, c.cwd, c.env, c.retries, c.priority], [
    "command",
    ["ls"],
    "/tmp/out",
    { A: "1" },
    0,
    9,
  ]);
});

// -- Time fields: delay, at, cron, every --

Deno.test("validateJobFile() reads delayed and recurring jobs", () => {
  const result = validateJobFile({
    jobs: [
      { id: "later", command: ["x"], delay: "5m", after: ["at-noon"] },
      { id: "at-noon", command: ["x"], at: "2026-12-01T12:00:00+01:00" },
      { id: "utc", command: ["x"], at: "2026-12-01T11:00:00.250Z" },
      { id: "nightly", command: ["x"], cron: "30 2 * * *", timezone: "europe/berlin" },
      {
        id: "poll",
        task: "./t.ts#run",
        every: "30s",
        overlap: "queue",
        catchUp: "one",
        retries: 2,
      },
    ],
  }, FILE);
  assert(result.ok, JSON.stringify(!result.ok && result.problems));
  const [later, atNoon, utc, nightly, poll] = result.file.jobs;
  assert.deepStrictEqual([later.delay, later.after, later.at], [300_000, ["at-noon"], undefined]);
  assert.strictEqual(atNoon.at, Date.parse("2026-12-01T11:00:00Z"));
  assert.strictEqual(utc.at, Date.parse("2026-12-01T11:00:00.250Z"));
  assert.deepStrictEqual(JSON.parse(JSON.stringify(nightly.schedule)), {
    kind: "cron",
    expression: "30 2 * * *",
    timezone: "Europe/Berlin",
  });
  assert.strictEqual(
    nightly.schedule!.next(new Date("2026-12-01T00:00:00Z")).toISOString(),
    "2026-12-01T01:30:00.000Z",
  );
  assert.deepStrictEqual([nightly.overlap, nightly.catchUp], ["skip", "skip"]);
  assert.deepStrictEqual(
    [poll.schedule?.kind, String(poll.schedule), poll.overlap, poll.catchUp, poll.retries],
    ["every", "30s", "queue", "one", 2],
  );
  // Jobs without time fields do not have them at all (and keep their shape).
  for (const job of [later, atNoon]) {
    for (const key of ["schedule", "overlap", "catchUp"]) assert(!(key in job), key);
  }
  assert(!("delay" in atNoon) && !("at" in later));
});

Deno.test("validateJobFile() shares one schedule between the jobs of the same rule", () => {
  const result = validateJobFile({
    jobs: Array.from({ length: 3 }, (_, i) => ({ id: `r${i}`, command: ["x"], cron: "@daily" })),
  }, FILE);
  assert(result.ok);
  const [a, b, c] = result.file.jobs;
  assert(a.schedule === b.schedule && b.schedule === c.schedule);
  // The number 500 is 500 ms; the string "500" is not a duration.
  const mixed = problems({
    jobs: [
      { id: "n", command: ["x"], every: 500 },
      { id: "s", command: ["x"], every: "500" },
    ],
  });
  assert.deepStrictEqual(mixed, [
    'jobs[1].every: "500": expected a duration such as "30s", "5m", "1h" or a number of ms',
  ]);
});

Deno.test("validateJobFile() reports every problem of the time fields with its path", () => {
  const found = problems({
    jobs: [
      { id: "a", command: ["x"], cron: "0 25 * * *" },
      { id: "b", command: ["x"], cron: "0 2 * * *", timezone: "Europe/Berln" },
      { id: "c", command: ["x"], cron: "* * * * *", every: "1s" },
      { id: "d", command: ["x"], delay: "1s", at: "2026-12-01T00:00:00Z" },
      { id: "e", command: ["x"], cron: "@daily", delay: "1s", at: "2026-12-01T00:00:00Z" },
      { id: "f", command: ["x"], every: "1m", timezone: "UTC" },
      { id: "g", command: ["x"], timezone: "UTC", overlap: "skip", catchUp: "one" },
      { id: "h", command: ["x"], every: "1m", overlap: "never", catchUp: "all" },
      { id: "i", command: ["x"], every: "1m", after: ["nope"] },
      { id: "j", command: ["x"], after: ["i", "a"] },
      { id: "k", command: ["x"], at: "2026-12-01T02:00:00" },
      { id: "l", command: ["x"], at: "tomorrow" },
      { id: "m", command: ["x"], at: "2026-02-30T00:00:00Z" },
      { id: "n", command: ["x"], at: 1767225600000 },
      { id: "o", command: ["x"], every: "soon" },
      { id: "p", command: ["x"], every: 0 },
      { id: "q", command: ["x"], cron: 5 },
      { id: "r", command: ["x"], cron: "0 2 * * *", timezone: 1 },
      { id: "s", command: ["x"], delay: "soon" },
      { id: "t", command: ["x"], cron: "0 0 L * *" },
      { id: "u", command: ["x"], at: "2026-12-01T24:00:00+01:00" },
    ],
  });
  assert.deepStrictEqual(found, [
    'jobs[0].cron: "0 25 * * *": hour 25 is out of range 0-23',
    'jobs[1].timezone: unknown time zone "Europe/Berln"; did you mean "Europe/Berlin"?',
    'jobs[2]: has both "cron" and "every"; keep one',
    'jobs[3]: has both "delay" and "at"; keep one',
    'jobs[4].delay: a recurring job (with "cron") takes no "delay": its schedule says when it runs',
    'jobs[4].at: a recurring job (with "cron") takes no "at": its schedule says when it runs',
    'jobs[5].timezone: only "cron" jobs take "timezone"; "every" counts from the Unix epoch, in no time zone',
    'jobs[6].timezone: only recurring jobs (with "cron" or "every") take "timezone"',
    'jobs[6].overlap: only recurring jobs (with "cron" or "every") take "overlap"',
    'jobs[6].catchUp: only recurring jobs (with "cron" or "every") take "catchUp"',
    'jobs[7].overlap: expected "skip", "queue" or "allow", got the string "never"',
    'jobs[7].catchUp: expected "skip" or "one", got the string "all"',
    'jobs[8].after: a recurring job cannot wait for other jobs: it runs at each tick; remove "after"',
    'jobs[10].at: "2026-12-01T02:00:00" has no "Z" or offset; add one, such as "2026-12-01T02:00:00Z" or "2026-12-01T03:00:00+01:00"',
    'jobs[11].at: expected an ISO 8601 time with "Z" or an offset, such as "2026-12-01T02:00:00Z" or "2026-12-01T03:00:00+01:00", got the string "tomorrow"',
    'jobs[12].at: "2026-02-30T00:00:00Z": day 30 is out of range 1-28',
    'jobs[13].at: expected an ISO 8601 time with "Z" or an offset, such as "2026-12-01T02:00:00Z" or "2026-12-01T03:00:00+01:00", got number 1767225600000',
    'jobs[14].every: "soon": expected a duration such as "30s", "5m", "1h" or a number of ms',
    "jobs[15].every: 0: expected a whole number of milliseconds, at least 1ms",
    'jobs[16].cron: expected a cron expression such as "30 2 * * *", got number 5',
    'jobs[17].timezone: expected an IANA time zone name such as "Europe/Berlin", got number 1',
    'jobs[18].delay: expected a duration such as "500ms", "30s", "2m" or a number of ms, got the string "soon"',
    'jobs[19].cron: "0 0 L * *": day of month "L" is not supported; taskpool reads standard cron fields, without L, W, #, ? or ~',
    'jobs[20].at: "2026-12-01T24:00:00+01:00": hour 24 is out of range 0-23',
    // Once every job is read: no job can wait for a recurring one.
    'jobs[9].after[0]: "i" is a recurring job (jobs[8]): it runs at each tick and never ends, so no job can wait for it',
  ]);
});

Deno.test("validateJobFile() reads key and onDuplicate, and reports each misuse with its path", () => {
  const ok = validateJobFile({
    jobs: [
      { id: "a", command: ["x"], key: "user:42" },
      { id: "b", command: ["x"], key: "user:43", onDuplicate: "replace" },
      { id: "c", command: ["x"], after: ["d"], key: "k" },
      { id: "d", command: ["x"] },
    ],
  }, FILE);
  assert(ok.ok);
  assert.deepStrictEqual(
    ok.file.jobs.map((j) => [j.key, j.onDuplicate]),
    [["user:42", undefined], ["user:43", "replace"], ["k", undefined], [undefined, undefined]],
  );
  assert.deepStrictEqual(
    problems({
      jobs: [
        { id: "a", command: ["x"], key: 7 },
        { id: "b", command: ["x"], key: "" },
        { id: "c", command: ["x"], key: "k", onDuplicate: "merge" },
        { id: "d", command: ["x"], onDuplicate: "skip" },
        { id: "e", command: ["x"], every: "1m", key: "k" },
        { id: "f", command: ["x"], key: "f" },
        { id: "g", command: ["x"], after: ["f"] },
      ],
    }),
    [
      "jobs[0].key: expected a non-empty string of at most 1024 characters, got 7",
      'jobs[1].key: expected a non-empty string of at most 1024 characters, got ""',
      'jobs[2].onDuplicate: expected "skip" or "replace", got "merge"',
      'jobs[3].onDuplicate: only a job with a "key" has duplicates; add a key or remove this',
      "jobs[4].key: a recurring job cannot have a key: each of its runs is a job of its own; remove the key",
      'jobs[6].after[0]: "f" has a key (jobs[5]): a push may skip it as a duplicate, so no job can wait for it; remove its key or this dependency',
    ],
  );
});

Deno.test("parseDuration() reads ms, s, m, h and numbers; anything else is undefined", () => {
  assert.deepStrictEqual(
    ["500ms", "30s", "2m", "1h", " 1.5s ", 0, 42].map(parseDuration),
    [500, 30_000, 120_000, 3_600_000, 1500, 0, 42],
  );
  for (const bad of ["", "5", "5 sec", "-1s", -1, NaN, Infinity, null, {}, "1e3ms"]) {
    assert.strictEqual(parseDuration(bad), undefined, String(bad));
  }
});

Deno.test("plan() orders jobs by level, then priority, then file order", () => {
  const result = validateJobFile({
    jobs: [
      { id: "low", command: ["x"] },
      { id: "high", command: ["x"], priority: 5 },
      { id: "next", command: ["x"], after: ["low"] },
      { id: "last", command: ["x"], after: ["next", "high"] },
      { id: "also", command: ["x"], after: ["high"] },
    ],
  }, FILE);
  assert(result.ok);
  assert.deepStrictEqual(plan(result.file), [["high", "low"], ["next", "also"], ["last"]]);
});

Deno.test("checkTasks() finds missing modules and exports, with a did-you-mean", async () => {
  const result = validateJobFile({
    jobs: [
      { id: "ok", task: `${TASKS}#noop` },
      { id: "typo", task: `${TASKS}#recrod` },
      { id: "gone", task: "./nowhere.ts#run" },
    ],
  }, FILE);
  assert(result.ok);
  const found = (await checkTasks(result.file)).map((p) => `${p.path}: ${p.message}`);
  assert.strictEqual(found.length, 2);
  assert.match(
    found[0],
    /^jobs\[1\]\.task: .*has no exported function "recrod"; did you mean "record"\?/,
  );
  assert.match(found[1], /^jobs\[2\]\.task: cannot load file:\/\/\/tmp\/project\/nowhere\.ts/);
});

Deno.test("validateJobFile() and plan() handle a 20,000-job chain and odd paths without throwing", () => {
  const chain = Array.from({ length: 20_000 }, (_, i) => ({
    id: `j${i}`,
    command: ["true"],
    ...(i > 0 ? { after: [`j${i - 1}`] } : {}),
  })).reverse(); // dependents first: the deepest walk
  const result = validateJobFile({ jobs: chain }, FILE);
  assert(result.ok);
  const levels = plan(result.file);
  assert.strictEqual(levels.length, 20_000);
  assert.deepStrictEqual(levels[0], ["j0"]);
  const looped = validateJobFile({
    jobs: [...chain, { id: "loop", command: ["x"], after: ["j19999"] }].map((j) =>
      j.id === "j0" ? { ...j, after: ["loop"] } : j
    ),
  }, FILE);
  assert(!looped.ok && looped.problems.some((p) => /dependency cycle/.test(p.message)));
  const odd = validateJobFile({ jobs: [{ id: "a", task: "./\ud800.ts#run" }] }, FILE);
  assert(!odd.ok && /cannot make a module URL/.test(odd.problems[0].message));
});

// -- Fuzz --

/** A small seeded random generator (xorshift), so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

Deno.test("validateJobFile() answers 5,000 random mutations of a valid file with a plan or problems, never a throw", () => {
  const valid = {
    workers: 2,
    defaults: { retries: 1, timeout: "1s" },
    jobs: [
      { id: "a", task: "./t.ts#run", args: [1, "x"] },
      { id: "b", command: ["echo", "hi"], after: ["a"], priority: 2 },
      { id: "c", task: "./t.ts#other", after: ["a", "b"], backoff: "50ms" },
      { id: "r", command: ["x"], cron: "*/5 * * * MON-FRI", timezone: "Europe/Berlin" },
      { id: "e", task: "./t.ts#run", every: "1m", overlap: "queue", catchUp: "one" },
      { id: "d", command: ["x"], delay: "1s", after: ["c"] },
      { id: "w", command: ["x"], at: "2026-12-01T02:00:00Z" },
    ],
  };
  const oddities: unknown[] = [
    null,
    undefined,
    0,
    -1,
    1.5,
    NaN,
    "",
    "x",
    "30s",
    true,
    [],
    {},
    [null],
    { id: "z" },
    "a",
    ["a", "a"],
    "#",
    "./t.ts#",
    1e308,
    "* * * * *",
    "0 25 * * *",
    "0 0 31 2 *",
    "@hourly",
    "UTC",
    "Mars/Olympus",
    "skip",
    "one",
    "2026-12-01T02:00:00Z",
    "2026-12-01T02:00:00",
  ];
  const next = random(20261122);
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)];
  for (let round = 0; round < 5000; round++) {
    const data = structuredClone(valid) as Record<string, unknown>;
    for (let m = 0; m < 1 + Math.floor(next() * 4); m++) {
      // Walk to a random object or array inside, then change, add or remove something.
      let target: Record<string, unknown> = data;
      for (let depth = 0; depth < 3; depth++) {
        const keys = Object.keys(target);
        const child = target[pick(keys)];
        if (child === null || typeof child !== "object" || next() < 0.3) break;
        target = child as Record<string, unknown>;
      }
      const keys = Object.keys(target);
      const action = next();
      if (action < 0.5 && keys.length > 0) target[pick(keys)] = pick(oddities);
      else if (action < 0.75) {
        target[
          pick([
            "id",
            "after",
            "task",
            "command",
            "extra",
            "0",
            "jobs",
            "cron",
            "every",
            "delay",
            "at",
            "timezone",
            "overlap",
            "catchUp",
          ])
        ] = pick(oddities);
      } else if (keys.length > 0) delete target[pick(keys)];
    }
    let result;
    try {
      result = validateJobFile(data, FILE);
    } catch (error) {
      assert.fail(`round ${round} threw ${(error as Error).stack} for ${Deno.inspect(data)}`);
    }
    if (result.ok) {
      const levels = plan(result.file);
      assert.strictEqual(levels.flat().length, result.file.jobs.length);
    } else {
      assert(result.problems.length > 0);
      for (const p of result.problems) assert(typeof p.path === "string" && p.message.length > 0);
    }
  }
});

// -- Every problem, and no odd hint --

Deno.test("validateJobFile() checks a job with a duplicate id as well: every problem at once", () => {
  const found = problems({
    jobs: [{ id: "a", command: ["true"] }, { id: "a", command: "ls", timeout: "zz" }],
  });
  assert(
    found.some((p) => /^jobs\[1\]\.id: duplicate id "a" \(also jobs\[0\]\)/.test(p)),
    found.join("\n"),
  );
  assert(found.some((p) => p.startsWith("jobs[1].command: ")), found.join("\n"));
  assert(found.some((p) => p.startsWith("jobs[1].timeout: ")), found.join("\n"));
});

Deno.test("validateJobFile() never suggests a job as its own dependency", () => {
  const found = problems({ jobs: [{ id: "a", command: ["true"], after: ["b"] }] });
  assert.deepStrictEqual(found, ['jobs[0].after[0]: unknown job "b"']);
  const near = problems({
    jobs: [{ id: "ab", command: ["true"], after: ["ac"] }, { id: "ad", command: ["true"] }],
  });
  assert.deepStrictEqual(near, ['jobs[0].after[0]: unknown job "ac"; did you mean "ad"?']);
});

Deno.test("readJobFile() reads a file that starts with a UTF-8 byte-order mark", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, '\uFEFF{ "jobs": [] }');
    assert.deepStrictEqual(await readJobFile(path), { jobs: [] });
  } finally {
    await Deno.remove(path);
  }
});
