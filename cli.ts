/**
 * The taskpool command line: runs the jobs of a JSON file on a worker pool,
 * or pushes them to a Redis queue and consumes them there.
 *
 * ```sh
 * deno run -A cli.ts jobs.json            # run, with a progress line
 * deno run -A cli.ts --dry-run jobs.json  # validate and print the plan
 * deno run -A cli.ts --json jobs.json     # one JSON object per finished job
 * deno run -A cli.ts push --redis redis://127.0.0.1:6379/0 --wait jobs.json
 * deno run -A cli.ts consume --redis redis://127.0.0.1:6379/0 --workers 4
 * ```
 *
 * Exit codes: 0 every job succeeded, 1 some failed, 2 invalid input or
 * usage, 130 interrupted. The first SIGINT or SIGTERM starts nothing new and
 * lets what is queued and running finish; a second one (or the end of
 * `--grace`) cancels what still runs.
 *
 * @module
 */

import { main } from "./src/cli/main.ts";

export { main };

if (import.meta.main) Deno.exit(await main(Deno.args));
