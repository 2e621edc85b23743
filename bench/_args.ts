// A bench's command line: a wrong flag ends the bench with what is wrong and how it is run.
import { parseArgs } from "node:util";

/**
 * Returns what `parse` (node:util's `parseArgs` over `Deno.args`) returns; if
 * it throws (an unknown flag, a value missing), prints its message and the
 * bench's usage, and exits with status 2 instead of a stack trace.
 */
export function benchFlags<T>(usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: ${usage}`);
    Deno.exit(2);
  }
}

/** The flags of a bench whose one flag is `--quick` (see `benchFlags`). */
export function quickFlags(usage: string): { quick: boolean } {
  const { values } = benchFlags(usage, () =>
    parseArgs({
      args: Deno.args,
      options: { quick: { type: "boolean", default: false } },
    }));
  return { quick: values.quick };
}
