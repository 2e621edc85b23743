/**
 * Waiting on a channel: a bounded poll first, then sleep on the direction's
 * event count (`Atomics.waitAsync` on an event loop, `Atomics.wait` in a
 * blocking call), with a timeout, an abort signal, and a watch for threads
 * that died holding ends. The protocol is in `_layout.ts`.
 *
 * @module
 */

import { TimeoutError } from "../errors.ts";
import { checkMs } from "../_util.ts";
import { RECV_EPOCH } from "./_layout.ts";
import { anyHolder, holdEventLoop, releaseEventLoop, Watch, WATCH_AFTER_MS } from "./_lease.ts";
import { EMPTY, type Ring } from "./_ring.ts";

/** How often a long wait looks for newly registered threads to watch, in ms. */
const RESCAN_MS = 1000;
/** A wait was aborted. */
export const ABORTED: unique symbol = Symbol("aborted");
/** A wait timed out. */
const EXPIRED: unique symbol = Symbol("expired");

/** Checks a wait's `timeout` (milliseconds, `Infinity` allowed). */
function checkTimeout(timeout: number | undefined): void {
  if (timeout !== undefined) checkMs(timeout, "wait", "timeout", { infinite: true });
}

/**
 * Polls `ring` for up to `ms` milliseconds; the message, or `EMPTY`. The
 * clock (an op call in Deno) is read once every 32 polls.
 */
export function spinPop(ring: Ring, scratch: Uint8Array, ms: number): unknown {
  const until = performance.now() + ms;
  for (;;) {
    for (let i = 0; i < 32; i++) {
      const value = ring.pop(scratch);
      if (value !== EMPTY) return value;
    }
    if (performance.now() >= until) return EMPTY;
  }
}

/** The longest poll, ms, of a waiter whose polls keep catching nothing (see `pollMs`). */
const SHORT_POLL_MS = 0.01;

/**
 * How long a waiter polls, ms, whose last `missed` polls in a row caught
 * nothing: `spinMs`, or at most 10 µs after two misses, until a poll catches
 * something again. A waiter fed at once (a stream of short tasks, their
 * results) keeps the whole poll, so that a pause of the machine longer than
 * a short poll does not turn into a wake-up (~50 µs); one fed slower than it
 * polls (a task every millisecond) wastes less CPU per wait. The short poll
 * still outlasts a round trip (~3 µs), so a waiter that moves from a slow
 * feed to a fast one catches its next task and polls in full again.
 */
export function pollMs(spinMs: number, missed: number): number {
  return missed >= 2 && spinMs > SHORT_POLL_MS ? SHORT_POLL_MS : spinMs;
}

/**
 * Retries `attempt` for up to `ms` milliseconds before a wait sleeps: a
 * bounded poll, so that a peer that answers within microseconds costs no
 * wake-up (tens of µs on these machines). Returns `again` if nothing came.
 */
function spinAttempt<R>(attempt: () => R, again: R, ms: number): R {
  const until = performance.now() + ms;
  for (;;) {
    for (let i = 0; i < 16; i++) {
      const result = attempt();
      if (result !== again) return result;
    }
    if (performance.now() >= until) return again;
  }
}
/**
 * Runs `attempt` until it returns something other than `again`, sleeping on
 * `epoch` in between with `Atomics.waitAsync` (the protocol is in
 * `_layout.ts`). After `WATCH_AFTER_MS` it also watches for dead threads.
 *
 * Between wake-ups it retries by itself: after 50 ms, then every second (to
 * look for threads to watch), or, given `retryMs`, every `retryMs` while no
 * thread holds an end of the channel (a pool worker waiting for a task, see
 * `SLEEP_RETRY_MS` in `pool/_worker.ts`; a parameter, not an option, since
 * channel ends pass their users' options through). The first slice stays
 * 50 ms even so: V8 does not cancel a wait's timeout when the wait is
 * notified, and each one lives on, a pending timer, for its whole slice; a
 * worker fed a task every few hundred µs sleeps thousands of times a second,
 * and 60 s slices from the start grew its RSS twice as fast (65 against 32
 * MB in 20 s). Only a sleep that outlasts 50 ms leaves a long one.
 * `firstRetryMs` replaces that first slice where `retryMs` applies: tests
 * make both slices long, so that a lost wake-up shows as a hang rather than
 * as a 50 ms delay.
 */
