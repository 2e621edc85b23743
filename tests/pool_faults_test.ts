import assert from "node:assert";
import {
  PoolClosedError,
  TaskError,
  TimeoutError,
  WorkerCrashedError,
  WorkerPool,
} from "../mod.ts";
import { Gate } from "./_gate.ts";

const FAULTS = new URL("./fixtures/fault_tasks.ts", import.meta.url);
const DEADLY = new URL("./fixtures/deadly_module.ts", import.meta.url);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` holds, polling; fails after `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) assert.fail("condition not reached in time");
    await delay(2);
  }
}

// -- Workers that die --

for (
  const [task, why] of [
    ["crashLater", /: Uncaught Error: stray error from a timer$/],
    ["rejectLater", /: Uncaught \(in promise\) Error: stray rejection$/],
    ["closeWorker", /exited/],
    ["exitWorker", /exited/],
  ] as const
) {
  Deno.test(`a worker that dies in ${task}() fails that task only and is replaced`, async () => {
    await using pool = new WorkerPool({ workers: 1, module: FAULTS });
    const before = await pool.run("workerId");
    await assert.rejects(pool.run(task), (error: unknown) => {
      assert(error instanceof WorkerCrashedError);
      assert.match(error.message, /Worker 1 of pool "taskpool" died while running/);
      assert.match(error.message, why);
      assert.match(error.task, new RegExp(`${task} from .*fault_tasks\\.ts`));
      return true;
    });
    const after = await pool.run("workerId");
    assert.notStrictEqual(after, before, "a new worker serves");
    assert.strictEqual(pool.stats.crashed, 1);
    await until(() => pool.stats.workers === 1);
  });
}

Deno.test("an uncaught error reaches the task or, between tasks, one line of stderr; the runtime prints nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/crash.ts`;
    await Deno.writeTextFile(
      script,
      `import { WorkerPool } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
await using pool = new WorkerPool({ workers: 1, module: ${JSON.stringify(FAULTS.href)} });
for (const task of ["crashLater", "rejectLater"]) {
  await pool.run(task).then(() => console.log("no crash"), (e) => console.log("task failed:", e.message));
}
const first = await pool.run("workerId");
await pool.run("crashAfterReturn", 1);
// The timer kills the worker between tasks; wait until another one serves.
const deadline = Date.now() + 30_000;
while ((await pool.run("workerId")) === first) {
  if (Date.now() > deadline) throw new Error("the worker never died");
  await new Promise((resolve) => setTimeout(resolve, 5));
}
console.log("replaced");
`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.strictEqual(output.code, 0, stderr);
    const lines = stdout.trim().split("\n");
    assert.match(
      lines[0],
      /^task failed: .*died while running crashLater .*: Uncaught Error: stray error from a timer$/,
    );
    assert.match(lines[1], /^task failed: .*: Uncaught \(in promise\) Error: stray rejection$/);
    assert.strictEqual(lines[2], "replaced");
    assert.deepStrictEqual(stderr.trim().split("\n"), [
      'taskpool: worker 1 of pool "taskpool" died between tasks and is replaced: Uncaught Error: stray error after the task returned',
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a crash loses no other task and runs none twice, queued ones included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using pool = new WorkerPool({ workers: 2, capacity: 8, module: FAULTS });
    const outcomes = await Promise.allSettled(
      Array.from(
        { length: 300 },
        (_, i) => i % 50 === 7 ? pool.run("exitWorker") : pool.run("once", dir, `t${i}`, i),
      ),
    );
    outcomes.forEach((outcome, i) => {
      if (i % 50 === 7) {
        assert(outcome.status === "rejected" && outcome.reason instanceof WorkerCrashedError);
      } else {
        assert.deepStrictEqual(outcome, { status: "fulfilled", value: i });
      }
    });
    assert.strictEqual(pool.stats.crashed, 6);
    assert.strictEqual(pool.stats.completed, 294);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a module whose loading kills the worker fails its tasks without a respawn storm", async () => {
  await using pool = new WorkerPool({ workers: 2, module: FAULTS });
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: 6 }, () => pool.run({ module: DEADLY, name: "never" })),
  );
  for (const outcome of outcomes) {
    assert(outcome.status === "rejected" && outcome.reason instanceof WorkerCrashedError);
  }
  assert.strictEqual(pool.stats.crashed, 6, "each task cost one worker, no more");
  // Six crashes of workers that never finished a task: each slot waits 50 ms,
  // then 100 ms, … before its next worker. However the six fell on the two
  // slots, one of them crashed three times, after pauses of 50 + 100 ms: a
  // lower bound, which load only makes easier to meet. It cannot tell a
  // missing pause from slow spawns (a new worker that loads the module and
  // dies takes about as long here), and the pool has no clock to inject, so
  // the pause itself is not tested: see issue #18's note.
  const took = performance.now() - started;
  assert(took >= 145, `six crashes in ${took.toFixed(0)} ms: respawns were not spaced out`);
  assert.strictEqual(await pool.run("echo", "still serving"), "still serving");
});

