/**
 * What both ends of a channel share: opening the ring of a descriptor that
 * another thread sent, with a clear error for anything else.
 *
 * @module
 */

import { isChannelBuffer } from "./_buffer.ts";
import { type Ring, ringFor } from "./_ring.ts";
import type { ChannelEndDescriptor } from "./types.ts";

/** This thread's ring of the channel a descriptor of `kind` names; a `TypeError` for anything else. */
export function ringOf(descriptor: ChannelEndDescriptor, kind: "sender" | "receiver"): Ring {
  if (
    descriptor?.kind !== kind || !isChannelBuffer(descriptor.buffer) ||
    !(descriptor.claim instanceof SharedArrayBuffer) || descriptor.claim.byteLength !== 4
  ) {
    throw new TypeError(
      `Cannot open a ${kind} end: the argument is not a ${kind} descriptor; pass what ${
        kind === "sender" ? "SyncSender" : "SyncReceiver"
      }.prototype.share() returned`,
    );
  }
  // The claim word: 0 while the reserved end waits to be opened, 1 once a
  // from() took it. Every copy of the descriptor (postMessage shares the
  // SharedArrayBuffer, it does not copy it) sees the same word, and the
  // compare-exchange lets exactly one opening win, in whichever thread.
  if (Atomics.compareExchange(new Int32Array(descriptor.claim), 0, 0, 1) !== 0) {
    throw new Error(
      `Cannot open this ${kind} end: its descriptor was already opened once; call share() again for another end`,
    );
  }
  return ringFor(descriptor.buffer);
}
