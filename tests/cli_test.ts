import assert from "node:assert";
import { withDir } from "./_temp.ts";
import { eventually } from "./_gate.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Writes a job file (tasks named `#name` resolve to the fixture module) into `dir`. */
async function jobFile(dir: string, data: Record<string, unknown>): Promise<string> {
  const text = JSON.stringify(data).replaceAll('"#', `"${TASKS}#`);
  const path = `${dir}/jobs.json`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** Runs the CLI to its end. */
async function cli(args: string[], cwd?: string): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A CLI process whose output the test reads as it comes. */
interface Live {
  child: Deno.ChildProcess;
  /** What it wrote so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Waits until `check` holds (kills the process and fails after 30 s). */
  until(what: string, check: () => boolean | Promise<boolean>): Promise<void>;
  /** Waits for the process to end. */
  end(): Promise<Run>;
}

/** Starts the CLI (or `command`, e.g. `script` around it) and collects its output as it comes. */
function live(args: string[], command = Deno.execPath()): Live {
  const child = new Deno.Command(command, {
    args: command === Deno.execPath() ? ["run", "-A", CLI, ...args] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const out = { stdout: "", stderr: "" };
  const read = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) out[key] += chunk;
  };
  const reading = Promise.all([read(child.stdout, "stdout"), read(child.stderr, "stderr")]);
  return {
    child,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    async until(what, check) {
      try {
        await eventually(what, check);
      } catch (error) {
        child.kill("SIGKILL");
        throw new Error(`${(error as Error).message}; stderr: ${out.stderr}`);
      }
    },
    async end() {
      const status = await child.status;
      await reading;
      return { code: status.code, ...out };
    },
  };
}

/** Whether a file exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The JSON Lines of a `--json` run, one per job. */
function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split("\n").filter((l) => l !== "").map((line) => JSON.parse(line));
}

// -- Usage --

Deno.test("cli: --help and --version exit 0; a bad flag or no file prints usage and exits 2", async () => {
  const help = await cli(["--help"]);
  assert.strictEqual(help.code, 0);
  assert.match(help.stdout, /Usage: taskpool/);
  assert.match((await cli(["--version"])).stdout, /^taskpool \d+\.\d+\.\d+/);
  for (
    const args of [["--nope", "x.json"], [], ["a.json", "b.json"], ["--workers", "0", "x.json"], [
      "--grace",
      "soon",
      "x",
    ]]
  ) {
    const run = await cli(args);
    assert.strictEqual(run.code, 2, args.join(" "));
    assert.match(run.stderr, /taskpool: /);
  }
  assert.match((await cli(["--nope", "x.json"])).stderr, /Usage: taskpool/);
});

// -- Validation --

Deno.test("cli: an invalid job file exits 2, lists every problem and runs nothing", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [
        { id: "writes", task: "#record", args: [`${dir}/log`, "writes"] },
        { id: "b", command: ["true"], after: ["thumb-9"] },
        { id: "c", task: "#recrod", timeout: "soon" },
        { id: "d", task: "#nothingHere" },
      ],
    });
    const run = await cli([path]);
    assert.strictEqual(run.code, 2);
    // Both problems of the file in one run: the check does not stop at the first.
    assert.match(run.stderr, /: 2 problems; nothing was run\n/);
    assert.match(run.stderr, /\n {2}jobs\[1\]\.after\[0\]: unknown job "thumb-9"/);
    assert.match(run.stderr, /\n {2}jobs\[2\]\.timeout: /);
    // The task modules are checked once the rest of the file is valid: both problems again.
    await Deno.writeTextFile(
      path,
      (await Deno.readTextFile(path)).replace('"thumb-9"', '"writes"').replace(
        ',"timeout":"soon"',
        "",
      ),
    );
    const again = await cli([path]);
    assert.strictEqual(again.code, 2);
    assert.match(again.stderr, /: 2 problems; nothing was run\n/);
    assert.match(
      again.stderr,
      /\n {2}jobs\[2\]\.task: .*has no exported function "recrod"; did you mean "record"\?/,
    );
    assert.match(again.stderr, /\n {2}jobs\[3\]\.task: .*"nothingHere"/);
    await assert.rejects(Deno.stat(`${dir}/log`), Deno.errors.NotFound, "nothing ran");
  });
});

