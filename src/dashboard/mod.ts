/**
 * Sight into a Redis queue: a live dashboard (`serveDashboard`, or
 * `taskpool dashboard`) and the Prometheus text format its `/metrics` and
 * the consumers' `--metrics` serve.
 *
 * @example Start a dashboard on a free port, then close it
 * ```ts
 * import { serveDashboard } from "@taskpool/taskpool/dashboard";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   const dashboard = await serveDashboard({
 *     queues: [`doc:${crypto.randomUUID()}`],
 *     redis: { url },
 *     listen: { hostname: "127.0.0.1", port: 0 },
 *   });
 *   const page = await fetch(dashboard.url);
 *   assert.strictEqual(page.status, 200);
 *   await page.body?.cancel();
 *   await dashboard.close();
 * }
 * ```
 *
 * @module
 */

export { type Dashboard, type DashboardOptions, serveDashboard } from "./server.ts";
