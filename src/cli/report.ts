/**
 * What the CLI shows: a live progress line on a terminal (or a plain line
 * per finished job), JSON Lines with `--json`, and the final summary.
 *
 * @module
 */

import type { JobResult } from "../run/types.ts";

const encoder = new TextEncoder();

/** Lines made and written at once, at most (else every 50 ms). */
const LINES_PER_BATCH = 2048;

/** How a line per job names each status. */
const MARKS: Record<JobResult["status"], string> = {
  succeeded: "ok",
  failed: "FAILED",
  skipped: "skipped",
  "not-run": "not run",
  cancelled: "cancelled",
};

/** Where and how the CLI reports. */
export interface ReporterOptions {
  /** Jobs in the run. */
  total: number;
  /** One JSON object per finished job on stdout, nothing else there. */
  json: boolean;
  /** stderr is a terminal: a live progress line instead of a line per job. */
  live: boolean;
  /** ANSI colours (a terminal, and NO_COLOR unset). */
  color: boolean;
  /** Jobs running now. */
  running: () => number;
  /** Jobs handed out that have not started (queued in the pool). */
  waiting?: () => number;
  /** The next tick of a recurring job, ms since the epoch, if any comes. */
  nextTick?: () => number | undefined;
  /** The longest-running job and its progress, for the live line ("build 40%"), if one runs. */
  longest?: () => string | undefined;
}

