/**
 * The dashboard's HTTP server: the page and its assets, a JSON API, a
 * Server-Sent Events stream per queue, the queue-wide `/metrics`, and the
 * dead list's actions. Plain `Deno.serve`; the page is shipped in
 * `_page.ts` (no CDN: it works offline).
 *
 * Routes (every one behind `_guard.ts`'s checks):
 *
 * | route                                   | what                                         |
 * | --------------------------------------- | -------------------------------------------- |
 * | `GET /`                                 | the page (`?queue=Q` picks a queue)          |
 * | `GET /app.js`, `GET /app.css`           | its script and style                         |
 * | `GET /api/queues`                       | the queues it watches                        |
 * | `GET /api/overview?queue=Q`             | counts by state, consumers and groups (JSON) |
 * | `GET /api/events?queue=Q`               | a snapshot per second (SSE, `event: snapshot`)|
 * | `GET /api/outcomes?queue=Q&failed=1`    | latest outcomes (failed only)                |
 * | `GET /api/outcome?queue=Q&record=ID`    | one outcome, and its dead record if any      |
 * | `POST /api/dead/retry?queue=Q`          | body `{"refs": [...]}` or `{"all": true}`    |
 * | `POST /api/dead/delete?queue=Q`         | the same                                     |
 * | `GET /metrics`                          | `taskpool_queue_jobs`, `taskpool_queue_consumers`, `taskpool_group_jobs` |
 *
 * @module
 */

import { RedisQueue, type RedisQueueOptions } from "../redis/mod.ts";
import { guard, isLoopback } from "./_guard.ts";
import { type Overview, QueueWatch, SAMPLE_MS } from "./_watch.ts";
import { renderMetrics } from "./metrics.ts";
import { APP_CSS, APP_JS, PAGE_HTML } from "./_page.ts";

/** Options of {@linkcode serveDashboard}. */
export interface DashboardOptions {
  /** The queues to watch (one page each, with a switcher). */
  queues: string[];
  /** The Redis server, as {@linkcode RedisQueue.connect} takes it. */
  redis?: Omit<RedisQueueOptions, "queue">;
  /**
   * Where to listen. Any address but loopback requires `token`.
   *
   * @default {{ hostname: "127.0.0.1", port: 8080 }}
   */
  listen?: { hostname: string; port: number };
  /** A token every request must carry (header, or the cookie its `?token=` link sets). */
  token?: string;
  /** Called with a one-line warning (a read of Redis failed; it is tried again each second). */
  onWarning?: (message: string) => void;
}

/** A running dashboard, from {@linkcode serveDashboard}. */
export interface Dashboard extends AsyncDisposable {
  /** Its address: `http://host:port/`. */
  url: string;
  /** Stops serving, ends the event streams, and closes the queues' connections. */
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8" },
  });
}

function problem(status: number, error: string): Response {
  return json({ error }, status);
}

/** An open event stream of a page. */
interface Stream {
  queue: string;
  send(event: "snapshot" | "problem", data: unknown): void;
  end(): void;
}

/** Event streams open at once, at most (each page has one). */
const MAX_STREAMS = 64;
/** How long an action's body may take to arrive, ms. */
const BODY_MS = 10_000;
/** How long close() waits for requests in flight, ms. */
const CLOSE_MS = 3000;

/**
 * An action's body as text, read with a byte cap and a time limit; or the
 * response that refuses it (413 too large, 408 too slow).
 */
async function readBody(request: Request): Promise<string | Response> {
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY) {
    return problem(413, `the body is over ${MAX_BODY} bytes`);
  }
  const reader = request.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, BODY_MS);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY) {
        reader.cancel().catch(() => {});
        return problem(413, `the body is over ${MAX_BODY} bytes`);
      }
      chunks.push(value);
    }
  } catch {
    late = true;
  } finally {
    clearTimeout(timer);
  }
  if (late) return problem(408, `the body did not arrive within ${BODY_MS / 1000} s`);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** The largest action body accepted, bytes. */
const MAX_BODY = 64 * 1024;
/** The most refs one action may name. */
const MAX_REFS = 1000;

/**
 * Starts a dashboard: connects to each queue, reads it every second, and
 * serves the page and its API.
 *
 * @param options The queues, the server, where to listen, the token.
 * @returns The running dashboard.
 * @throws {RangeError} Listening beyond loopback without a token, or no queue.
 *
 * @example Serve one queue and read its overview
 * ```ts
 * import { serveDashboard } from "@taskpool/taskpool/dashboard";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using dashboard = await serveDashboard({
 *     queues: [`doc:${crypto.randomUUID()}`],
 *     redis: { url },
 *     listen: { hostname: "127.0.0.1", port: 0 },
 *   });
 *   const [queue] = await (await fetch(new URL("api/queues", dashboard.url))).json();
 *   const overview = await (await fetch(new URL(`api/overview?queue=${queue}`, dashboard.url))).json();
 *   assert.strictEqual(overview.counts.waiting, 0);
 * }
 * ```
 */
