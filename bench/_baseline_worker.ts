// Worker of the baseline pool (bench/_baseline_pool.ts): calls the named export
// of the task module for each message and posts the value back.
import * as tasks from "./_pool_tasks.ts";

/** A task, as the baseline pool posts it. */
export interface BaselineTask {
  id: number;
  name: string;
  args: unknown[];
}

/** A task's outcome, as this worker posts it back. */
export interface BaselineResult {
  id: number;
  value?: unknown;
  error?: string;
}

const table = tasks as unknown as Record<string, (...args: unknown[]) => unknown>;

/** The worker's global scope, typed here because `deno check` types files with the window lib. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<BaselineTask>) => void) | null;
  postMessage(message: BaselineResult): void;
};

scope.onmessage = async (event) => {
  const { id, name, args } = event.data;
  try {
    const fn = table[name];
    if (typeof fn !== "function") throw new TypeError(`No task named "${name}"`);
    scope.postMessage({ id, value: await fn(...args) });
  } catch (error) {
    scope.postMessage({ id, error: String(error) });
  }
};