/** Collects results and writes what the user sees. */
export class Reporter {
  readonly #options: ReporterOptions;
  readonly #started = performance.now();
  /** Jobs ended so far, and how many of them by status. */
  #done = 0;
  readonly #counts: Record<JobResult["status"], number> = {
    succeeded: 0,
    failed: 0,
    skipped: 0,
    "not-run": 0,
    cancelled: 0,
  };
  /** Runs of each recurring job (`<id>@<tick>`), by job id, for the summary. */
  readonly #runs = new Map<string, number>();
  /** Failed and cancelled jobs, for the summary. */
  readonly #failures: JobResult[] = [];
  /**
   * The three longest jobs so far, longest first. Kept as jobs end: the
   * summary runs once, in code too cold for a pass over 10,000s of results
   * to be cheap (~4 ms in profiles).
   */
  readonly #slowest: JobResult[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Output not yet written: a line per job is cheap to make, a write per job is not. */
  #out = "";
  #errText = "";
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Jobs ended whose line is not made yet (see `finished`). */
  readonly #lines: JobResult[] = [];

  constructor(options: ReporterOptions) {
    this.#options = options;
    if (options.live) {
      this.#timer = setInterval(() => this.#progress(), 100);
      Deno.unrefTimer(this.#timer);
    }
  }

  /** A job ended (exactly once per job). */
  finished(result: JobResult): void {
    const status = result.status;
    this.#done++;
    const tick = result.id.lastIndexOf("@");
    if (tick > 0 && /^@\d{4}-\d\d-\d\dT/.test(result.id.slice(tick))) {
      const id = result.id.slice(0, tick);
      this.#runs.set(id, (this.#runs.get(id) ?? 0) + 1);
    }
    this.#counts[status]++;
    if (status === "failed" || status === "cancelled") this.#failures.push(result);
    const duration = result.duration;
    if (duration !== undefined) {
      const slowest = this.#slowest;
      if (slowest.length < 3 || duration > slowest[2].duration!) {
        let i = slowest.length < 3 ? slowest.length : 2;
        while (i > 0 && slowest[i - 1].duration! < duration) {
          slowest[i] = slowest[i - 1];
          i--;
        }
        slowest[i] = result;
      }
    }
    if (this.#options.json) this.#out += JSON.stringify(result) + "\n";
    // Its line is made with the next batch, in one loop: made here, between
    // tasks, the lines of the 10,000-job bench cost ~4 ms more of the main
    // thread's time.
    if (!this.#options.live) this.#lines.push(result);
    // Written every 50 ms, and at once past 64 KB of JSON or 2,048 lines:
    // the timer cannot fire while results keep the main thread busy.
    if (this.#out.length > 1 << 16 || this.#lines.length >= LINES_PER_BATCH) this.flush();
    else if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(() => this.flush(), 50);
    }
  }

  /** A line of `--events` on stdout (JSON Lines, before the jobs' own lines as they come). */
  event(event: Record<string, unknown>): void {
    this.#out += JSON.stringify(event) + "\n";
    if (this.#out.length > 1 << 16) this.flush();
    else if (this.#flushTimer === undefined) this.#flushTimer = setTimeout(() => this.flush(), 50);
  }

  /** Moves the lines of the jobs ended since the last batch into the text for stderr. */
  #renderLines(): void {
    const lines = this.#lines;
    if (lines.length === 0) return;
    let text = "";
    for (let i = 0; i < lines.length; i++) {
      const result = lines[i];
      text += this.#paint(MARKS[result.status], result.status) + " " + result.id;
      if (result.duration !== undefined) text += " (" + seconds(result.duration) + ")";
      if (result.error) text += ": " + result.error;
      text += "\n";
    }
    lines.length = 0;
    this.#errText += text;
  }

  /** Writes a line on stderr (clearing the progress line first), now. */
  note(line: string): void {
    this.#err(`${line}\n`);
    this.flush();
  }

  /** Writes what is buffered. */
  flush(): void {
    this.#renderLines();
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#out !== "") writeAll(Deno.stdout, this.#out);
    if (this.#errText !== "") writeAll(Deno.stderr, this.#errText);
    this.#out = this.#errText = "";
  }

  /** Stops the progress line and writes the summary on stderr. */
  summary(): void {
    clearInterval(this.#timer);
    const wall = (performance.now() - this.#started) / 1000;
    const parts = Object.entries(this.#counts).filter(([, n]) => n > 0).map(([s, n]) =>
      `${n} ${s}`
    );
    const lines = [`${this.#done} jobs: ${parts.join(", ")} in ${wall.toFixed(2)} s`];
    for (const [id, runs] of this.#runs) lines.push(`${id}: ${runs} run${runs === 1 ? "" : "s"}`);
    if (this.#slowest.length > 0) {
      lines.push(
        `slowest: ${this.#slowest.map((r) => `${r.id} ${seconds(r.duration!)}`).join(", ")}`,
      );
    }
    // In the order they ended.
    for (const r of this.#failures) {
      lines.push(
        `${this.#paint(r.status, "failed")} ${r.id} after ${r.attempts} attempt(s): ${r.error}`,
      );
      if (r.output) lines.push(...r.output.split("\n").slice(-5).map((l) => `    ${l}`));
    }
    this.#err(lines.join("\n") + "\n");
    this.flush();
  }

  #progress(): void {
    const done = this.#done;
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = done / Math.max(elapsed, 0.001);
    const eta = rate > 0 ? (this.#options.total - done) / rate : Infinity;
    const longest = this.#options.longest?.();
    const line = `${done}/${this.#options.total} done, ${this.#options.running()} running, ` +
      `${this.#options.waiting?.() ?? 0} waiting, ${this.#counts.failed} failed, ` +
      (longest === undefined ? "" : `longest ${longest}, `) +
      next(this.#options.nextTick?.()) +
      `${elapsed.toFixed(1)} s, ${rate.toFixed(1)}/s, ETA ${
        Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"
      }`;
    this.flush();
    writeAll(Deno.stderr, `\r\x1b[2K${line}`);
  }

  #err(text: string): void {
    this.#renderLines(); // the lines of jobs that ended before come first
    this.#errText += this.#options.live ? `\r\x1b[2K${text}` : text;
    if (this.#flushTimer === undefined) {
      // Soon, and at most every 50 ms: a terminal still sees lines live.
      this.#flushTimer = setTimeout(() => this.flush(), 50);
    }
    if (this.#errText.length + this.#out.length > 1 << 16) this.flush();
  }

  #paint(text: string, status: string): string {
    if (!this.#options.color) return text;
    const code = status === "succeeded"
      ? 32
      : status === "failed" || status === "cancelled"
      ? 31
      : 33;
    return `\x1b[${code}m${text}\x1b[0m`;
  }
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += stream.writeSync(bytes.subarray(at));
}

function seconds(ms: number): string {
  // Math.round, not toFixed(0): the same text, for a line per job.
  return ms < 1000 ? Math.round(ms) + " ms" : `${(ms / 1000).toFixed(2)} s`;
}

/** "next tick in 12 s, " for the progress line, or nothing. */
function next(tick: number | undefined): string {
  if (tick === undefined) return "";
  return `next tick in ${Math.max(0, (tick - Date.now()) / 1000).toFixed(0)} s, `;
}

/** A job's progress for the live line: a number as a percentage, else its JSON, short. */
export function showProgress(value: unknown): string {
  if (value === undefined) return "running";
  if (typeof value === "number") return `${Math.round(value * 100)}%`;
  const json = JSON.stringify(value);
  return json.length > 40 ? `${json.slice(0, 39)}…` : json;
}
