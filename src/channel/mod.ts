/**
 * A bounded multi-producer, multi-consumer channel in one SharedArrayBuffer:
 * Rust's `std::sync::mpsc::sync_channel` for the main thread and any number
 * of Web Workers. `syncChannel(capacity)` makes the two ends; `share()` and
 * `from()` move an end to another thread.
 *
 * @example Send and receive
 * ```ts
 * import { syncChannel } from "@taskpool/taskpool/channel";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<number>(2);
 * await tx.send(1);
 * tx.close();
 * assert.deepStrictEqual(await Array.fromAsync(rx), [1]);
 * ```
 *
 * @module
 */

export * from "./channel.ts";
export * from "./sender.ts";
export * from "./receiver.ts";
export * from "./types.ts";
export { ChannelClosedError, TimeoutError } from "../errors.ts";
