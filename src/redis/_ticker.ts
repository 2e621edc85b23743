/**
 * A consumer's ticker: it fires the due ticks of the queue's recurring jobs.
 * Every consumer runs one; each tick is fired exactly once however many of
 * them race for it (the FIRE script's compare-and-set on the stored tick),
 * and none is missed while at least one consumer runs (each looks at the
 * earliest stored tick and sleeps until then, or a second at most, to see
 * jobs pushed since).
 *
 * A consumer that comes back after its queue's ticks passed (no consumer
 * ran) finds stored ticks a whole period old: `catchUp: "skip"` fires none
 * of those and moves on to the next tick to come; `"one"` fires one run, as
 * of the latest missed tick.
 *
 * @module
 */

import type { Schedule } from "../jobs/mod.ts";
import type { Clock } from "../run/clock.ts";
import type { RedisClient, RedisReply } from "./client.ts";
import { type Definition, runEntry, runId, scheduleOf } from "./_definition.ts";
import type { QueueKeys } from "./_keys.ts";
import { FIRE, runScript } from "./_scripts.ts";

/** The longest a ticker sleeps before it looks again, ms: how soon it sees a new job. */
const LOOK_EVERY_MS = 1000;
/** Due ticks read per round trip. */
const DUE_BATCH = 500;

/** Fires the due ticks of one queue's recurring jobs. */
export class Ticker {
  readonly #client: RedisClient;
  readonly #keys: QueueKeys;
  readonly #maxResults: string;
  readonly #clock: Clock;
  readonly #warn: (message: string) => void;
  /** Parsed schedules, by their definition's JSON (a job pushed again has a new one). */
  readonly #schedules = new Map<string, { definition: Definition; schedule: Schedule }>();
  #stopped = false;
  #timer: unknown;
  #wake: (() => void) | null = null;
  /** Ticks this ticker fired (its compare-and-set won), for the consumer's stats. */
  fired = 0;

  /**
   * @param client The consumer's connection.
   * @param keys The queue's keys.
   * @param maxResults About how many records `results` keeps.
   * @param clock Now, and the timer to sleep with.
   * @param warn Reports a failed round (it is tried again).
   */
  constructor(
    client: RedisClient,
    keys: QueueKeys,
    maxResults: string,
    clock: Clock,
    warn: (message: string) => void,
  ) {
    this.#client = client;
    this.#keys = keys;
    this.#maxResults = maxResults;
    this.#clock = clock;
    this.#warn = warn;
  }

  /** Runs until `stop()`; resolves then. */
  async run(): Promise<void> {
    while (!this.#stopped) {
      let wait = LOOK_EVERY_MS;
      try {
        wait = await this.#round();
      } catch (error) {
        this.#warn(
          `cannot fire the ticks of recurring jobs: ${(error as Error).message}; retrying`,
        );
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = this.#clock.setTimer(resolve, wait);
      });
      this.#wake = null;
    }
  }

  /** Fires nothing more; `run()` resolves. */
  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimer(this.#timer);
    this.#wake?.();
  }

  /** Fires what is due; returns how long to sleep before the next round, ms. */
  async #round(): Promise<number> {
    const k = this.#keys;
    const now = this.#clock.now();
    const due = await this.#client.send([
      "ZRANGEBYSCORE",
      k.ticks,
      "-inf",
      now,
      "WITHSCORES",
      "LIMIT",
      0,
      DUE_BATCH,
    ]) as string[];
    if (due.length > 0) {
      const ids = due.filter((_, i) => i % 2 === 0);
      const definitions = await this.#client.send(["HMGET", k.schedules, ...ids]) as RedisReply[];
      await Promise.all(ids.map((id, i) => {
        const json = definitions[i];
        if (typeof json !== "string") return; // unscheduled meanwhile: FIRE would refuse it anyway
        return this.#fire(id, Number(due[2 * i + 1]), json, now);
      }));
      if (due.length === 2 * DUE_BATCH) return 0; // more are due
    }
    const next = await this.#client.send(["ZRANGE", k.ticks, 0, 0, "WITHSCORES"]) as string[];
    if (next.length < 2) return LOOK_EVERY_MS;
    return Math.max(0, Math.min(LOOK_EVERY_MS, Number(next[1]) - this.#clock.now()));
  }

  /** Fires the tick at `tick` of recurring job `id`, if no other consumer did. */
  async #fire(id: string, tick: number, json: string, now: number): Promise<void> {
    let parsed = this.#schedules.get(json);
    if (parsed === undefined) {
      const definition = JSON.parse(json) as Definition;
      parsed = { definition, schedule: scheduleOf(definition) };
      this.#schedules.set(json, parsed);
    }
    const { definition, schedule } = parsed;
    const following = schedule.next(new Date(tick)).getTime();
    let next = following;
    let run = tick;
    let entry = "";
    if (following <= now) {
      // A whole period late: nothing ran the queue's ticks for a while.
      next = schedule.next(new Date(now)).getTime();
      if (definition.catchUp === "one") {
        run = latestBefore(schedule, following, now);
        entry = runEntry(definition, id, run);
      }
    } else entry = runEntry(definition, id, tick);
    const k = this.#keys;
    const fired = await runScript(
      this.#client,
      FIRE,
      [k.ticks, k.schedules, k.queue, k.active, k.results],
      [id, tick, next, entry, definition.overlap, runId(id, run), k.prefix, this.#maxResults],
    );
    if (fired !== 0) this.fired++;
  }
}

/** The latest tick of `schedule` at or before `now`, from tick `from` (≤ now). */
function latestBefore(schedule: Schedule, from: number, now: number): number {
  if (schedule.kind === "every") return now - (now % schedule.interval); // epoch-aligned
  let latest = from;
  for (let next = schedule.next(new Date(latest)).getTime(); next <= now;) {
    latest = next;
    next = schedule.next(new Date(next)).getTime();
  }
  return latest;
}