Deno.test("cli: a missing file, a directory, bad JSON each get one line and exit 2", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.json`, '{ "jobs": [ }');
    for (
      const [path, message] of [[`${dir}/none.json`, /no such file/], [dir, /is a directory/], [
        `${dir}/bad.json`,
        /not valid JSON.*line 1, column/,
      ]] as const
    ) {
      const run = await cli([path]);
      assert.strictEqual(run.code, 2);
      assert.match(run.stderr, message);
      assert.strictEqual(run.stderr.trim().split("\n").length, 1, run.stderr);
      assert(!run.stderr.includes("    at "), "no stack trace");
    }
  });
});

Deno.test("cli: --dry-run prints the plan and runs nothing", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [
        { id: "b", task: "#record", args: [`${dir}/log`, "b"], after: ["a"] },
        { id: "a", task: "#record", args: [`${dir}/log`, "a"] },
      ],
    });
    const run = await cli(["--dry-run", path]);
    assert.strictEqual(run.code, 0);
    assert.match(run.stdout, /2 jobs in 2 levels:\n {2}1\. a\n {2}2\. b/);
    await assert.rejects(Deno.stat(`${dir}/log`), Deno.errors.NotFound);
  });
});

// -- Running --

Deno.test("cli: dependencies and priorities decide the start order", async () => {
  await withDir(async (dir) => {
    const log = `${dir}/log`;
    const path = await jobFile(dir, {
      workers: 1,
      jobs: [
        { id: "low", task: "#record", args: [log, "low"] },
        { id: "high", task: "#record", args: [log, "high"], priority: 10 },
        {
          id: "after-low",
          task: "#record",
          args: [log, "after-low"],
          after: ["low"],
          priority: 100,
        },
        { id: "mid", task: "#record", args: [log, "mid"], priority: 5 },
      ],
    });
    const run = await cli(["--capacity", "1", path]);
    assert.strictEqual(run.code, 0, run.stderr);
    assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), [
      "high",
      "mid",
      "low",
      "after-low",
    ]);
  });
});

Deno.test("cli: retries then success, retries exhausted, dependents skipped, exit 1", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      defaults: { backoff: "10ms" },
      jobs: [
        { id: "recovers", task: "#flaky", args: [`${dir}/c1`, 2], retries: 2 },
        { id: "gives-up", task: "#flaky", args: [`${dir}/c2`, 5], retries: 1 },
        { id: "needs-it", task: "#noop", args: [1], after: ["gives-up"] },
        { id: "needs-that", task: "#noop", args: [1], after: ["needs-it"] },
      ],
    });
    const run = await cli(["--json", path]);
    assert.strictEqual(run.code, 1);
    const byId = new Map(jsonLines(run.stdout).map((r) => [r.id, r]));
    assert.deepStrictEqual([byId.get("recovers")!.status, byId.get("recovers")!.attempts], [
      "succeeded",
      3,
    ]);
    assert.deepStrictEqual([byId.get("gives-up")!.status, byId.get("gives-up")!.attempts], [
      "failed",
      2,
    ]);
    assert.match(String(byId.get("gives-up")!.error), /flaky failure 2/);
    assert.strictEqual(byId.get("needs-it")!.status, "skipped");
    assert.strictEqual(byId.get("needs-that")!.status, "skipped");
    assert.match(run.stderr, /gives-up after 2 attempt\(s\): flaky failure 2/);
  });
});

Deno.test("cli: timeouts fail a task and a command; command exit codes and output are reported", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [
        { id: "slow-task", task: "#sleep", args: [5000], timeout: "100ms" },
        { id: "slow-command", command: ["sleep", "5"], timeout: 100 },
        { id: "loud", command: ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"] },
        { id: "fine", command: ["sh", "-c", "echo fine"] },
        { id: "nowhere", command: ["no-such-program-taskpool"] },
      ],
    });
    const run = await cli(["--json", path]);
    assert.strictEqual(run.code, 1);
    const byId = new Map(jsonLines(run.stdout).map((r) => [r.id, r]));
    // Left alone, both would succeed: failed with these errors, the timeouts cut them short.
    assert.strictEqual(byId.get("slow-task")!.status, "failed");
    assert.strictEqual(byId.get("slow-command")!.status, "failed");
    assert.match(String(byId.get("slow-task")!.error), /timed out after 100 ms/);
    assert.match(String(byId.get("slow-command")!.error), /timed out after 100 ms/);
    assert.strictEqual(byId.get("loud")!.exitCode, 3);
    assert.match(String(byId.get("loud")!.output), /to-out[\s\S]*to-err|to-err[\s\S]*to-out/);
    assert.deepStrictEqual([byId.get("fine")!.status, byId.get("fine")!.output], [
      "succeeded",
      "fine",
    ]);
    assert.match(
      String(byId.get("nowhere")!.error),
      /cannot run "no-such-program-taskpool": not found/,
    );
  });
});

Deno.test("cli: --json writes one parseable line per job and nothing else on stdout", async () => {
  await withDir(async (dir) => {
    const jobs = Array.from({ length: 30 }, (_, i) => ({ id: `j${i}`, task: "#noop", args: [i] }));
    const path = await jobFile(dir, { jobs });
    const run = await cli(["--json", path]);
    assert.strictEqual(run.code, 0);
    const lines = jsonLines(run.stdout);
    assert.strictEqual(lines.length, 30);
    assert.deepStrictEqual(new Set(lines.map((l) => l.id)), new Set(jobs.map((j) => j.id)));
    for (const line of lines) {
      assert.strictEqual(line.status, "succeeded");
      assert.strictEqual(line.result, Number(String(line.id).slice(1)));
      assert.strictEqual(typeof line.start, "number");
      assert.strictEqual(typeof line.duration, "number");
    }
    assert.match(run.stderr, /30 jobs: 30 succeeded/);
  });
});

Deno.test("cli: a line per job, then a summary by status with the three slowest and each failure", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      workers: 6,
      jobs: [
        { id: "quick", task: "#noop", args: [1] },
        { id: "s100", task: "#sleep", args: [100] },
        { id: "s600", task: "#sleep", args: [600] },
        { id: "s350", task: "#sleep", args: [350] },
        { id: "broken", task: "#fail", args: ["it broke"] },
        { id: "needs-broken", task: "#noop", args: [1], after: ["broken"] },
        { id: "exits-3", command: ["sh", "-c", "echo last words; exit 3"] },
      ],
    });
    const run = await cli([path]);
    assert.strictEqual(run.code, 1, run.stderr);
    const lines = run.stderr.trim().split("\n");
    // A duration as the report writes it: "352 ms", or "1.25 s" from a second on.
    const time = String.raw`(\d+ ms|\d+\.\d\d s)`;
    const ms = (text: string) => text.endsWith(" ms") ? parseInt(text) : parseFloat(text) * 1000;
    const durations = new Map<string, number>();
    for (const line of lines) {
      const m = new RegExp(`^(?:ok|FAILED) (\\S+) \\(${time}\\)`).exec(line);
      if (m) durations.set(m[1], ms(m[2]));
    }
    assert.deepStrictEqual(
      [...durations.keys()].sort(),
      ["broken", "exits-3", "quick", "s100", "s350", "s600"],
      run.stderr,
    );
    assert.match(lines.find((l) => l.includes(" s350 "))!, new RegExp(`^ok s350 \\(${time}\\)$`));
    assert.match(
      lines.find((l) => l.includes(" broken "))!,
      new RegExp(`^FAILED broken \\(${time}\\): .*it broke`),
    );
    assert.strictEqual(
      lines.find((l) => l.includes(" needs-broken")),
      'skipped needs-broken: skipped: "broken" failed',
    );
    assert.match(run.stderr, /\n7 jobs: 4 succeeded, 2 failed, 1 skipped in \d+\.\d\d s\n/);
    // The slowest three, longest first, as measured: whatever the machine's load
    // made of them, they are the three largest durations of the lines above.
    const slowest = new RegExp(`\\nslowest: (\\S+) ${time}, (\\S+) ${time}, (\\S+) ${time}\\n`)
      .exec(run.stderr);
    assert(slowest, run.stderr);
    const top = [1, 3, 5].map((i) => [slowest[i], ms(slowest[i + 1])] as const);
    for (const [id, took] of top) assert.strictEqual(took, durations.get(id), id);
    const expected = [...durations.values()].sort((a, b) => b - a).slice(0, 3);
    assert.deepStrictEqual(top.map(([, took]) => took), expected);
    // Each sleep lasted at least its time (timers may fire a millisecond early).
    for (const [id, least] of [["s600", 595], ["s350", 345], ["s100", 95]] as const) {
      assert(durations.get(id)! >= least, `${id} took ${durations.get(id)} ms`);
    }
    assert.match(run.stderr, /\nfailed broken after 1 attempt\(s\): .*it broke\n/);
    assert.match(run.stderr, /\nfailed exits-3 after 1 attempt\(s\): .*3\n {4}last words\n/);
  });
});

Deno.test("cli: --fail-fast starts nothing new after the first failure", async () => {
  await withDir(async (dir) => {
    // "hold" runs, waiting for a gate; "boom" fails once the test lets it, and
    // "hold" is let go only once boom's failure is reported. The "then" jobs
    // depend on "hold", not on "boom": only fail-fast keeps them from running.
    const path = await jobFile(dir, {
      workers: 2,
      jobs: [
        {
          id: "boom",
          command: ["sh", "-c", `until [ -e ${dir}/boom-gate ]; do sleep 0.01; done; exit 3`],
        },
        { id: "hold", task: "#gated", args: [`${dir}/gate`, "held", `${dir}/hold-started`] },
        ...Array.from({ length: 3 }, (_, i) => ({
          id: `then${i}`,
          task: "#noop",
          args: [i],
          after: ["hold"],
        })),
      ],
    });
    const statuses = async (flags: string[]) => {
      for (const file of ["gate", "boom-gate", "hold-started"]) {
        await Deno.remove(`${dir}/${file}`).catch(() => {});
      }
      const run = live(["--json", ...flags, path]);
      await run.until("hold running", () => exists(`${dir}/hold-started`));
      await Deno.writeTextFile(`${dir}/boom-gate`, "");
      await run.until("boom's failure", () => /"id":"boom","status":"failed"/.test(run.stdout));
      await Deno.writeTextFile(`${dir}/gate`, "");
      const end = await run.end();
      assert.strictEqual(end.code, 1, end.stderr);
      const results = jsonLines(end.stdout);
      assert.strictEqual(results.length, 5, "every job reported once");
      return Object.fromEntries(results.map((r) => [r.id, r.status]));
    };
    assert.deepStrictEqual(await statuses(["--fail-fast"]), {
      boom: "failed",
      hold: "succeeded", // running when boom failed: it finishes
      then0: "not-run",
      then1: "not-run",
      then2: "not-run",
    });
    // The same file without the flag runs them: the flag made the difference.
    assert.deepStrictEqual(await statuses([]), {
      boom: "failed",
      hold: "succeeded",
      then0: "succeeded",
      then1: "succeeded",
      then2: "succeeded",
    });
  });
});

Deno.test("Scheduler: a failed first job of a 20,000-job chain skips the rest without overflowing", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  const jobs = Array.from({ length: 20_000 }, (_, i) => ({
    id: `j${i}`,
    command: i === 0 ? ["false"] : ["true"],
    ...(i > 0 ? { after: [`j${i - 1}`] } : {}),
  }));
  const checked = validateJobFile({ jobs }, "/tmp/jobs.json");
  assert(checked.ok);
  const results = await new Scheduler(checked.file, { workers: 1 }).run();
  assert.strictEqual(results[0].status, "failed");
  assert.strictEqual(results.filter((r) => r.status === "skipped").length, 19_999);
  assert.match(results[1].error!, /"j0" failed/);
  assert.match(results[2].error!, /"j1" was skipped/);
});

Deno.test("Scheduler: jobs that become ready later go before ready ones of lower priority or later in the file", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  const task = `${TASKS}#noop`;
  const checked = validateJobFile({
    jobs: [
      { id: "a", task, args: [1] },
      { id: "b", task, args: [1] },
      { id: "c", task, args: [1] },
      { id: "d", task, args: [1] },
      { id: "x", task, args: [1], after: ["a"], priority: 5 },
      { id: "y", task, args: [1], after: ["b"] },
      { id: "e", task, args: [1] },
    ],
  }, "/tmp/jobs.json");
  assert(checked.ok);
  const started: string[] = [];
  // One worker, one queued task: two jobs at a time, the rest wait in the scheduler.
  const results = await new Scheduler(checked.file, {
    workers: 1,
    capacity: 1,
    onStart: (job) => started.push(job.id),
  }).run();
  assert(results.every((r) => r.status === "succeeded"));
  // x (priority 5) overtakes c, d and e; y (file position 5) waits for c and d but goes before e.
  assert.deepStrictEqual(started, ["a", "b", "x", "c", "d", "y", "e"]);
});

