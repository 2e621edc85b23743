// Helpers of the Redis queue tests: job files whose `#name` tasks are the CLI
// fixture's, and the outcomes a queue recorded.
import { type QueueResult, RedisClient } from "../src/redis/mod.ts";
import { until } from "./_wait.ts";
import { type JobFile, validateJobFile } from "../src/jobs/mod.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;

/**
 * A validated job file whose `#name` tasks are `tests/fixtures/cli_tasks.ts`'s;
 * `top` adds top-level fields (`groups`).
 */
export function jobs(
  list: Array<Record<string, unknown>>,
  dir = "/tmp",
  top: Record<string, unknown> = {},
): JobFile {
  const data = JSON.parse(JSON.stringify({ ...top, jobs: list }).replaceAll('"#', `"${TASKS}#`));
  const checked = validateJobFile(data, `${dir}/jobs.json`);
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  return checked.file;
}

/** Every outcome recorded in a queue's results stream, oldest first. */
export async function results(client: RedisClient, queue: string): Promise<QueueResult[]> {
  const reply = await client.send(["XRANGE", `${queue}:results`, "-", "+"]) as [
    string,
    string[],
  ][];
  return reply.map(([, fields]) => JSON.parse(fields[fields.indexOf("data") + 1]));
}

/** Deletes every key of a test's queue (its name and `<name>…`). */
export async function dropQueue(client: RedisClient, queue: string): Promise<void> {
  const keys = await client.send(["KEYS", `${queue}*`]) as string[];
  if (keys.length > 0) await client.send(["DEL", ...keys]);
}

/**
 * The entries waiting in `<queue>:priority`, in the order they are taken,
 * each with its priority (the member's `<sequence>|` and the score undone).
 */
export async function prioritized(
  client: RedisClient,
  queue: string,
): Promise<Array<{ entry: string; priority: number }>> {
  const flat = await client.send(["ZRANGE", `${queue}:priority`, 0, -1, "WITHSCORES"]) as string[];
  const list = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    list.push({ entry: flat[i].slice(flat[i].indexOf("|") + 1), priority: -Number(flat[i + 1]) });
  }
  return list;
}

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/**
 * A `cli.ts consume` process on `queue` (output discarded), once `registered`
 * consumers of the queue are (this one and those before it).
 */
export async function consumerProcess(
  url: string,
  queue: string,
  options: { workers?: number; registered?: number; heartbeat?: string } = {},
): Promise<Deno.ChildProcess> {
  const { workers = 2, registered = 1, heartbeat = "10s" } = options;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CLI,
      "consume",
      "--redis",
      url,
      "--queue",
      queue,
      "--workers",
      String(workers),
      "--heartbeat",
      heartbeat,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await using redis = await RedisClient.connect(url);
  await until(
    `${registered} consumers to register`,
    async () => await redis.send(["SCARD", `${queue}:consumers`]) === registered,
  );
  return child;
}

/** `cli.ts <command> --redis url --queue queue <args>`: its exit code and output. */
export async function queueCli(
  command: string,
  url: string,
  queue: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, command, "--redis", url, "--queue", queue, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
