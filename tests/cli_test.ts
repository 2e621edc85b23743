import assert from "node:assert";
import { withDir } from "./_temp.ts";

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
        { id: "c", task: "#recrod" },
      ],
    });
    const run = await cli([path]);
    assert.strictEqual(run.code, 2);
    assert.match(run.stderr, /problem/);
    assert.match(run.stderr, /jobs\[1\]\.after\[0\]: unknown job "thumb-9"/);
    await Deno.writeTextFile(
      path,
      (await Deno.readTextFile(path)).replace('"thumb-9"', '"writes"'),
    );
    const again = await cli([path]);
    assert.strictEqual(again.code, 2);
    assert.match(
      again.stderr,
      /jobs\[2\]\.task: .*has no exported function "recrod"; did you mean "record"\?/,
    );
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
    const started = performance.now();
    const run = await cli(["--json", path]);
    assert(performance.now() - started < 4000, "the timeouts cut the waits short");
    assert.strictEqual(run.code, 1);
    const byId = new Map(jsonLines(run.stdout).map((r) => [r.id, r]));
    assert.strictEqual(byId.get("slow-task")!.status, "failed");
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
    assert.match(lines.find((l) => l.includes(" s350 "))!, /^ok s350 \(3\d\d ms\)$/);
    assert.match(
      lines.find((l) => l.includes(" broken "))!,
      /^FAILED broken \(\d+ ms\): .*it broke/,
    );
    assert.strictEqual(
      lines.find((l) => l.includes(" needs-broken")),
      'skipped needs-broken: skipped: "broken" failed',
    );
    assert.match(run.stderr, /\n7 jobs: 4 succeeded, 2 failed, 1 skipped in \d+\.\d\d s\n/);
    assert.match(run.stderr, /\nslowest: s600 6\d\d ms, s350 3\d\d ms, s100 1\d\d ms\n/);
    assert.match(run.stderr, /\nfailed broken after 1 attempt\(s\): .*it broke\n/);
    assert.match(run.stderr, /\nfailed exits-3 after 1 attempt\(s\): .*3\n {4}last words\n/);
  });
});