Deno.test("Scheduler: a job whose arguments cannot be sent fails alone; a filtered file runs its own jobs", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  const task = `${TASKS}#noop`;
  const checked = validateJobFile({
    jobs: [
      { id: "left-out", task, args: [0] },
      { id: "fn", task, args: [() => 1] },
      ...Array.from({ length: 200 }, (_, i) => ({ id: `n${i}`, task, args: [i] })),
      { id: "orphan", task, args: [1], after: ["left-out"] },
    ],
  }, "/tmp/jobs.json");
  assert(checked.ok);
  const file = { ...checked.file, jobs: checked.file.jobs.slice(1) };
  const results = await new Scheduler(file, { workers: 2, capacity: 2 }).run();
  assert.strictEqual(results.length, 202);
  assert.strictEqual(results[0].id, "fn");
  assert.strictEqual(results[0].status, "failed");
  assert.match(results[0].error!, /Cannot send the task's arguments/);
  results.slice(1, 201).forEach((r, i) => {
    assert.deepStrictEqual([r.id, r.status, r.result], [`n${i}`, "succeeded", i]);
  });
  // Its dependency is not in the file: it never becomes ready.
  assert.deepStrictEqual(
    [results[201].id, results[201].status, results[201].error],
    ["orphan", "not-run", "never became ready"],
  );
});