export async function waitAsync<R>(
  core: Ring,
  epoch: number,
  waiters: number,
  again: R,
  attempt: () => R,
  options: { signal?: AbortSignal; timeout?: number },
  what: string,
  retryMs?: number,
  firstRetryMs: number = WATCH_AFTER_MS,
): Promise<R> {
  const { signal, timeout } = options;
  checkTimeout(timeout);
  signal?.throwIfAborted();
  if (core.spinMs > 0) {
    const polled = spinAttempt(attempt, again, core.spinMs);
    if (polled !== again) return polled;
  }
  const i32 = core.i32;
  const local = epoch === RECV_EPOCH ? core.localRecv : core.localSend;
  const start = performance.now();
  // The deadline is a timer, not waitAsync's own timeout: a pending
  // waitAsync does not keep the event loop alive, a timer does.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const expired = timeout === undefined
    ? undefined
    : new Promise<typeof EXPIRED>((resolve) => timer = setTimeout(resolve, timeout, EXPIRED));
  const aborted = signal === undefined ? undefined : new Promise<typeof ABORTED>((resolve) => {
    signal.addEventListener("abort", onAbort = () => resolve(ABORTED), { once: true });
  });
  let watch: Watch | undefined;
  let holding = false;
  try {
    for (;;) {
      const key = Atomics.load(i32, epoch);
      Atomics.add(i32, waiters, 1);
      const result = attempt();
      if (result !== again) {
        Atomics.sub(i32, waiters, 1);
        return result;
      }
      // Short slices only to look for dead threads (see `_lease.ts`).
      let slice: number | undefined;
      if (!holding && anyHolder(i32)) {
        holding = true;
        holdEventLoop();
      }
      const early = performance.now() - start < WATCH_AFTER_MS;
      if (watch !== undefined) {
        watch.rescan();
        slice = RESCAN_MS;
      } else if (retryMs !== undefined && !holding) {
        // No thread to watch: only a lost wake-up would need the retry.
        slice = early ? firstRetryMs : retryMs;
      } else if (early) {
        slice = WATCH_AFTER_MS;
      } else if (anyHolder(i32)) {
        watch = new Watch(i32, core.wakeEveryone);
        slice = RESCAN_MS;
      } else {
        slice = RESCAN_MS; // a worker may open an end later
      }
      const waited = Atomics.waitAsync(i32, epoch, key, slice);
      let outcome: unknown = waited.value;
      if (waited.async) {
        let wake!: () => void;
        const woken = new Promise<string>((resolve) => wake = () => resolve("ok"));
        local.push(wake);
        const racers: Promise<unknown>[] = [waited.value, woken];
        if (expired !== undefined) racers.push(expired);
        if (aborted !== undefined) racers.push(aborted);
        outcome = await Promise.race(racers);
        const at = local.indexOf(wake);
        if (at !== -1) local.splice(at, 1);
      }
      Atomics.sub(i32, waiters, 1);
      if (outcome === ABORTED || outcome === EXPIRED) {
        // The abandoned waitAsync is still queued in V8: wake everyone, so
        // that no notify(1) is spent on it.
        core.wakeAll(epoch);
        if (outcome === ABORTED) throw signal!.reason;
        const last = attempt();
        if (last !== again) return last;
        throw new TimeoutError(`Timed out after ${timeout} ms waiting to ${what}`);
      }
    }
  } finally {
    if (holding) releaseEventLoop();
    watch?.stop();
    clearTimeout(timer);
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
  }
}

/** Resolves with `ABORTED` when `signal` aborts, else with `promise`'s value. */
export function abortable<V>(
  promise: Promise<V>,
  signal: AbortSignal,
): Promise<V | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}

/** The blocking twin of {@linkcode waitAsync}, for workers (`Atomics.wait`). */
export function waitSync<R>(
  core: Ring,
  epoch: number,
  waiters: number,
  again: R,
  attempt: () => R,
  options: { timeout?: number },
  what: string,
): R {
  const { timeout } = options;
  checkTimeout(timeout);
  if (core.spinMs > 0) {
    const polled = spinAttempt(attempt, again, Math.min(core.spinMs, timeout ?? Infinity));
    if (polled !== again) return polled;
  }
  const i32 = core.i32;
  const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
  for (;;) {
    const key = Atomics.load(i32, epoch);
    Atomics.add(i32, waiters, 1);
    const result = attempt();
    const now = performance.now();
    if (result !== again || now >= deadline) {
      Atomics.sub(i32, waiters, 1);
      if (result !== again) return result;
      throw new TimeoutError(
        `Timed out after ${timeout} ms waiting to ${what}`,
      );
    }
    Atomics.wait(i32, epoch, key, deadline - now);
    Atomics.sub(i32, waiters, 1);
  }
}
