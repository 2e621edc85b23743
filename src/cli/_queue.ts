/**
 * What `taskpool push` and `taskpool consume` share: the queue's flags,
 * their usage, and the translation of the library's errors into this
 * command line's terms (exit 2 for usage, 1 for a Redis failure).
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { RedisConnectionError, RedisError, RedisQueue } from "../redis/mod.ts";
import { err } from "./_args.ts";

/** The usage lines of the flags both subcommands take. */
export const COMMON_USAGE =
  `  --redis <url>      redis://[user[:password]@]host[:port][/db] (rediss:// for TLS);
                     default: $TASKPOOL_REDIS_URL
  --queue <name>     the list that holds the jobs; default: jobs
  --json             one JSON object per finished job on stdout (JSON Lines)`;

/** A subcommand's flags, as `parseArgs` gives them. */
export type Flags = Record<string, string | boolean | undefined>;

/**
 * Parses the flags of subcommand `command` (the common ones and `options`),
 * prints its usage for `--help`, and runs `body`; a `TypeError` or
 * `RangeError` from it exits 2, a Redis error 1, each on one line.
 */
export async function queueCommand(
  command: "push" | "consume" | "schedules" | "unschedule" | "dashboard" | "cancel" | "groups",
  usage: string,
  args: string[],
  options: ParseArgsConfig["options"],
  body: (values: Flags, positionals: string[]) => Promise<number>,
): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      allowPositionals: command === "push" || command === "unschedule" || command === "cancel" ||
        command === "groups",
      options: {
        redis: { type: "string" },
        queue: { type: "string", default: "jobs" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
        ...options,
      },
    });
  } catch (error) {
    err(`taskpool ${command}: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  const values = flags.values as Flags;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  try {
    return await body(values, flags.positionals);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      err(`taskpool ${command}: ${withFlags(error.message)}`);
      return 2;
    }
    if (error instanceof RedisConnectionError || error instanceof RedisError) {
      err(`taskpool ${command}: ${withFlags(error.message)}`);
      return 1;
    }
    throw error;
  }
}

/** Connects to the queue the flags name. */
export function connect(values: Flags): Promise<RedisQueue> {
  return RedisQueue.connect({
    url: values.redis as string | undefined,
    queue: values.queue as string,
  });
}

/**
 * The library's advice in this command line's terms: the library speaks of
 * the `url` option and the queue's name, a user here types --redis and
 * --queue. Each phrase is the library's exact wording (RedisQueue.connect,
 * the RedisClient's connection errors, the scripts' WRONGTYPE check); a
 * phrase not found is left as it is.
 */
export function withFlags(message: string): string {
  return message
    .replaceAll(
      "pass the 'url' option, e.g. redis://host:6379/0,",
      "pass --redis redis://host:6379/0",
    )
    .replaceAll("(check the Redis URL)", "(check --redis or TASKPOOL_REDIS_URL)")
    .replaceAll("choose another queue name,", "choose another --queue,")
    .replaceAll("the queue's name needs a hash tag", "--queue needs a hash tag");
}
