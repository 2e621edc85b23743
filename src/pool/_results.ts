/**
 * The result pump: the main thread's loop that settles tasks as workers push
 * their results, and moves waiting submits into the task ring as room
 * appears.
 *
 * It runs while tasks are outstanding or submits wait, takes every result
 * that is ready per wake-up, polls briefly before it sleeps (being woken
 * costs the main thread tens of µs, the round trip of a short task a few),
 * and sleeps on the result ring with `Atomics.waitAsync`. It stops when
 * nothing is outstanding; the next submit starts it again.
 *
 * @module
 */

import { TaskError } from "../errors.ts";
import { describe } from "../_util.ts";
import { RECV_EPOCH, RECV_WAITERS } from "../channel/_layout.ts";
import { EMPTY, type Ring } from "../channel/_ring.ts";
import { pollMs, spinPop, waitAsync } from "../channel/_wait.ts";
import type { PoolHooks, PoolStatus } from "./_hooks.ts";
import type { Parcels } from "./_parcels.ts";
import {
  ID_MASK,
  OUTCOME_LARGE,
  OUTCOME_OK,
  OUTCOME_SKIPPED,
  type RemoteError,
} from "./_protocol.ts";
import type { Submitter } from "./_submit.ts";
import { type TaskTable, WithdrawnError } from "./_tasks.ts";
import type { Workers } from "./_workers.ts";

/**
 * How long the result pump sleeps with tasks queued and a worker asleep
 * before it wakes every sleeping worker, ms (see `take` in `#pump`). Its own wait
 * first retries 50 ms into a sleep (then every second): under that, so that
 * the first retry does it.
 */
const STUCK_MS = 40;

/** The result side of one pool. Main thread only. */
export class ResultPump {
  /** The result ring (workers → main thread). */
  readonly ring: Ring;
  readonly #scratch: Uint8Array;
  readonly #spinMs: number;
  readonly #tasks: TaskTable;
  readonly #parcels: Parcels;
  readonly #submit: Submitter;
  readonly #status: PoolStatus;
  readonly #hooks: PoolHooks;
  readonly #workers: Workers;
  readonly #label: (index: number) => string;
  #pumping = false;
  /** Polls for a result in a row that caught nothing (see `pollMs`). */
  #missed = 0;
  /** Times this pump woke every sleeping worker for tasks left queued (see `STUCK_MS`). */
  stuckWakes = 0;
  /** `STUCK_MS`, or what a test set (`Infinity`: never). */
  readonly #stuckMs: number;

  /**
   * @param ring The result ring.
   * @param spinMs How long to poll for a result before sleeping, ms.
   * @param parts The rest of the pool.
   * @param stuckMs Tests only: `STUCK_MS` instead (`Infinity`: never wake
   * the sleepers so, and a test can see a lost wake-up).
   */
  constructor(
    ring: Ring,
    spinMs: number,
    parts: {
      tasks: TaskTable;
      parcels: Parcels;
      submit: Submitter;
      workers: Workers;
      label: (index: number) => string;
      status: PoolStatus;
      hooks: PoolHooks;
    },
    stuckMs: number = STUCK_MS,
  ) {
    this.ring = ring;
    this.#stuckMs = stuckMs;
    this.#scratch = new Uint8Array(ring.slotBytes);
    this.#spinMs = spinMs;
    this.#tasks = parts.tasks;
    this.#parcels = parts.parcels;
    this.#submit = parts.submit;
    this.#workers = parts.workers;
    this.#label = parts.label;
    this.#status = parts.status;
    this.#hooks = parts.hooks;
  }