Deno.test("Scheduler: a start time and a duration are the job's own, however long a callback before it took", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  const checked = validateJobFile({
    jobs: [
      { id: "a", task: `${TASKS}#noop`, args: [1] },
      { id: "b", task: `${TASKS}#stamp`, args: [100], after: ["a"] },
    ],
  }, "/tmp/jobs.json");
  assert(checked.ok);
  let callbackEnded = 0;
  let bReported = 0;
  const results = await new Scheduler(checked.file, {
    workers: 1,
    onFinish: (result) => {
      if (result.id === "b") bReported = Date.now();
      // A slow callback (a user's hook, a blocked write) between a's end and b's start.
      if (result.id !== "a") return;
      const until = performance.now() + 200;
      while (performance.now() < until) { /* busy */ }
      callbackEnded = Date.now();
    },
  }).run();
  const b = results[1];
  // Order, not bounds: a clock read before the callback would put b's start
  // before the callback's end (and its duration would include the callback).
  assert(b.start! >= callbackEnded, `b started ${callbackEnded - b.start!} ms before it could`);
  // (start is Date.now(), in whole ms; the duration is measured finer.)
  assert(b.start! + b.duration! <= bReported + 1, "b's duration runs past its report");
  assert(b.duration! >= 95, `duration ${b.duration} ms for a 100 ms task`);
});

// -- Signals --

