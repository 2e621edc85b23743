import assert from "node:assert";
import { parseCron, parseEvery } from "../mod.ts";

/**
 * The first `count` fire times of `expression` in `timezone` after `after`,
 * each fed back as the next `after`, as ISO strings without milliseconds.
 */
function fires(expression: string, timezone: string, after: string, count: number): string[] {
  const schedule = parseCron(expression, { timezone });
  const times: string[] = [];
  let at = new Date(after);
  for (let i = 0; i < count; i++) {
    at = schedule.next(at);
    times.push(at.toISOString().replace(".000Z", "Z"));
  }
  return times;
}

/** Asserts each case of a table: expression, zone, after, the fire times expected. */
function check(table: Array<[string, string, string, string[]]>): void {
  for (const [expression, timezone, after, expected] of table) {
    assert.deepStrictEqual(
      fires(expression, timezone, after, expected.length),
      expected,
      `${expression} in ${timezone} after ${after}`,
    );
  }
}

// -- Fields, ranges, steps and names (UTC) --
// Worked out by hand from crontab(5); 1 January 2026 is a Thursday.

Deno.test("parseCron() reads steps, ranges and lists", () => {
  check([
    ["*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", [
      "2026-01-01T00:15:00Z",
      "2026-01-01T00:30:00Z",
    ]],
    // Strictly after: a fire time gives the one that follows it, even 1 ms before the next.
    ["*/15 * * * *", "UTC", "2026-01-01T00:15:00Z", ["2026-01-01T00:30:00Z"]],
    ["*/15 * * * *", "UTC", "2026-01-01T00:29:59.999Z", ["2026-01-01T00:30:00Z"]],
    ["1-30/5 * * * *", "UTC", "2026-01-01T00:21:00Z", [
      "2026-01-01T00:26:00Z",
      "2026-01-01T01:01:00Z",
    ]],
    // "5/10": from 5 to the field's end.
    ["5/10 * * * *", "UTC", "2026-01-01T00:50:00Z", [
      "2026-01-01T00:55:00Z",
      "2026-01-01T01:05:00Z",
    ]],
    ["0 9-17/4 * * *", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-01T09:00:00Z",
      "2026-01-01T13:00:00Z",
      "2026-01-01T17:00:00Z",
      "2026-01-02T09:00:00Z",
    ]],
    ["15 8,12 * * *", "UTC", "2026-01-01T08:15:00Z", [
      "2026-01-01T12:15:00Z",
      "2026-01-02T08:15:00Z",
    ]],
    // crontab(5): "*/23" in hours is hour 0 and hour 23 of each day.
    ["0 */23 * * *", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-01T23:00:00Z",
      "2026-01-02T00:00:00Z",
    ]],
    ["0 0 1 JAN,jul *", "UTC", "2026-01-01T00:00:00Z", [
      "2026-07-01T00:00:00Z",
      "2027-01-01T00:00:00Z",
    ]],
  ]);
});

Deno.test("parseCron() reads six fields with seconds first", () => {
  check([
    ["*/15 * * * * *", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-01T00:00:15Z",
      "2026-01-01T00:00:30Z",
      "2026-01-01T00:00:45Z",
      "2026-01-01T00:01:00Z",
    ]],
    ["30 0 12 * * *", "UTC", "2026-01-01T12:00:30Z", ["2026-01-02T12:00:30Z"]],
    // Five fields fire at second 0; an `after` inside a second moves to the next whole one.
    ["* * * * *", "UTC", "2026-01-01T00:00:00.500Z", ["2026-01-01T00:01:00Z"]],
    ["* * * * * *", "UTC", "2026-01-01T00:00:00.500Z", ["2026-01-01T00:00:01Z"]],
  ]);
});

