/**
 * Where a job's paths point: its task's module and its `cwd`, both relative
 * to the folder of the job file. String work on POSIX paths only: nothing
 * here touches the file system (whether a module loads is `checkTasks`'s
 * question).
 *
 * @module
 */

/**
 * `path` made absolute against `dir`, with its `.` and `..` steps taken
 * (`..` at the root stays at the root).
 *
 * @param path A path, absolute or relative.
 * @param dir The absolute folder a relative path starts from.
 * @returns The absolute path, without a trailing slash.
 *
 * @example Resolve a `cwd`
 * ```ts
 * import { resolvePath } from "./_resolve.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(resolvePath("../out", "/tmp/project"), "/tmp/out");
 * assert.strictEqual(resolvePath("/srv/./data/", "/tmp/project"), "/srv/data");
 * ```
 */
export function resolvePath(path: string, dir: string): string {
  const joined = path.startsWith("/") ? path : `${dir}/${path}`;
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}

/** A job's `task` taken apart: `name` is empty when it is not "module#export". */
export interface ParsedTask {
  /** The module as written, before the `#`. */
  specifier: string;
  /** The module's URL; empty when none can be made of the specifier. */
  module: string;
  /** The export's name, after the `#`. */
  name: string;
}

/**
 * A job's `task`, `"path/to/module.ts#exportName"`, taken apart, with its
 * module made a URL: a specifier with a scheme (`https:`, `npm:`, `file:`)
 * stays as it is, any other is a path relative to `dir`.
 *
 * @param task The job's `task`.
 * @param dir The job file's folder.
 * @returns The parts; `name` is empty when `task` is not of that form.
 *
 * @example Parse a task
 * ```ts
 * import { parseTask } from "./_resolve.ts";
 * import assert from "node:assert";
 *
 * assert.deepStrictEqual(parseTask("./tasks/x.ts#run", "/tmp/project"), {
 *   specifier: "./tasks/x.ts",
 *   module: "file:///tmp/project/tasks/x.ts",
 *   name: "run",
 * });
 * assert.strictEqual(parseTask("no-hash", "/tmp/project").name, "");
 * ```
 */
export function parseTask(task: string, dir: string): ParsedTask {
  if (!/^.+#[A-Za-z_$][\w$]*$/.test(task)) return { specifier: "", module: "", name: "" };
  const hash = task.lastIndexOf("#");
  const specifier = task.slice(0, hash);
  let module: string;
  try {
    module = resolveAgainst(specifier, dir);
  } catch {
    module = ""; // not a path a URL can hold (say, a lone surrogate)
  }
  return { specifier, module, name: task.slice(hash + 1) };
}

/** A module specifier as a URL: kept when it has a scheme, else a file path against `dir`. */
function resolveAgainst(specifier: string, dir: string): string {
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) return specifier;
  return new URL(
    `file://${resolvePath(specifier, dir).split("/").map(encodeURIComponent).join("/")}`,
  ).href;
}
