// `cli.ts consume` processes for the Redis benches: started on a queue, each
// with one worker unless told otherwise, and returned once all registered.
import type { RedisQueue } from "../src/redis/mod.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

/** Starts `n` consumer processes on `queue` (at `url`) and waits until all are registered. */
export async function startConsumers(
  url: string,
  queue: RedisQueue,
  n: number,
  extra: string[] = [],
): Promise<Deno.ChildProcess[]> {
  const args = ["run", "-A", cli, "consume", "--redis", url, "--queue", queue.name];
  const children = Array.from({ length: n }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [...args, "--workers", "1", ...extra],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn());
  while ((await queue.counts()).consumers < n) await new Promise((r) => setTimeout(r, 50));
  return children;
}

/** Stops consumer processes (SIGTERM: they finish what they hold) and waits for them. */
export async function stopConsumers(children: Deno.ChildProcess[]): Promise<void> {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((child) => child.status));
}
