/**
 * `taskpool dashboard`: serves the live dashboard of one or more Redis
 * queues until stopped.
 *
 * @module
 */

import { err, STOP_SIGNALS } from "./_args.ts";
import { type Flags, queueCommand } from "./_queue.ts";
import { parseListen } from "../dashboard/metrics.ts";
import { serveDashboard } from "../dashboard/mod.ts";

const USAGE = `Usage: taskpool dashboard [options]

Serves a live dashboard of Redis queues: counts by state, a throughput chart,
consumers, running jobs with their progress, latest outcomes, and the dead
list (retry, delete). Also GET /api/overview (JSON) and GET /metrics
(Prometheus). Runs until SIGINT or SIGTERM.

Options:
  --redis <url>      redis://[user[:password]@]host[:port][/db] (rediss:// for TLS);
                     default: $TASKPOOL_REDIS_URL
  --queue <name>     a queue to show; repeat for several (a switcher); default: jobs
  --listen <addr>    where to serve, host:port; default: 127.0.0.1:8080 (port 0: any free one)
  --token <token>    every request must carry it (required beyond loopback); default:
                     $TASKPOOL_DASHBOARD_TOKEN. Open the printed link once: it sets a cookie.
  --help             this text

Exit codes: 0 stopped by a signal, 1 a Redis failure or an address it cannot listen on,
2 usage.`;

/** Runs `taskpool dashboard …`; resolves with the exit code. */
export function dashboard(args: string[]): Promise<number> {
  return queueCommand("dashboard", USAGE, args, {
    queue: { type: "string", multiple: true },
    listen: { type: "string", default: "127.0.0.1:8080" },
    token: { type: "string" },
  }, serve);
}

async function serve(values: Flags): Promise<number> {
  const queues = (values.queue as unknown as string[] | undefined) ?? ["jobs"];
  const listen = parseListen(values.listen as string, "--listen");
  const token = (values.token as string | undefined) ??
    (Deno.env.get("TASKPOOL_DASHBOARD_TOKEN") || undefined);
  let dashboard;
  try {
    dashboard = await serveDashboard({
      queues,
      redis: { url: values.redis as string | undefined },
      listen,
      token,
      onWarning: (message) => err(`taskpool dashboard: ${message}`),
    });
  } catch (error) {
    if (
      !(error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.PermissionDenied)
    ) {
      throw error;
    }
    err(`taskpool dashboard: ${(error as Error).message}`);
    return 1;
  }
  err(
    `taskpool dashboard: serving ${queues.map((q) => `"${q}"`).join(", ")} on ${dashboard.url}` +
      (token === undefined ? "" : ` (open ${dashboard.url}?token=<token> once: it sets a cookie)`),
  );
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  try {
    await stopped.promise;
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
  await dashboard.close();
  return 0;
}