Deno.test("parseCron() skips months too short for the day, and finds 29 February in leap years", () => {
  check([
    ["0 0 31 * *", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-31T00:00:00Z",
      "2026-03-31T00:00:00Z", // no 31 February
      "2026-05-31T00:00:00Z", // no 31 April
      "2026-07-31T00:00:00Z", // no 31 June
      "2026-08-31T00:00:00Z",
    ]],
    ["0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]],
    // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    ["0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", ["2104-02-29T00:00:00Z"]],
    ["0 0 29 2 *", "UTC", "1999-01-01T00:00:00Z", ["2000-02-29T00:00:00Z"]],
    // April has a 30th: "30,31 of February or April" fires on 30 April.
    ["0 0 30,31 2,4 *", "UTC", "2026-01-01T00:00:00Z", ["2026-04-30T00:00:00Z"]],
  ]);
});

Deno.test("parseCron() reads weekday names and numbers; 0 and 7 are Sunday", () => {
  check([
    ["0 9 * * MON-FRI", "UTC", "2026-01-02T09:00:00Z", ["2026-01-05T09:00:00Z"]], // Fri → Mon
    ["0 9 * * mon,Wed", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-05T09:00:00Z",
      "2026-01-07T09:00:00Z",
    ]],
    ["0 0 * * SUN", "UTC", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z"]],
    ["0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z"]],
    ["0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z"]],
    // cronie reads FRI-SUN (5-0) as Friday to Sunday.
    ["0 0 * * FRI-SUN", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-02T00:00:00Z",
      "2026-01-03T00:00:00Z",
      "2026-01-04T00:00:00Z",
      "2026-01-09T00:00:00Z",
    ]],
    // Weekdays before the epoch: 31 December 1969 was a Wednesday, 1 January 1970 a Thursday.
    ["0 0 * * WED", "UTC", "1969-12-25T00:00:00Z", ["1969-12-31T00:00:00Z"]],
    ["0 0 * * THU", "UTC", "1969-12-31T12:00:00Z", ["1970-01-01T00:00:00Z"]],
  ]);
});

Deno.test("parseCron() combines day of month and day of week as Vixie cron does", () => {
  check([
    // crontab(5): "30 4 1,15 * 5" runs on the 1st and 15th of each month, plus every Friday.
    ["30 4 1,15 * 5", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-01T04:30:00Z", // the 1st (a Thursday)
      "2026-01-02T04:30:00Z", // Friday
      "2026-01-09T04:30:00Z", // Friday
      "2026-01-15T04:30:00Z", // the 15th (a Thursday)
      "2026-01-16T04:30:00Z", // Friday
      "2026-01-23T04:30:00Z",
      "2026-01-30T04:30:00Z",
      "2026-02-01T04:30:00Z", // the 1st (a Sunday)
    ]],
    // A field that starts with "*" is not restricted: both must match. Odd days that are
    // Mondays: 5 and 19 January, 9 and 23 February 2026.
    ["0 0 */2 * MON", "UTC", "2026-01-01T00:00:00Z", [
      "2026-01-05T00:00:00Z",
      "2026-01-19T00:00:00Z",
      "2026-02-09T00:00:00Z",
      "2026-02-23T00:00:00Z",
    ]],
    ["0 0 13 * FRI", "UTC", "2026-02-01T00:00:00Z", [
      "2026-02-06T00:00:00Z", // Friday
      "2026-02-13T00:00:00Z", // the 13th, a Friday too: once
      "2026-02-20T00:00:00Z",
    ]],
  ]);
});

Deno.test("parseCron() reads the macros as cronie expands them", () => {
  check([
    ["@weekly", "UTC", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]],
    ["@daily", "UTC", "2026-01-01T00:00:00Z", ["2026-01-02T00:00:00Z"]],
    ["@midnight", "UTC", "2026-01-01T00:00:00Z", ["2026-01-02T00:00:00Z"]],
    ["@hourly", "UTC", "2026-01-01T00:00:00Z", ["2026-01-01T01:00:00Z"]],
    ["@monthly", "UTC", "2026-01-01T00:00:00Z", ["2026-02-01T00:00:00Z"]],
    ["@yearly", "UTC", "2026-01-01T00:00:00Z", ["2027-01-01T00:00:00Z"]],
    ["@ANNUALLY", "UTC", "2026-01-01T00:00:00Z", ["2027-01-01T00:00:00Z"]],
  ]);
});

