/**
 * The tasks waiting for room in the task ring (the overflow of
 * `_submit.ts`), in call order, as a structure of arrays: no object per
 * waiting task.
 *
 * ## Why no object per task
 * 100,000 `run()` calls at once park ~99,700 tasks. An object each (13
 * fields, ~140 bytes) lived until its task was queued: it survived young
 * collections, was copied and promoted, and the old space grew into fresh
 * pages. On these machines a page's first touch costs ~10 µs (a fault in a
 * VM), and measured fresh-process bursts spent 0.2–2.2 µs per submit with the
 * objects, most of it in page faults (5,000–12,000 a burst). Here a waiting
 * task is a row of three arrays that are reused from burst to burst: their
 * pages were touched once. What a parked `run()` still allocates is its own
 * promise.
 *
 * ## Positions
 * Each waiting task has a position: a number that grows by one per task and
 * is never reused, so a position kept by a task's control names that task or
 * none (`isLive`). The row of position `p` is `(p - base) & mask`: the
 * number of rows is a power of 2, and `base` is the head when the rows last
 * grew (they are copied in order from the head, with the runtime's bulk
 * copies: a first burst runs this copy before the JIT has compiled it).
 *
 * The arrays keep their largest size until the pool closes: 80 bytes a row,
 * rows a power of 2 (10 MB after 100,000 tasks waited at once). A closed pool leaves them,
 * weakly held, to the next pool its thread makes (`retire`): a fresh pool's arrays would
 * fault their pages in again (a pool per batch of work is common, and the
 * bench makes one per repetition).
 *
 * @module
 */

import type { Control, Sink } from "./_parts.ts";

/** Int32 words per row: the function index, the form, the encoded tag and length, the mode, live. */
const INTS = 6;
const I_INDEX = 0;
const I_FORM = 1;
const I_TAG = 2;
const I_LEN = 3;
const I_MODE = 4;
const I_LIVE = 5;
/** Float64 words per row: the encoded number, and the sink's seq. */
const NUMS = 2;
const N_NUM = 0;
const N_SEQ = 1;
/** References per row: the encoded bytes, accept, refuse, the control, the sink. */
const REFS = 5;
const R_BYTES = 0;
const R_ACCEPT = 1;
const R_REFUSE = 2;
const R_CONTROL = 3;
const R_SINK = 4;
/** Rows of a queue's first arrays. */
const FIRST_ROWS = 256;

/** What settles a waiting task once queued (or refused). */
type Settle = (value: unknown) => void;

/** The arrays of a queue, all rows ended. */
interface Rows {
  mask: number;
  ints: Int32Array;
  nums: Float64Array;
  refs: unknown[];
}

/**
 * Rows of this thread's closed pools: the largest, for the next pool (see
 * "Positions"). Weakly held: a process that makes no other pool does not
 * keep them.
 */
let spare: WeakRef<Rows> | undefined;

function freshRows(rows: number): Rows {
  return {
    mask: rows - 1,
    ints: new Int32Array(rows * INTS),
    nums: new Float64Array(rows * NUMS),
    refs: new Array(rows * REFS).fill(undefined),
  };
}

/** Tasks waiting for room, in call order. Main thread only. */
export class WaitingTasks {
  /** Position of the oldest task not yet handled (queued, refused or withdrawn). */
  head = 0;
  /** Position the next waiting task gets. */
  tail = 0;
  /** Waiting tasks not yet queued, refused or withdrawn. */
  live = 0;
  #mask: number;
  /** The position of row 0 (see "Positions"). */
  #base = 0;
  #ints: Int32Array;
  #nums: Float64Array;
  #refs: unknown[];

  constructor() {
    const rows = spare?.deref() ?? freshRows(FIRST_ROWS);
    spare = undefined;
    this.#mask = rows.mask;
    this.#ints = rows.ints;
    this.#nums = rows.nums;
    this.#refs = rows.refs;
  }

  /**
   * The pool closed: its arrays go to the next pool of this thread (if they
   * are the largest left), and this queue keeps small ones. Only when no
   * task waits (every row ended: no live flag, no reference).
   */
  retire(): void {
    if (this.live !== 0) return;
    const kept = spare?.deref();
    if (kept === undefined || kept.mask < this.#mask) {
      spare = new WeakRef({
        mask: this.#mask,
        ints: this.#ints,
        nums: this.#nums,
        refs: this.#refs,
      });
    }
    const rows = freshRows(FIRST_ROWS);
    this.#mask = rows.mask;
    this.#ints = rows.ints;
    this.#nums = rows.nums;
    this.#refs = rows.refs;
    this.head = this.tail = this.#base = 0;
  }

  /** The row of position `pos` (a live one: `head <= pos < tail`). */
  #row(pos: number): number {
    return (pos - this.#base) & this.#mask;
  }

