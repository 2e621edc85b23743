/**
 * Small helpers every part uses, each written once: backoff with jitter, a
 * cancellable delay, checked durations, and a short description of any value
 * for messages.
 *
 * @module
 */

/**
 * The wait before retry number `attempt` (1 for the first retry): `first`
 * doubled per attempt, at most `max`, times a random factor from 0.5 to 1.5
 * when `jitter` is on (so that many clients that failed together do not
 * retry together). The result never exceeds `max` (by default the longest
 * a timer can wait).
 */
export function backoff(
  attempt: number,
  first: number,
  max = MAX_TIMER_MS,
  jitter = true,
): number {
  const base = first * 2 ** Math.min(Math.max(attempt - 1, 0), 52);
  return Math.min(max, jitter ? base * (0.5 + Math.random()) : base);
}

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as
 * soon as `signal` aborts (at once if it already has).
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The longest a timer can wait, ms (2^31 − 1, about 24.8 days). Deno's and
 * Node's timers fire after 1 ms for anything longer (with a
 * `TimeoutOverflowWarning`), so every duration that becomes a timer is
 * checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What {@linkcode checkMs} accepts. */
export interface MsRule {
  /** Reject 0 as well. @default {false} */
  positive?: boolean;
  /** Accept `Infinity` (meaning "no limit"). @default {false} */
  infinite?: boolean;
  /** The largest finite value accepted. @default {MAX_TIMER_MS} */
  max?: number;
}

/**
 * Checks a duration in milliseconds and returns it, or throws a `RangeError`
 * worded as std does: `Cannot <action> as '<name>' must be …: current value
 * is …`. One rule for every duration that enters the library.
 */
export function checkMs(value: unknown, action: string, name: string, rule: MsRule = {}): number {
  const { positive = false, infinite = false, max = MAX_TIMER_MS } = rule;
  if (
    typeof value === "number" && !Number.isNaN(value) &&
    (positive ? value > 0 : value >= 0) &&
    (Number.isFinite(value) ? value <= max : infinite)
  ) {
    return value;
  }
  const what = positive ? "a positive" : "a non-negative";
  const limit = max === MAX_TIMER_MS
    ? ` of at most ${max} (about 24.8 days, the longest a timer waits)`
    : ` of at most ${max}`;
  throw new RangeError(
    `Cannot ${action} as '${name}' must be ${what} number of milliseconds${limit}: current value is ${
      describe(value)
    }`,
  );
}

/**
 * A value as a short text for a message: JSON where JSON can say it
 * (strings quoted), numbers and anything else as `String(value)`; never
 * throws (cycles, BigInts, symbols). Cut to `limit` characters with an
 * ellipsis.
 */
export function describe(value: unknown, limit = Infinity): string {
  let text: string;
  try {
    // Numbers as String() gives them: JSON would say null for NaN and Infinity.
    text = typeof value === "number" || typeof value === "symbol"
      ? String(value)
      : JSON.stringify(value) ?? String(value);
  } catch {
    try {
      text = String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}
