// CPU time of a process from Linux's schedstat, for the benches.

/**
 * CPU time of every thread of process `pid` (workers are threads), ms, from
 * `/proc/<pid>/task/<tid>/schedstat` (ns). A thread that ends meanwhile is
 * skipped.
 */
export function cpuMsOf(pid: number | "self"): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1e6;
}

/** CPU time of every thread of this process, ms. */
export function cpuMs(): number {
  return cpuMsOf("self");
}

/** What a thread of this process is, for splitting its CPU time. */
export type ThreadKind = "main" | "v8" | "worker" | "other";

/**
 * CPU time of each thread of this process now, ms, by thread id: the main
 * thread, V8's platform threads (GC helpers, concurrent compilers: named
 * "V8 …"), Web Workers (named "worker-…"), and the rest (the runtime's I/O).
 */
export function threadCpu(): Map<string, { kind: ThreadKind; ms: number }> {
  const threads = new Map<string, { kind: ThreadKind; ms: number }>();
  for (const task of Deno.readDirSync("/proc/self/task")) {
    try {
      const at = `/proc/self/task/${task.name}`;
      const name = Deno.readTextFileSync(`${at}/comm`).trim();
      const ms = Number(Deno.readTextFileSync(`${at}/schedstat`).split(" ")[0]) / 1e6;
      const kind = task.name === String(Deno.pid)
        ? "main"
        : name.startsWith("V8 ")
        ? "v8"
        : name.startsWith("worker")
        ? "worker"
        : "other";
      threads.set(task.name, { kind, ms });
    } catch {
      // a thread that ended meanwhile
    }
  }
  return threads;
}

/** CPU ms per kind of thread between two `threadCpu()` snapshots (threads that ended are lost). */
export function cpuSplit(
  before: ReturnType<typeof threadCpu>,
  after: ReturnType<typeof threadCpu>,
): Record<ThreadKind, number> {
  const split = { main: 0, v8: 0, worker: 0, other: 0 };
  for (const [tid, { kind, ms }] of after) split[kind] += ms - (before.get(tid)?.ms ?? 0);
  return split;
}
