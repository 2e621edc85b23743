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
        target[pick(["id", "after", "task", "command", "extra", "0", "jobs"])] = pick(oddities);
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