/** The first line a stopping run writes (then how many jobs still run). */
const STOPPING = "taskpool: stopping: ";

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`cli: ${signal} lets running jobs finish, withdraws queued ones, reports them not run, exits 130`, async () => {
    await withDir(async (dir) => {
      // The "s" jobs hold until the test opens the gate, after the signal was
      // taken: those started by then finish, the others never start.
      const jobs = [
        { id: "first", task: "#record", args: [`${dir}/log`, "first"] },
        ...Array.from({ length: 12 }, (_, i) => ({
          id: `s${i}`,
          task: "#gated",
          args: [`${dir}/gate`, i, `${dir}/started-s${i}`],
          after: ["first"],
        })),
      ];
      const path = await jobFile(dir, { workers: 2, capacity: 2, jobs });
      const run = live(["--json", path]);
      await run.until("two jobs running", async () => {
        return (await Array.fromAsync(Deno.readDir(dir))).filter((e) =>
          e.name.startsWith("started-")
        ).length >= 2;
      });
      run.child.kill(signal);
      await run.until("the stop", () => run.stderr.includes(STOPPING));
      assert.match(run.stderr, /stopping: 2 running jobs finishing, nothing new starts/);
      await Deno.writeTextFile(`${dir}/gate`, "");
      const end = await run.end();
      assert.strictEqual(end.code, 130, end.stderr);
      const results = jsonLines(end.stdout);
      assert.strictEqual(results.length, 13, "every job reported once");
      assert.strictEqual(new Set(results.map((r) => r.id)).size, 13);
      const succeeded = results.filter((r) => r.status === "succeeded").map((r) => r.id);
      const notRun = results.filter((r) => r.status === "not-run");
      // "first" and the two running; the tasks queued in the pool were withdrawn.
      assert.strictEqual(succeeded.length, 1 + 2, JSON.stringify(results));
      assert.strictEqual(succeeded.length + notRun.length, 13, JSON.stringify(results));
      const started = (await Array.fromAsync(Deno.readDir(dir)))
        .filter((e) => e.name.startsWith("started-")).map((e) => e.name.slice(8));
      assert.deepStrictEqual(
        new Set(started),
        new Set(succeeded.filter((id) => id !== "first")),
        "whatever started, finished",
      );
    });
  });
}

/** The pids in `dir/<name>` files (one each) for these names. */
async function pids(dir: string, names: string[]): Promise<number[]> {
  return await Promise.all(names.map(async (n) => Number(await Deno.readTextFile(`${dir}/${n}`))));
}

/** Whether a process is alive (a zombie, waiting to be reaped, is not). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("cli: a second SIGINT cancels running commands and leaves no child behind", async () => {
  await withDir(async (dir) => {
    const marker = `taskpool-test-${crypto.randomUUID()}`;
    // Each command is a shell that starts a shell that starts a sleep: the
    // sleep is a grandchild, and each level writes its pid.
    const jobs = Array.from({ length: 3 }, (_, i) => ({
      id: `c${i}`,
      command: [
        "sh",
        "-c",
        `echo $$ > ${dir}/outer-${i}; ` +
        `sh -c 'echo $$ > ${dir}/inner-${i}; sleep 30 & echo $! > ${dir}/sleep-${i}; wait'; ` +
        `echo ${marker}`,
      ],
    }));
    const path = await jobFile(dir, { workers: 3, jobs });
    const names = [0, 1, 2].flatMap((i) => [`outer-${i}`, `inner-${i}`, `sleep-${i}`]);
    const run = live(["--json", path]);
    let all: number[] = [];
    try {
      await run.until("every sleep started", async () => {
        for (const name of names) if (!(await exists(`${dir}/${name}`))) return false;
        return (await pids(dir, names)).every((pid) => pid > 0);
      });
      all = await pids(dir, names);
      run.child.kill("SIGINT");
      await run.until("the stop", () => run.stderr.includes(STOPPING));
      run.child.kill("SIGINT");
      const end = await run.end();
      assert.strictEqual(end.code, 130, end.stderr);
      const results = jsonLines(end.stdout);
      assert.deepStrictEqual(results.map((r) => r.status), ["cancelled", "cancelled", "cancelled"]);
      // Signals take a moment to land: wait for the processes to go (they
      // would live 30 s), then ask pgrep too.
      await eventually("every process of the commands to end", () => !all.some(alive), 10_000)
        .catch(() => assert.fail(`left behind: ${all.filter(alive)} of ${all}`));
      const left = await new Deno.Command("pgrep", { args: ["-f", marker], stdout: "piped" })
        .output();
      assert.strictEqual(left.code, 1, `children left: ${decoder.decode(left.stdout)}`);
    } finally {
      for (const pid of all.filter(alive)) Deno.kill(pid, "SIGKILL");
    }
  });
});

// -- Stops, processes and reports tell the truth --

/** The "start <id>" and "end <id>" lines of a span log, in order. */
async function spans(log: string): Promise<Array<["start" | "end", string]>> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.trim().split("\n").filter((l) => l !== "").map((line) => {
    const [event, id] = line.split(" ");
    return [event as "start" | "end", id];
  });
}

