/**
 * `syncChannel`: a bounded multi-producer, multi-consumer channel in one
 * SharedArrayBuffer, Rust's `std::sync::mpsc::sync_channel` for the main
 * thread and any number of Web Workers.
 *
 * @module
 */

import { createBuffer } from "./_buffer.ts";
import { attach } from "./_lease.ts";
import { ringFor } from "./_ring.ts";
import { SyncReceiver } from "./receiver.ts";
import { SyncSender } from "./sender.ts";
import type { SyncChannelOptions } from "./types.ts";

/** Bytes of payload per slot unless `slotSize` says otherwise. */
const DEFAULT_SLOT_SIZE = 1024;
/** Microseconds a wait polls before it sleeps, on a machine with more than one core. */
const DEFAULT_SPIN = 20;
/** The largest `spin` accepted, µs. */
const MAX_SPIN = 1000;

/**
 * Creates a bounded channel and returns its two ends, `[sender, receiver]`.
 *
 * Like Rust's `sync_channel`: at most `capacity` messages wait in the
 * channel, and a sender waits for room (backpressure). Capacity 0 makes a
 * rendezvous channel: a `send` completes only once a receiver has taken the
 * value.
 *
 * Either end can be used in any thread: `share()` makes a plain descriptor
 * that survives `postMessage`, and `SyncSender.from()` / `SyncReceiver.from()`
 * open it on the other side. See {@linkcode SyncSender} for the guarantees.
 *
 * Memory: one SharedArrayBuffer of about `1.3 KiB + ring × (slotSize + 32)`
 * bytes, where `ring` is `capacity` rounded up to a power of two (at least 2).
 * With the defaults, `syncChannel(64)` takes about 67 KiB.
 *
 * @typeParam T The type of the messages.
 * @param capacity How many messages can wait in the channel, from 0 (rendezvous) to 16,777,216.
 * @param options The slot size.
 * @returns The sender and the receiver.
 * @throws {RangeError} When `capacity` or `slotSize` is not an accepted integer.
 *
 * @example Send and receive in one thread
 * ```ts
 * import { syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<{ n: number }>(4);
 * await tx.send({ n: 1 });
 * tx.close();
 * assert.deepStrictEqual(await rx.recv(), { n: 1 });
 * assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "closed" });
 * ```
 *
 * @example Hand the sender to a worker
 * ```ts
 * import { SyncSender, syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<number>(8);
 * const code = `
 *   import { SyncSender } from ${JSON.stringify(import.meta.resolve("./mod.ts"))};
 *   self.onmessage = async (e) => {
 *     const tx = await SyncSender.from(e.data);
 *     for (let i = 0; i < 100; i++) tx.sendSync(i);
 *     tx.close();
 *   };`;
 * const worker = new Worker(`data:text/javascript,${encodeURIComponent(code)}`, { type: "module" });
 * worker.postMessage(tx.share());
 * tx.close(); // the worker holds its own sender now
 * let sum = 0;
 * for await (const n of rx) sum += n;
 * assert.strictEqual(sum, 4950);
 * worker.terminate();
 * ```
 */
export function syncChannel<T>(
  capacity: number,
  options: SyncChannelOptions = {},
): [SyncSender<T>, SyncReceiver<T>] {
  const spin = options.spin ?? (navigator.hardwareConcurrency > 1 ? DEFAULT_SPIN : 0);
  if (typeof spin !== "number" || !Number.isInteger(spin) || spin < 0 || spin > MAX_SPIN) {
    throw new RangeError(
      `Cannot create channel as 'spin' must be an integer number of microseconds from 0 to ${MAX_SPIN}: current value is ${
        String(spin)
      }`,
    );
  }
  const buffer = createBuffer(capacity, options.slotSize ?? DEFAULT_SLOT_SIZE, spin);
  const ring = ringFor(buffer);
  return [
    new SyncSender<T>(ring, attach(ring.i32, "sender")),
    new SyncReceiver<T>(ring, attach(ring.i32, "receiver")),
  ];
}
