/**
 * Prometheus metrics for the CLI and the dashboard: families rendered in the text exposition
 * format (version 0.0.4: `# HELP` and `# TYPE` lines, then samples), a
 * histogram with cumulative buckets, and a `Deno.serve` endpoint that serves
 * them on `GET /metrics`.
 *
 * @module
 */

/** One sample of a family: its labels (in order) and value. */
export interface Sample {
  /** Appended to the family's name (`_bucket`, `_sum`, `_count`), or "". */
  suffix?: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: a name, its help text, its type, and its samples. */
export interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: Sample[];
}

/** Job durations' bucket bounds, seconds: from a millisecond to five minutes. */
export const DURATION_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
  60,
  300,
];

/** A histogram's state: counts per bucket (not cumulative), sum and count. */
export class Histogram {
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** @param bounds Upper bounds, ascending (the `+Inf` bucket is implied). */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Array(bounds.length + 1).fill(0);
  }

  /** Counts one observation of `value`. */
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  /** The samples of the family: cumulative `_bucket`s with `le`, then `_sum` and `_count`. */
  samples(labels: Record<string, string>): Sample[] {
    const samples: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += this.#counts[i];
      const le = i < this.bounds.length ? String(this.bounds[i]) : "+Inf";
      samples.push({ suffix: "_bucket", labels: { ...labels, le }, value: cumulative });
    }
    samples.push({ suffix: "_sum", labels, value: this.#sum });
    samples.push({ suffix: "_count", labels, value: this.#count });
    return samples;
  }
}

/** A label value as the format wants it: backslash, double quote and newline escaped. */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A sample value: integers as they are, `+Inf`/`-Inf`/`NaN` spelled as the format does. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * Renders families in the Prometheus text exposition format.
 *
 * @param families The families, each with its samples.
 * @returns The text, ending with a newline.
 *
 * @example A counter
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import assert from "node:assert";
 *
 * const text = renderMetrics([{
 *   name: "taskpool_jobs_total",
 *   help: "Jobs finished.",
 *   type: "counter",
 *   samples: [{ labels: { queue: 'a"b', status: "succeeded" }, value: 3 }],
 * }]);
 * assert.strictEqual(
 *   text,
 *   '# HELP taskpool_jobs_total Jobs finished.\n# TYPE taskpool_jobs_total counter\n' +
 *     'taskpool_jobs_total{queue="a\\"b",status="succeeded"} 3\n',
 * );
 * ```
 */
export function renderMetrics(families: Family[]): string {
  let text = "";
  for (const family of families) {
    const help = family.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
    text += `# HELP ${family.name} ${help}\n# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",");
      text += `${family.name}${sample.suffix ?? ""}${labels === "" ? "" : `{${labels}}`} ${
        formatValue(sample.value)
      }\n`;
    }
  }
  return text;
}

/**
 * Reads a `--metrics` address: `host:port`, a loopback or any IP host and a
 * port from 0 (any free one) to 65535.
 *
 * @param value The flag's value.
 * @returns The host and port.
 * @throws {RangeError} Naming the flag and an example.
 */
export function parseListen(value: string, flag = "--metrics"): { hostname: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[0-9A-Za-z.-]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw new RangeError(
      `${flag} must be host:port, such as 127.0.0.1:9464 (port 0 picks a free one), got "${value}"`,
    );
  }
  return { hostname: match[1].replace(/^\[|\]$/g, ""), port };
}

/**
 * Serves `render()` on `GET /metrics` (and `HEAD`); any other path is 404,
 * any other method 405. Resolves once it listens, with its address.
 *
 * @param listen Where to listen.
 * @param render Makes the text at each request.
 * @returns The server and the port it listens on.
 */
export async function serveMetrics(
  listen: { hostname: string; port: number },
  render: () => string,
): Promise<{ server: Deno.HttpServer; port: number }> {
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    onListen: ({ port }) => listening.resolve(port),
    onError: () => new Response("internal error\n", { status: 500 }),
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") return new Response("not found: try /metrics\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed: GET /metrics\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    return new Response(request.method === "HEAD" ? null : render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });
  return { server, port: await listening.promise };
}