/** The most spans of a log that were open at once. */
function mostAtOnce(events: Array<["start" | "end", string]>): number {
  let open = 0;
  let most = 0;
  for (const [event] of events) {
    open += event === "start" ? 1 : -1;
    most = Math.max(most, open);
  }
  return most;
}

/** Whether a process whose command line holds `marker` still runs (zombies have none). */
async function processesWith(marker: string): Promise<string> {
  const found = await new Deno.Command("pgrep", { args: ["-af", marker], stdout: "piped" })
    .output();
  return decoder.decode(found.stdout).trim();
}

Deno.test("cli: a terminal's Ctrl-C (to the whole process group) reaches the CLI, not its commands", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [{
        id: "slow",
        command: ["sh", "-c", `touch ${dir}/started; sleep 1; echo done > ${dir}/done`],
      }],
    });
    // The CLI leads a group of its own, as a shell's foreground job does.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "--json", path],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      detached: true,
    }).spawn();
    const output = child.output();
    for (let i = 0; i < 2000; i++) {
      if (await Deno.stat(`${dir}/started`).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    Deno.kill(-child.pid, "SIGINT");
    const run = await output;
    assert.strictEqual(run.code, 130, decoder.decode(run.stderr));
    const [result] = jsonLines(decoder.decode(run.stdout));
    assert.strictEqual(result.status, "succeeded", JSON.stringify(result));
    assert.strictEqual((await Deno.readTextFile(`${dir}/done`)).trim(), "done");
  });
});

Deno.test("cli: no process a command starts outlives it, reparented or not", async () => {
  await withDir(async (dir) => {
    const tag = `tp-${crypto.randomUUID().slice(0, 8)}`;
    const jobs = [
      // Exits at once, leaving a background sleep in its group.
      { id: "leaves", command: ["bash", "-c", `(exec -a ${tag}-a sleep 30) & echo started`] },
      // A grandchild reparented to init, then a cancel.
      {
        id: "orphan",
        command: [
          "bash",
          "-c",
          `((exec -a ${tag}-b sleep 30) &); touch ${dir}/b; sleep 30`,
        ],
      },
      // A plain long command, then a cancel.
      { id: "plain", command: ["bash", "-c", `touch ${dir}/c; exec -a ${tag}-c sleep 30`] },
    ];
    const path = await jobFile(dir, { workers: 3, jobs });
    const bothStarted = async () =>
      (await Deno.stat(`${dir}/b`).then(() => true, () => false)) &&
      (await Deno.stat(`${dir}/c`).then(() => true, () => false));
    const run = live(["--json", path]);
    // "leaves" must have ended before the first signal, the others be running.
    await run.until(
      "leaves ended, the others running",
      async () => run.stderr.includes("ok leaves") && await bothStarted(),
    );
    run.child.kill("SIGINT");
    await run.until("the stop", () => run.stderr.includes(STOPPING));
    run.child.kill("SIGINT");
    const end = await run.end();
    assert.strictEqual(end.code, 130, end.stderr);
    const status = Object.fromEntries(jsonLines(end.stdout).map((r) => [r.id, r.status]));
    assert.deepStrictEqual(status, {
      leaves: "succeeded",
      orphan: "cancelled",
      plain: "cancelled",
    });
    assert.strictEqual(await processesWith(tag), "", "processes of the jobs outlived the CLI");
  });
});

Deno.test("cli: tasks and commands together run at most `workers` at a time", async () => {
  await withDir(async (dir) => {
    const log = `${dir}/log`;
    const jobs = Array.from(
      { length: 8 },
      (_, i) =>
        i % 2 === 0 ? { id: `t${i}`, task: "#span", args: [200, log, `t${i}`] } : {
          id: `c${i}`,
          command: ["sh", "-c", `echo start c${i} >> ${log}; sleep 0.2; echo end c${i} >> ${log}`],
        },
    );
    const path = await jobFile(dir, { workers: 2, jobs });
    const run = await cli([path]);
    assert.strictEqual(run.code, 0, run.stderr);
    const events = await spans(log);
    assert.strictEqual(events.length, 16, JSON.stringify(events));
    assert.strictEqual(mostAtOnce(events), 2, JSON.stringify(events));
  });
});

Deno.test("Scheduler: a job's start is when it began to run, its duration its run, its wait before", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  await withDir(async (dir) => {
    const log = `${dir}/log`;
    const checked = validateJobFile({
      workers: 2,
      jobs: Array.from({ length: 10 }, (_, i) => ({
        id: `j${i}`,
        task: `${TASKS}#span`,
        args: [100, log, `j${i}`],
      })),
    }, `${dir}/jobs.json`);
    assert(checked.ok);
    const results = await new Scheduler(checked.file, { workers: 2 }).run();
    for (const r of results) {
      assert.strictEqual(r.status, "succeeded");
      assert(r.duration! >= 99, `${r.id} ran ${r.duration} ms, less than its 100 ms sleep`);
      assert(r.wait! >= 0, `${r.id} waited ${r.wait} ms`);
    }
    // Two workers: no instant is inside more than two jobs' [start, start + duration].
    // (With the time handed to the pool as start, and the wait in the duration, all ten were.)
    const edges = results.flatMap((r) => [
      [r.start! + 0.5, 1],
      [r.start! + r.duration! - 0.5, -1],
    ]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let most = 0;
    for (const [, step] of edges) most = Math.max(most, open += step);
    assert.strictEqual(most, 2, JSON.stringify(results.map((r) => [r.start, r.duration])));
    const last = results.reduce((a, b) => (a.start! > b.start! ? a : b));
    assert(last.wait! > last.duration!, `the last of 10 on 2 workers waited ${last.wait} ms`);
  });
});

