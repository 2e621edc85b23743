/**
 * The pool's function table: which task each function index names, in
 * shared memory, so that any worker can run any task it pulls.
 *
 * A task message carries only an index (an aux word). The main thread adds an
 * entry (a task's module and export name, or a function's source) before it
 * sends the first task that uses it. Entries are never changed or removed.
 *
 * ## Layout and protocol
 * Int32 `COUNT` (entries published), then `MAX_ENTRIES` pairs of Int32
 * (byte offset, byte length), then the UTF-8 bytes of the entries. Only the
 * main thread writes: it copies the bytes and the offset pair, then publishes
 * with `Atomics.store(COUNT, n + 1)`. A worker reads an entry only for an
 * index it found in a task message; that message was pushed after the store,
 * and the ring's publish/claim pair orders them, so the entry is complete.
 *
 * @module
 */

const COUNT = 0;
const PAIRS = 1;
/** Entries a pool's table holds. */
export const MAX_ENTRIES = 4096;
/** Bytes of entry text a pool's table holds. */
export const TABLE_BYTES = 1 << 20;
const DATA = (PAIRS + MAX_ENTRIES * 2) * 4;

/** What a function index stands for. */
export type TableEntry =
  | { kind: "export"; module: string; name: string }
  | { kind: "source"; source: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Allocates an empty table. */
export function createTable(): SharedArrayBuffer {
  return new SharedArrayBuffer(DATA + TABLE_BYTES);
}

/** The main thread's side: adds entries. */
export class TableWriter {
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #labels: string[] = [];
  #used = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#i32 = new Int32Array(buffer, 0, PAIRS + MAX_ENTRIES * 2);
    this.#u8 = new Uint8Array(buffer, DATA);
  }

  /** Adds an entry and returns its index. Throws a `RangeError` when the table is full. */
  add(entry: TableEntry): number {
    const n = this.#i32[COUNT];
    const bytes = encoder.encode(JSON.stringify(entry));
    if (n >= MAX_ENTRIES || this.#used + bytes.byteLength > TABLE_BYTES) {
      throw new RangeError(
        `Cannot add a task: the pool already knows ${n} distinct task functions (${this.#used} bytes); ` +
          "reuse functions (execute() caches by function identity) or create a new pool",
      );
    }
    this.#u8.set(bytes, this.#used);
    this.#i32[PAIRS + n * 2] = this.#used;
    this.#i32[PAIRS + n * 2 + 1] = bytes.byteLength;
    this.#used += bytes.byteLength;
    this.#labels.push(
      entry.kind === "export" ? `${entry.name} from ${entry.module}` : "an execute() function",
    );
    Atomics.store(this.#i32, COUNT, n + 1);
    return n;
  }

  /** A short description of entry `index` for error messages. */
  label(index: number): string {
    return this.#labels[index] ?? `task function #${index}`;
  }
}

/** Reads entry `index` (a worker's side). */
export function readEntry(buffer: SharedArrayBuffer, index: number): TableEntry {
  const i32 = new Int32Array(buffer, 0, PAIRS + MAX_ENTRIES * 2);
  if (index < 0 || index >= Atomics.load(i32, COUNT)) {
    throw new RangeError(`Unknown task function #${index}`);
  }
  const offset = i32[PAIRS + index * 2];
  const length = i32[PAIRS + index * 2 + 1];
  // Copy out: TextDecoder is slow on shared memory.
  const bytes = new Uint8Array(buffer, DATA + offset, length).slice();
  return JSON.parse(decoder.decode(bytes));
}