Deno.test("cli: --fail-fast starts nothing new after the first failure", async () => {
  await withDir(async (dir) => {
    const path = await jobFile(dir, {
      workers: 1,
      jobs: [
        { id: "boom", task: "#fail", args: ["boom"] },
        ...Array.from(
          { length: 5 },
          (_, i) => ({ id: `later${i}`, task: "#noop", args: [i], after: ["boom"] }),
        ),
        { id: "independent", task: "#sleep", args: [200], priority: -1 },
      ],
    });
    const run = await cli(["--json", "--fail-fast", "--capacity", "1", path]);
    assert.strictEqual(run.code, 1);
    const statuses = jsonLines(run.stdout).map((r) => r.status);
    assert.strictEqual(statuses.length, 7, "every job reported once");
    assert(statuses.includes("not-run") || statuses.filter((s) => s === "skipped").length === 5);
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
  const results = await new Scheduler(checked.file, {
    workers: 1,
    onFinish: (result) => {
      // A slow callback (a user's hook, a blocked write) between a's end and b's start.
      if (result.id !== "a") return;
      const until = performance.now() + 200;
      while (performance.now() < until) { /* busy */ }
    },
  }).run();
  const b = results[1];
  const ran = b.result as number;
  // A clock read before the callback would put b's start ~200 ms early and
  // its duration at ~300 ms; the bounds leave room for a loaded machine.
  assert(ran - b.start! < 100, `start ${ran - b.start!} ms before the task ran`);
  assert(b.duration! >= 100 && b.duration! < 280, `duration ${b.duration} ms for a 100 ms task`);
});

// -- Signals --

/** Starts the CLI, waits until `ready(stderr)` holds, sends `signals` SIGINTs, and collects the end. */
async function interrupt(
  args: string[],
  ready: (stderr: string) => boolean | Promise<boolean>,
  signals: number,
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stdoutText = new Response(child.stdout).text();
  let stderr = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      stderr += value;
    }
  })();
  const deadline = performance.now() + 20_000;
  while (!(await ready(stderr))) {
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      assert.fail(`never ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  for (let i = 0; i < signals; i++) {
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 150));
  }
  const status = await child.status;
  await rest;
  return { code: status.code, stdout: await stdoutText, stderr };
}

Deno.test("cli: SIGINT lets queued and running jobs finish, reports the rest not run, exits 130", async () => {
  await withDir(async (dir) => {
    const jobs = [
      { id: "first", task: "#record", args: [`${dir}/log`, "first"] },
      ...Array.from(
        { length: 12 },
        (_, i) => ({
          id: `s${i}`,
          task: "#sleep",
          args: [300, `${dir}/log`, `s${i}`],
          after: ["first"],
        }),
      ),
    ];
    const path = await jobFile(dir, { workers: 2, capacity: 2, jobs });
    const run = await interrupt(["--json", path], (stderr) => /ok first/.test(stderr), 1);
    assert.strictEqual(run.code, 130, run.stderr);
    const results = jsonLines(run.stdout);
    assert.strictEqual(results.length, 13, "every job reported once");
    assert.strictEqual(new Set(results.map((r) => r.id)).size, 13);
    const succeeded = results.filter((r) => r.status === "succeeded").map((r) => r.id);
    const notRun = results.filter((r) => r.status === "not-run");
    assert(notRun.length > 0, "some never started");
    assert.strictEqual(succeeded.length + notRun.length, 13, JSON.stringify(results));
    const ran = (await Deno.readTextFile(`${dir}/log`)).trim().split("\n");
    assert.deepStrictEqual(new Set(ran), new Set(succeeded), "whatever started, finished");
  });
});

Deno.test("cli: a second SIGINT cancels running commands and leaves no child behind", async () => {
  await withDir(async (dir) => {
    const marker = `taskpool-test-${crypto.randomUUID()}`;
    const jobs = Array.from({ length: 3 }, (_, i) => ({
      id: `c${i}`,
      command: ["sh", "-c", `touch ${dir}/started-${i}; sleep 30; echo ${marker}`],
    }));
    const path = await jobFile(dir, { workers: 3, jobs });
    const started = performance.now();
    const allStarted = async () => {
      for (let i = 0; i < 3; i++) {
        try {
          await Deno.stat(`${dir}/started-${i}`);
        } catch {
          return false;
        }
      }
      return true;
    };
    const run = await interrupt(["--json", path], allStarted, 2);
    assert(performance.now() - started < 15_000, "did not wait for the commands' 30 s");
    assert.strictEqual(run.code, 130, run.stderr);
    const results = jsonLines(run.stdout);
    assert.deepStrictEqual(results.map((r) => r.status), ["cancelled", "cancelled", "cancelled"]);
    const left = await new Deno.Command("pgrep", { args: ["-f", marker], stdout: "piped" })
      .output();
    assert.strictEqual(left.code, 1, `children left: ${decoder.decode(left.stdout)}`);
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
async function alive(marker: string): Promise<string> {
  const found = await new Deno.Command("pgrep", { args: ["-af", marker], stdout: "piped" })
    .output();
  return decoder.decode(found.stdout).trim();
}

Deno.test("cli: the first SIGINT withdraws jobs no worker started; only running ones finish", async () => {
  await withDir(async (dir) => {
    const log = `${dir}/log`;
    const jobs = Array.from({ length: 40 }, (_, i) => ({
      id: `s${i}`,
      task: "#span",
      args: [300, log, `s${i}`],
    }));
    const path = await jobFile(dir, { workers: 2, jobs });
    const run = await interrupt(["--json", path], (stderr) => /ok s\d+/.test(stderr), 1);
    assert.strictEqual(run.code, 130, run.stderr);
    assert.match(run.stderr, /stopping: \d running jobs? finishing, nothing new starts/);
    const results = jsonLines(run.stdout);
    assert.strictEqual(results.length, 40, "every job reported once");
    const events = await spans(log);
    const started = new Set(events.filter(([e]) => e === "start").map(([, id]) => id));
    const ended = new Set(events.filter(([e]) => e === "end").map(([, id]) => id));
    for (const result of results) {
      if (result.status === "succeeded") {
        assert(ended.has(result.id as string), `${result.id} succeeded without running`);
      } else {
        assert.strictEqual(result.status, "not-run", JSON.stringify(result));
        assert(!started.has(result.id as string), `${result.id} is not-run but ran`);
      }
    }
    assert.deepStrictEqual(started, ended, "whatever started, finished");
    // Queued jobs used to run after the first signal: the 2 + 64 handed to the pool.
    assert(started.size <= 10, `${started.size} jobs ran after an early stop`);
  });
});

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
    const run = await interrupt(["--json", path], bothStarted, 2);
    assert.strictEqual(run.code, 130, run.stderr);
    const status = Object.fromEntries(jsonLines(run.stdout).map((r) => [r.id, r.status]));
    assert.deepStrictEqual(status, {
      leaves: "succeeded",
      orphan: "cancelled",
      plain: "cancelled",
    });
    assert.strictEqual(await alive(tag), "", "processes of the jobs outlived the CLI");
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
