/**
 * Time zones for schedules, from the runtime's own `Intl.DateTimeFormat`
 * (no package, no time zone data of our own): checking a zone's name, a
 * zone's offset from UTC at an instant, and the instants at which that
 * offset changes (its transitions), which is what daylight-saving rules in
 * `cron.ts` need.
 *
 * `Intl` answers only "what does the wall clock read at this instant?", at
 * about 3 µs a question. So a zone's transitions are found once per zone and
 * per year, by asking at every UTC midnight of the year and, where two
 * answers differ, bisecting to the second (about 390 questions, ~1.5 ms), and
 * kept for the life of the process: after that, an offset costs a lookup.
 * Two transitions less than a day apart that cancel each other out would go
 * unseen; no zone's rules have had one.
 *
 * @module
 */

import { suggest } from "./_suggest.ts";
import { wallClock } from "./_calendar.ts";

const SECOND = 1000;
const DAY = 86_400_000;

/** A change of a zone's offset: from `at` (an instant, ms) on, the offset is `after`. */
export interface Transition {
  /** The first instant with the new offset (epoch ms, a whole second). */
  at: number;
  /** The offset before, in ms (local time minus UTC). */
  before: number;
  /** The offset from `at` on, in ms. */
  after: number;
}

/** One zone-year: the offset at the year's first instant (UTC), and its transitions in order. */
interface ZoneYear {
  first: number;
  transitions: Transition[];
}

/** The canonical name of each zone name already checked (or the error it gave). */
const checked = new Map<string, string | RangeError>();

/**
 * The zone's name, spelled as the runtime spells it when only the case
 * differs (`"europe/berlin"` is `"Europe/Berlin"`) and else as given (the
 * runtime knows `"Asia/Kolkata"` but calls it `"Asia/Calcutta"`); or a
 * `RangeError` naming it and the valid name closest to it. Answers are kept: validation asks for the
 * same few zones thousands of times.
 *
 * @param name An IANA time zone name.
 * @returns The name to use.
 * @throws {RangeError} When the runtime knows no such zone.
 *
 * @example Check a zone's name
 * ```ts
 * import { checkTimeZone } from "./_zone.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(checkTimeZone("europe/berlin"), "Europe/Berlin");
 * assert.throws(() => checkTimeZone("Europe/Berln"), /did you mean "Europe\/Berlin"\?/);
 * ```
 */
export function checkTimeZone(name: string): string {
  let answer = checked.get(name);
  if (answer === undefined) {
    try {
      const resolved = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions()
        .timeZone;
      // The runtime's spelling when only the case differs ("europe/berlin");
      // else the name as given, since the runtime may resolve a current name
      // to an old one ("Asia/Kolkata" to "Asia/Calcutta").
      answer = resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
    } catch {
      const hint = suggestZone(name);
      answer = new RangeError(
        `unknown time zone ${JSON.stringify(name)}; ${
          hint ? `did you mean "${hint}"?` : 'use an IANA name such as "Europe/Berlin" or "UTC"'
        }`,
      );
    }
    if (checked.size < 1000) checked.set(name, answer); // bounded: names come from user input
  }
  if (answer instanceof RangeError) throw answer;
  return answer;
}

/**
 * The valid zone name closest to `name`: first as a whole ("Europe/Berln"),
 * then by its city alone ("Berlin", "new york" for "America/New_York").
 */
function suggestZone(name: string): string | undefined {
  const zones = [...Intl.supportedValuesOf("timeZone"), "UTC"];
  const whole = suggest(name, zones);
  if (whole !== undefined) return whole;
  const cities = zones.map((zone) => zone.slice(zone.lastIndexOf("/") + 1).replaceAll("_", " "));
  const city = suggest(name.slice(name.lastIndexOf("/") + 1).replaceAll("_", " "), cities);
  return city === undefined ? undefined : zones[cities.indexOf(city)];
}

/**
 * A zone's offsets and transitions, computed a year at a time on demand and
 * then kept. Get one with {@linkcode zoneOf}: every schedule of a zone shares
 * its years.
 */
export class Zone {
  /** The zone's name, as {@linkcode checkTimeZone} returned it. */
  readonly name: string;
  #format: Intl.DateTimeFormat | undefined;
  #years = new Map<number, ZoneYear>();

