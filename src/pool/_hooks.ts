/**
 * How the parts of a pool reach each other without importing each other:
 * the pool's core implements these hooks and hands itself to each part, so
 * the imports between the parts' files stay one way (see ARCHITECTURE.md).
 *
 * @module
 */

import type { Control } from "./_parts.ts";

/** What a part of a pool may ask of the rest. */
export interface PoolHooks {
  /** Starts the result pump if it is not running (a task was queued). */
  startPump(): void;
  /** Wakes the result pump, or starts it if submits wait: ids came back, or room appeared. */
  kick(): void;
  /** Settles every result that is in the result ring now; returns how many. */
  drain(): number;
  /** Resolves a pending `close()` once nothing is outstanding or waiting. */
  idleCheck(): void;
  /** Cancels a task: its timeout ran out or its signal aborted. */
  cancel(control: Control, reason: unknown): void;
  /** The value of a result too large for a slot arrived by `postMessage`. */
  largeResult(ticket: number, value: unknown): void;
  /** A running task reported progress (`taskProgress`). */
  progress(ticket: number, value: unknown): void;
}

/** Where a pool is in its life; shared by its parts, written by its core only. */
export interface PoolStatus {
  /** "open" takes tasks; "closing" drains; "closed" holds nothing. */
  state: "open" | "closing" | "closed";
  /** `terminate()` was called: nothing more settles normally. */
  terminated: boolean;
}
