/**
 * The shared-memory layout of a sync channel, and the protocol on it.
 *
 * One SharedArrayBuffer holds everything: an Int32 header, a table of
 * holders (threads that own ends, see `_lease.ts`), one Int32 meta record per
 * ring slot, and the slots' bytes. Every index below is an index into the
 * `Int32Array` over the whole buffer unless it says bytes.
 *
 * ## The ring (Vyukov's bounded MPMC queue)
 * `HEAD` and `TAIL` are positions that only grow (wrapping at 2^32, compared
 * as `(a - b) | 0`). The ring has a power-of-two number of slots, so
 * `pos & mask` stays continuous across the wrap. Each slot has a sequence word
 * `SEQ`:
 * - `SEQ == pos`: free for the sender that claims position `pos`;
 * - `SEQ == pos + 1`: holds the message of position `pos`;
 * - after the receive, `SEQ = pos + ring`: free for the next lap.
 *
 * A sender loads `TAIL` = t and the slot's `SEQ`. If `SEQ == t` it claims the
 * position with `compareExchange(TAIL, t, t + 1)`; only the winner writes the
 * slot's bytes, then publishes with `store(SEQ, t + 1)`. A receiver does the
 * mirror on `HEAD` and releases with `store(SEQ, h + ring)`. The plain byte
 * writes happen before the `Atomics.store` that publishes them, and the reader
 * reads them after the `Atomics.load` that saw that value, so the bytes are
 * visible (Atomics operations are sequentially consistent and synchronise).
 * When the capacity is not the ring size (not a power of two, or below 2;
 * a rendezvous channel queues at most one message) a sender also checks
 * `TAIL - HEAD < capacity`; `HEAD` only grows, so a
 * stale read can only make the channel look fuller, never overfill it.
 *
 * ## Waiting (an event count per direction)
 * A waiting call first polls its operation for up to `SPIN` µs (a bounded
 * poll: a peer that answers within it costs no wake-up), then sleeps:
 * receivers on `RECV_EPOCH`, senders on `SEND_EPOCH`. A sleeper:
 * 1. reads `key = load(EPOCH)`, 2. `add(WAITERS, 1)`, 3. retries its
 * operation, 4. if it still cannot proceed, `wait(EPOCH, key)`, 5. `sub(WAITERS, 1)`.
 * A publisher makes its change (a publish, a release, a close), then reads
 * `WAITERS`, and only if it is non-zero does `add(EPOCH, 1)` and `notify`.
 * All of these are sequentially consistent, so either the waiter's retry (3)
 * sees the change, or the publisher's read sees the waiter (2) and bumps the
 * epoch after the waiter read its key (1): `wait` then returns at once or is
 * woken by the `notify`, which runs under the same lock as `wait`'s check.
 * No wake-up is lost, and an awake peer costs one load, never a notify.
 *
 * A message wakes one waiter; a close, a reap or an abandoned wait wakes all
 * (a waiter that gives up after being chosen by a `notify(1)` would otherwise
 * swallow the wake-up meant for another).
 *
 * A drain (`Ring.beginDrain`/`endDrain`) does the same for a receiver that
 * takes many messages in a row: the senders waiting for room are woken once,
 * after the drain's last release, as many as slots were freed.
 *
 * A batch (`Ring.beginBatch`/`endBatch`) defers step "read `WAITERS` and
 * notify" of each publish in it to one step after the batch's last publish,
 * waking as many waiters as messages were published: the order (publishes,
 * then the read) is the same, so the argument above holds for every message
 * of the batch; their receivers merely wake later. The pool batches every
 * push of one turn of its thread after the first (which wakes at once), and
 * ends the batch at the end of the turn (a microtask), before it polls for
 * results, or at a push 2 ms after the batch began. While the callbacks of
 * results it settled run, its result pump holds a batch open too, so that
 * the tasks they submit wake workers once, after them. So that a thread that
 * stays busy in that turn does not keep the other receivers asleep, a pool
 * worker that wakes with a task and still sees messages queued and
 * `WAITERS` non-zero wakes one more (an extra wake-up costs a sleeper one
 * retry, never a message).
 *
 * ## Pollers
 * A receiver may say that it is polling the ring (the pool's workers do, in
 * a word of their own record, `W_POLLING` in `pool/_protocol.ts`), and a ring
 * told how many poll (`Ring.polling`) wakes that many fewer sleepers: a
 * push wakes none while one polls; a batch wakes `pushed - polling`. So a
 * stream of tasks that one polling worker keeps up with wakes no other
 * worker (each woken one would poll in vain beside it, on a core the main
 * thread needs). A poller: 1. `store(POLLING, 1)`, 2. polls, 3.
 * `store(POLLING, 0)`, 4. if it caught nothing, sleeps by the protocol
 * above, whose retry comes after 3. A publisher publishes, then reads
 * `WAITERS`, then the pollers' words. If it counted a poller, that poller's
 * step 3 follows the publish (these operations are sequentially consistent),
 * so either its retry in step 4 sees the message, or it caught one in step
 * 2: then, if it still sees messages queued and `WAITERS` non-zero after
 * step 3, it wakes one sleeper (the one the publisher did not). A poller
 * counted by several publishes (a push, then a batch, while it polls) may
 * leave more than one message short of a wake-up: its wake starts a chain,
 * since every pool worker woken with a message that still sees messages
 * queued and `WAITERS` non-zero wakes one more (`pool/_worker.ts`); the
 * chain ends only when the ring is empty or nobody sleeps. A poller that
 * dies stops being counted once the pool sees it dead, and the pool then
 * wakes a sleeper for what it may have been counted for (`pool/_workers.ts`).
 * (Behind all of this, a sleeping pool worker also retries by itself, 50 ms
 * into a sleep and then once a minute, `SLEEP_RETRY_MS` in `pool/_worker.ts`,
 * and the pool's result pump, asleep 40 ms with tasks queued beside a
 * sleeping worker, wakes them, `STUCK_MS` in `pool/_results.ts`: a lost
 * wake-up would cost time, not a task.)
 *
 * ## Ends and disconnection
 * `SENDERS` and `RECEIVERS` count the live ends across all threads. A sender
 * decrements `SENDERS` only after its last publish, so a receiver that reads
 * `SENDERS == 0` and then finds the ring empty has seen every message. The
 * last sender to close bumps `RECV_EPOCH` and wakes every receiver; the last
 * receiver does the same for senders.
 */