Deno.test("Scheduler.running counts jobs a worker runs; waiting those queued in the pool", async () => {
  const { Scheduler, validateJobFile } = await import("../mod.ts");
  await withDir(async (dir) => {
    const checked = validateJobFile({
      jobs: Array.from({ length: 52 }, (_, i) => ({
        id: `j${i}`,
        task: `${TASKS}#span`,
        args: [20, `${dir}/log`, `j${i}`],
      })),
    }, `${dir}/jobs.json`);
    assert(checked.ok);
    const samples: Array<[number, number]> = [];
    const scheduler: InstanceType<typeof Scheduler> = new Scheduler(checked.file, {
      workers: 4,
      onFinish: () => samples.push([scheduler.running, scheduler.waiting]),
    });
    await scheduler.run();
    assert.strictEqual(samples.length, 52);
    assert(samples.every(([running]) => running <= 4), JSON.stringify(samples));
    assert(samples.some(([, waiting]) => waiting > 0), "never a job waiting in the pool");
  });
});

Deno.test("cli: a duration of 2^31 ms or more in a job file or a flag exits 2 naming the limit", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [{ id: "long", command: ["true"], timeout: "600h", backoff: "1000h" }],
    });
    const file = await cli([path]);
    assert.strictEqual(file.code, 2, file.stderr);
    assert.match(
      file.stderr,
      /jobs\[0\]\.timeout: the string "600h" is too long: .*at most 2147483647 ms/,
    );
    assert.match(file.stderr, /jobs\[0\]\.backoff: .*too long/);
    const ok = await jobFile(dir, { jobs: [{ id: "ok", command: ["true"] }] });
    const flag = await cli(["--grace", "600h", ok]);
    assert.strictEqual(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /--grace must be at most 2147483647 ms/);
  });
});

Deno.test("cli: a second SIGINT terminates running tasks; every job is reported once", async () => {
  await withDir(async (dir) => {
    // Tasks that would wait a minute for a gate nobody opens.
    const jobs = [
      ...Array.from({ length: 2 }, (_, i) => ({
        id: `t${i}`,
        task: "#gated",
        args: [`${dir}/never`, i, `${dir}/started-${i}`],
      })),
      { id: "later", task: "#noop", args: [1], after: ["t0"] },
    ];
    const path = await jobFile(dir, { workers: 2, jobs });
    const run = live(["--json", "--capacity", "1", path]);
    await run.until("both tasks running", async () => {
      return await exists(`${dir}/started-0`) && await exists(`${dir}/started-1`);
    });
    run.child.kill("SIGINT");
    await run.until("the stop", () => run.stderr.includes(STOPPING));
    run.child.kill("SIGINT");
    const end = await run.end();
    assert.strictEqual(end.code, 130, end.stderr);
    assert.match(end.stderr, /cancelling what still runs/);
    const status = Object.fromEntries(jsonLines(end.stdout).map((r) => [r.id, r.status]));
    assert.deepStrictEqual(status, { t0: "cancelled", t1: "cancelled", later: "not-run" });
  });
});

Deno.test("cli: --grace cancels running tasks once it runs out after the first signal", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      workers: 1,
      jobs: [{ id: "stuck", task: "#gated", args: [`${dir}/never`, 0, `${dir}/started`] }],
    });
    const run = live(["--json", "--grace", "200ms", path]);
    await run.until("the task running", () => exists(`${dir}/started`));
    run.child.kill("SIGTERM"); // one signal: only the grace can end the task
    const end = await run.end();
    assert.strictEqual(end.code, 130, end.stderr);
    assert.match(end.stderr, new RegExp(STOPPING));
    assert.doesNotMatch(end.stderr, /cancelling what still runs/, "no second signal was sent");
    const [result] = jsonLines(end.stdout);
    assert.deepStrictEqual([result.id, result.status], ["stuck", "cancelled"]);
  });
});

// -- Output on a terminal --

/** Runs the CLI in a pseudo-terminal (util-linux `script`) and returns what the terminal got. */
function inTerminal(path: string, noColor: boolean): Live {
  const env = noColor ? "env NO_COLOR=1" : "env -u NO_COLOR";
  const command = `${env} ${Deno.execPath()} run -A ${CLI} ${path}`;
  return live(["-qefc", command, "/dev/null"], "script");
}