Deno.test("CronSchedule.toString() normalises, and parses again to the same schedule", () => {
  const cases: Array<[string, string]> = [
    ["  0   2 * *  sun ", "0 2 * * SUN"],
    ["*/15 9-17 * jan-mar mon-fri", "*/15 9-17 * JAN-MAR MON-FRI"],
    ["0 30 2 * * *", "0 30 2 * * *"],
    ["@annually", "@yearly"],
    ["@MIDNIGHT", "@daily"],
  ];
  for (const [written, normal] of cases) {
    const schedule = parseCron(written, { timezone: "Europe/Berlin" });
    assert.strictEqual(schedule.toString(), normal);
    assert.strictEqual(String(schedule), normal);
    const again = parseCron(schedule.toString(), { timezone: schedule.timezone });
    let a = new Date("2026-03-01T00:00:00Z"), b = a;
    for (let i = 0; i < 20; i++) {
      a = schedule.next(a);
      b = again.next(b);
      assert.strictEqual(a.toISOString(), b.toISOString(), written);
    }
  }
  assert.deepStrictEqual(
    JSON.parse(JSON.stringify(parseCron("0 2 * * *", { timezone: "europe/berlin" }))),
    { kind: "cron", expression: "0 2 * * *", timezone: "Europe/Berlin" },
  );
  assert.strictEqual(parseCron("0 2 * * *").timezone, "UTC");
});

// -- Time zones and daylight saving --
// Europe/Berlin 2026: at 01:00 UTC on 29 March, 02:00 CET becomes 03:00 CEST; at 01:00 UTC
// on 25 October, 03:00 CEST becomes 02:00 CET. America/New_York 2026: at 07:00 UTC on 8
// March, 02:00 EST becomes 03:00 EDT; at 06:00 UTC on 1 November, 02:00 EDT becomes 01:00
// EST. Australia/Adelaide 2026: at 16:30 UTC on 4 April, 03:00 ACDT (+10:30) becomes 02:00
// ACST (+9:30); at 16:30 UTC on 3 October, 02:00 ACST becomes 03:00 ACDT.

Deno.test("parseCron() fires a fixed time that a jump forward skips once, at the jump", () => {
  check([
    ["30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", [
      "2026-03-28T01:30:00Z", // 02:30 CET
      "2026-03-29T01:00:00Z", // no 02:30: at the jump, 03:00 CEST
      "2026-03-30T00:30:00Z", // 02:30 CEST
    ]],
    // Two skipped times still fire once; 03:30 follows as usual.
    ["0,30 2,3 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", [
      "2026-03-29T01:00:00Z", // 02:00 and 02:30 CET, at the jump (and 03:00 CEST itself)
      "2026-03-29T01:30:00Z", // 03:30 CEST
      "2026-03-30T00:00:00Z", // 02:00 CEST
    ]],
    ["30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", [
      "2026-03-07T07:30:00Z", // 02:30 EST
      "2026-03-08T07:00:00Z", // no 02:30: at the jump, 03:00 EDT
      "2026-03-09T06:30:00Z", // 02:30 EDT
    ]],
    // With seconds: 02:30:10 is skipped too.
    ["10 30 2 * * *", "America/New_York", "2026-03-08T06:59:59Z", ["2026-03-08T07:00:00Z"]],
    // An `after` one second before the jump still sees it; at the jump, it is past.
    ["30 2 * * *", "America/New_York", "2026-03-08T06:59:59.999Z", ["2026-03-08T07:00:00Z"]],
    ["30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", ["2026-03-09T06:30:00Z"]],
    ["30 2 * * *", "Australia/Adelaide", "2026-10-02T00:00:00Z", [
      "2026-10-02T17:00:00Z", // 02:30 ACST (+9:30)
      "2026-10-03T16:30:00Z", // no 02:30: at the jump, 03:00 ACDT
      "2026-10-04T16:00:00Z", // 02:30 ACDT (+10:30)
    ]],
  ]);
});

