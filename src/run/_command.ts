/**
 * Command jobs: a subprocess in a process group of its own, with a timeout,
 * the tail of its output kept, and an end that reaches every process of its
 * group. Shared by the scheduler and the Redis consumer (through
 * `_attempt.ts`).
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";

/** How a command's attempt went. */
export interface CommandOutcome {
  /** When it exited, `performance.now()` (what it left running is ended after). */
  endedAt?: number;
  /** Whether it exited with code 0 in time. */
  ok: boolean;
  /** Why it failed. */
  error?: string;
  /** Its exit code, when it ran. */
  exitCode?: number;
  /** The last lines it wrote (stdout and stderr, up to 2 KB). */
  output?: string;
}

/** Milliseconds a command (or what it left running) gets between SIGTERM and SIGKILL. */
const KILL_AFTER_MS = 2000;
/** How often an ending group is looked at, ms. */
const GROUP_POLL_MS = 20;
/** Bytes of a command's output kept for the report. */
const OUTPUT_TAIL = 2048;

/**
 * Runs a command job once, in a process group of its own (a new session),
 * so that a terminal's Ctrl-C (sent to the CLI's whole foreground group)
 * does not reach it: only its runner decides what it gets. The child is in
 * `children` while it runs, so that its owner can end it with
 * {@linkcode terminateTree}. When it exits, whatever it left running in its
 * group (`cmd &` in a shell) ends too: a job's background processes end
 * with it. An abort of `signal` ends it as a timeout does (its group gets
 * SIGTERM, then SIGKILL), and its outcome is the signal's reason.
 */
export async function runCommand(
  job: Job,
  children: Set<Deno.ChildProcess>,
  signal?: AbortSignal,
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
      detached: true, // setsid(): a process group of its own, led by the child
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
  let cancelled = false;
  const onAbort = () => {
    cancelled = true;
    terminateTree(child);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (job.timeout !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      terminateTree(child);
    }, job.timeout);
  }
  const status = await child.status;
  const endedAt = performance.now();
  clearTimeout(timer);
  signal?.removeEventListener("abort", onAbort);
  // What it left in its group ends with it (and lets go of its pipes).
  await endGroup(child.pid);
  await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 100))]);
  children.delete(child);
  const output = tail.text();
  if (cancelled) {
    const reason = (signal!.reason as Error)?.message ?? String(signal!.reason);
    return { ok: false, error: reason, exitCode: status.code, output, endedAt };
  }
  if (timedOut) {
    return {
      ok: false,
      error: `timed out after ${job.timeout} ms`,
      exitCode: status.code,
      output,
      endedAt,
    };
  }
  if (status.success) return { ok: true, exitCode: 0, output, endedAt };
  const how = status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
  return { ok: false, error: `${program} ${how}`, exitCode: status.code, output, endedAt };
}

/**
 * Ends a command and everything in its process group: SIGTERM to the
 * group, then SIGKILL to whatever is left after `KILL_AFTER_MS`. The group
 * is found by its id (the child's pid), not by walking parent links, so a
 * grandchild that was reparented (a shell's `(cmd &)`) is reached too.
 */
export function terminateTree(child: Deno.ChildProcess): void {
  signalGroup(child.pid, "SIGTERM");
  const kill = setTimeout(() => signalGroup(child.pid, "SIGKILL"), KILL_AFTER_MS);
  // Once it exited, runCommand ends the rest of its group itself.
  child.status.finally(() => clearTimeout(kill));
}

/**
 * Ends what lives on in the process group `group` after its leader exited:
 * SIGTERM, then SIGKILL if anything is still there after `KILL_AFTER_MS`;
 * resolves once the group is empty. The group id stays reserved while any
 * member lives (the kernel reuses no pid that is still a group's id), so a
 * signal cannot reach another program. A job's outcome is reported after
 * this, so nothing of it outlives its report (or the CLI).
 */
async function endGroup(group: number): Promise<void> {
  if (!signalGroup(group, "SIGTERM")) return; // nothing left: the common case
  for (let waited = 0; waited < KILL_AFTER_MS; waited += GROUP_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    if (!groupAlive(group)) return;
  }
  signalGroup(group, "SIGKILL");
}

/**
 * Whether a process of group `group` still runs. A zombie does not count:
 * a member orphaned by the group's leader waits to be reaped by init, and
 * on some machines init takes its time (seen here: the zombie of a killed
 * `sleep` stayed for seconds). From /proc on Linux; elsewhere any member,
 * by a harmless signal (SIGCONT changes nothing for a running process).
 */
function groupAlive(group: number): boolean {
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return signalGroup(group, "SIGCONT");
  }
  for (const entry of entries) {
    const code = entry.name.charCodeAt(0);
    if (code < 48 || code > 57) continue; // not a pid
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 3);
    if (fields[0] !== "Z" && Number(fields[2]) === group) return true;
  }
  return false;
}

/** Sends `signal` to every process of group `group`; false when the group is empty. */
function signalGroup(group: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-group, signal);
    return true;
  } catch {
    return false; // no such group (all gone), or not ours
  }
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