Deno.test("a module that fails to load fails its tasks naming the reason; the worker keeps serving", async () => {
  await using pool = new WorkerPool({ workers: 1, module: FAULTS });
  const before = await pool.run("workerId");
  const broken = new URL("./fixtures/broken_module.ts", import.meta.url);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(pool.run({ module: broken, name: "never" }), (error: unknown) => {
      assert(error instanceof TaskError, String(error));
      assert.match(error.message, /Cannot load task module .*broken_module\.ts/);
      assert.match(error.message, /broken on purpose/);
      return true;
    });
  }
  assert.strictEqual(await pool.run("workerId"), before, "the same worker serves on");
  assert.strictEqual(pool.stats.crashed, 0);
});

// -- Timeouts --

Deno.test("a task that spins past its timeout rejects with TimeoutError; its worker is replaced", async () => {
  await using gate = await Gate.create();
  await using pool = new WorkerPool({ workers: 1, module: FAULTS, abortGrace: 10 });
  const before = await pool.run("workerId");
  try {
    // The task spins until the gate opens: it rejects while the loop still runs.
    // (500 ms: the timeout counts from the call, and the task must have
    // started by then for this to test a running task.)
    await assert.rejects(
      pool.run({ name: "spinUntil", args: [gate.path], timeout: 500 }),
      (error: unknown) => {
        assert(error instanceof TimeoutError);
        assert.match(error.message, /timed out after 500 ms/);
        return true;
      },
    );
    assert.notStrictEqual(await pool.run("workerId"), before, "a new worker serves at once");
    const stats = pool.stats;
    assert.strictEqual(stats.cancelled, 1);
    assert.strictEqual(stats.crashed, 0, "a kill to stop a task is not a crash");
    // Deno cannot stop the old worker inside its loop: the pool reports it
    // until the loop ends and the worker is gone.
    assert.strictEqual(stats.stuck, 1);
  } finally {
    await gate.open();
  }
  await until(() => pool.stats.stuck === 0);
});

Deno.test("the pool's timeout applies to every task, and a task's own overrides it", async () => {
  await using pool = new WorkerPool({ workers: 1, module: FAULTS, timeout: 30, abortGrace: 10 });
  await assert.rejects(pool.run("hang"), TimeoutError);
  assert.strictEqual(await pool.run({ name: "echo", args: [1], timeout: 5000 }), 1);
  assert.throws(
    () => new WorkerPool({ workers: 1, timeout: -1 }),
    /'timeout' must be a non-negative number/,
  );
  await assert.rejects(pool.run({ name: "echo", args: [1], timeout: NaN }), RangeError);
});

