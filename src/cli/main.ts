/**
 * The command line's entry: picks the subcommand (`push`, `consume`, or the
 * local run of a job file) and resolves with its exit code. The Redis
 * queue's subcommands load only when asked for.
 *
 * @module
 */

import { run } from "./run.ts";

/**
 * Runs the command line with `args` (what follows `cli.ts`); resolves with
 * the exit code: 0 every job succeeded, 1 some failed (or a Redis failure),
 * 2 invalid input or usage, 130 interrupted.
 *
 * @param args The command line's arguments.
 * @returns The exit code.
 *
 * @example Print the version
 * ```ts
 * import { main } from "@taskpool/taskpool/cli";
 * import assert from "node:assert";
 *
 * assert.strictEqual(await main(["--version"]), 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "push") return (await import("./push.ts")).push(args.slice(1));
  if (args[0] === "consume") return (await import("./consume.ts")).consume(args.slice(1));
  if (args[0] === "schedules") return (await import("./schedules.ts")).schedules(args.slice(1));
  if (args[0] === "groups") return (await import("./groups.ts")).groups(args.slice(1));
  if (args[0] === "cancel") return (await import("./cancel.ts")).cancel(args.slice(1));
  if (args[0] === "dashboard") return (await import("./dashboard.ts")).dashboard(args.slice(1));
  if (args[0] === "unschedule") return (await import("./schedules.ts")).unschedule(args.slice(1));
  return run(args);
}