Deno.test("parseCron() fires a fixed time that a step back repeats once, the first time", () => {
  check([
    ["30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", [
      "2026-10-25T00:30:00Z", // 02:30 CEST; not again at 02:30 CET (01:30 UTC)
      "2026-10-26T01:30:00Z", // 02:30 CET
    ]],
    // From inside the repeated hour: its times have fired already.
    ["30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", ["2026-10-26T01:30:00Z"]],
    ["0 3 * * *", "Europe/Berlin", "2026-10-25T00:45:00Z", ["2026-10-25T02:00:00Z"]], // 03:00 CET
    ["30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", [
      "2026-11-01T05:30:00Z", // 01:30 EDT; not again at 01:30 EST (06:30 UTC)
      "2026-11-02T06:30:00Z", // 01:30 EST
    ]],
    ["30 2 * * *", "Australia/Adelaide", "2026-04-04T00:00:00Z", [
      "2026-04-04T16:00:00Z", // 02:30 ACDT; not again at 02:30 ACST (17:00 UTC)
      "2026-04-05T17:00:00Z", // 02:30 ACST
    ]],
  ]);
});

Deno.test("parseCron() fires wildcard schedules whenever the clock reads a match", () => {
  check([
    // Spring forward: 02:00 and 02:30 do not exist, and do not fire.
    ["*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", [
      "2026-03-29T00:30:00Z", // 01:30 CET
      "2026-03-29T01:00:00Z", // 03:00 CEST
      "2026-03-29T01:30:00Z", // 03:30 CEST
    ]],
    ["30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", [
      "2026-03-29T00:30:00Z", // 01:30 CET
      "2026-03-29T01:30:00Z", // 03:30 CEST: nothing at the jump
    ]],
    ["15 * * * *", "America/New_York", "2026-03-08T06:00:00Z", [
      "2026-03-08T06:15:00Z", // 01:15 EST
      "2026-03-08T07:15:00Z", // 03:15 EDT
    ]],
    // Fall back: 02:30 is read twice in Berlin, and fires twice.
    ["30 * * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", [
      "2026-10-24T23:30:00Z", // 01:30 CEST
      "2026-10-25T00:30:00Z", // 02:30 CEST
      "2026-10-25T01:30:00Z", // 02:30 CET
      "2026-10-25T02:30:00Z", // 03:30 CET
    ]],
    ["@hourly", "Europe/Berlin", "2026-10-24T23:30:00Z", [
      "2026-10-25T00:00:00Z", // 02:00 CEST
      "2026-10-25T01:00:00Z", // 02:00 CET
      "2026-10-25T02:00:00Z", // 03:00 CET
    ]],
    ["*/30 * * * *", "America/New_York", "2026-11-01T05:00:00Z", [
      "2026-11-01T05:30:00Z", // 01:30 EDT
      "2026-11-01T06:00:00Z", // 01:00 EST
      "2026-11-01T06:30:00Z", // 01:30 EST
      "2026-11-01T07:00:00Z", // 02:00 EST
    ]],
  ]);
});

Deno.test("parseCron() reads zones with half-hour offsets", () => {
  check([
    ["0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", ["2026-01-01T03:30:00Z"]], // +5:30
    ["@weekly", "Asia/Kolkata", "2026-01-01T00:00:00Z", ["2026-01-03T18:30:00Z"]], // Sunday 00:00
    ["0 12 * * *", "Australia/Adelaide", "2026-01-01T00:00:00Z", ["2026-01-01T01:30:00Z"]], // +10:30
    ["0 12 * * *", "Australia/Adelaide", "2026-07-01T00:00:00Z", ["2026-07-01T02:30:00Z"]], // +9:30
  ]);
});

/**
 * The fire times of a five-field expression from `start` to `end`, by the
 * rule of cron.ts's module doc read minute by minute, as cron itself reads
 * the clock: `Intl` gives each minute's local time, and nothing of
 * cron.ts's search is used but the expression's match of a local time.
 */
