/**
 * "Did you mean …?": the known name closest to a mistyped one. Validation
 * uses it for unknown fields and unknown job ids, `checkTasks` for
 * a task's missing export. Runs only for a problem, so it favours plainness
 * over speed.
 *
 * @module
 */

/**
 * The known name closest to `name` (ignoring case), if it is close enough to
 * be a typo: at most one edit per three characters of `name`, and at least
 * one edit allowed. Of names equally close, the first.
 *
 * @param name The name as given.
 * @param known The names it may have meant.
 * @returns The suggestion, or `undefined` when nothing is close.
 *
 * @example Suggest a field name
 * ```ts
 * import { suggest } from "./_suggest.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(suggest("priorty", ["id", "priority", "retries"]), "priority");
 * assert.strictEqual(suggest("colour", ["id", "priority", "retries"]), undefined);
 * ```
 */
export function suggest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * The Levenshtein distance of `a` and `b`: insertions, deletions and
 * substitutions. Strings whose lengths differ by more than 3 count as
 * unrelated (`Infinity`) without building the table.
 */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