for (const noColor of [false, true]) {
  Deno.test(`cli: on a terminal, a live progress line and a summary ${noColor ? "without colours under NO_COLOR" : "in colour"}`, async () => {
    await withDir(async (dir) => {
      const path = await jobFile(dir, {
        workers: 2,
        jobs: [
          { id: "held", task: "#gated", args: [`${dir}/gate`, 1] },
          { id: "broken", task: "#fail", args: ["it broke"] },
        ],
      });
      const run = inTerminal(path, noColor);
      // The progress line, redrawn in place: wait for it to show the failure, then let the run end.
      const progress =
        // deno-lint-ignore no-control-regex
        /\r\x1b\[2K1\/2 done, 1 running, 0 waiting, 1 failed, longest held (running|\d+%), \d+\.\d s, \d+\.\d\/s, ETA (\d+ s|\?)/;
      await run.until("the progress line", () => progress.test(run.stdout));
      await Deno.writeTextFile(`${dir}/gate`, "");
      const end = await run.end();
      assert.strictEqual(end.code, 1, end.stdout);
      const screen = end.stdout;
      assert.match(screen, /2 jobs: 1 succeeded, 1 failed in \d+\.\d\d s/);
      // No line per job on a terminal: the progress line stands for them.
      assert.doesNotMatch(screen, /^(ok|FAILED) /m);
      if (noColor) {
        // deno-lint-ignore no-control-regex
        assert.doesNotMatch(screen, /\x1b\[3\dm/, "no colour codes");
        assert.match(screen, /\nfailed broken after 1 attempt\(s\): .*it broke/);
      } else {
        // deno-lint-ignore no-control-regex
        assert.match(screen, /\x1b\[31mfailed\x1b\[0m broken after 1 attempt\(s\): .*it broke/);
      }
    });
  });
}

Deno.test("cli: --metrics serves the run's outcomes, running jobs and durations while it runs", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      jobs: [
        { id: "quick", task: "#noop", args: [1] },
        { id: "bad", task: "#fail", args: ["no"] },
        { id: "hold", task: "#gated", args: [`${dir}/gate`, "held", `${dir}/started`] },
      ],
    });
    const run = live(["--metrics", "127.0.0.1:0", "--workers", "2", path]);
    await run.until("the metrics address", () => /metrics on http:\S+/.test(run.stderr));
    const endpoint = /metrics on (http:\S+)/.exec(run.stderr)![1];
    const sample = (text: string, line: string) =>
      Number(new RegExp(`^${line.replace(/[{}"+]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
    let text = "";
    await run.until("two jobs to end while one runs", async () => {
      text = await (await fetch(endpoint)).text();
      return sample(text, 'taskpool_jobs_total{status="failed"}') === 1 &&
        sample(text, 'taskpool_jobs_total{status="succeeded"}') === 1 &&
        sample(text, "taskpool_jobs_running") === 1;
    });
    assert.match(text, /^# TYPE taskpool_jobs_total counter$/m);
    assert.match(text, /^# TYPE taskpool_job_duration_seconds histogram$/m);
    assert.strictEqual(sample(text, 'taskpool_job_duration_seconds_bucket{le="+Inf"}'), 2);
    assert.strictEqual(sample(text, "taskpool_job_duration_seconds_count"), 2);
    await Deno.writeTextFile(`${dir}/gate`, "");
    const { code, stderr } = await run.end();
    assert.strictEqual(code, 1, stderr); // one job failed
    // The server ended with the run: the port is free again.
    await assert.rejects(fetch(endpoint));
  });
});

Deno.test("cli: a bad --metrics address is a usage error naming the flag", async () => {
  const { code, stderr } = await cli(["--metrics", "9464", "jobs.json"]);
  assert.strictEqual(code, 2);
  assert.match(stderr, /--metrics must be host:port, such as 127\.0\.0\.1:9464/);
});

Deno.test("cli: --events adds a line per start and per progress change before the finish lines; the live line shows the longest job's progress", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      workers: 1,
      jobs: [{ id: "slow", task: "#reportThenWait", args: [0.4, `${dir}/gate`] }],
    });
    const run = live(["--json", "--events", path]);
    await run.until("the progress event", () => /"event":"progress"/.test(run.stdout));
    await Deno.writeTextFile(`${dir}/gate`, "");
    const { code, stdout } = await run.end();
    assert.strictEqual(code, 0);
    const lines = jsonLines(stdout);
    assert.deepStrictEqual(lines.map((l) => l.event ?? l.status), [
      "start",
      "progress",
      "succeeded",
    ]);
    assert.deepStrictEqual([lines[0].id, lines[0].attempt], ["slow", 1]);
    assert.deepStrictEqual([lines[1].id, lines[1].value], ["slow", 0.4]);

    const refused = await cli(["--events", path]);
    assert.strictEqual(refused.code, 2);
    assert.match(refused.stderr, /--events adds lines to --json's: give both/);

    await Deno.remove(`${dir}/gate`);
    const tty = inTerminal(path, true);
    await tty.until("the longest job's progress", () => /longest slow 40%/.test(tty.stdout));
    await Deno.writeTextFile(`${dir}/gate`, "");
    assert.strictEqual((await tty.end()).code, 0);
  });
});
