/**
 * The ring under a channel: the per-thread view of its buffer (`Ring`) and
 * the lock-free operations on it (the protocol is in `_layout.ts`). The
 * public ends (`sender.ts`, `receiver.ts`) build on it; the worker pool
 * drives it directly, with the four aux words each message carries. Waiting
 * is in `_wait.ts`.
 *
 * @module
 */

import { decodeText, type Encoder, readSlot, TEXT } from "./_codec.ts";
import {
  CAPACITY,
  dataOffset,
  HEAD,
  ID,
  RECEIVERS,
  RECV_EPOCH,
  RECV_WAITERS,
  RING,
  S_AUX0,
  S_AUX1,
  S_AUX2,
  S_AUX3,
  S_LEN,
  S_SEQ,
  S_TAG,
  SEND_EPOCH,
  SEND_WAITERS,
  SLOT_BYTES,
  SLOT_INTS,
  SLOTS,
  SPIN,
  TAIL,
} from "./_layout.ts";

/** A push result: the message is queued. */
export const OK = 0;
/** A push result: no room. */
export const FULL = 1;
/** A push result: every receiver is gone. */
export const CLOSED = 2;
/** A pool worker was asked to stop taking tasks. */
export const PAUSED: unique symbol = Symbol("paused");
/** Nothing to pop. */
export const EMPTY: unique symbol = Symbol("empty");
/** Every sender is gone and the queue is drained. */
export const DISCONNECTED: unique symbol = Symbol("disconnected");

/** The views and constants of one channel, shared by the ends of one thread. */
export class Ring {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly f64: Float64Array;
  readonly capacity: number;
  readonly ring: number;
  readonly mask: number;
  readonly slotBytes: number;
  readonly dataOffset: number;
  /** How long a wait polls before it sleeps, ms. */
  readonly spinMs: number;
  /** Messages that may be queued: the capacity, or 1 for a rendezvous channel. */
  readonly limit: number;
  /** Ring size differs from `limit`: senders must also check `TAIL - HEAD`. */
  readonly bounded: boolean;
  /** This thread's pending async receivers, woken directly by this thread. */
  readonly localRecv: Array<() => void> = [];
  /** This thread's pending async senders, woken directly by this thread. */
  readonly localSend: Array<() => void> = [];

  constructor(buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.f64 = new Float64Array(buffer, 0, buffer.byteLength >>> 3);
    this.capacity = this.i32[CAPACITY];
    this.ring = this.i32[RING];
    this.mask = this.ring - 1;
    this.slotBytes = this.i32[SLOT_BYTES];
    this.dataOffset = dataOffset(this.ring);
    this.spinMs = this.i32[SPIN] / 1000;
    this.limit = Math.max(this.capacity, 1);
    this.bounded = this.limit !== this.ring;
  }

  len(): number {
    const n = (Atomics.load(this.i32, TAIL) - Atomics.load(this.i32, HEAD)) | 0;
    return n < 0 ? 0 : Math.min(n, this.limit);
  }

  /**
   * While true, `push` leaves waking receivers to `endBatch()`, which wakes
   * them once for the whole batch (one notify instead of one per message).
   */
  batching = false;
  /** Messages pushed in the current batch. */
  batched = 0;
  /**
   * How many receivers are polling this ring right now, by their own
   * account (the pool's workers, see `_layout.ts`): a message they will
   * take needs no wake-up. `null`: none says so.
   */
  polling: (() => number) | null = null;

  /** Starts a batch of pushes (see `batching`). */
  beginBatch(): void {
    this.batching = true;
  }

  /** Ends a batch: wakes as many sleeping receivers as messages were pushed. */
  endBatch(): void {
    this.batching = false;
    const pushed = this.batched;
    this.batched = 0;
    // The publishes are done; reading WAITERS (and who polls) after them
    // keeps the protocol.
    if (pushed > 0 && Atomics.load(this.i32, RECV_WAITERS) !== 0) {
      const sleepers = this.polling === null ? pushed : pushed - this.polling();
      if (sleepers > 0) this.wake(RECV_EPOCH, sleepers);
    }
  }

  /**
   * While true, a pop leaves waking senders to `endDrain()`, which wakes
   * them once for all the slots it freed: the mirror of `batching`, for a
   * thread that takes many messages in a row (the pool's result pump).
   * Without it, each pop notified a sender that was already notified and
   * still on its way (thousands of calls per 100,000 results).
   */
  draining = false;
  /** Slots freed in the current drain. */
  drained = 0;

  /** Starts a drain of pops (see `draining`). */
  beginDrain(): void {
    this.draining = true;
  }