Deno.test("a queued task whose timeout runs out never runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using gate = await Gate.create();
    await using pool = new WorkerPool({ workers: 1, capacity: 4, module: FAULTS, abortGrace: 10 });
    // The blocker holds the only worker until its own timeout (it spins until
    // the gate opens), and the queued task's shorter timer fires first.
    const blocker = pool.run({ name: "spinUntil", args: [gate.path], timeout: 100 });
    const queued = pool.run({ name: "once", args: [dir, "queued", 1], timeout: 20 });
    try {
      await assert.rejects(queued, TimeoutError);
      await assert.rejects(blocker, TimeoutError);
      assert.strictEqual(await pool.run("once", dir, "after", 2), 2);
    } finally {
      await gate.open();
    }
    await assert.rejects(Deno.stat(`${dir}/queued`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stuck worker's late result is ignored: it settles nothing, not even the task on its recycled id", async () => {
  await using stuckGate = await Gate.create();
  await using nextGate = await Gate.create();
  const dir = await Deno.makeTempDir();
  try {
    await using pool = new WorkerPool({ workers: 1, module: FAULTS, abortGrace: 10 });
    try {
      // Stopped by a signal once it runs (a timeout could expire while it is queued).
      const stop = new AbortController();
      const stuck = pool.run({ name: "spinUntil", args: [stuckGate.path], signal: stop.signal });
      await until(() => pool.stats.running === 1);
      stop.abort(new Error("stop"));
      await assert.rejects(stuck, /stop/);
      await until(() => pool.stats.stuck === 1); // terminated after its grace, still spinning
      // The next tasks go to the new worker; the first holds it, the second waits.
      const settled: string[] = [];
      const next = pool.run("gated", nextGate.path, "mine").then((v) => (settled.push("next"), v));
      const queued = pool.run("once", dir, "queued", "queued").then((v) => (
        settled.push("queued"), v
      ));
      await until(() => pool.stats.running === 1);
      // Release the stuck one: it ends its task, sends its result, and would take the next.
      await stuckGate.open();
      await until(() => pool.stats.stuck === 0);
      // A window for a late result to show (nothing the pool does can settle these meanwhile).
      await delay(50);
      assert.deepStrictEqual(settled, [], "the late result settled a task");
      await assert.rejects(Deno.stat(`${dir}/queued`), Deno.errors.NotFound, "it took a task");
      await nextGate.open();
      assert.deepStrictEqual(await Promise.all([next, queued]), ["mine", "queued"]);
      assert.deepStrictEqual(settled, ["next", "queued"]);
      assert.strictEqual(pool.stats.cancelled, 1);
      // The stuck task ran to its end but was cancelled: it is not also completed.
      assert.strictEqual(pool.stats.completed, 2);
    } finally {
      await stuckGate.open();
      await nextGate.open();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// -- Signals --

Deno.test("a task aborted while queued never runs; one aborted before the call is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using pool = new WorkerPool({ workers: 1, capacity: 4, module: FAULTS });
    const blocker = pool.run("once", dir, "blocker", 0);
    const controller = new AbortController();
    const queued = pool.run({ name: "once", args: [dir, "aborted", 1], signal: controller.signal });
    controller.abort(new Error("not needed"));
    await assert.rejects(queued, /not needed/);
    await blocker;
    await pool.run("echo", 0); // the worker has passed the aborted task by now
    await assert.rejects(Deno.stat(`${dir}/aborted`), Deno.errors.NotFound);
    await assert.rejects(pool.run({ name: "echo", args: [1], signal: AbortSignal.abort() }), {
      name: "AbortError",
    });
    assert.strictEqual(pool.stats.cancelled, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a running task that honours taskSignal() stops and keeps its worker", async () => {
  await using pool = new WorkerPool({ workers: 1, module: FAULTS, abortGrace: 5000 });
  const before = await pool.run("workerId");
  const controller = new AbortController();
  const running = pool.run({ name: "cooperative", signal: controller.signal });
  await until(() => pool.stats.running === 1);
  controller.abort(new Error("stop, please"));
  await assert.rejects(running, /stop, please/);
  assert.strictEqual(await pool.run("workerId"), before, "the same worker goes on");
});

Deno.test("a running task that ignores its signal is stopped by terminating its worker", async () => {
  await using pool = new WorkerPool({ workers: 1, module: FAULTS, abortGrace: 20 });
  const before = await pool.run("workerId");
  const controller = new AbortController();
  const running = pool.run({ name: "hang", signal: controller.signal });
  await until(() => pool.stats.running === 1);
  controller.abort();
  await assert.rejects(running, { name: "AbortError" });
  assert.notStrictEqual(await pool.run("workerId"), before);
});

Deno.test("execute() and submit() take a signal and a timeout in their task-object form", async () => {
  await using pool = new WorkerPool({ workers: 1, module: FAULTS, abortGrace: 10 });
  await assert.rejects(
    pool.execute({ fn: () => new Promise(() => {}), timeout: 30 }),
    TimeoutError,
  );
  const handle = await pool.submit({ name: "hang", timeout: 30 });
  await assert.rejects(handle.result, TimeoutError);
  assert.strictEqual(await pool.execute(() => 5), 5);
});

// -- Shutdown under faults --

Deno.test("close() while tasks crash and time out still drains and returns", async () => {
  const pool = new WorkerPool({ workers: 2, capacity: 4, module: FAULTS, abortGrace: 10 });
  const outcomes = Promise.allSettled([
    pool.run("exitWorker"),
    pool.run({ name: "spin", args: [300], timeout: 40 }),
    pool.run("echo", 1),
    pool.run("crashLater"),
    pool.run({ name: "hang", timeout: 40 }),
    pool.run("echo", 2),
    pool.run("fail", "no"),
  ]);
  await pool.close();
  const settled = await outcomes;
  assert.deepStrictEqual(settled.map((o) => o.status), [
    "rejected",
    "rejected",
    "fulfilled",
    "rejected",
    "rejected",
    "fulfilled",
    "rejected",
  ]);
  assert.strictEqual(pool.stats.workers, 0);
  await assert.rejects(pool.run("echo", 3), PoolClosedError);
});

// -- Regressions found in review --

Deno.test("crashes among many workers that race for tasks lose only the crashed task (no stale W_TASK)", async () => {
  await using pool = new WorkerPool({ workers: 4, capacity: 8, spin: 0, module: FAULTS });
  for (let round = 0; round < 15; round++) {
    const quick = Array.from({ length: 40 }, (_, i) => pool.run("echo", i));
    const crash = assert.rejects(pool.run("crashLater"), WorkerCrashedError);
    assert.deepStrictEqual(await Promise.all(quick), Array.from({ length: 40 }, (_, i) => i));
    await crash;
  }
});

Deno.test("a submit waiting for room is queued even when every outstanding task was cancelled", async () => {
  const pool = new WorkerPool({ workers: 1, capacity: 1, module: FAULTS, abortGrace: 300 });
  // Cancelled by signals, in an order the test chooses: timeouts would race
  // the start of the pool on a busy machine.
  const stopRunning = new AbortController();
  const stopQueued = new AbortController();
  const running = pool.run({ name: "hang", signal: stopRunning.signal });
  const runningRejected = assert.rejects(running, TimeoutError);
  await until(() => pool.stats.running === 1);
  const queued = pool.run({ name: "echo", args: [1], signal: stopQueued.signal });
  const waiting = pool.submit("echo", "C");
  stopQueued.abort(new TimeoutError("queued: cancelled"));
  await assert.rejects(queued, TimeoutError);
  stopRunning.abort(new TimeoutError("running: cancelled"));
  await runningRejected;
  assert.strictEqual(await (await waiting).result, "C");
  await pool.close();
});

Deno.test("a cancelled queued task never runs, even when its id is reused and cancelled again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using pool = new WorkerPool({ workers: 1, capacity: 4, module: FAULTS, abortGrace: 10 });
    await using gate = await Gate.create();
    // The blocker holds the worker until both queued tasks have timed out.
    const blocker = pool.run("spinUntil", gate.path);
    await until(() => pool.stats.running === 1);
    const x = pool.run({ name: "once", args: [dir, "x", 1], timeout: 10 });
    await assert.rejects(x, TimeoutError);
    const y = pool.run({ name: "once", args: [dir, "y", 2], timeout: 10 });
    await assert.rejects(y, TimeoutError);
    await gate.open();
    await blocker;
    await pool.run("echo", 0);
    for (const name of ["x", "y"]) {
      await assert.rejects(Deno.stat(`${dir}/${name}`), Deno.errors.NotFound, `${name} ran`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a map() waiting for room ends when the pool is terminated", async () => {
  const pool = new WorkerPool({ workers: 1, capacity: 1, module: FAULTS });
  const blocker = pool.run("hang").catch(() => {});
  await until(() => pool.stats.running === 1);
  const queued = await pool.submit("hang");
  const queuedEnds = assert.rejects(queued.result, PoolClosedError);
  // An async source: the map reads ahead of the full queue, so a pulled input
  // says it is under way and waiting for room.
  let pulled = 0;
  async function* inputs() {
    for (const i of [1, 2, 3]) {
      pulled++;
      yield i;
    }
  }
  const iterating = (async () => {
    for await (const _ of pool.map("echo", inputs())) {
      // nothing arrives: the queue stays full
    }
  })();
  await until(() => pulled > 0);
  assert.strictEqual(pool.stats.queued, 1, "the queue is still full");
  pool.terminate();
  await assert.rejects(iterating, PoolClosedError);
  await queuedEnds;
  await blocker;
});

// -- Chaos --

Deno.test("chaos: 10,000 tasks that throw, kill workers, hang and get aborted all settle once, correctly", async () => {
  await using pool = new WorkerPool({ workers: 4, capacity: 8, module: FAULTS, abortGrace: 10 });
  const total = 10_000;
  const kinds: string[] = [];
  const settled = new Uint8Array(total);
  const checks: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const r = (i * 7919) % 100; // a fixed, well-spread pattern
    const kind = r < 5 ? "throw" : r < 6 ? "kill" : r < 7 ? "hang" : r < 8 ? "abort" : "ok";
    kinds.push(kind);
    let outcome: Promise<unknown>;
    if (kind === "throw") outcome = pool.run("fail", `task ${i}`);
    else if (kind === "kill") outcome = pool.run("exitWorker");
    else if (kind === "hang") outcome = pool.run({ name: "hang", timeout: 30 });
    else if (kind === "abort") {
      const controller = new AbortController();
      outcome = pool.run({ name: i % 2 ? "hang" : "echo", args: [i], signal: controller.signal });
      setTimeout(() => controller.abort(new Error(`abort ${i}`)), i % 3);
    } else outcome = pool.run("echo", i);
    checks.push(outcome.then(
      (value) => {
        settled[i]++;
        if (kind === "ok" || (kind === "abort" && i % 2 === 0)) assert.strictEqual(value, i);
        else assert.fail(`task ${i} (${kind}) resolved with ${value}`);
      },
      (error) => {
        settled[i]++;
        if (kind === "throw") assert(error instanceof TaskError && error.message === `task ${i}`);
        else if (kind === "kill") assert(error instanceof WorkerCrashedError, String(error));
        else if (kind === "hang") assert(error instanceof TimeoutError, String(error));
        else if (kind === "abort") assert.strictEqual(error.message, `abort ${i}`);
        else assert.fail(`task ${i} (ok) rejected: ${error}`);
      },
    ));
  }
  await Promise.all(checks);
  assert(settled.every((n) => n === 1), "every task settled exactly once");
  await until(() => pool.stats.workers === 4 && pool.stats.idle === 4);
  const stats = pool.stats;
  const count = (k: string) => kinds.filter((x) => x === k).length;
  assert.strictEqual(stats.crashed, count("kill"));
  assert.strictEqual(stats.failed, count("throw"));
  assert.strictEqual(stats.queued, 0);
  assert.strictEqual(stats.completed + stats.failed + stats.cancelled + stats.crashed, total);
});

Deno.test("WorkerPool.stats counts a task cancelled while stuck once, even after it returns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using pool = new WorkerPool({ workers: 2, module: FAULTS, abortGrace: 0 });
    const outcomes = await Promise.allSettled(
      Array.from(
        { length: 6 },
        (_, i) => pool.run({ name: "spinThenMark", args: [300, `${dir}/${i}`], timeout: 100 }),
      ),
    );
    assert(outcomes.every((o) => o.status === "rejected" && o.reason instanceof TimeoutError));
    // The two that ran get to their end in their stuck workers, which would count them.
    const marks = () => [...Deno.readDirSync(dir)].length;
    await until(() => marks() === 2, 20_000);
    await until(() => pool.stats.stuck === 0 && pool.stats.workers === 2, 20_000);
    await pool.execute(() => 0); // a fresh round trip: late results were read by now
    const stats = pool.stats;
    assert.strictEqual(stats.cancelled, 6);
    assert.strictEqual(stats.completed, 1, "only the execute() completed");
    assert.strictEqual(stats.completed + stats.failed + stats.cancelled + stats.crashed, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a duration of 2^31 ms or more is refused where it enters, not fired after 1 ms", async () => {
  const { syncChannel } = await import("../mod.ts");
  assert.throws(() => new WorkerPool({ workers: 1, timeout: 3e9 }), /at most 2147483647/);
  assert.throws(() => new WorkerPool({ workers: 1, abortGrace: 2 ** 31 }), /at most 2147483647/);
  await using pool = new WorkerPool({ workers: 1, module: FAULTS });
  await assert.rejects(pool.run({ name: "echo", args: [1], timeout: 3e9 }), RangeError);
  assert.strictEqual(await pool.run({ name: "echo", args: [1], timeout: 2 ** 31 - 1 }), 1);
  const [_tx, rx] = syncChannel<number>(1);
  await assert.rejects(rx.recv({ timeout: 3e9 }), RangeError);
});
