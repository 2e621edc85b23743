/**
 * The command line's first step with a job file: read it, validate it and
 * check its task modules, or say on stderr what is wrong with it.
 *
 * @module
 */

import {
  checkTasks,
  type JobFile,
  JobFileError,
  readJobFile,
  validateJobFile,
} from "../jobs/mod.ts";

const encoder = new TextEncoder();

/**
 * Loads the job file `given` (relative to the current directory). On any
 * problem, writes one line per problem on stderr, each after `prefix`, and
 * resolves with `null`: the caller exits 2.
 *
 * @param given The path as the user gave it.
 * @param prefix What starts each message ("taskpool" or "taskpool push").
 * @param unlike What did not happen because of a problem ("run", "pushed").
 */
export async function loadJobFile(
  given: string,
  prefix: string,
  unlike: string,
): Promise<JobFile | null> {
  const err = (text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n"));
  const path = given.startsWith("/") ? given : `${Deno.cwd()}/${given}`;
  let data: unknown;
  try {
    data = await readJobFile(path);
  } catch (error) {
    if (!(error instanceof JobFileError)) throw error;
    err(`${prefix}: ${error.message}`);
    return null;
  }
  const checked = validateJobFile(data, path);
  const problems = checked.ok ? await checkTasks(checked.file) : checked.problems;
  if (checked.ok && problems.length === 0) return checked.file;
  err(
    `${prefix}: ${given}: ${problems.length} problem${
      problems.length === 1 ? "" : "s"
    }; nothing was ${unlike}`,
  );
  for (const problem of problems) err(`  ${problem.path}: ${problem.message}`);
  return null;
}