  /** Ends a drain: wakes as many sleeping senders as slots were freed. */
  endDrain(): void {
    this.draining = false;
    const freed = this.drained;
    this.drained = 0;
    // The releases are done; reading WAITERS after them keeps the protocol.
    if (freed > 0 && Atomics.load(this.i32, SEND_WAITERS) !== 0) {
      this.wake(SEND_EPOCH, this.capacity === 0 ? Infinity : freed);
    }
  }

  /** Position of the last message this thread pushed (for rendezvous hand-over). */
  lastPos = 0;
  /** The aux words of the last message this thread popped. */
  aux0 = 0;
  aux1 = 0;
  aux2 = 0;
  aux3 = 0;

  /**
   * Claims the next position and writes the encoded message with three aux
   * words (the ring protocol in `_layout.ts`). Returns `OK`, `FULL`, or
   * `CLOSED` when no receiver is left.
   */
  push(enc: Encoder, aux0: number, aux1: number, aux2: number, aux3 = 0): number {
    const i32 = this.i32;
    if (Atomics.load(i32, RECEIVERS) === 0) return CLOSED;
    for (;;) {
      const tail = Atomics.load(i32, TAIL);
      if (this.bounded && ((tail - Atomics.load(i32, HEAD)) | 0) >= this.limit) return FULL;
      const slot = tail & this.mask;
      const meta = SLOTS + slot * SLOT_INTS;
      const diff = (Atomics.load(i32, meta + S_SEQ) - tail) | 0;
      if (diff === 0) {
        if (Atomics.compareExchange(i32, TAIL, tail, (tail + 1) | 0) !== tail) continue;
        this.lastPos = tail;
        i32[meta + S_TAG] = enc.tag;
        i32[meta + S_LEN] = enc.len;
        i32[meta + S_AUX0] = aux0;
        i32[meta + S_AUX1] = aux1;
        i32[meta + S_AUX2] = aux2;
        i32[meta + S_AUX3] = aux3;
        enc.write(this.u8, this.f64, this.dataOffset + slot * this.slotBytes);
        Atomics.store(i32, meta + S_SEQ, (tail + 1) | 0);
        // Notify only a receiver that said it sleeps (see `_layout.ts`).
        if (this.batching) this.batched++;
        else if (
          Atomics.load(i32, RECV_WAITERS) !== 0 && (this.polling === null || this.polling() === 0)
        ) this.wake(RECV_EPOCH, 1);
        return OK;
      }
      if (diff < 0) return FULL;
      // Another sender took this position; look again.
    }
  }

  /**
   * Claims the next message and returns it (its aux words in `aux0` to `aux3`),
   * or `EMPTY`. `scratch` is a private buffer of at least a slot.
   */
  pop(scratch: Uint8Array): unknown {
    const i32 = this.i32;
    for (;;) {
      const head = Atomics.load(i32, HEAD);
      const slot = head & this.mask;
      const meta = SLOTS + slot * SLOT_INTS;
      const diff = (Atomics.load(i32, meta + S_SEQ) - ((head + 1) | 0)) | 0;
      if (diff === 0) {
        if (Atomics.compareExchange(i32, HEAD, head, (head + 1) | 0) !== head) continue;
        return this.#read(scratch, head, slot, meta);
      }
      if (diff < 0) return EMPTY;
      // Another receiver took this position; look again.
    }
  }

