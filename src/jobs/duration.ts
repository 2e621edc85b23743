/**
 * Durations as job files and the command line write them: a number of
 * milliseconds, or a string such as `"30s"`.
 *
 * @module
 */

/**
 * Parses a duration: a number of milliseconds, or a string such as
 * `"500ms"`, `"30s"`, `"2m"`, `"1h"` (decimals allowed). `undefined` when
 * it is not one.
 *
 * @param value The duration.
 * @returns Milliseconds, or `undefined`.
 *
 * @example Durations
 * ```ts
 * import { parseDuration } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert.strictEqual(parseDuration("1.5s"), 1500);
 * assert.strictEqual(parseDuration(250), 250);
 * assert.strictEqual(parseDuration("soon"), undefined);
 * ```
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!match) return undefined;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  return Number(match[1]) * scale;
}