function bruteForce(expression: string, timezone: string, start: number, end: number): string[] {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: timezone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
  });
  const local = (ms: number) => {
    const p = Object.fromEntries(format.formatToParts(ms).map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
  };
  // A local time matches when, read as UTC, the UTC schedule fires at it.
  const utc = parseCron(expression);
  const matches = (wall: number) => utc.next(new Date(wall - 1)).getTime() === wall;
  const fixed = !/^\*/.test(expression.split(" ")[0]) && !/^\*/.test(expression.split(" ")[1]);
  const out: string[] = [];
  let latest = local(start - 60_000); // the latest local time the clock has read
  for (let t = start; t < end; t += 60_000) {
    const wall = local(t);
    let fire = matches(wall);
    if (fixed && wall <= latest) fire = false; // read again: it fired the first time
    if (fixed && wall > latest + 60_000) {
      // The clock jumped: skipped local minutes that match fire now.
      for (let skipped = latest + 60_000; skipped < wall && !fire; skipped += 60_000) {
        fire = matches(skipped);
      }
    }
    if (fire) out.push(new Date(t).toISOString());
    latest = Math.max(latest, wall);
  }
  return out;
}

Deno.test("CronSchedule.next() agrees with a minute-by-minute reading of the clock across DST changes", () => {
  const expressions = [
    "30 2 * * *",
    "0,15,30,45 1-3 * * *",
    "*/20 * * * *",
    "45 * * * *",
    "0 */2 * * *",
    "10 2 * * SUN",
    "59 1 * * *",
    "0 3 * * *",
    "@daily",
  ];
  const windows: Array<[string, string]> = [
    ["Europe/Berlin", "2026-03-28T18:00:00Z"],
    ["Europe/Berlin", "2026-10-24T18:00:00Z"],
    ["America/New_York", "2026-03-07T22:00:00Z"],
    ["America/New_York", "2026-10-31T22:00:00Z"],
    ["Australia/Adelaide", "2026-04-04T06:00:00Z"],
    ["Australia/Adelaide", "2026-10-03T06:00:00Z"],
    ["Australia/Lord_Howe", "2026-04-04T06:00:00Z"], // a 30-minute change: +11 to +10:30
    ["Australia/Lord_Howe", "2026-10-03T06:00:00Z"],
  ];
  for (const [timezone, from] of windows) {
    const start = Date.parse(from);
    const end = start + 20 * 3_600_000;
    for (const expression of expressions) {
      const expected = bruteForce(expression, timezone, start, end);
      const schedule = parseCron(expression, { timezone });
      const got: string[] = [];
      let at = schedule.next(new Date(start - 1));
      while (at.getTime() < end) {
        got.push(at.toISOString());
        const next = schedule.next(at);
        assert(
          next > at,
          `${expression} in ${timezone}: ${next.toISOString()} after ${got.at(-1)}`,
        );
        at = next;
      }
      assert.deepStrictEqual(got, expected, `${expression} in ${timezone} from ${from}`);
    }
  }
});

// -- Errors --

