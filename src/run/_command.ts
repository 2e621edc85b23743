/**
 * Command jobs: a subprocess with a timeout, the tail of its output kept,
 * and an end that reaches the whole process tree. Shared by the scheduler
 * and the Redis consumer.
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";

/** How a command's attempt went. */
export interface CommandOutcome {
  /** Whether it exited with code 0 in time. */
  ok: boolean;
  /** Why it failed. */
  error?: string;
  /** Its exit code, when it ran. */
  exitCode?: number;
  /** The last lines it wrote (stdout and stderr, up to 2 KB). */
  output?: string;
}

/** Milliseconds a command gets between SIGTERM and SIGKILL. */
const KILL_AFTER_MS = 2000;
/** Bytes of a command's output kept for the report. */
const OUTPUT_TAIL = 2048;

/**
 * Runs a command job once. The child is in `children` while it runs, so
 * that its owner can end it with {@linkcode terminateTree}.
 */
export async function runCommand(
  job: Job,
  children: Set<Deno.ChildProcess>,
): Promise<CommandOutcome> {
  const [program, ...args] = job.command!;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: job.cwd,
      env: job.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "not found on PATH"
      : (error as Error).message;
    return { ok: false, error: `cannot run "${program}": ${reason}` };
  }
  children.add(child);
  const tail = new Tail(OUTPUT_TAIL);
  const reading = Promise.all([tail.read(child.stdout), tail.read(child.stderr)]);
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (job.timeout !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      terminateTree(child);
    }, job.timeout);
  }
  const status = await child.status;
  clearTimeout(timer);
  // A grandchild may still hold the pipes open: do not wait for it long.
  await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 100))]);
  children.delete(child);
  const output = tail.text();
  if (timedOut) {
    return {
      ok: false,
      error: `timed out after ${job.timeout} ms`,
      exitCode: status.code,
      output,
    };
  }
  if (status.success) return { ok: true, exitCode: 0, output };
  const how = status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
  return { ok: false, error: `${program} ${how}`, exitCode: status.code, output };
}

/**
 * Ends a command and everything it started: SIGTERM to the process and its
 * descendants (a shell's children too), then SIGKILL to whatever is left
 * after `KILL_AFTER_MS`. Descendants are found in /proc (Linux); elsewhere
 * only the process itself is signalled.
 */
export function terminateTree(child: Deno.ChildProcess): void {
  // Remember the tree now: once a shell dies, its children are re-parented.
  const tree = new Set([child.pid, ...descendants(child.pid)]);
  const signal = (sig: Deno.Signal) => {
    for (const pid of descendants(child.pid)) tree.add(pid);
    for (const pid of tree) {
      try {
        Deno.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal("SIGTERM");
  const kill = setTimeout(() => signal("SIGKILL"), KILL_AFTER_MS);
  child.status.finally(() => {
    clearTimeout(kill);
    tree.delete(child.pid); // reaped: its pid may be reused
    signal("SIGKILL"); // what it left behind
  });
}

/** The pids below `pid`, from /proc's parent links. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        parentOf.set(Number(entry.name), ppid);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return [];
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Keeps the last bytes of a command's output. */
class Tail {
  readonly #limit: number;
  #chunks: Uint8Array[] = [];
  #size = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream) {
      this.#chunks.push(chunk);
      this.#size += chunk.byteLength;
      while (this.#size - this.#chunks[0].byteLength >= this.#limit) {
        this.#size -= this.#chunks.shift()!.byteLength;
      }
    }
  }

  text(): string {
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.byteLength;
    }
    return new TextDecoder().decode(all.subarray(Math.max(0, all.byteLength - this.#limit)))
      .trimEnd();
  }
}
