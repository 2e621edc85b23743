/**
 * A gate for tests: a path that does not exist until the test opens it.
 * Fixture tasks wait for it (`gated`, `spinUntil`, `step`), so that a test
 * holds a task running, or orders two tasks, by an event instead of a sleep.
 *
 * @module
 */

/** A closed gate in a fresh temporary directory; `await using` removes it. */
export class Gate {
  /** The path that appears when the gate opens. */
  readonly path: string;
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = `${dir}/open`;
  }

  /** Makes a closed gate. */
  static async create(): Promise<Gate> {
    return new Gate(await Deno.makeTempDir({ prefix: "taskpool-gate-" }));
  }

  /** A second path in the gate's directory (for tasks that wait for each other). */
  file(name: string): string {
    return `${this.#dir}/${name}`;
  }

  /** Opens the gate: every task waiting for it goes on. */
  async open(): Promise<void> {
    await Deno.writeTextFile(this.path, "open");
  }

  /** Removes the directory. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Polls `check` until it holds; fails after `ms` (a safety net: the tests wait
 * for events, and this only keeps a broken run from hanging).
 */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
