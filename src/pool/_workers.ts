/**
 * The pool's workers: spawning them, watching them die, replacing them, and
 * stopping one that runs a cancelled task.
 *
 * Each worker holds a Web Lock for life; the runtime releases it however the
 * worker ends, so being granted it means the worker is gone. A worker says in
 * shared memory (`W_READY`) that it holds its lock before the pool asks for
 * it; before that, an error event is the only sign of death.
 *
 * Each place in the pool (a slot) keeps its index while its worker changes.
 * A worker's stats record changes with each spawn: a worker the pool gave up
 * on (to stop synchronous code, which Deno cannot interrupt) may still run,
 * so its record stays asking it to take nothing (`W_KILL`) until its lock
 * says it is gone.
 *
 * @module
 */

import { WorkerCrashedError } from "../errors.ts";
import { backoff } from "../_util.ts";
import { decodeLarge } from "../channel/_codec.ts";
import type { Ring } from "../channel/_ring.ts";
import type { PoolHooks, PoolStatus } from "./_hooks.ts";
import type { Parcels } from "./_parcels.ts";
import {
  type AbortMessage,
  type FromWorker,
  ID_MASK,
  type StartMessage,
  statsBytes,
  statsFloatOffset,
  W_COMPLETED,
  W_FAILED,
  W_FLOATS,
  W_INTS,
  W_KILL,
  W_POLLING,
  W_READY,
  W_RUN_MS,
  W_STATE,
  W_TASK,
  W_WAIT_MS,
  workerLock,
} from "./_protocol.ts";
import type { TaskTable } from "./_tasks.ts";

/** First wait before replacing a worker that died before finishing a task; doubles each time. */
const RESPAWN_DELAY_MS = 50;
/** The longest wait before such a replacement. */
const MAX_RESPAWN_DELAY_MS = 5000;
/** How long to wait for a stats record when every spare one is held by a stuck worker. */
const NO_RECORD_RETRY_MS = 1000;
const WORKER_URL = new URL("./_worker.ts", import.meta.url);

/** The Web Locks API (Deno implements it; its types do not declare it). */
const locks = (navigator as unknown as {
  locks: {
    request(
      name: string,
      options: { signal?: AbortSignal },
      callback: () => unknown,
    ): Promise<unknown>;
  };
}).locks;

/** One place of the pool; its worker is replaced when it dies. */
interface Slot {
  worker: Worker | null;
  /** Its stats record (a fresh one per worker, see `abandon`). */
  record: number;
  /** Bumped per spawn; names the lock and tells stale events apart. */
  generation: number;
  /** It holds its lock and the pool watches it. */
  ready: boolean;
  /** Withdraws the pool's request for the worker's lock. */
  watch: AbortController | null;
  /** The last uncaught error it reported. */
  lastError: string | undefined;
  /** A task of its being stopped: the grace timer before termination. */
  stopping: { id: number; timer: ReturnType<typeof setTimeout> } | null;
  respawn: ReturnType<typeof setTimeout> | undefined;
  /** Tasks its record had finished when the worker started. */
  baseline: number;
  /** Workers of this slot in a row that died before finishing a task. */
  streak: number;
}

/**
 * A worker the pool terminated to stop a task, that may not be gone: Deno
 * 2.9.6 cannot stop a worker stuck in synchronous code (denoland/deno#35657).
 * Its record stays asking it to take no task until its lock says it is gone.
 */
interface Abandoned {
  worker: Worker;
  record: number;
  watch: AbortController;
}

/** What a pool tells its workers at start, but for the parts `Workers` adds itself. */
export type WorkerStart = Omit<StartMessage, "index" | "lock" | "workers" | "stats">;

/** Counters summed over every worker record (see `PoolStats`). */
export interface WorkerTotals {
  workers: number;
  running: number;
  stuck: number;
  waitTime: number;
  runTime: number;
}