  /** Parks a task at the tail; its position. */
  add(
    index: number,
    form: number,
    tag: number,
    len: number,
    num: number,
    bytes: Uint8Array,
    mode: number,
    accept: Settle,
    refuse: Settle,
    control: Control | undefined,
    sink: Sink | undefined,
    seq: number,
  ): number {
    if (this.tail - this.head > this.#mask) this.#grow();
    const pos = this.tail++;
    const row = this.#row(pos);
    const ints = this.#ints, i = row * INTS;
    ints[i + I_INDEX] = index;
    ints[i + I_FORM] = form;
    ints[i + I_TAG] = tag;
    ints[i + I_LEN] = len;
    ints[i + I_MODE] = mode;
    ints[i + I_LIVE] = 1;
    const n = row * NUMS;
    this.#nums[n + N_NUM] = num;
    this.#nums[n + N_SEQ] = seq;
    const refs = this.#refs, r = row * REFS;
    refs[r + R_BYTES] = bytes;
    refs[r + R_ACCEPT] = accept;
    refs[r + R_REFUSE] = refuse;
    refs[r + R_CONTROL] = control;
    refs[r + R_SINK] = sink;
    this.live++;
    return pos;
  }

  /** Whether the task at `pos` still waits (not queued, refused or withdrawn). */
  isLive(pos: number): boolean {
    return pos >= this.head && pos < this.tail &&
      this.#ints[this.#row(pos) * INTS + I_LIVE] === 1;
  }

  index(pos: number): number {
    return this.#ints[this.#row(pos) * INTS + I_INDEX];
  }
  form(pos: number): number {
    return this.#ints[this.#row(pos) * INTS + I_FORM];
  }
  tag(pos: number): number {
    return this.#ints[this.#row(pos) * INTS + I_TAG];
  }
  len(pos: number): number {
    return this.#ints[this.#row(pos) * INTS + I_LEN];
  }
  mode(pos: number): number {
    return this.#ints[this.#row(pos) * INTS + I_MODE];
  }
  num(pos: number): number {
    return this.#nums[this.#row(pos) * NUMS + N_NUM];
  }
  seq(pos: number): number {
    return this.#nums[this.#row(pos) * NUMS + N_SEQ];
  }
  bytes(pos: number): Uint8Array {
    return this.#refs[this.#row(pos) * REFS + R_BYTES] as Uint8Array;
  }
  accept(pos: number): Settle {
    return this.#refs[this.#row(pos) * REFS + R_ACCEPT] as Settle;
  }
  refuse(pos: number): Settle {
    return this.#refs[this.#row(pos) * REFS + R_REFUSE] as Settle;
  }
  control(pos: number): Control | undefined {
    return this.#refs[this.#row(pos) * REFS + R_CONTROL] as Control | undefined;
  }
  sink(pos: number): Sink | undefined {
    return this.#refs[this.#row(pos) * REFS + R_SINK] as Sink | undefined;
  }

  /**
   * Ends the live task at `pos` (queued, refused or withdrawn): it no
   * longer counts, and its references go, so that nothing it held is kept.
   */
  end(pos: number): void {
    const row = this.#row(pos);
    this.#ints[row * INTS + I_LIVE] = 0;
    this.#refs.fill(undefined, row * REFS, row * REFS + REFS);
    this.live--;
  }

  /**
   * Moves the head past tasks that are no longer live; false when none is
   * left. An empty queue counts no live task, whatever the count said: a
   * count that drifted would otherwise keep the result pump polling for
   * room forever, with nothing to queue.
   */
  skipEnded(): boolean {
    const ints = this.#ints;
    while (this.head < this.tail) {
      if (ints[this.#row(this.head) * INTS + I_LIVE] === 1) return true;
      this.head++;
    }
    this.live = 0;
    return false;
  }

  /** The position of the live task whose outcome goes to `sink` as `seq`, or -1 (a scan). */
  find(sink: Sink, seq: number): number {
    for (let pos = this.head; pos < this.tail; pos++) {
      if (this.isLive(pos) && this.sink(pos) === sink && this.seq(pos) === seq) return pos;
    }
    return -1;
  }

  /**
   * Forgets every task (after each was refused): the arrays stay for the
   * next burst, and positions go on from where they were, so that a
   * position a control kept names no later task.
   */
  clear(): void {
    this.#ints.fill(0);
    this.#refs.fill(undefined);
    this.head = this.tail;
    this.live = 0;
  }

  /** Doubles the arrays: the rows, in order from the head, become rows 0 to n - 1. */
  #grow(): void {
    const n = this.tail - this.head; // every row: the arrays are full
    const rows = n * 2;
    const split = this.#row(this.head); // rows [split, n) then [0, split)
    const ints = new Int32Array(rows * INTS);
    ints.set(this.#ints.subarray(split * INTS));
    ints.set(this.#ints.subarray(0, split * INTS), (n - split) * INTS);
    const nums = new Float64Array(rows * NUMS);
    nums.set(this.#nums.subarray(split * NUMS));
    nums.set(this.#nums.subarray(0, split * NUMS), (n - split) * NUMS);
    const refs = this.#refs.slice(split * REFS).concat(this.#refs.slice(0, split * REFS));
    refs.length = rows * REFS;
    refs.fill(undefined, n * REFS);
    this.#ints = ints;
    this.#nums = nums;
    this.#refs = refs;
    this.#mask = rows - 1;
    this.#base = this.head;
  }
}