  /**
   * @param name A name that {@linkcode checkTimeZone} accepted.
   */
  constructor(name: string) {
    this.name = name;
    const format = new Intl.DateTimeFormat("en-US", {
      timeZone: name,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    // UTC ("Etc/UTC", "GMT", …) never changes: no questions to the runtime at all.
    if (format.resolvedOptions().timeZone !== "UTC") this.#format = format;
  }

  /** Whether the zone is UTC under any of its names: its offset is always 0. */
  get isUtc(): boolean {
    return this.#format === undefined;
  }

  /**
   * The offset (local time minus UTC, in ms) at instant `ms`.
   *
   * @param ms An instant, epoch ms.
   * @returns The offset in ms.
   */
  offsetAt(ms: number): number {
    if (this.#format === undefined) return 0;
    const year = this.#year(yearOf(ms));
    let offset = year.first;
    for (const transition of year.transitions) {
      if (transition.at > ms) break;
      offset = transition.after;
    }
    return offset;
  }

  /**
   * The first transition after instant `from` and at or before `upTo`, if any.
   *
   * @param from An instant, epoch ms (excluded).
   * @param upTo An instant, epoch ms (included).
   * @returns The transition, or `undefined` when the offset holds from `from` to `upTo`.
   */
  transitionAfter(from: number, upTo: number): Transition | undefined {
    if (this.#format === undefined) return undefined;
    for (let y = yearOf(from), last = yearOf(upTo); y <= last; y++) {
      for (const transition of this.#year(y).transitions) {
        if (transition.at > upTo) return undefined;
        if (transition.at > from) return transition;
      }
    }
    return undefined;
  }

  /**
   * The last transition at or before instant `ms`, if one happened in the
   * day before it: enough to tell whether `ms` lies in a repeated hour
   * (offsets never step back by a day or more).
   *
   * @param ms An instant, epoch ms.
   * @returns The transition, or `undefined`.
   */
  transitionWithinDayBefore(ms: number): Transition | undefined {
    if (this.#format === undefined) return undefined;
    for (let y = yearOf(ms); y >= yearOf(ms - DAY); y--) {
      const list = this.#year(y).transitions;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].at <= ms) return list[i].at > ms - DAY ? list[i] : undefined;
      }
    }
    return undefined;
  }

  /** Year `y` (UTC) of this zone: from the cache, else asked of the runtime. */
  #year(y: number): ZoneYear {
    let year = this.#years.get(y);
    if (year !== undefined) return year;
    const start = yearStart(y);
    const end = yearStart(y + 1);
    const first = this.#ask(start);
    const transitions: Transition[] = [];
    // A transition between two samples belongs to the year of the later
    // sample's interval: (start, end], so each is found in exactly one year.
    let before = first;
    for (let at = start; at < end;) {
      const next = Math.min(at + DAY, end);
      const offset = this.#ask(next);
      if (offset !== before) {
        transitions.push({ at: this.#bisect(at, next, offset), before, after: offset });
        before = offset;
      }
      at = next;
    }
    year = { first, transitions };
    this.#years.set(y, year);
    return year;
  }

  /**
   * The first whole second in (`low`, `high`] with offset `after`, given
   * that `low` has another offset and `high` has `after`.
   */
  #bisect(low: number, high: number, after: number): number {
    while (high - low > SECOND) {
      const middle = low + Math.floor((high - low) / 2 / SECOND) * SECOND;
      if (this.#ask(middle) === after) high = middle;
      else low = middle;
    }
    return high;
  }

  /** The offset at `ms` (a whole second), asked of `Intl`. */
  #ask(ms: number): number {
    let year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, bc = false;
    for (const part of this.#format!.formatToParts(ms)) {
      switch (part.type) {
        case "year":
          year = Number(part.value);
          break;
        case "month":
          month = Number(part.value);
          break;
        case "day":
          day = Number(part.value);
          break;
        case "hour":
          hour = Number(part.value);
          break;
        case "minute":
          minute = Number(part.value);
          break;
        case "second":
          second = Number(part.value);
          break;
        case "era":
          bc = part.value === "BC";
      }
    }
    return wallClock(bc ? 1 - year : year, month, day, hour, minute, second) - ms;
  }
}

/** Every zone made so far, by its resolved name. */
const zones = new Map<string, Zone>();

/**
 * The shared {@linkcode Zone} of a name that {@linkcode checkTimeZone} accepted.
 *
 * @param name The name it returned.
 * @returns The zone.
 *
 * @example The offset of Berlin in summer and in winter
 * ```ts
 * import { zoneOf } from "./_zone.ts";
 * import assert from "node:assert";
 *
 * const berlin = zoneOf("Europe/Berlin");
 * assert.strictEqual(berlin.offsetAt(Date.UTC(2026, 6, 1)), 2 * 3_600_000);
 * assert.strictEqual(berlin.offsetAt(Date.UTC(2026, 0, 1)), 3_600_000);
 * ```
 */
export function zoneOf(name: string): Zone {
  let zone = zones.get(name);
  if (zone === undefined) zones.set(name, zone = new Zone(name));
  return zone;
}

/** The UTC year of instant `ms`. */
function yearOf(ms: number): number {
  return new Date(ms).getUTCFullYear();
}

/** The first instant of UTC year `y`. */
function yearStart(y: number): number {
  return wallClock(y, 1, 1, 0, 0, 0);
}