export async function serveDashboard(options: DashboardOptions): Promise<Dashboard> {
  const listen = options.listen ?? { hostname: "127.0.0.1", port: 8080 };
  const token = options.token === "" ? undefined : options.token;
  if (options.queues.length === 0) {
    throw new RangeError("Cannot serve a dashboard without a queue: name at least one");
  }
  if (token === undefined && !isLoopback(listen.hostname)) {
    throw new RangeError(
      `Cannot serve the dashboard on ${listen.hostname} without a token: anyone who reaches it could retry and delete jobs. ` +
        "Give --token (or TASKPOOL_DASHBOARD_TOKEN), or listen on 127.0.0.1",
    );
  }
  const queues = new Map<string, RedisQueue>();
  const watches = new Map<string, QueueWatch>();
  try {
    for (const name of new Set(options.queues)) {
      const queue = await RedisQueue.connect({ ...options.redis, queue: name });
      queues.set(name, queue);
      watches.set(name, new QueueWatch(queue));
    }
  } catch (error) {
    for (const queue of queues.values()) queue.close();
    throw error;
  }
  const streams = new Set<Stream>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;

  /** Reads a queue and sends the snapshot (or the failure to read it) to its streams. */
  const refresh = async (watch: QueueWatch) => {
    try {
      const snapshot = await watch.sample();
      for (const stream of streams) {
        if (stream.queue === watch.name) stream.send("snapshot", snapshot);
      }
    } catch (error) {
      const message = `cannot read queue "${watch.name}": ${
        (error as Error).message
      }; trying again each second`;
      if (watch.error !== message) options.onWarning?.(message);
      watch.error = message;
      const problem = { error: message, since: watch.snapshot?.at };
      for (const stream of streams) {
        if (stream.queue === watch.name) stream.send("problem", problem);
      }
    }
  };
  /** Refreshes a queue every second until closed. */
  const read = async (watch: QueueWatch) => {
    await refresh(watch);
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      read(watch);
    }, SAMPLE_MS);
    timers.add(timer);
  };

  const queueOf = (url: URL): QueueWatch | Response => {
    const name = url.searchParams.get("queue") ?? options.queues[0];
    return watches.get(name) ??
      problem(404, `no such queue here: ${JSON.stringify(name)}; see /api/queues`);
  };

  // A client that goes away cancels the body: that is how a stream ends.
  const events = (watch: QueueWatch): Response => {
    if (streams.size >= MAX_STREAMS) {
      return problem(503, `${MAX_STREAMS} pages are watching already: close one, or try later`);
    }
    const encoder = new TextEncoder();
    let stream: Stream;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        stream = {
          queue: watch.name,
          send: (event, data) => {
            // A client that does not read gets no more until it does: one
            // snapshot queued at most, never a growing backlog.
            if ((controller.desiredSize ?? 0) <= 0) return;
            try {
              controller.enqueue(
                encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
              );
            } catch { /* the client went away */ }
          },
          end: () => {
            streams.delete(stream);
            // error(), not close(): what is queued is dropped, so the
            // response ends now even for a client that stopped reading.
            try {
              controller.error(new Error("the dashboard closed"));
            } catch { /* ended */ }
          },
        };
        streams.add(stream);
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        if (watch.snapshot) stream.send("snapshot", watch.snapshot);
        if (watch.error) stream.send("problem", { error: watch.error, since: watch.snapshot?.at });
      },
      cancel() {
        streams.delete(stream);
      },
    }, { highWaterMark: 2 });
    return new Response(body, {
      headers: { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8" },
    });
  };

  const action = async (request: Request, watch: QueueWatch, kind: "retry" | "delete") => {
    const text = await readBody(request);
    if (text instanceof Response) return text;
    let body: { refs?: unknown; all?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      return problem(400, 'the body must be JSON: {"refs": ["<ref>", ...]} or {"all": true}');
    }
    let refs: string[] | "all";
    if (body?.all === true) refs = "all";
    else if (
      Array.isArray(body?.refs) && body.refs.length > 0 && body.refs.length <= MAX_REFS &&
      body.refs.every((ref) => typeof ref === "string" && /^[0-9a-f]{40}$/.test(ref))
    ) refs = body.refs as string[];
    else {
      return problem(
        400,
        `"refs" must be 1 to ${MAX_REFS} dead records' refs (40 hex digits, from the dead list), or send {"all": true}`,
      );
    }
    const queue = queues.get(watch.name)!;
    const actions = kind === "retry" ? await queue.retryDead(refs) : await queue.deleteDead(refs);
    return json({ actions });
  };

  const metrics = (): string => {
    const jobs = [];
    const consumers = [];
    const grouped = [];
    for (const watch of watches.values()) {
      const snapshot = watch.snapshot;
      if (snapshot === undefined) continue;
      for (const [state, value] of Object.entries(snapshot.counts)) {
        jobs.push({ labels: { queue: watch.name, state }, value });
      }
      consumers.push({
        labels: { queue: watch.name },
        value: snapshot.consumers.filter((c) => c.alive).length,
      });
      for (const group of snapshot.groups) {
        const labels = { queue: watch.name, group: group.name };
        grouped.push({ labels: { ...labels, state: "waiting" }, value: group.waiting });
        grouped.push({ labels: { ...labels, state: "running" }, value: group.running });
      }
    }
    return renderMetrics([
      {
        name: "taskpool_queue_jobs",
        help:
          "Jobs in each state of the queue (held: taken by consumers; running: held and started, as reported).",
        type: "gauge",
        samples: jobs,
      },
      {
        name: "taskpool_queue_consumers",
        help: "Consumers of the queue whose heartbeat is current.",
        type: "gauge",
        samples: consumers,
      },
      {
        name: "taskpool_group_jobs",
        help:
          "Jobs of each group: waiting (held back by the group's limits) and running (let in: running, or queued to start next).",
        type: "gauge",
        samples: grouped,
      },
    ]);
  };

  const route = async (request: Request): Promise<Response> => {
    const refused = guard(request, token);
    if (refused) return refused;
    const url = new URL(request.url);
    const path = url.pathname;
    const asset = (body: string, type: string) =>
      new Response(body, { headers: { ...SECURITY_HEADERS, "content-type": type } });
    if (request.method === "POST") {
      const kind = path === "/api/dead/retry"
        ? "retry"
        : path === "/api/dead/delete"
        ? "delete"
        : null;
      if (kind === null) {
        return problem(404, `no action at ${path}: POST /api/dead/retry or /api/dead/delete`);
      }
      const watch = queueOf(url);
      return watch instanceof Response ? watch : await action(request, watch, kind);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD, POST" },
      });
    }
    if (path === "/") return asset(PAGE_HTML, "text/html; charset=utf-8");
    if (path === "/app.js") return asset(APP_JS, "text/javascript; charset=utf-8");
    if (path === "/app.css") return asset(APP_CSS, "text/css; charset=utf-8");
    if (path === "/metrics") {
      // A queue it cannot read: the scrape fails (Prometheus's "up" says so), no stale gauges.
      const failing = [...watches.values()].find((watch) => watch.error !== undefined);
      if (failing) return problem(503, failing.error!);
      return new Response(metrics(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (path === "/api/queues") return json([...watches.keys()]);
    if (!path.startsWith("/api/")) return problem(404, `not found: ${path}`);
    const watch = queueOf(url);
    if (watch instanceof Response) return watch;
    if (path === "/api/overview") {
      if (watch.error !== undefined) return problem(503, watch.error);
      const snapshot = watch.snapshot ?? await watch.sample();
      const overview: Overview = {
        queue: snapshot.queue,
        at: snapshot.at,
        counts: snapshot.counts,
        consumers: snapshot.consumers,
        groups: snapshot.groups,
      };
      return json(overview);
    }
    if (path === "/api/events") return events(watch);
    const queue = queues.get(watch.name)!;
    if (path === "/api/outcomes") {
      const count = Math.min(100, Math.max(1, Number(url.searchParams.get("count") ?? 20) || 20));
      return json(
        await queue.outcomes({ count, failedOnly: url.searchParams.get("failed") === "1" }),
      );
    }
    if (path === "/api/outcome") {
      const record = url.searchParams.get("record") ?? "";
      if (!/^\d{1,20}-\d{1,20}$/.test(record)) {
        return problem(
          400,
          `"record" must be a results record id such as 1700000000000-0, got ${
            JSON.stringify(record)
          }`,
        );
      }
      const outcome = await queue.outcome(record);
      if (outcome === undefined) {
        return problem(404, `no outcome ${record}: the results stream no longer has it`);
      }
      const dead = outcome.status === "failed"
        ? await queue.deadRecord(outcome.id, outcome.batch)
        : undefined;
      return json({ outcome, dead });
    }
    return problem(404, `not found: ${path}`);
  };

  const listening = Promise.withResolvers<{ hostname: string; port: number }>();
  let server: Deno.HttpServer;
  try {
    server = serve();
  } catch (error) {
    closed = true;
    for (const queue of queues.values()) queue.close();
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(
        `Cannot serve the dashboard on ${listen.hostname}:${listen.port}: the address is in use; choose another --listen (port 0 picks a free one)`,
      );
    }
    throw error;
  }
  function serve(): Deno.HttpServer {
    return Deno.serve({
      hostname: listen.hostname,
      port: listen.port,
      onListen: (address) => listening.resolve(address),
      onError: (error) => {
        options.onWarning?.(`a request failed: ${(error as Error).message}`);
        return problem(500, `internal error: ${(error as Error).message}`);
      },
    }, route);
  }
  const address = await listening.promise;
  await Promise.all([...watches.values()].map((watch) => read(watch)));
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const timer of timers) clearTimeout(timer);
    for (const stream of [...streams]) stream.end();
    // A client that never finishes its request cannot hold the close: at
    // most CLOSE_MS, then the server is left to end with the process.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      server.shutdown(),
      new Promise((resolve) => timer = setTimeout(resolve, CLOSE_MS)),
    ]);
    clearTimeout(timer);
    for (const queue of queues.values()) queue.close();
  };
  return { url: `http://${host}:${address.port}/`, close, [Symbol.asyncDispose]: close };
}