/** The workers of one pool. Main thread only. */
export class Workers {
  readonly #slots: Slot[] = [];
  readonly #name: string;
  readonly #poolId: string = crypto.randomUUID();
  readonly #start: Omit<StartMessage, "index" | "lock">;
  readonly #workerOptions: WorkerOptions;
  readonly #abortGrace: number;
  readonly #counters: Int32Array;
  readonly #totals: Float64Array;
  /** Stats records not in use. */
  readonly #freeRecords: number[] = [];
  /** Workers terminated to stop a task that may still be running. */
  readonly #abandoned = new Set<Abandoned>();
  readonly #taskRing: Ring;
  readonly #tasks: TaskTable;
  readonly #parcels: Parcels;
  readonly #label: (index: number) => string;
  readonly #status: PoolStatus;
  readonly #hooks: PoolHooks;

  /**
   * Starts `count` workers.
   *
   * @param count Workers in the pool.
   * @param settings The pool's name, `new Worker` options, and the grace of a cancelled task.
   * @param start What each worker is told at start (the rings, tables, epoch, spin).
   * @param parts The rest of the pool: its task ring and table, parcels, function labels, status, hooks.
   */
  constructor(
    count: number,
    settings: { name: string; workerOptions: WorkerOptions; abortGrace: number },
    start: WorkerStart,
    parts: {
      taskRing: Ring;
      tasks: TaskTable;
      parcels: Parcels;
      label: (index: number) => string;
      status: PoolStatus;
      hooks: PoolHooks;
    },
  ) {
    this.#name = settings.name;
    this.#workerOptions = settings.workerOptions;
    this.#abortGrace = settings.abortGrace;
    this.#taskRing = parts.taskRing;
    this.#tasks = parts.tasks;
    this.#parcels = parts.parcels;
    this.#label = parts.label;
    this.#status = parts.status;
    this.#hooks = parts.hooks;
    // Spare records: a terminated worker keeps its record until it is gone.
    const records = 2 * count + 4;
    const stats = new SharedArrayBuffer(statsBytes(records));
    this.#counters = new Int32Array(stats, 0, records * W_INTS);
    this.#totals = new Float64Array(stats, statsFloatOffset(records), records * W_FLOATS);
    for (let record = records - 1; record >= 0; record--) this.#freeRecords.push(record);
    this.#start = { ...start, kind: "start", workers: records, stats };
    for (let index = 0; index < count; index++) {
      this.#slots.push({
        worker: null,
        record: -1,
        generation: 0,
        ready: false,
        watch: null,
        lastError: undefined,
        stopping: null,
        respawn: undefined,
        baseline: 0,
        streak: 0,
      });
      this.#spawn(index);
    }
  }

  /** Places in the pool (live workers, or ones being replaced). */
  get size(): number {
    return this.#slots.length;
  }

  /** The stats counters, summed now. */
  totals(): WorkerTotals {
    let workers = 0, running = 0, waitTime = 0, runTime = 0;
    for (const slot of this.#slots) {
      if (slot.worker === null) continue;
      workers++;
      running += Atomics.load(this.#counters, slot.record * W_INTS + W_STATE);
    }
    const records = this.#counters.length / W_INTS;
    for (let record = 0; record < records; record++) {
      waitTime += this.#totals[record * W_FLOATS + W_WAIT_MS];
      runTime += this.#totals[record * W_FLOATS + W_RUN_MS];
    }
    return { workers, running, stuck: this.#abandoned.size, waitTime, runTime };
  }

  /**
   * Stops the task `ticket` if a live worker runs it: its signal first, a
   * new worker after the grace. Nothing if no worker holds it.
   */
  stopTask(ticket: number, reason: unknown): void {
    for (let w = 0; w < this.#slots.length; w++) {
      const slot = this.#slots[w];
      if (
        slot.worker !== null &&
        Atomics.load(this.#counters, slot.record * W_INTS + W_TASK) === ticket
      ) {
        this.#stop(w, ticket, reason);
        return;
      }
    }
  }

  /** Whether a live worker holds (or is about to claim) the task `ticket`: its `W_TASK`. */
  holds(ticket: number): boolean {
    for (const slot of this.#slots) {
      if (
        slot.worker !== null &&
        Atomics.load(this.#counters, slot.record * W_INTS + W_TASK) === ticket
      ) {
        return true;
      }
    }
    return false;
  }

  /**
   * How many live workers are polling the task ring now (`W_POLLING`): the
   * task ring wakes that many fewer sleepers (see "Pollers" in
   * `channel/_layout.ts`). A worker that died or was terminated is not
   * counted, whatever its record says.
   */
  readonly polling = (): number => {
    let polling = 0;
    for (const slot of this.#slots) {
      if (
        slot.worker !== null &&
        Atomics.load(this.#counters, slot.record * W_INTS + W_POLLING) !== 0
      ) {
        polling++;
      }
    }
    return polling;
  };

  /** A cancelled task came back (skipped, or stopped within its grace): its worker may go on. */
  stopped(ticket: number): void {
    for (const slot of this.#slots) {
      if (slot.stopping?.id === ticket) {
        clearTimeout(slot.stopping.timer);
        slot.stopping = null;
        this.#resume(slot.record);
      }
    }
  }

  /** Terminates every worker and withdraws every watch (the pool closed). */
  shutdown(): void {
    for (const slot of this.#slots) {
      slot.watch?.abort();
      slot.watch = null;
      if (slot.stopping !== null) clearTimeout(slot.stopping.timer);
      slot.stopping = null;
      clearTimeout(slot.respawn);
      slot.worker?.terminate();
      slot.worker = null;
    }
    for (const abandoned of this.#abandoned) abandoned.watch.abort();
  }

  #spawn(index: number): void {
    const slot = this.#slots[index];
    const record = this.#freeRecords.pop();
    if (record === undefined) {
      // Every spare record belongs to a worker stuck in synchronous code.
      slot.respawn = setTimeout(() => this.#spawn(index), NO_RECORD_RETRY_MS);
      return;
    }
    const generation = ++slot.generation;
    const at = record * W_INTS;
    Atomics.store(this.#counters, at + W_TASK, -1);
    Atomics.store(this.#counters, at + W_KILL, 0);
    Atomics.store(this.#counters, at + W_STATE, 0);
    Atomics.store(this.#counters, at + W_READY, 0);
    Atomics.store(this.#counters, at + W_POLLING, 0);
    const lock = workerLock(this.#poolId, record, generation);
    const worker = new Worker(WORKER_URL, {
      ...this.#workerOptions,
      name: `${this.#name} worker ${index + 1}`,
    });
    slot.worker = worker;
    slot.record = record;
    slot.ready = false;
    slot.lastError = undefined;
    slot.baseline = this.#finished(record);
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message?.kind === "fetch") worker.postMessage(this.#parcels.fetch(message.key));
      else if (message?.kind === "result") {
        this.#hooks.largeResult(message.ticket, decodeLarge(message.tag, message.data));
      } else if (message?.kind === "progress") {
        this.#hooks.progress(
          message.ticket,
          message.json === undefined ? message.value : JSON.parse(message.json),
        );
      } else if (message?.kind === "crash") this.#onCrash(index, generation, message.message);
    };
    // The worker reports its own uncaught errors ("crash"); this catches the
    // rest, say its module failing to load.
    worker.onerror = (event) => {
      event.preventDefault(); // the pool handles it; the program goes on
      this.#onCrash(index, generation, event.message || "an uncaught error");
    };
    worker.postMessage({ ...this.#start, index: record, lock } satisfies StartMessage);
    // Once the worker holds its lock (it says so in shared memory), watch it:
    // being granted its lock means the worker is gone.
    const ready = Atomics.waitAsync(this.#counters, at + W_READY, 0);
    (ready.async ? ready.value : Promise.resolve()).then(() => {
      if (
        slot.generation !== generation || this.#status.state === "closed" ||
        slot.worker !== worker
      ) {
        return;
      }
      slot.ready = true;
      const watch = new AbortController();
      slot.watch = watch;
      locks.request(lock, { signal: watch.signal }, () => this.#onDeath(index, generation))
        .catch(() => {/* withdrawn: the pool closed, or the worker was abandoned */});
    });
  }

  /** The worker of slot `index` is dying of an uncaught error: keep why. */
  #onCrash(index: number, generation: number, why: string): void {
    const slot = this.#slots[index];
    if (slot.generation !== generation) return;
    slot.lastError = why;
    // Before it holds its lock (W_READY) no lock can tell us: treat it as dead now.
    if (!slot.ready) this.#onDeath(index, generation);
  }

  /** The worker of slot `index` died on its own (its lock came free). */
  #onDeath(index: number, generation: number): void {
    const slot = this.#slots[index];
    if (
      slot.generation !== generation || this.#status.state === "closed" || slot.worker === null
    ) {
      return;
    }
    const worker = slot.worker;
    slot.watch = null;
    // Let an error event that is on its way arrive first: it says why.
    setTimeout(() => {
      worker.terminate();
      if (slot.generation === generation && this.#status.state !== "closed") this.#replace(index);
    }, 0);
  }

  /** Settles what the dead worker held, then starts its replacement. */
  #replace(index: number): void {
    const slot = this.#slots[index];
    const at = slot.record * W_INTS;
    const held = Atomics.load(this.#counters, at + W_TASK);
    if (held >= 0) this.#tasks.release(held); // a cancelled task it held will not come back
    if (held >= 0 && this.#lost(slot.record, held)) this.#crashed(index, held & ID_MASK);
    else if (slot.lastError !== undefined) {
      // No task to carry the reason (say, a timer a finished task left behind
      // threw): say it here, since the worker kept the runtime from printing it.
      console.error(
        `taskpool: worker ${
          index + 1
        } of pool "${this.#name}" died between tasks and is replaced: ${slot.lastError}`,
      );
    }
    if (slot.stopping !== null) clearTimeout(slot.stopping.timer);
    slot.stopping = null;
    slot.worker = null;
    Atomics.store(this.#counters, at + W_STATE, 0);
    // It died counted as a poller: tasks pushed meanwhile woke no sleeper
    // on its account; wake one now (see "Pollers" in `channel/_layout.ts`).
    if (Atomics.exchange(this.#counters, at + W_POLLING, 0) !== 0) this.#taskRing.passOn();
    // A worker that died before finishing a single task, again and again
    // (say, a module whose loading kills every worker): back off instead of
    // respawning in a hot loop. One that served tasks is replaced at once.
    slot.streak = this.#finished(slot.record) > slot.baseline ? 0 : slot.streak + 1;
    const delay = slot.streak === 0
      ? 0
      : backoff(slot.streak, RESPAWN_DELAY_MS, MAX_RESPAWN_DELAY_MS, false);
    this.#freeRecords.push(slot.record); // it is gone: its record is free
    slot.respawn = setTimeout(() => {
      slot.respawn = undefined;
      if (this.#status.state !== "closed") this.#spawn(index);
    }, delay);
    this.#hooks.kick();
    this.#hooks.idleCheck();
  }

  /** Fails the task on `id`, lost with the worker of slot `index`. */
  #crashed(index: number, id: number): void {
    this.#tasks.crashed++;
    const task = this.#label(this.#tasks.functionOf(id));
    const why = this.#slots[index].lastError ??
      "it exited (self.close(), Deno.exit(), or the runtime ended it)";
    this.#tasks.deliver(
      id,
      false,
      new WorkerCrashedError(
        `Worker ${index + 1} of pool "${this.#name}" died while running ${task}: ${why}`,
        task,
      ),
    );
  }

  /** Tasks the workers of stats record `record` have finished, all together. */
  #finished(record: number): number {
    return Atomics.load(this.#counters, record * W_INTS + W_COMPLETED) +
      Atomics.load(this.#counters, record * W_INTS + W_FAILED);
  }

  /**
   * Whether the task with `ticket`, the `W_TASK` of dead worker record
   * `record`, was lost with it: it is still pending, neither queued nor held
   * by a live worker, and no result of it is waiting (the order of the reads
   * is the protocol in `_protocol.ts`).
   */
  #lost(record: number, ticket: number): boolean {
    if (!this.#tasks.isCurrent(ticket)) return false;
    if (this.#taskRing.queuedAux0().includes(ticket)) return false;
    for (const slot of this.#slots) {
      if (slot.worker !== null && slot.record !== record) {
        if (Atomics.load(this.#counters, slot.record * W_INTS + W_TASK) === ticket) return false;
      }
    }
    this.#hooks.drain();
    return this.#tasks.isCurrent(ticket);
  }

  /**
   * Gives up on slot `index`'s worker (to stop the task it runs) and starts
   * a replacement at once. The old one is terminated; if it is stuck in
   * synchronous code it goes on running (a Deno limitation), but its record
   * keeps it from taking tasks, and any result it sends has a stale ticket.
   */
  #abandon(index: number): void {
    const slot = this.#slots[index];
    const worker = slot.worker!;
    const record = slot.record;
    slot.watch?.abort(); // its lock now tells the abandoned entry, not the slot
    slot.watch = null;
    slot.worker = null;
    slot.stopping = null;
    worker.terminate();
    const abandoned: Abandoned = { worker, record, watch: new AbortController() };
    this.#abandoned.add(abandoned);
    const lock = workerLock(this.#poolId, record, slot.generation);
    locks.request(lock, { signal: abandoned.watch.signal }, () => {
      this.#abandoned.delete(abandoned);
      Atomics.store(this.#counters, record * W_INTS + W_STATE, 0);
      this.#freeRecords.push(record);
    }).catch(() => {/* the pool closed */});
    if (this.#status.state !== "closed") this.#spawn(index);
  }

  /** Stops the task `ticket` running on slot `w`: its signal first, a new worker after the grace. */
  #stop(w: number, ticket: number, reason: unknown): void {
    const slot = this.#slots[w];
    const at = slot.record * W_INTS;
    if (slot.worker === null || slot.stopping !== null) return;
    // The kill protocol of `_protocol.ts`: the flag first, then the task word.
    Atomics.store(this.#counters, at + W_KILL, 1);
    if (Atomics.load(this.#counters, at + W_TASK) !== ticket) {
      this.#resume(slot.record); // it finished, or took another task: nothing to stop
      return;
    }
    const error = reason instanceof Error ? reason : new Error(String(reason));
    slot.worker.postMessage(
      {
        kind: "abort",
        id: ticket,
        name: error.name,
        message: error.message,
      } satisfies AbortMessage,
    );
    const generation = slot.generation;
    slot.stopping = {
      id: ticket,
      timer: setTimeout(() => {
        if (slot.generation !== generation || slot.worker === null) return;
        slot.stopping = null;
        if (Atomics.load(this.#counters, at + W_TASK) === ticket) {
          this.#tasks.release(ticket); // any result it sends is stale now
          this.#abandon(w);
        } else this.#resume(slot.record); // it stopped in time
      }, this.#abortGrace),
    };
  }

  /** Lets the worker of stats record `record` take tasks again. */
  #resume(record: number): void {
    const at = record * W_INTS + W_KILL;
    Atomics.store(this.#counters, at, 0);
    Atomics.notify(this.#counters, at);
  }
}
