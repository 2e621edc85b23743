/**
 * A way for the scheduler to queue pool tasks without a promise per task
 * (the pool's `map()` does the same inside the pool). Internal: not exported
 * by `mod.ts`.
 *
 * @module
 */

import type { TaskSpec, WorkerPool } from "./pool.ts";

/** Receives the outcomes of tasks queued with {@linkcode pushTask}. */
export interface Sink {
  /**
   * One task ended: `ok` with its value, or not with its error (a
   * `TaskError`, `TimeoutError`, `PoolClosedError`…). Called synchronously
   * by the pool: from its result pump, and from `terminate()`, a task's
   * timeout and the handling of a dead worker. It must not throw.
   */
  deliver(seq: number, ok: boolean, value: unknown): void;
}

/** Filled in by `pool.ts` (a static block of `WorkerPool`, which alone sees its fields). */
export const sinkAccess: {
  push?: (pool: WorkerPool, task: TaskSpec, sink: Sink, seq: number) => boolean;
} = {};

/**
 * Queues `task` on `pool` if it fits now, its outcome to go to
 * `sink.deliver(seq, …)`. False when it does not fit (the queue is full, or
 * submits are waiting for room): nothing was queued or kept, and the caller
 * falls back on `pool.run`. Throws what `pool.run` would reject with.
 */
export function pushTask(pool: WorkerPool, task: TaskSpec, sink: Sink, seq: number): boolean {
  return sinkAccess.push!(pool, task, sink, seq);
}
