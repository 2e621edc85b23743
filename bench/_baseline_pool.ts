// The baseline of bench/pool_bench.ts: the minimal worker pool people write by
// hand. N workers, one postMessage per task dispatched round-robin, a Map of
// pending ids to resolvers; no queue, no backpressure.
import type { BaselineResult, BaselineTask } from "./_baseline_worker.ts";

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** N workers fed round-robin with one postMessage per task. */
export class BaselinePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #next = 0;

  constructor(workers: number) {
    const url = new URL("./_baseline_worker.ts", import.meta.url);
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(url, { type: "module", name: `baseline worker ${i + 1}` });
      worker.onmessage = (event: MessageEvent<BaselineResult>) => {
        const { id, value, error } = event.data;
        const pending = this.#pending.get(id);
        if (pending === undefined) return;
        this.#pending.delete(id);
        if (error === undefined) pending.resolve(value);
        else pending.reject(new Error(error));
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        const error = new Error(`baseline worker ${i + 1} threw: ${event.message}`);
        for (const pending of this.#pending.values()) pending.reject(error);
        this.#pending.clear();
      };
      this.#workers.push(worker);
    }
  }

  /** Runs the task module's export `name` on the next worker in turn. */
  run<R = unknown>(name: string, ...args: unknown[]): Promise<R> {
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
    const worker = this.#workers[this.#next];
    this.#next = (this.#next + 1) % this.#workers.length;
    const task: BaselineTask = { id, name, args };
    worker.postMessage(task);
    return promise;
  }

  /** Tasks posted whose result has not come back. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Terminates the workers; unfinished tasks never settle. */
  terminate(): void {
    for (const worker of this.#workers) worker.terminate();
    this.#pending.clear();
  }
}