/**
 * Identifies a buffer as a taskpool channel of this layout version. Change it
 * with the layout, so that mixed versions fail in `from()` instead of misreading.
 */
export const MAGIC = 0x7470_6302;

// -- Header (Int32 indices). Hot words sit on separate 64-byte lines. --

/** Next position a receiver claims. Written by receivers (CAS). */
export const HEAD = 0;
/** Next position a sender claims. Written by senders (CAS). */
export const TAIL = 16;
/** Receivers sleeping (or about to) on `RECV_EPOCH`. Written by receivers. */
export const RECV_WAITERS = 32;
/** Bumped by whoever wakes receivers; the word receivers `wait` on. */
export const RECV_EPOCH = 33;
/** Senders sleeping (or about to) on `SEND_EPOCH`. Written by senders. */
export const SEND_WAITERS = 48;
/** Bumped by whoever wakes senders; the word senders `wait` on. */
export const SEND_EPOCH = 49;
/** Live sender ends, all threads together. */
export const SENDERS = 64;
/** Live receiver ends, all threads together. */
export const RECEIVERS = 65;
/** `MAGIC`, written once at creation. */
export const MAGIC_WORD = 80;
/** The capacity the user asked for (0 = rendezvous). Read-only. */
export const CAPACITY = 81;
/** Slots in the ring: a power of two, at least 2. Read-only. */
export const RING = 82;
/** Bytes of payload per slot, a multiple of 8. Read-only. */
export const SLOT_BYTES = 83;
/** A random id naming the channel's holder locks (two words). Read-only. */
export const ID = 84;
/** Microseconds a wait polls before it sleeps (see `SyncChannelOptions.spin`). Read-only. */
export const SPIN = 86;

// -- Holder table (see `_lease.ts`) --

/** First Int32 of the holder table. */
export const HOLDERS = 96;
/** Threads (other than the main thread) that can hold ends at once. */
export const MAX_HOLDERS = 64;
/** Int32s per holder record. */
export const HOLDER_INTS = 4;
/** Holder record: `HOLDER_FREE`, `HOLDER_CLAIMING`, `HOLDER_HELD` or `HOLDER_REAPING`. */
export const H_STATE = 0;
/** Holder record: bumped on every claim, so a lock name is never reused. */
export const H_GEN = 1;
/** Holder record: sender ends this holder owns. */
export const H_SENDERS = 2;
/** Holder record: receiver ends this holder owns. */
export const H_RECEIVERS = 3;

/** Holder state: the record is not in use. */
export const HOLDER_FREE = 0;
/** Holder state: the thread has claimed the record and asked for its lock. */
export const HOLDER_CLAIMING = 1;
/** Holder state: the thread holds its lock: if the lock comes free, the thread is gone. */
export const HOLDER_HELD = 2;
/** Holder state: a survivor is returning a dead holder's ends. */
export const HOLDER_REAPING = 3;

// -- Slot meta records --

/** First Int32 of the slot meta records. */
export const SLOTS = HOLDERS + MAX_HOLDERS * HOLDER_INTS;
/** Int32s per slot meta record. */
export const SLOT_INTS = 8;
/** Slot meta: the sequence word (see the ring protocol above). */
export const S_SEQ = 0;
/** Slot meta: the codec tag of the message (`_codec.ts`). */
export const S_TAG = 1;
/** Slot meta: the payload length in bytes. */
export const S_LEN = 2;
/** Slot meta: a word the sender attaches (the pool's task id). */
export const S_AUX0 = 3;
/** Slot meta: a second word the sender attaches (the pool's function and argument form). */
export const S_AUX1 = 4;
/** Slot meta: a third word the sender attaches (the pool's queue or start time). */
export const S_AUX2 = 5;
/** Slot meta: a fourth word the sender attaches (the pool's run time). */
export const S_AUX3 = 6;

/** Largest channel capacity accepted. */
export const MAX_CAPACITY = 1 << 24;
/** Largest buffer accepted, in bytes. */
export const MAX_BYTES = 1 << 30;

/**
 * Slots in the ring for a given capacity: the next power of two, at least 2
 * (with one slot, "free for position p + 1" and "holds position p" would be
 * the same sequence value).
 */
export function ringSize(capacity: number): number {
  let ring = 2;
  while (ring < capacity) ring *= 2;
  return ring;
}

/** Byte offset of the slots' payload area. */
export function dataOffset(ring: number): number {
  const bytes = (SLOTS + ring * SLOT_INTS) * 4;
  return Math.ceil(bytes / 64) * 64;
}

/** Total bytes of a channel's buffer. */
export function bufferBytes(ring: number, slotBytes: number): number {
  return dataOffset(ring) + ring * slotBytes;
}
