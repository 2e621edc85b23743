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
  if (descriptor?.kind !== kind || !isChannelBuffer(descriptor.buffer)) {
    throw new TypeError(
      `Cannot open a ${kind} end: the argument is not a ${kind} descriptor; pass what ${
        kind === "sender" ? "SyncSender" : "SyncReceiver"
      }.prototype.share() returned`,
    );
  }
  return ringFor(descriptor.buffer);
}
