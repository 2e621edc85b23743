// Waiting in tests for an event, never for a length of time: `until` polls a
// condition (with a deadline that fails the test, so nothing hangs), and
// `exists` is the condition most of them poll (a fixture task writes a file);
// `existsSync` for a thread that must not yield meanwhile (fixture tasks, a
// test that holds the main thread's turn).

/** Polls `check` every 50 ms until it is true; throws naming `what` after `ms`. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a file exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether a file exists, without yielding. */
export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
