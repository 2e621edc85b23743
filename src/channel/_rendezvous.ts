/**
 * The hand-over of a rendezvous channel (capacity 0): a send completes only
 * once a receiver has claimed its message.
 *
 * The sender pushes as usual (the ring queues at most one message), then
 * waits until `HEAD` has moved past the message's position. If the wait
 * fails (timeout, abort, or every receiver gone), the sender takes the
 * message back with `Ring.reclaim`, a compare-exchange on `HEAD`: either the
 * sender wins and no receiver can claim it any more, or a receiver won just
 * before and the send succeeded after all. So a failed send never leaves
 * its message behind, and a message is never both delivered and reported
 * unsent.
 *
 * @module
 */

import { HEAD, RECEIVERS, SEND_EPOCH, SEND_WAITERS } from "./_layout.ts";
import type { Ring } from "./_ring.ts";
import { waitAsync, waitSync } from "./_wait.ts";
import type { SyncWaitOptions, WaitOptions } from "./types.ts";

/** A receiver claimed the message. */
const TAKEN = 1;
/** Every receiver is gone and the message was taken back. */
const RETURNED = 2;
/** Neither yet. */
const NOT_YET = 0;

/** Whether a receiver claimed position `pos` (`TAKEN`), or none is left and it came back (`RETURNED`). */
function handedOff(core: Ring, pos: number): number {
  const i32 = core.i32;
  if (((Atomics.load(i32, HEAD) - pos) | 0) > 0) return TAKEN;
  if (Atomics.load(i32, RECEIVERS) === 0 && core.reclaim(pos)) return RETURNED;
  return NOT_YET;
}

/**
 * Waits for a receiver to take the message at `pos`. Resolves `true` once
 * one did, `false` when every receiver closed first (the message was taken
 * back). A timeout or an abort takes the message back and rejects, unless a
 * receiver took it in that instant: then the send succeeded.
 */
export async function handOff(core: Ring, pos: number, options: WaitOptions): Promise<boolean> {
  let outcome: number;
  try {
    outcome = await waitAsync(
      core,
      SEND_EPOCH,
      SEND_WAITERS,
      NOT_YET,
      () => handedOff(core, pos),
      options,
      "hand over",
    );
  } catch (error) {
    if (core.reclaim(pos)) throw error;
    return true; // a receiver took it just in time
  }
  return outcome === TAKEN;
}

/** The blocking twin of {@linkcode handOff} (`Atomics.wait`). */
export function handOffSync(core: Ring, pos: number, options: SyncWaitOptions): boolean {
  let outcome: number;
  try {
    outcome = waitSync(
      core,
      SEND_EPOCH,
      SEND_WAITERS,
      NOT_YET,
      () => handedOff(core, pos),
      options,
      "hand over",
    );
  } catch (error) {
    if (core.reclaim(pos)) throw error;
    return true;
  }
  return outcome === TAKEN;
}