Deno.test("parseCron() rejects malformed expressions with a SyntaxError naming the field", () => {
  const cases: Array<[string, string]> = [
    ["", '"": empty; write five fields'],
    ["0 2 * *", '"0 2 * *": 4 fields; write 5 (minute hour day-of-month month day-of-week) or 6'],
    ["* * * * * * *", '"* * * * * * *": 7 fields;'],
    ["@reboot", '"@reboot": @reboot is not supported'],
    ["@dayly", '"@dayly": unknown macro @dayly; did you mean @daily?'],
    [
      "0 0 L * *",
      '"0 0 L * *": day of month "L" is not supported; taskpool reads standard cron fields, without L, W, #, ? or ~',
    ],
    ["0 0 15W * *", '"0 0 15W * *": day of month "15W" is not supported'],
    ["0 0 * * 5L", '"0 0 * * 5L": day of week "5L" is not supported'],
    [
      "0 0 ? * MON",
      '"0 0 ? * MON": day of month "?": "?" is not supported; taskpool reads standard cron fields, without L, W, #, ? or ~ (write "*" for "any")',
    ],
    ["0 0 * * 5#3", '"0 0 * * 5#3": day of week "5#3": "#" is not supported'],
    ["~ * * * *", '"~ * * * *": minute "~": "~" is not supported'],
    [
      "0 0 * * MOM",
      '"0 0 * * MOM": day of week "MOM" is not a number or a name (SUN-SAT); did you mean "MON"?',
    ],
    [
      "0 0 * * MONDAY",
      '"0 0 * * MONDAY": day of week "MONDAY" is not a number or a name (SUN-SAT); did you mean "MON"?',
    ],
    [
      "0 0 1 JANUARY *",
      '"0 0 1 JANUARY *": month "JANUARY" is not a number or a name (JAN-DEC); did you mean "JAN"?',
    ],
    ["JAN * * * *", '"JAN * * * *": minute "JAN" is not a number'],
    ["1,,2 * * * *", '"1,,2 * * * *": minute "1,,2" has an empty item in its list'],
    ["1-2-3 * * * *", '"1-2-3 * * * *": minute "1-2-3" is not a value, a range (a-b) or a step'],
    ["-5 * * * *", '"-5 * * * *": minute "-5" is not a value, a range (a-b) or a step'],
    ["*/x * * * *", '"*/x * * * *": minute step "x" in */x is not a number'],
  ];
  for (const [expression, message] of cases) {
    assert.throws(() => parseCron(expression), (error: Error) => {
      assert(error instanceof SyntaxError, `${expression}: ${error.name}`);
      assert(error.message.startsWith(message), `${expression}: ${error.message}`);
      return true;
    });
  }
});

Deno.test("parseCron() rejects values out of range with a RangeError naming the field and range", () => {
  const cases: Array<[string, string]> = [
    ["0 25 * * *", '"0 25 * * *": hour 25 is out of range 0-23'],
    ["60 * * * *", '"60 * * * *": minute 60 is out of range 0-59'],
    ["60 * * * * *", '"60 * * * * *": second 60 is out of range 0-59'],
    ["0 0 0 * *", '"0 0 0 * *": day of month 0 is out of range 1-31'],
    ["0 0 32 * *", '"0 0 32 * *": day of month 32 is out of range 1-31'],
    ["0 0 1 13 *", '"0 0 1 13 *": month 13 is out of range 1-12'],
    ["0 0 * * 8", '"0 0 * * 8": day of week 8 is out of range 0-7 (0 and 7 are Sunday)'],
    [
      "0 5-2 * * *",
      '"0 5-2 * * *": hour range 5-2 is backwards; write the smaller value first, or two ranges (5-23,0-2)',
    ],
    ["*/0 * * * *", '"*/0 * * * *": minute step 0 in */0 is out of range 1-59'],
    [
      "*/60 * * * *",
      '"*/60 * * * *": minute step 60 in */60 is out of range 1-59 (a larger step gives the first value alone: write that value)',
    ],
    ["0 0 */31 * *", '"0 0 */31 * *": day of month step 31 in */31 is out of range 1-30'],
    [
      "0 0 31 2 *",
      '"0 0 31 2 *": never fires: no month it names (FEB) has day 31; check the day of month and the month',
    ],
    ["0 0 30-31 2 *", '"0 0 30-31 2 *": never fires: no month it names (FEB) has day 30 or later'],
    [
      "0 0 31 4,6,9,11 *",
      '"0 0 31 4,6,9,11 *": never fires: no month it names (APR, JUN, SEP, NOV) has day 31',
    ],
  ];
  for (const [expression, message] of cases) {
    assert.throws(() => parseCron(expression), (error: Error) => {
      assert(error instanceof RangeError, `${expression}: ${error.name}`);
      assert(error.message.startsWith(message), `${expression}: ${error.message}`);
      return true;
    });
  }
  // Day of week can stand in for a missing day of month: this fires on Mondays.
  assert.strictEqual(
    parseCron("0 0 31 2 MON").next(new Date("2026-01-01T00:00:00Z")).toISOString(),
    "2026-02-02T00:00:00.000Z",
  );
});

