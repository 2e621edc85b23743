/**
 * Allocating a channel's buffer (the layout is in `_layout.ts`), and
 * recognising one that another thread sent.
 *
 * @module
 */

import {
  bufferBytes,
  CAPACITY,
  dataOffset,
  ID,
  MAGIC,
  MAGIC_WORD,
  MAX_BYTES,
  MAX_CAPACITY,
  RECEIVERS,
  RING,
  ringSize,
  S_SEQ,
  SENDERS,
  SLOT_BYTES,
  SLOT_INTS,
  SLOTS,
  SPIN,
} from "./_layout.ts";

/**
 * Allocates and initialises a channel's buffer, with one sender and one
 * receiver counted. Throws a `RangeError` naming a bad argument.
 *
 * @param capacity Messages that may wait (0: rendezvous).
 * @param slotSize Bytes of payload per slot (rounded up to a multiple of 8).
 * @param spin Microseconds a wait polls before it sleeps.
 */
export function createBuffer(capacity: number, slotSize: number, spin = 0): SharedArrayBuffer {
  checkCapacity(capacity);
  checkSlotSize(slotSize);
  const slotBytes = Math.ceil(slotSize / 8) * 8;
  const ring = ringSize(capacity);
  const bytes = bufferBytes(ring, slotBytes);
  if (bytes > MAX_BYTES) {
    throw new RangeError(
      `Cannot create channel as 'capacity' × 'slotSize' needs ${bytes} bytes, more than ${MAX_BYTES}: current values are ${capacity} and ${slotSize}`,
    );
  }
  const buffer = new SharedArrayBuffer(bytes);
  const i32 = new Int32Array(buffer);
  i32[MAGIC_WORD] = MAGIC;
  i32[CAPACITY] = capacity;
  i32[RING] = ring;
  i32[SLOT_BYTES] = slotBytes;
  i32[SPIN] = spin;
  crypto.getRandomValues(i32.subarray(ID, ID + 2));
  for (let s = 0; s < ring; s++) i32[SLOTS + s * SLOT_INTS + S_SEQ] = s;
  i32[SENDERS] = 1;
  i32[RECEIVERS] = 1;
  return buffer;
}

/** True when `buffer` looks like a channel's buffer of this layout version. */
export function isChannelBuffer(buffer: unknown): buffer is SharedArrayBuffer {
  return buffer instanceof SharedArrayBuffer && buffer.byteLength >= dataOffset(2) &&
    new Int32Array(buffer, 0, MAGIC_WORD + 1)[MAGIC_WORD] === MAGIC;
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_CAPACITY) {
    throw new RangeError(
      `Cannot create channel as 'capacity' must be an integer from 0 to ${MAX_CAPACITY}: current value is ${
        String(capacity)
      }`,
    );
  }
}

function checkSlotSize(slotSize: number): void {
  if (!Number.isInteger(slotSize) || slotSize < 8 || slotSize > MAX_BYTES) {
    throw new RangeError(
      `Cannot create channel as 'slotSize' must be an integer from 8 to ${MAX_BYTES}: current value is ${
        String(slotSize)
      }`,
    );
  }
}
