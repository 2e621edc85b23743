/**
 * How a message becomes bytes in a slot and back.
 *
 * Numbers travel as a raw f64, `undefined` as a bare tag, strings as UTF-8,
 * `Uint8Array`s as their raw bytes, and everything else as JSON. Decoding
 * copies the bytes out of shared memory first: Deno's `TextDecoder` is ~5x
 * slower on a SharedArrayBuffer view than on a private buffer.
 *
 * @module
 */

/** `undefined`: no payload. */
export const T_UNDEFINED = 0;
/** A number, as an f64 at the slot's start. */
export const T_NUMBER = 1;
/** A string, as UTF-8. */
export const T_STRING = 2;
/** Any other value, as UTF-8 JSON. */
export const T_JSON = 3;
/** A `Uint8Array`, as its raw bytes. */
export const T_BYTES = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes one value at a time into a private staging buffer, so that a value
 * that cannot be sent fails before any slot is claimed. Not shared between
 * threads; one per channel end.
 */
export class Encoder {
  /** Tag of the last encoded value. */
  tag = T_UNDEFINED;
  /** Payload length in bytes of the last encoded value. */
  len = 0;
  /** The number, when `tag` is `T_NUMBER`. */
  num = 0;
  /** The payload, when it has bytes. May be the staging buffer. */
  bytes: Uint8Array;
  readonly #stage: Uint8Array;
  readonly #slotBytes: number;

  constructor(slotBytes: number) {
    this.#slotBytes = slotBytes;
    this.#stage = new Uint8Array(slotBytes);
    this.bytes = this.#stage;
  }

  /**
   * Encodes `value`, or throws a `TypeError` (cannot be carried) or a
   * `RangeError` (larger than a slot) that says how to fix it.
   */
  encode(value: unknown): void {
    switch (typeof value) {
      case "number":
        this.tag = T_NUMBER;
        this.num = value;
        this.len = 8;
        return;
      case "undefined":
        this.tag = T_UNDEFINED;
        this.len = 0;
        return;
      case "string":
        this.#encodeText(value, T_STRING);
        return;
      case "function":
      case "symbol":
      case "bigint":
        throw new TypeError(
          `Cannot send a ${typeof value}: a channel carries numbers, strings, Uint8Arrays and JSON-serialisable values; ${
            typeof value === "bigint"
              ? "convert it to a string or a number first"
              : "send data that describes it instead"
          }`,
        );
    }
    if (value instanceof Uint8Array) {
      if (value.byteLength > this.#slotBytes) {
        throw new TooLargeError(value.byteLength, this.#slotBytes, T_BYTES, value);
      }
      this.tag = T_BYTES;
      this.bytes = value;
      this.len = value.byteLength;
      return;
    }
    let json: string;
    try {
      json = JSON.stringify(value);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TypeError(
        `Cannot send the value: it is not JSON-serialisable (${reason}); remove circular references and BigInts, or convert them to plain data first`,
        { cause: error },
      );
    }
    this.#encodeText(json, T_JSON);
  }

  /** Makes the payload independent of the staging buffer and of the caller's array, before a wait. */
  own(): void {
    if (this.tag === T_STRING || this.tag === T_JSON || this.tag === T_BYTES) {
      this.bytes = this.bytes.slice(0, this.len);
    }
  }

  /** Writes the payload at `offset` of the shared bytes (and `f64` for numbers). */
  write(u8: Uint8Array, f64: Float64Array, offset: number): void {
    if (this.tag === T_NUMBER) f64[offset >>> 3] = this.num;
    else if (this.len > 0) {
      u8.set(
        this.len === this.bytes.byteLength ? this.bytes : this.bytes.subarray(0, this.len),
        offset,
      );
    }
    // Drop a reference to the caller's array or an owned copy; keep the stage.
    this.bytes = this.#stage;
  }

  #encodeText(text: string, tag: number): void {
    const stage = this.#stage;
    this.tag = tag;
    this.bytes = stage;
    // A UTF-16 unit becomes at most 3 UTF-8 bytes: short texts always fit.
    if (text.length * 3 <= stage.byteLength) {
      this.len = encoder.encodeInto(text, stage).written;
      return;
    }
    const { read, written } = encoder.encodeInto(text, stage);
    if (read < text.length) {
      throw new TooLargeError(encoder.encode(text).byteLength, stage.byteLength, tag, text);
    }
    this.len = written;
  }
}

/** Returned by {@linkcode readSlot} when the text was copied to the scratch buffer. */
export const TEXT: unique symbol = Symbol("text");

/**
 * Reads the message of a slot. Numbers, `undefined` and bytes come back
 * decoded; text is copied to the private `scratch` buffer (at least a slot
 * long) and `TEXT` is returned, so that the caller can release the slot
 * before it pays for {@linkcode decodeText}.
 */
export function readSlot(
  tag: number,
  len: number,
  u8: Uint8Array,
  f64: Float64Array,
  offset: number,
  scratch: Uint8Array,
): unknown {
  switch (tag) {
    case T_NUMBER:
      return f64[offset >>> 3];
    case T_UNDEFINED:
      return undefined;
    case T_BYTES:
      return u8.slice(offset, offset + len);
  }
  scratch.set(u8.subarray(offset, offset + len));
  return TEXT;
}

/** Decodes the text that {@linkcode readSlot} left in `scratch`. */
export function decodeText(
  tag: number,
  len: number,
  scratch: Uint8Array,
): unknown {
  const text = decoder.decode(scratch.subarray(0, len));
  return tag === T_STRING ? text : JSON.parse(text);
}

/**
 * A value larger than a slot. A `RangeError` that says how to fix it, and
 * carries the encoding it got (`tag`, and the text or bytes as `data`) so
 * that a caller with a side path (the pool) need not encode again.
 */
export class TooLargeError extends RangeError {
  /** `T_STRING`, `T_JSON` or `T_BYTES`. */
  readonly tag: number;
  /** The string, the JSON text, or the bytes. */
  readonly data: string | Uint8Array;

  constructor(bytes: number, slotBytes: number, tag: number, data: string | Uint8Array) {
    let suggested = slotBytes;
    while (suggested < bytes) suggested *= 2;
    super(
      `Cannot send the value: it takes ${bytes} bytes but a slot holds ${slotBytes}; create the channel with a larger slot, for instance syncChannel(capacity, { slotSize: ${suggested} })`,
    );
    this.tag = tag;
    this.data = data;
  }
}

/** Decodes what a {@linkcode TooLargeError} carried, on the other side. */
export function decodeLarge(tag: number, data: string | Uint8Array): unknown {
  return tag === T_JSON ? JSON.parse(data as string) : data;
}
