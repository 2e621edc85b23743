/**
 * The cancellation state of one task that has a timeout or a signal (and
 * where its progress goes, when the caller listens): its timer and its abort
 * listener, made when the task is submitted and released exactly once, when
 * it settles (or is refused). A task with none of these has no control at
 * all, so the common case costs nothing.
 *
 * @module
 */

import { TimeoutError } from "../errors.ts";
import { checkMs } from "../_util.ts";
import type { Control } from "./_parts.ts";

/** The options that make a control: a task's own, or the pool's default timeout. */
export interface Cancellation {
  signal?: AbortSignal;
  timeout?: number;
  onProgress?: (value: unknown) => void;
}

/**
 * The control of a task with a timeout or a signal; `undefined` (no cost)
 * otherwise. `cancel` runs when the timeout expires or the signal aborts.
 * Throws the signal's reason when it has already aborted, and a `RangeError`
 * for a bad timeout.
 */
export function controlFor(
  options: Cancellation | undefined,
  defaultTimeout: number | undefined,
  cancel: (control: Control, reason: unknown) => void,
): Control | undefined {
  const timeout = options?.timeout === undefined
    ? defaultTimeout
    : checkMs(options.timeout, "run the task", "timeout");
  const signal = options?.signal;
  const progress = options?.onProgress;
  if (timeout === undefined && signal === undefined && progress === undefined) return undefined;
  if (progress !== undefined && typeof progress !== "function") {
    throw new TypeError(
      `Cannot run the task as 'onProgress' must be a function: current value is ${typeof progress}`,
    );
  }
  signal?.throwIfAborted();
  const control: Control = {
    id: -1,
    waiting: -1,
    timer: undefined,
    signal,
    onAbort: undefined,
    progress,
  };
  if (timeout !== undefined) {
    control.timer = setTimeout(
      () => cancel(control, new TimeoutError(`The task timed out after ${timeout} ms`)),
      timeout,
    );
  }
  if (signal !== undefined) {
    control.onAbort = () => cancel(control, signal.reason);
    signal.addEventListener("abort", control.onAbort, { once: true });
  }
  return control;
}

/** Clears a control's timer and abort listener. */
export function releaseControl(control: Control): void {
  clearTimeout(control.timer);
  if (control.onAbort !== undefined) {
    control.signal!.removeEventListener("abort", control.onAbort);
  }
}