Deno.test("parseCron() rejects an unknown time zone, suggesting the closest valid name", () => {
  const cases: Array<[string, string]> = [
    ["Europe/Berln", 'unknown time zone "Europe/Berln"; did you mean "Europe/Berlin"?'],
    ["Berlin", 'unknown time zone "Berlin"; did you mean "Europe/Berlin"?'],
    ["new york", 'unknown time zone "new york"; did you mean "America/New_York"?'],
    [
      "Mars/Olympus",
      'unknown time zone "Mars/Olympus"; use an IANA name such as "Europe/Berlin" or "UTC"',
    ],
  ];
  for (const [timezone, message] of cases) {
    assert.throws(() => parseCron("0 2 * * *", { timezone }), { name: "RangeError", message });
  }
  assert.strictEqual(parseCron("0 2 * * *", { timezone: "utc" }).timezone, "UTC");
  assert.strictEqual(parseCron("0 2 * * *", { timezone: "Asia/Kolkata" }).timezone, "Asia/Kolkata");
});

Deno.test("parseCron() and next() reject what is not a string or a valid date", () => {
  for (const bad of [undefined, null, 5, ["0 2 * * *"]]) {
    assert.throws(() => parseCron(bad as unknown as string), {
      name: "TypeError",
      message:
        `Cannot parse cron expression as it must be a string: current value is ${typeof bad}`,
    });
    if (bad === undefined) continue; // the default, UTC
    assert.throws(() => parseCron("0 2 * * *", { timezone: bad as unknown as string }), {
      name: "TypeError",
      message: /^Cannot parse cron expression as 'timezone' must be a string: current value is /,
    });
  }
  const schedule = parseCron("0 2 * * *", { timezone: "Europe/Berlin" });
  assert.throws(() => schedule.next(new Date(NaN)), RangeError);
  assert.throws(() => schedule.next(new Date(8.64e15)), RangeError);
  // The last fire time a Date holds, and none after it.
  const last = parseCron("0 0 1 1 *");
  assert.strictEqual(
    last.next(new Date("+275759-06-01T00:00:00Z")).toISOString(),
    "+275760-01-01T00:00:00.000Z",
  );
  assert.throws(() => last.next(new Date("+275760-01-01T00:00:00Z")), RangeError);
  // Dates end on 13 September 275760: 20 December (or a Sunday) is past the end.
  const late = parseCron("0 0 20 12 SUN");
  assert.throws(() => late.next(new Date("+275760-09-01T00:00:00Z")), RangeError);
});

// -- Speed and termination --

Deno.test("CronSchedule.next() serves 1,000 schedules a tick with time to spare", () => {
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"];
  const rules = ["*/15 * * * * *", "30 2 * * *", "0 9-17 * * MON-FRI", "*/5 * * * *", "@daily"];
  const schedules = Array.from(
    { length: 1000 },
    (_, i) => parseCron(rules[i % rules.length], { timezone: zones[Math.floor(i / 5) % 5] }),
  );
  const now = new Date("2026-03-29T00:59:00Z");
  for (const schedule of schedules) schedule.next(now); // each zone's year, read once
  const started = performance.now();
  for (let tick = 0; tick < 10; tick++) {
    const at = new Date(now.getTime() + tick * 1000);
    for (const schedule of schedules) schedule.next(at);
  }
  const perTick = (performance.now() - started) / 10;
  // A few ms a tick on a busy 2-core machine; a second is the budget.
  assert(perTick < 100, `${perTick.toFixed(1)} ms for 1,000 schedules`);
});

