/**
 * A recurring job as the queue keeps it in `<queue>:schedules`: its rule
 * (`cron` in a time zone, or `every`), its `overlap` and `catchUp`, and the
 * entry each of its runs is made from.
 *
 * @module
 */

import {
  type CatchUp,
  type Job,
  type Overlap,
  parseCron,
  parseEvery,
  type Schedule,
} from "../jobs/mod.ts";
import { entryOf } from "./_entry.ts";

/** A recurring job's definition, as JSON in `<queue>:schedules`. */
export interface Definition {
  /** When it ticks: the schedule's own JSON (`{ kind, expression, timezone }` or `{ kind, interval }`). */
  rule:
    | { kind: "cron"; expression: string; timezone: string }
    | { kind: "every"; interval: number };
  overlap: Overlap;
  catchUp: CatchUp;
  /** The entry of a run, but for its `id` and `schedule`. */
  entry: Record<string, unknown>;
}

/**
 * The definition of a recurring job of a validated file; paths are made
 * relative to `base` as a one-off job's entry's are.
 *
 * @example An every job
 * ```ts
 * import { definitionOf } from "./_definition.ts";
 * import { validateJobFile } from "../jobs/mod.ts";
 * import assert from "node:assert";
 *
 * const checked = validateJobFile({ jobs: [{ id: "b", every: "30s", command: ["true"] }] }, "/src/j.json");
 * assert(checked.ok);
 * const definition = definitionOf(checked.file.jobs[0], "/src");
 * assert.deepStrictEqual(definition.rule, { kind: "every", interval: 30_000 });
 * assert.strictEqual(definition.overlap, "skip");
 * ```
 */
export function definitionOf(job: Job, base: string): Definition {
  const rule = JSON.parse(JSON.stringify(job.schedule)) as Definition["rule"];
  const { batch: _batch, ...entry } = entryOf(job, base, "");
  return { rule, overlap: job.overlap ?? "skip", catchUp: job.catchUp ?? "skip", entry };
}

/** The schedule of a definition, parsed again (it was valid when pushed). */
export function scheduleOf(definition: Definition): Schedule {
  const rule = definition.rule;
  return rule.kind === "cron"
    ? parseCron(rule.expression, { timezone: rule.timezone })
    : parseEvery(rule.interval);
}

/** The id of the run of recurring job `id` for the tick at `tick` (ms). */
export function runId(id: string, tick: number): string {
  return `${id}@${new Date(tick).toISOString()}`;
}

/** The entry of the run of recurring job `id` for the tick at `tick` (ms). */
export function runEntry(definition: Definition, id: string, tick: number): string {
  return JSON.stringify({ ...definition.entry, id: runId(id, tick), schedule: id });
}
