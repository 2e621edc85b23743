/**
 * Which thread holds which ends, so that the survivors notice a dead thread.
 *
 * JavaScript has no destructor that runs when a worker is terminated, so a
 * worker that dies holding the only sender would leave its receivers waiting
 * forever. Web Locks fill the gap: a lock held by a worker is released by the
 * runtime when the worker ends, however it ends (`terminate()`, `self.close()`,
 * `Deno.exit()`, an uncaught error).
 *
 * ## Protocol
 * Each worker thread that holds ends of a channel owns one holder record in
 * the channel's buffer (`_layout.ts`): `STATE`, `GEN`, and how many sender and
 * receiver ends it holds. The thread:
 * 1. claims a record with `compareExchange(STATE, HOLDER_FREE, HOLDER_CLAIMING)` and bumps
 *    `GEN`, which names its lock `taskpool.channel.<id>.<record>.<gen>`;
 * 2. asks for that lock and, once granted, stores `STATE = HOLDER_HELD` (the lock is
 *    then kept until the thread lets go of its last end, or dies);
 * 3. counts each end it opens in the record as well as in the global counts;
 * 4. when its last end closes, stores `STATE = HOLDER_FREE` and only then releases
 *    the lock.
 *
 * A survivor that has waited longer than a grace period asks for the lock of
 * every record in use. Being granted a lock means its holder released it or
 * died. If the record still has the same `GEN` and is `HOLDER_HELD`, the holder died
 * (a live holder stores `HOLDER_FREE` before releasing): the survivor moves it to
 * `HOLDER_REAPING` with a compare-exchange (so only one survivor reaps), subtracts
 * its ends from the global counts, stores `HOLDER_FREE` and wakes every waiter. If
 * the record is still `HOLDER_CLAIMING`, its thread has not been granted the lock
 * yet (it may be alive and busy): the survivor lets the lock go and looks
 * again later. The main thread takes no record: when it dies, so does the
 * process.
 *
 * Ends opened with `from()` wait for step 2, so a worker cannot die holding
 * an unregistered end. A channel created inside a worker is registered once
 * that worker's event loop runs: a worker killed before that (say, blocked in
 * `sendSync` from its first task) is not noticed, and its peers need a
 * `timeout`.
 *
 * @module
 */

import {
  H_GEN,
  H_RECEIVERS,
  H_SENDERS,
  H_STATE,
  HOLDER_CLAIMING,
  HOLDER_FREE,
  HOLDER_HELD,
  HOLDER_INTS,
  HOLDER_REAPING,
  HOLDERS,
  ID,
  MAX_HOLDERS,
  RECEIVERS,
  SENDERS,
} from "./_layout.ts";

/** True inside a Web Worker, where ends need a holder record. */
export const IN_WORKER: boolean = "WorkerGlobalScope" in globalThis;

/** One thread's registration for one channel. */
export interface Holder {
  /** Int32 index of the record. */
  readonly record: number;
  /** Ends this thread holds through the record. */
  ends: number;
  /** Resolves once the lock is held (`STATE = HOLDER_HELD`). */
  readonly ready: Promise<void>;
  /** Lets the lock go. */
  release(): void;
}

/** The part of the Web Locks API we use (Deno implements it; its types do not declare it). */
interface LockManager {
  request(name: string, callback: () => unknown): Promise<unknown>;
  request(
    name: string,
    options: { signal?: AbortSignal },
    callback: () => unknown,
  ): Promise<unknown>;
}

const locks = (navigator as unknown as { locks: LockManager }).locks;

const holders = new Map<number, Holder>();

function lockName(i32: Int32Array, record: number, gen: number): string {
  return `taskpool.channel.${i32[ID] >>> 0}.${i32[ID + 1] >>> 0}.${record}.${gen}`;
}

function channelKey(i32: Int32Array): number {
  return (i32[ID] >>> 0) * 4294967296 + (i32[ID + 1] >>> 0);
}

/**
 * Counts one more end of `kind` for this thread. Returns the thread's holder,
 * or `null` on the main thread.
 */
export function attach(
  i32: Int32Array,
  kind: "sender" | "receiver",
): Holder | null {
  if (!IN_WORKER) return null;
  const key = channelKey(i32);
  let holder = holders.get(key);
  if (holder === undefined) {
    holder = claim(i32);
    holders.set(key, holder);
  }
  Atomics.add(
    i32,
    holder.record + (kind === "sender" ? H_SENDERS : H_RECEIVERS),
    1,
  );
  holder.ends++;
  return holder;
}

/** Counts one end fewer; the last one frees the record and the lock. */
export function detach(
  i32: Int32Array,
  holder: Holder,
  kind: "sender" | "receiver",
): void {
  Atomics.sub(
    i32,
    holder.record + (kind === "sender" ? H_SENDERS : H_RECEIVERS),
    1,
  );
  if (--holder.ends > 0) return;
  holders.delete(channelKey(i32));
  Atomics.store(i32, holder.record + H_STATE, HOLDER_FREE);
  holder.release();
}

