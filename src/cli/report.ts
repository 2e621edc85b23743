/**
 * What the CLI shows: a live progress line on a terminal (or a plain line
 * per finished job), JSON Lines with `--json`, and the final summary.
 *
 * @module
 */

import type { JobResult } from "../scheduler.ts";

const encoder = new TextEncoder();

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
}

/** Collects results and writes what the user sees. */
export class Reporter {
  readonly #options: ReporterOptions;
  readonly #results: JobResult[] = [];
  readonly #started = performance.now();
  #failed = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Output not yet written: a line per job is cheap to make, a write per job is not. */
  #out = "";
  #errText = "";
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ReporterOptions) {
    this.#options = options;
    if (options.live) {
      this.#timer = setInterval(() => this.#progress(), 100);
      Deno.unrefTimer(this.#timer);
    }
  }

  /** A job ended (exactly once per job). */
  finished(result: JobResult): void {
    if (result.status === "failed") this.#failed++;
    this.#results.push(result);
    if (this.#options.json) {
      this.#out += JSON.stringify(result) + "\n";
      if (this.#flushTimer === undefined) this.#flushTimer = setTimeout(() => this.flush(), 50);
    }
    if (!this.#options.live) {
      const mark = MARKS[result.status];
      const took = result.duration === undefined ? "" : ` (${seconds(result.duration)})`;
      const why = result.error ? `: ${result.error}` : "";
      this.#err(`${this.#paint(mark, result.status)} ${result.id}${took}${why}\n`);
    }
  }

  /** Writes a line on stderr (clearing the progress line first), now. */
  note(line: string): void {
    this.#err(`${line}\n`);
    this.flush();
  }

  /** Writes what is buffered. */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#out !== "") writeAll(Deno.stdout, this.#out);
    if (this.#errText !== "") writeAll(Deno.stderr, this.#errText);
    this.#out = this.#errText = "";
  }

  /** Stops the progress line and writes the summary on stderr. */
  summary(): void {
    clearInterval(this.#timer);
    const counts = new Map<string, number>();
    for (const r of this.#results) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    const wall = (performance.now() - this.#started) / 1000;
    const parts = ["succeeded", "failed", "skipped", "not-run", "cancelled"]
      .filter((s) => counts.has(s))
      .map((s) => `${counts.get(s)} ${s}`);
    const lines = [`${this.#results.length} jobs: ${parts.join(", ")} in ${wall.toFixed(2)} s`];
    const slowest = slowestThree(this.#results);
    if (slowest.length > 0) {
      lines.push(`slowest: ${slowest.map((r) => `${r.id} ${seconds(r.duration!)}`).join(", ")}`);
    }
    for (const r of this.#results) {
      if (r.status === "failed" || r.status === "cancelled") {
        lines.push(
          `${this.#paint(r.status, "failed")} ${r.id} after ${r.attempts} attempt(s): ${r.error}`,
        );
        if (r.output) lines.push(...r.output.split("\n").slice(-5).map((l) => `    ${l}`));
      }
    }
    this.#err(lines.join("\n") + "\n");
    this.flush();
  }

  #progress(): void {
    const done = this.#results.length;
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = done / Math.max(elapsed, 0.001);
    const eta = rate > 0 ? (this.#options.total - done) / rate : Infinity;
    const line =
      `${done}/${this.#options.total} done, ${this.#options.running()} running, ${this.#failed} failed, ` +
      `${elapsed.toFixed(1)} s, ${rate.toFixed(1)}/s, ETA ${
        Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"
      }`;
    this.flush();
    writeAll(Deno.stderr, `\r\x1b[2K${line}`);
  }

  #err(text: string): void {
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

/** The three longest results, longest first, in one pass (not a sort of them all). */
function slowestThree(results: JobResult[]): JobResult[] {
  const top: JobResult[] = [];
  for (const r of results) {
    if (r.duration === undefined) continue;
    if (top.length === 3 && r.duration <= top[2].duration!) continue;
    let i = top.length < 3 ? top.length : 2;
    while (i > 0 && top[i - 1].duration! < r.duration) {
      top[i] = top[i - 1];
      i--;
    }
    top[i] = r;
  }
  return top;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
