// Groups in a job file and in a local run (src/jobs/groups.ts,
// src/run/_groups.ts): the limits read and checked; concurrency and a
// sliding rate honoured by the Scheduler; a held job blocks no other.
import assert from "node:assert";
import { type JobResult, parseRate, Scheduler, validateJobFile } from "../mod.ts";
import { Finished, ManualClock } from "./_clock.ts";
import { withDir } from "./_temp.ts";
import { Gate } from "./_gate.ts";
import { exists, until } from "./_wait.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;

/** A validated file (tasks `#name` from the fixture) with `top` fields such as `groups`. */
function file(jobs: Array<Record<string, unknown>>, dir: string, top: Record<string, unknown>) {
  const data = JSON.parse(JSON.stringify({ ...top, jobs }).replaceAll('"#', `"${TASKS}#`));
  const checked = validateJobFile(data, `${dir}/jobs.json`);
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  return checked.file;
}

Deno.test("job file: groups and a job's group are read; each problem named where it is", () => {
  const ok = validateJobFile({
    groups: { api: { concurrency: 2, rate: "10/1s" }, slow: { rate: "3 / 2m" } },
    jobs: [{ id: "a", command: ["true"], group: "api" }],
  }, "/tmp/jobs.json");
  assert(ok.ok);
  assert.deepStrictEqual(ok.file.groups, {
    api: { concurrency: 2, rate: { limit: 10, window: 1000 } },
    slow: { rate: { limit: 3, window: 120_000 } },
  });
  assert.strictEqual(ok.file.jobs[0].group, "api");
  const bad = validateJobFile({
    groups: { api: { concurrency: 1.5, rate: "10 per second", burst: 3 }, "": {}, x: 4 },
    jobs: [{ id: "a", command: ["true"], group: "" }],
  }, "/tmp/jobs.json");
  assert(!bad.ok);
  assert.deepStrictEqual(bad.problems.map((p) => p.path), [
    "groups.api.burst",
    "groups.api.concurrency",
    "groups.api.rate",
    "groups.",
    "groups.x",
    "jobs[0].group",
  ]);
  assert.match(bad.problems[2].message, /such as "10\/1s"/);
  assert.deepStrictEqual(parseRate("5/s"), { limit: 5, window: 1000 });
  assert.strictEqual(parseRate("0/1s"), undefined);
  assert.strictEqual(parseRate("5/0s"), undefined);
});

Deno.test("Scheduler: concurrency 2 in a group: never more than 2 at once on 4 workers", async () => {
  await withDir(async (dir) => {
    const log = `${dir}/log`;
    const jobs = Array.from({ length: 12 }, (_, i) => ({
      id: `j${i}`,
      task: "#timed",
      args: [40, log, `j${i}`],
      group: "db",
    }));
    jobs.push({ id: "free", task: "#timed", args: [20, log, "free"] } as (typeof jobs)[0]);
    const results = await new Scheduler(file(jobs, dir, { groups: { db: { concurrency: 2 } } }), {
      workers: 4,
    }).run();
    assert(results.every((r) => r.status === "succeeded"));
    const starts = new Map<string, number>();
    const events: Array<[number, number]> = [];
    for (const line of (await Deno.readTextFile(log)).trim().split("\n")) {
      const [what, id, ms] = line.split(" ");
      if (id === "free") continue;
      if (what === "start") starts.set(id, Number(ms));
      else events.push([starts.get(id)!, 1], [Number(ms), -1]);
    }
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let most = 0;
    for (const [, step] of events) most = Math.max(most, now += step);
    assert.strictEqual(events.length, 24);
    assert(most <= 2, `${most} at once`);
  });
});