  /** Starts the pump if it is not running: not now, the caller may be queueing many tasks. */
  start(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    queueMicrotask(() => void this.#pump());
  }

  /** Wakes the pump (or starts it) so that it looks again: ids came back, room appeared. */
  kick(): void {
    if (this.#pumping) this.ring.wakeAll(RECV_EPOCH);
    else if (this.#submit.waitingLive > 0 && !this.#status.terminated) this.start();
  }

  /** Settles every result that is ready now; returns how many. */
  drain(): number {
    const ring = this.ring;
    let value;
    let count = 0;
    // Workers waiting for room in the result ring are woken once, at the end.
    ring.beginDrain();
    try {
      while ((value = ring.pop(this.#scratch)) !== EMPTY) {
        this.#settle(ring.aux0, ring.aux1, value, ring.aux2, ring.aux3);
        count++;
      }
    } finally {
      ring.endDrain();
    }
    return count;
  }

  /** The value of a result too large for a slot arrived by postMessage. */
  largeResult(ticket: number, value: unknown): void {
    if (!this.#tasks.isCurrent(ticket)) return; // cancelled meanwhile
    const ringed = this.#parcels.resultPosted(ticket, value);
    if (ringed !== undefined) this.#settle(ticket, OUTCOME_OK, value, ringed.startUs, ringed.runUs);
  }

  /**
   * Settles results as workers push them: every ready result per wake-up,
   * and it sleeps only while tasks are outstanding and none is ready.
   */
  async #pump(): Promise<void> {
    const ring = this.ring;
    const scratch = this.#scratch;
    const submit = this.#submit;
    const tasks = this.#tasks;
    // Waiting submits count too: only the pump moves them into the ring.
    const busy = () =>
      !this.#status.terminated && (tasks.outstanding > 0 || submit.waitingLive > 0);
    // When this loop last went to sleep (see `take`).
    let sleptAt = 0;
    const stuckMs = this.#stuckMs;
    // null: back to the loop's top (nothing to wait for, or waiting submits
    // that now fit in the ring); else a result, or EMPTY to go on waiting.
    const take = () => {
      if (!busy()) return null;
      if (submit.roomForWaiting()) return null;
      const value = ring.pop(scratch);
      // Asleep STUCK_MS with tasks still queued and a worker asleep: the
      // wake-up of those tasks may have gone to a worker whose event loop is
      // blocked (by what an earlier task left behind), while an idle one
      // sleeps on (its own retry comes once a minute). Wake every sleeper
      // (several may be blocked, each first in line): at worst one finds
      // nothing and sleeps again. Never in a stream of results, which keep
      // this loop from sleeping that long.
      if (
        value === EMPTY && submit.ring.queued() > 0 &&
        Atomics.load(submit.ring.i32, RECV_WAITERS) !== 0 &&
        performance.now() - sleptAt >= stuckMs
      ) {
        sleptAt = performance.now();
        this.stuckWakes++;
        submit.ring.wakeAll(RECV_EPOCH);
      }
      return value;
    };
    let settled = false;
    try {
      for (;;) {
        settled = this.drain() > 0 || settled;
        submit.refill();
        if (submit.feeders.size > 0) {
          // map() consumers run in microtasks: let them take what arrived
          // (and their generators send more) before this loop polls again.
          await null;
          submit.refill();
        } else if (settled) {
          // Settled promises continue in microtasks: let them run (and queue
          // their next tasks) before this loop polls, or the workers would
          // wait on a main thread that spins. The tasks they queue wake the
          // workers once, together, when they are done (or 2 ms on, see
          // `_submit.ts`).
          settled = false;
          const opened = submit.openBurst();
          await null;
          if (opened) submit.closeBurst();
          continue;
        }
        settled = false;
        if (!busy()) return;
        submit.endBurst(); // workers must not sleep on tasks queued while this thread polls
        let value: unknown = EMPTY;
        if (this.#spinMs > 0) {
          value = spinPop(ring, scratch, pollMs(this.#spinMs, this.#missed));
          this.#missed = value === EMPTY ? this.#missed + 1 : 0;
        }
        if (value === EMPTY) {
          sleptAt = performance.now();
          value = await waitAsync(
            ring,
            RECV_EPOCH,
            RECV_WAITERS,
            EMPTY,
            take,
            {},
            "receive a result",
          );
          if (value === null) continue; // the loop's top decides
        }
        this.#settle(ring.aux0, ring.aux1, value, ring.aux2, ring.aux3);
        settled = true;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Settles the task `ticket` with a result from the ring (and when it started, how long it ran). */
  #settle(ticket: number, outcome: number, value: unknown, startUs: number, runUs: number): void {
    const tasks = this.#tasks;
    // A stale ticket: the task was cancelled or lost, and its id moved on.
    if (!tasks.isCurrent(ticket)) {
      this.#workers.stopped(ticket);
      tasks.release(ticket);
      return;
    }
    if (outcome === OUTCOME_LARGE) {
      const arrived = this.#parcels.resultRinged(ticket, startUs, runUs);
      if (arrived === undefined) return; // its value is on its way by postMessage
      value = arrived.value;
    }
    const id = ticket & ID_MASK;
    // Counted here, once per task whose result settles it: a worker's own
    // count would also take in a task that was cancelled while it ran.
    if (outcome === OUTCOME_OK || outcome === OUTCOME_LARGE) {
      tasks.completed++;
      tasks.deliver(id, true, value, startUs, runUs);
    } else if (outcome === OUTCOME_SKIPPED) {
      // Current only when marked by withdraw() after a worker had taken it:
      // that worker saw the mark and never ran it.
      tasks.deliver(id, false, new WithdrawnError());
    } else {
      tasks.failed++;
      const error = this.#taskError(value as RemoteError, tasks.functionOf(id));
      tasks.deliver(id, false, error, startUs, runUs);
    }
    if (tasks.outstanding === 0) this.#hooks.idleCheck();
  }

  #taskError(remote: RemoteError, index: number): TaskError {
    const task = this.#label(index);
    const cause = rebuild(remote);
    const message = remote.error
      ? remote.message ?? ""
      : `The task threw a non-Error value: ${describe(remote.value)}`;
    return new TaskError(message, { cause, stack: remote.stack, task });
  }
}

/** The thrown value, rebuilt from its remote form. */
function rebuild(remote: RemoteError): unknown {
  if (!remote.error) return remote.value;
  const error = new Error(
    remote.message ?? "",
    remote.cause === undefined ? undefined : { cause: rebuild(remote.cause) },
  );
  error.name = remote.name ?? "Error";
  if (remote.stack !== undefined) error.stack = remote.stack;
  return error;
}