function claim(i32: Int32Array): Holder {
  for (let n = 0; n < MAX_HOLDERS; n++) {
    const record = HOLDERS + n * HOLDER_INTS;
    if (
      Atomics.compareExchange(i32, record + H_STATE, HOLDER_FREE, HOLDER_CLAIMING) !== HOLDER_FREE
    ) continue;
    const gen = Atomics.add(i32, record + H_GEN, 1) + 1;
    let release!: () => void;
    let released = false;
    const held = new Promise<void>((resolve) => {
      release = () => {
        released = true;
        resolve();
      };
    });
    let granted!: () => void;
    const ready = new Promise<void>((resolve) => granted = resolve);
    locks.request(lockName(i32, record, gen), () => {
      if (!released) {
        Atomics.compareExchange(i32, record + H_STATE, HOLDER_CLAIMING, HOLDER_HELD);
      }
      granted();
      return held;
    });
    return { record, ends: 0, ready, release };
  }
  throw new RangeError(
    `Cannot open a channel end in this worker: ${MAX_HOLDERS} worker threads already hold ends of this channel; close ends in workers that no longer need them`,
  );
}

/** True when some worker thread holds ends of the channel. */
export function anyHolder(i32: Int32Array): boolean {
  for (let n = 0; n < MAX_HOLDERS; n++) {
    if (Atomics.load(i32, HOLDERS + n * HOLDER_INTS + H_STATE) !== HOLDER_FREE) {
      return true;
    }
  }
  return false;
}

let keepers = 0;
let keeper: ReturnType<typeof setInterval> | undefined;

/**
 * Keeps this thread's event loop alive while a wait may depend on another
 * thread. A pending `waitAsync` does not, so a waiter whose peer was just
 * terminated would otherwise see its program end before the watch could
 * notice. One slow interval per thread, however many waits hold it.
 */
export function holdEventLoop(): void {
  if (keepers++ === 0) keeper = setInterval(() => {}, 60_000);
}

/** Ends one {@linkcode holdEventLoop}. */
export function releaseEventLoop(): void {
  if (--keepers === 0) clearInterval(keeper);
}

/** How long a wait lasts before it starts watching for dead holders, in ms. */
export const WATCH_AFTER_MS = 50;
/** How long a watcher waits before it looks again at a record still `HOLDER_CLAIMING`, in ms. */
const RECHECK_MS = 100;

/**
 * Watches every holder record in use (but this thread's own) while a wait
 * goes on, and reaps the records of dead threads. `rescan()` picks up records
 * claimed since; `stop()` withdraws every pending lock request.
 */
export class Watch {
  readonly #i32: Int32Array;
  readonly #wakeEveryone: () => void;
  readonly #own: number;
  readonly #abort = new AbortController();
  readonly #watched = new Set<string>();

  /**
   * @param i32 The channel's memory.
   * @param wakeEveryone Wakes every waiter of both directions after a reap.
   */
  constructor(i32: Int32Array, wakeEveryone: () => void) {
    this.#i32 = i32;
    this.#wakeEveryone = wakeEveryone;
    const own = holders.get(channelKey(i32));
    this.#own = own === undefined ? -1 : own.record;
    this.rescan();
  }

  /** Watches records claimed since the last scan. */
  rescan(): void {
    const i32 = this.#i32;
    for (let n = 0; n < MAX_HOLDERS; n++) {
      const record = HOLDERS + n * HOLDER_INTS;
      if (record === this.#own) continue;
      const state = Atomics.load(i32, record + H_STATE);
      if (state !== HOLDER_HELD && state !== HOLDER_CLAIMING) continue;
      this.#watch(record, Atomics.load(i32, record + H_GEN));
    }
  }

  /** Withdraws every pending lock request. */
  stop(): void {
    this.#abort.abort();
  }

  #watch(record: number, gen: number): void {
    const name = lockName(this.#i32, record, gen);
    if (this.#watched.has(name) || this.#abort.signal.aborted) return;
    this.#watched.add(name);
    locks.request(
      name,
      { signal: this.#abort.signal },
      () => this.#granted(record, gen, name),
    )
      .catch(() => {/* withdrawn by stop() */});
  }

  #granted(record: number, gen: number, name: string): void {
    const i32 = this.#i32;
    if (Atomics.load(i32, record + H_GEN) !== gen) return; // released and reused
    const state = Atomics.load(i32, record + H_STATE);
    if (state === HOLDER_CLAIMING) {
      // Its thread has not been granted the lock yet; let it have it.
      setTimeout(() => {
        this.#watched.delete(name);
        this.#watch(record, gen);
      }, RECHECK_MS);
      return;
    }
    if (
      state === HOLDER_HELD &&
      Atomics.compareExchange(i32, record + H_STATE, HOLDER_HELD, HOLDER_REAPING) === HOLDER_HELD
    ) {
      reap(i32, record);
      this.#wakeEveryone();
    }
  }
}

/** Returns a dead holder's ends; the caller then wakes everyone to look again. */
function reap(i32: Int32Array, record: number): void {
  const senders = Atomics.exchange(i32, record + H_SENDERS, 0);
  const receivers = Atomics.exchange(i32, record + H_RECEIVERS, 0);
  Atomics.sub(i32, SENDERS, senders);
  Atomics.sub(i32, RECEIVERS, receivers);
  Atomics.store(i32, record + H_STATE, HOLDER_FREE);
}