Deno.test("Scheduler: a full group does not delay an ungrouped job after it", async () => {
  await withDir(async (dir) => {
    await using gate = await Gate.create();
    const log = `${dir}/log`;
    const finished: JobResult[] = [];
    const s = new Scheduler(
      file(
        [
          { id: "g1", task: "#gated", args: [gate.path, "g1", `${dir}/g1`], group: "one" },
          { id: "g2", task: "#record", args: [log, "g2"], group: "one" },
          { id: "u", task: "#record", args: [log, "u"], priority: -1 },
        ],
        dir,
        { groups: { one: { concurrency: 1 } } },
      ),
      { workers: 2, onFinish: (r) => finished.push(r) },
    );
    const done = s.run();
    await until("u to finish", () => finished.some((r) => r.id === "u"));
    await until("g1 to start", () => exists(`${dir}/g1`));
    assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), ["u"]);
    await gate.open();
    const results = await done;
    assert(results.every((r) => r.status === "succeeded"));
    assert.deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), ["u", "g2"]);
  });
});

Deno.test("Scheduler: a rate of 2/1s on a clock the test moves: 2 start per second, a sliding window", async () => {
  await withDir(async (dir) => {
    const clock = new ManualClock(Date.UTC(2026, 11, 1));
    const collected = new Finished<JobResult>();
    const finished = collected.list;
    const jobs = Array.from({ length: 6 }, (_, i) => ({
      id: `r${i}`,
      task: "#noop",
      args: [i],
      group: "api",
    }));
    jobs.push({ id: "free", task: "#noop", args: [0] } as (typeof jobs)[0]);
    const s = new Scheduler(file(jobs, dir, { groups: { api: { rate: "2/1s" } } }), {
      workers: 4,
      clock,
      onFinish: collected.onFinish,
    });
    const results = (n: number) => collected.results(n);
    const done = s.run();
    // At the start: 2 of the group and the ungrouped one; the rest held (no
    // task handed out) until the clock moves.
    await results(3);
    assert.strictEqual(finished.length, 3);
    assert.strictEqual(s.running + s.waiting, 0);
    assert.deepStrictEqual(finished.map((r) => r.id).sort(), ["free", "r0", "r1"]);
    clock.advance(999); // the window still holds the 2 starts
    assert.strictEqual(s.running + s.waiting, 0);
    clock.advance(1);
    await results(5);
    assert.strictEqual(s.running + s.waiting, 0);
    assert.deepStrictEqual(finished.slice(3).map((r) => r.id).sort(), ["r2", "r3"]);
    clock.advance(1000);
    await done;
    assert.deepStrictEqual(finished.slice(5).map((r) => r.id).sort(), ["r4", "r5"]);
  });
});

Deno.test("Scheduler: a rate counts starts, not jobs queued behind a busy worker", async () => {
  await withDir(async (dir) => {
    await using gate = await Gate.create();
    const clock = new ManualClock(Date.UTC(2026, 11, 1));
    const finished: JobResult[] = [];
    const jobs: Array<Record<string, unknown>> = [
      { id: "long", task: "#gated", args: [gate.path, "long", `${dir}/long`], priority: 1 },
      ...Array.from({ length: 4 }, (_, i) => ({
        id: `r${i}`,
        task: "#noop",
        args: [i],
        group: "api",
      })),
    ];
    const s = new Scheduler(file(jobs, dir, { groups: { api: { rate: "2/1s" } } }), {
      workers: 1,
      clock,
      onFinish: (r) => finished.push(r),
    });
    const done = s.run();
    await until("long to start", () => exists(`${dir}/long`));
    // Five seconds with the one worker busy: no start of the group is spent meanwhile.
    clock.advance(5000);
    await gate.open();
    await until("long, r0 and r1 to finish", () => finished.length === 3);
    assert.deepStrictEqual(finished.map((r) => r.id), ["long", "r0", "r1"]);
    assert.strictEqual(s.running + s.waiting, 0); // r2 waits for the window, not for a worker
    clock.advance(1000);
    await done;
    assert.deepStrictEqual(finished.map((r) => r.id), ["long", "r0", "r1", "r2", "r3"]);
  });
});