Deno.test("CronSchedule.next() always finds a time later than `after` for random expressions", () => {
  let seed = 20261201;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const field = (max: number, min: number) =>
    pick([
      "*",
      `${min + Math.floor(random() * (max - min + 1))}`,
      `*/${1 + Math.floor(random() * (max - min))}`,
      `${min}-${min + Math.floor(random() * (max - min + 1))}`,
      `${min + Math.floor(random() * (max - min + 1))},${min}`,
    ]);
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"];
  let parsed = 0;
  for (let round = 0; round < 500; round++) {
    const expression = [field(59, 0), field(23, 0), field(31, 1), field(12, 1), field(6, 0)]
      .join(" ");
    let schedule;
    try {
      schedule = parseCron(expression, { timezone: pick(zones) });
    } catch (error) {
      assert(/never fires/.test((error as Error).message), `${expression}: ${error}`);
      continue;
    }
    parsed++;
    let at = new Date(Date.UTC(2000 + Math.floor(random() * 60), 0, 1) + random() * 3e10);
    for (let i = 0; i < 5; i++) {
      const next = schedule.next(at);
      assert(next > at, `${expression} in ${schedule.timezone}: ${next} after ${at}`);
      at = next;
    }
  }
  assert(parsed > 400, `only ${parsed} of 500 parsed`);
});

// -- every --

Deno.test("parseEvery() ticks on the epoch's grid, strictly after `after`", () => {
  const thirty = parseEvery("30s");
  const next = (schedule: { next(after: Date): Date }, after: string) =>
    schedule.next(new Date(after)).toISOString();
  assert.strictEqual(next(thirty, "2026-01-01T00:00:10Z"), "2026-01-01T00:00:30.000Z");
  assert.strictEqual(next(thirty, "2026-01-01T00:00:30Z"), "2026-01-01T00:01:00.000Z");
  assert.strictEqual(next(thirty, "2026-01-01T00:00:29.999Z"), "2026-01-01T00:00:30.000Z");
  // Two machines that started at different times agree on the ticks.
  assert.strictEqual(next(thirty, "2026-01-01T00:00:01Z"), next(thirty, "2026-01-01T00:00:29Z"));
  // 7 minutes does not divide a day: the grid is the epoch's, not the hour's.
  // 2026-01-02 is day 20,455 since the epoch, and 20,455 × 1,440 ≡ 2 (mod 7) minutes.
  assert.strictEqual(next(parseEvery("7m"), "2026-01-02T00:00:00Z"), "2026-01-02T00:02:00.000Z");
  assert.strictEqual(next(parseEvery(250), "1969-12-31T23:59:59.900Z"), "1970-01-01T00:00:00.000Z");
  assert.deepStrictEqual(JSON.parse(JSON.stringify(parseEvery("5m"))), {
    kind: "every",
    interval: 300_000,
  });
});

Deno.test("EverySchedule.toString() gives the largest whole unit", () => {
  const cases: Array<[string | number, string]> = [
    ["30s", "30s"],
    ["90s", "90s"],
    ["60m", "1h"],
    ["0.5s", "500ms"],
    [1500, "1500ms"],
    ["1.5h", "90m"],
  ];
  for (const [duration, text] of cases) assert.strictEqual(String(parseEvery(duration)), text);
});

Deno.test("parseEvery() rejects what is not a positive whole number of ms", () => {
  for (const bad of ["soon", "5", "-1s", -1, NaN, Infinity, "", null]) {
    assert.throws(() => parseEvery(bad as string), (error: Error) => {
      assert(error instanceof SyntaxError, String(bad));
      assert.match(
        error.message,
        /: expected a duration such as "30s", "5m", "1h" or a number of ms$/,
      );
      return true;
    });
  }
  for (const bad of [0, "0s", "0.5ms", 1.5]) {
    assert.throws(() => parseEvery(bad), {
      name: "RangeError",
      message: `${
        typeof bad === "string" ? JSON.stringify(bad) : bad
      }: expected a whole number of milliseconds, at least 1ms`,
    });
  }
  assert.throws(() => parseEvery("1s").next(new Date(NaN)), RangeError);
  assert.throws(() => parseEvery("1h").next(new Date(8.64e15)), RangeError);
});
