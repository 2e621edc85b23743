/**
 * What every subcommand of the command line shares: writing a line to
 * stderr, the checks of numeric and duration flags (a bad one throws a
 * `RangeError` naming the flag: the subcommand exits 2 with it), and the
 * signals that stop a run.
 *
 * @module
 */

import { parseDuration } from "../jobs/mod.ts";
import { MAX_TIMER_MS } from "../_util.ts";

const encoder = new TextEncoder();

/** Writes one line to stderr, at once (no buffering behind a progress line). */
export function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

/** The signals that stop a run: the first stops, the second cancels. */
export const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** A positive integer flag (`--workers 4`), `undefined` when absent; a `RangeError` naming it otherwise. */
export function count(name: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`--${name} must be a positive integer, got "${value}"`);
  }
  return n;
}

/**
 * A duration flag (`--grace 30s`) in ms, at least `min`; `undefined` when
 * absent; a `RangeError` naming it otherwise.
 */
export function duration(
  name: string,
  value: string | boolean | undefined,
  min = 0,
): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms !== undefined && ms > MAX_TIMER_MS) {
    throw new RangeError(
      `--${name} must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a timer waits), got "${value}"`,
    );
  }
  if (ms === undefined || ms < min) {
    const least = min > 0 ? ` of at least ${min}ms` : "";
    const example = name === "heartbeat" ? '"10s"' : '"30s" or "500ms"';
    throw new RangeError(
      `--${name} must be a duration${least} such as ${example}, got "${value}"`,
    );
  }
  return ms;
}
