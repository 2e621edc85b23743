/**
 * Which function table index (`_table.ts`) a task names: an export of the
 * pool's default module by name, an export of a module by spec, or an
 * `execute()` function by identity. Each is added to the shared table on
 * first use and looked up in a map after that.
 *
 * @module
 */

import { createTable, TableWriter } from "./_table.ts";
import type { TaskSpec } from "./types.ts";

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** The function indexes of one pool. Main thread only. */
export class Functions {
  /** The shared table the workers read. */
  readonly buffer: SharedArrayBuffer = createTable();
  readonly #table = new TableWriter(this.buffer);
  readonly #module: string | undefined;
  /** Indexes of the default module's exports, by name. */
  readonly #byName = new Map<string, number>();
  /** Indexes by `module#name`. */
  readonly #byExport = new Map<string, number>();
  /** Indexes by the module string of a spec, then the name. */
  readonly #bySpec = new Map<string, Map<string, number>>();
  /** Indexes of execute() functions. */
  readonly #bySource = new WeakMap<AnyFunction, number>();

  /** @param module The pool's default module, as a URL string. */
  constructor(module: string | undefined) {
    this.#module = module;
  }

  /**
   * The index of a task given by export name or `{ module, name }`.
   * Throws a `TypeError` for a task that names no function.
   */
  indexOf(task: string | TaskSpec): number {
    if (typeof task === "string") {
      const known = this.#byName.get(task);
      if (known !== undefined) return known;
      if (this.#module === undefined) {
        throw new TypeError(
          `Cannot run "${task}": the pool has no default module; pass { module } to new WorkerPool(), or run({ module, name, args })`,
        );
      }
      const index = this.#exportIndex(this.#module, task);
      this.#byName.set(task, index);
      return index;
    }
    if (
      task === null || typeof task !== "object" || typeof task.name !== "string" || task.name === ""
    ) {
      throw new TypeError(
        `Cannot run the task: expected an export name or { module, name, args }, got ${
          task === null ? "null" : typeof task
        }`,
      );
    }
    // Specs name the same module the same way again and again: look the
    // string up before resolving it (a URL parse per task shows in profiles).
    if (typeof task.module === "string") {
      const known = this.#bySpec.get(task.module)?.get(task.name);
      if (known !== undefined) return known;
    }
    const module = task.module === undefined
      ? this.#module
      : resolveModule(task.module, "The task's 'module'");
    if (module === undefined) {
      throw new TypeError(
        `Cannot run "${task.name}": name its module ({ module, name }) or give the pool a default module`,
      );
    }
    const index = this.#exportIndex(module, task.name);
    if (typeof task.module === "string") {
      let names = this.#bySpec.get(task.module);
      if (names === undefined) this.#bySpec.set(task.module, names = new Map());
      names.set(task.name, index);
    }
    return index;
  }

  /** The index of an `execute()` function, sent by its source text once. */
  indexOfFunction(fn: unknown): number {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot execute: expected a function, got ${fn === null ? "null" : typeof fn}`,
      );
    }
    let index = this.#bySource.get(fn as AnyFunction);
    if (index === undefined) {
      index = this.#table.add({ kind: "source", source: Function.prototype.toString.call(fn) });
      this.#bySource.set(fn as AnyFunction, index);
    }
    return index;
  }

  /** A short description of function `index` for error messages. */
  label(index: number): string {
    return this.#table.label(index);
  }

  #exportIndex(module: string, name: string): number {
    const key = `${module}#${name}`;
    let index = this.#byExport.get(key);
    if (index === undefined) {
      index = this.#table.add({ kind: "export", module, name });
      this.#byExport.set(key, index);
    }
    return index;
  }
}

/** A module specifier as a URL string: URLs as they are, paths against the current directory. */
export function resolveModule(module: string | URL, what: string): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== "string" || module === "") {
    throw new TypeError(`${what} must be a URL or a path: current value is ${String(module)}`);
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(module)) return new URL(module).href;
  return new URL(module, `file://${Deno.cwd()}/`).href;
}
