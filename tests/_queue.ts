// Helpers of the Redis queue tests: job files whose `#name` tasks are the CLI
// fixture's, and the outcomes a queue recorded.
import type { QueueResult, RedisClient } from "../src/redis/mod.ts";
import { type JobFile, validateJobFile } from "../src/jobs/mod.ts";

const TASKS = new URL("./fixtures/cli_tasks.ts", import.meta.url).pathname;

/** A validated job file whose `#name` tasks are `tests/fixtures/cli_tasks.ts`'s. */
export function jobs(list: Array<Record<string, unknown>>, dir = "/tmp"): JobFile {
  const data = JSON.parse(JSON.stringify({ jobs: list }).replaceAll('"#', `"${TASKS}#`));
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
