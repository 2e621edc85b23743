import assert from "node:assert";
import { type JobResult, Scheduler, validateJobFile } from "../mod.ts";
import { Finished, ManualClock } from "./_clock.ts";
import { withDir } from "./_temp.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const decoder = new TextDecoder();
/** A minute on the hour: ticks of "1s" fall on whole seconds from here. */
const T0 = Date.UTC(2026, 11, 1, 2, 0, 0);

/** A scheduler over `jobs` (tasks `#name` from the fixture) on a clock the test moves. */
function scheduler(jobs: Array<Record<string, unknown>>, clock: ManualClock, dir: string) {
  const data = JSON.parse(JSON.stringify({ jobs }).replaceAll('"#', `"${TASKS}#`));
  const checked = validateJobFile(data, `${dir}/jobs.json`);
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  const finished = new Finished<JobResult>();
  const s = new Scheduler(checked.file, { workers: 2, clock, onFinish: finished.onFinish });
  const results = (n: number) => finished.results(n);
  return { scheduler: s, results };
}

/** Waits until the file `path` has `n` lines. */
async function lines(path: string, n: number): Promise<string[]> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const text = await Deno.readTextFile(path).catch(() => "");
    const found = text.split("\n").filter((l) => l !== "");
    if (found.length >= n) return found;
    if (performance.now() > deadline) assert.fail(`${path} has ${found.length} of ${n} lines`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// -- Recurring jobs --

Deno.test("Scheduler: an every job runs once per tick, named by its tick, until stopped", async () => {
  await withDir(async (dir) => {
    const clock = new ManualClock(T0);
    const { scheduler: s, results } = scheduler(
      [{ id: "beat", every: "1s", task: "#noop", args: [1] }],
      clock,
      dir,
    );
    const done = s.run();
    for (let tick = 1; tick <= 5; tick++) {
      clock.advance(1000);
      await results(tick); // each run ends before the next tick
    }
    s.stop();
    const all = await done;
    assert.deepStrictEqual(
      all.map((r) => [r.id, r.status]),
      [1, 2, 3, 4, 5].map((k) => [`beat@${new Date(T0 + k * 1000).toISOString()}`, "succeeded"]),
    );
  });
});

Deno.test("Scheduler: overlap skip reports a tick skipped while the run before it runs", async () => {
  await withDir(async (dir) => {
    const clock = new ManualClock(T0);
    const log = `${dir}/log`;
    const { scheduler: s, results } = scheduler(
      [{ id: "slow", every: "1s", task: "#hold", args: [log, "run", `${dir}/release`] }],
      clock,
      dir,
    );
    const done = s.run();
    clock.advance(1000);
    await lines(log, 1); // the first run runs
    clock.advance(1000); // its next tick comes while it still runs
    const [skipped] = await results(1);
    assert.strictEqual(skipped.status, "skipped");
    assert.strictEqual(skipped.id, `slow@${new Date(T0 + 2000).toISOString()}`);
    await Deno.writeTextFile(`${dir}/release`, "");
    await results(2);
    s.stop();
    const all = await done;
    assert.deepStrictEqual(all.map((r) => r.status).sort(), ["skipped", "succeeded"]);
  });
});

Deno.test("Scheduler: overlap queue runs a tick after the run before it; allow runs them together", async () => {
  for (const overlap of ["queue", "allow"]) {
    await withDir(async (dir) => {
      const clock = new ManualClock(T0);
      const log = `${dir}/log`;
      const { scheduler: s, results } = scheduler(
        [{ id: "slow", every: "1s", overlap, task: "#hold", args: [log, "run", `${dir}/release`] }],
        clock,
        dir,
      );
      const done = s.run();
      clock.advance(1000);
      await lines(log, 1);
      clock.advance(1000);
      if (overlap === "allow") await lines(log, 2); // both run at once
      else {
        // The second waits for the first: still one start in the log.
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.strictEqual((await lines(log, 1)).length, 1, "queue started a second run early");
      }
      await Deno.writeTextFile(`${dir}/release`, "");
      await results(2);
      s.stop();
      const all = await done;
      assert.deepStrictEqual(all.map((r) => r.status), ["succeeded", "succeeded"], overlap);
      assert.strictEqual((await lines(log, 2)).length, 2);
    });
  }
});

Deno.test("Scheduler: ticks missed by a late timer: catchUp skip runs none, one runs one", async () => {
  for (const catchUp of ["skip", "one"]) {
    await withDir(async (dir) => {
      const clock = new ManualClock(T0);
      const { scheduler: s, results } = scheduler(
        [{ id: "beat", every: "1s", catchUp, task: "#noop", args: [1] }],
        clock,
        dir,
      );
      const done = s.run();
      // The timer of the first tick fires 5.5 s late (a machine asleep).
      assert.strictEqual(clock.pending, 1);
      clock.jump(6500);
      clock.advance(0);
      if (catchUp === "one") {
        const [run] = await results(1);
        assert.strictEqual(run.id, `beat@${new Date(T0 + 6000).toISOString()}`);
      }
      s.stop();
      const all = await done;
      assert.strictEqual(all.length, catchUp === "one" ? 1 : 0, JSON.stringify(all));
    });
  }
});

// -- Delayed jobs --

Deno.test("Scheduler: a job with delay or at starts no earlier, and its dependents after it", async () => {
  await withDir(async (dir) => {
    const clock = new ManualClock(T0);
    const log = `${dir}/log`;
    const { scheduler: s, results } = scheduler(
      [
        { id: "now", task: "#record", args: [log, "now"] },
        { id: "later", delay: "10s", task: "#record", args: [log, "later"] },
        { id: "then", task: "#record", args: [log, "then"], after: ["later"] },
        { id: "at", at: new Date(T0 + 20_000).toISOString(), task: "#record", args: [log, "at"] },
      ],
      clock,
      dir,
    );
    const done = s.run();
    await results(1);
    clock.advance(9_999);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepStrictEqual(await lines(log, 1), ["now"], "nothing else before 10 s");
    clock.advance(1);
    await results(3);
    assert.deepStrictEqual(await lines(log, 3), ["now", "later", "then"]);
    clock.advance(10_000);
    const all = await done;
    assert.deepStrictEqual(await lines(log, 4), ["now", "later", "then", "at"]);
    assert(all.every((r) => r.status === "succeeded"));
  });
});

// -- The command line --

Deno.test("cli: a file with an every job runs until --for, counts its runs, exits 0", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        jobs: [
          { id: "once", task: `${TASKS}#noop`, args: [1] },
          { id: "beat", every: "200ms", task: `${TASKS}#noop`, args: [2] },
        ],
      }),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "--json", "--for", "1s", path],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = decoder.decode(output.stderr);
    assert.strictEqual(output.code, 0, stderr);
    const results = decoder.decode(output.stdout).trim().split("\n").map((l) => JSON.parse(l));
    const runs = results.filter((r) => r.id.startsWith("beat@"));
    assert(runs.length >= 1, stderr);
    assert(results.some((r) => r.id === "once" && r.status === "succeeded"));
    assert.match(stderr, /stopping after --for/);
    assert.match(stderr, new RegExp(`beat: ${runs.length} runs?`));
    // Each run's id is its tick: whole multiples of 200 ms since the epoch.
    for (const r of runs) assert.strictEqual(Date.parse(r.id.slice(5)) % 200, 0, r.id);
  });
});

Deno.test("cli: --dry-run prints the next five ticks of a recurring job, in UTC and its zone", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        jobs: [{
          id: "nightly",
          cron: "0 2 * * *",
          timezone: "Europe/Berlin",
          command: ["true"],
        }],
      }),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "--dry-run", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = decoder.decode(output.stdout);
    assert.strictEqual(output.code, 0, decoder.decode(output.stderr));
    const ticks = stdout.split("\n").filter((l) => /^\s+\d{4}-/.test(l));
    assert.strictEqual(ticks.length, 5, stdout);
    for (const line of ticks) {
      assert.match(line, /T0[01]:00:00\.000Z +\(\d{4}-\d\d-\d\d 02:00:00 Europe\/Berlin\)/);
    }
  });
});