  /** Reads the claimed message at `head` and releases its slot. */
  #read(scratch: Uint8Array, head: number, slot: number, meta: number): unknown {
    const i32 = this.i32;
    const tag = i32[meta + S_TAG];
    const len = i32[meta + S_LEN];
    this.aux0 = i32[meta + S_AUX0];
    this.aux1 = i32[meta + S_AUX1];
    this.aux2 = i32[meta + S_AUX2];
    this.aux3 = i32[meta + S_AUX3];
    const value = readSlot(
      tag,
      len,
      this.u8,
      this.f64,
      this.dataOffset + slot * this.slotBytes,
      scratch,
    );
    // Release the slot before paying for the decode.
    Atomics.store(i32, meta + S_SEQ, (head + this.ring) | 0);
    if (this.draining) this.drained++;
    else if (Atomics.load(i32, SEND_WAITERS) !== 0) {
      // A rendezvous sender waits for its own hand-over, not just for room.
      this.wake(SEND_EPOCH, this.capacity === 0 ? Infinity : 1);
    }
    return value === TEXT ? decodeText(tag, len, scratch) : value;
  }

  /**
   * `pop` for a pool worker, which must be findable by the main thread
   * whatever it dies in the middle of. Before it claims a message it stores
   * the message's aux0 (the task id) at `track[taskAt]`, then checks
   * `track[killAt]`: if the main thread has asked this worker to stop taking
   * tasks it returns `PAUSED` without claiming. Both are sequentially
   * consistent, so a main thread that stores the kill flag and then reads
   * the task word either stopped the claim or sees the task it will claim
   * (see `pool/_protocol.ts`).
   */
  popTracked(scratch: Uint8Array, track: Int32Array, taskAt: number, killAt: number): unknown {
    const i32 = this.i32;
    for (;;) {
      const head = Atomics.load(i32, HEAD);
      const slot = head & this.mask;
      const meta = SLOTS + slot * SLOT_INTS;
      const diff = (Atomics.load(i32, meta + S_SEQ) - ((head + 1) | 0)) | 0;
      if (diff === 0) {
        Atomics.store(track, taskAt, i32[meta + S_AUX0]);
        if (Atomics.load(track, killAt) !== 0) return PAUSED;
        if (Atomics.compareExchange(i32, HEAD, head, (head + 1) | 0) !== head) continue;
        return this.#read(scratch, head, slot, meta);
      }
      if (diff < 0) {
        // Nothing to claim (maybe another worker won the race): drop the
        // tentative id, or this worker would seem to hold another's task.
        Atomics.store(track, taskAt, -1);
        return EMPTY;
      }
    }
  }

  /** How many messages are queued or being published now (a snapshot). */
  queued(): number {
    return (Atomics.load(this.i32, TAIL) - Atomics.load(this.i32, HEAD)) | 0;
  }

  /**
   * Wakes one sleeping receiver if messages are still queued: a receiver
   * passing on a wake-up that a publisher did not make (see "Pollers" in
   * `_layout.ts`). An extra wake-up costs a sleeper one retry, never a message.
   */
  passOn(): void {
    if (this.queued() > 0 && Atomics.load(this.i32, RECV_WAITERS) !== 0) this.wake(RECV_EPOCH, 1);
  }

  /** Task ids (aux0) of the messages queued now, oldest first (a snapshot). */
  queuedAux0(): number[] {
    const i32 = this.i32;
    const ids: number[] = [];
    const tail = Atomics.load(i32, TAIL);
    for (let pos = Atomics.load(i32, HEAD); ((tail - pos) | 0) > 0; pos = (pos + 1) | 0) {
      const meta = SLOTS + (pos & this.mask) * SLOT_INTS;
      if (Atomics.load(i32, meta + S_SEQ) === ((pos + 1) | 0)) ids.push(i32[meta + S_AUX0]);
    }
    return ids;
  }

  /** Rendezvous: takes back the unreceived message at `pos`. True when it did. */
  reclaim(pos: number): boolean {
    const i32 = this.i32;
    if (Atomics.compareExchange(i32, HEAD, pos, (pos + 1) | 0) !== pos) return false;
    Atomics.store(i32, SLOTS + (pos & this.mask) * SLOT_INTS + S_SEQ, (pos + this.ring) | 0);
    this.wakeAll(SEND_EPOCH);
    return true;
  }

  /**
   * Wakes `count` waiters of one direction (`epoch` is `RECV_EPOCH` or
   * `SEND_EPOCH`). Waiters of this thread are woken directly as well: the
   * resolution of a `waitAsync` that this thread notifies arrives as a task
   * that does not keep Deno's event loop alive, so a program whose only
   * waiter and notifier are one thread could end before it ran.
   */
  wake(epoch: number, count: number): void {
    const i32 = this.i32;
    Atomics.add(i32, epoch, 1);
    const local = epoch === RECV_EPOCH ? this.localRecv : this.localSend;
    if (local.length === 0) {
      Atomics.notify(i32, epoch, count);
      return;
    }
    // Wake all, so that none of this thread's waitAsync calls stays queued
    // in V8 to swallow a later notify(1).
    Atomics.notify(i32, epoch);
    for (const resolve of local.splice(0)) resolve();
  }

  /** Wakes every waiter of one direction. */
  wakeAll(epoch: number): void {
    this.wake(epoch, Infinity);
  }

  /** Wakes every waiter of both directions (a dead thread's ends were returned). */
  readonly wakeEveryone = (): void => {
    this.wakeAll(RECV_EPOCH);
    this.wakeAll(SEND_EPOCH);
  };
}

/**
 * One `Ring` per channel per thread, so that every end in a thread sees that
 * thread's waiters. Weak, so that a dropped channel's memory can go.
 */
const rings = new Map<number, WeakRef<Ring>>();

/** This thread's `Ring` of the channel in `buffer` (made on first use). */
export function ringFor(buffer: SharedArrayBuffer): Ring {
  const i32 = new Int32Array(buffer, 0, ID + 2);
  const key = (i32[ID] >>> 0) * 4294967296 + (i32[ID + 1] >>> 0);
  const existing = rings.get(key)?.deref();
  if (existing !== undefined) return existing;
  for (const [k, ref] of rings) if (ref.deref() === undefined) rings.delete(k);
  const ring = new Ring(buffer);
  rings.set(key, new WeakRef(ring));
  return ring;
}
