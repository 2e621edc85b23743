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
