/**
 * RESP2, the Redis wire format: commands encoded as arrays of bulk strings,
 * replies parsed incrementally from a growable read buffer.
 *
 * @module
 */

/** A reply as it comes off the wire; errors are values here, the client turns them into rejections. */
export type RespValue = string | Uint8Array | number | null | RespErrorReply | RespValue[];

/** An error reply (`-ERR ...`). */
export class RespErrorReply {
  /** The server's message, e.g. "WRONGTYPE Operation against a key ...". */
  readonly message: string;
  /** @param message The server's message. */
  constructor(message: string) {
    this.message = message;
  }
}

/** Returned by {@linkcode RespParser.next} when the buffer holds no complete reply yet. */
export const INCOMPLETE: unique symbol = Symbol("incomplete");

const CR = 13;
const LF = 10;
/** The smallest room offered to a read: below this, compact or grow first. */
const MIN_READ = 16 * 1024;
const INITIAL_SIZE = 64 * 1024;
/** An idle buffer larger than this (after a big reply) is given back. */
const SHRINK_ABOVE = 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** For bulk strings: text that is not UTF-8 comes back as its bytes, not with U+FFFD in it. */
const strict = new TextDecoder("utf-8", { fatal: true });

/** An array reply being filled, element by element. */
interface Frame {
  items: RespValue[];
  length: number;
}

/**
 * Parses replies from bytes read off a socket. Read into {@linkcode space},
 * report the count with {@linkcode commit}, then call {@linkcode next} until
 * it returns {@linkcode INCOMPLETE}.
 *
 * Parsing resumes where it stopped: finished elements of a partial array are
 * kept, and a bulk string's length is known from its header, so the buffer
 * grows once to hold it. Every byte is copied a bounded number of times,
 * however the replies are split across reads.
 *
 * @example A reply split across two reads
 * ```ts
 * import { INCOMPLETE, RespParser } from "./_resp.ts";
 * import assert from "node:assert";
 *
 * const parser = new RespParser();
 * const feed = (text: string) => {
 *   const bytes = new TextEncoder().encode(text);
 *   parser.space().set(bytes);
 *   parser.commit(bytes.length);
 * };
 * feed("*2\r\n$5\r\nhel");
 * assert.strictEqual(parser.next(), INCOMPLETE);
 * feed("lo\r\n:42\r\n");
 * assert.deepStrictEqual(parser.next(), ["hello", 42]);
 * ```
 */
export class RespParser {
  #buf = new Uint8Array(INITIAL_SIZE);
  #start = 0;
  #end = 0;
  /** Bytes from #start that the element in progress needs in one piece. */
  #want = 0;
  #stack: Frame[] = [];

  /** The free bytes to read into; at least 16 KiB, and room for the reply in progress. */
  space(): Uint8Array {
    const unread = this.#end - this.#start;
    if (unread === 0 && this.#buf.length > SHRINK_ABOVE) this.#buf = new Uint8Array(INITIAL_SIZE);
    if (unread === 0) this.#start = this.#end = 0;
    const need = Math.max(this.#want, unread + MIN_READ);
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
      this.#start = 0;
      this.#end = unread;
    } else if (this.#buf.length - this.#end < MIN_READ || this.#buf.length - this.#start < need) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = unread;
    }
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were read into the last {@linkcode space}. */
  commit(n: number): void {
    this.#end += n;
  }

  /** The next complete reply, or {@linkcode INCOMPLETE}. Throws on bytes that are not RESP2. */
  next(): RespValue | typeof INCOMPLETE {
    for (;;) {
      const element = this.#element();
      if (element === INCOMPLETE) return INCOMPLETE;
      if (typeof element === "object" && element !== null && "arrayOf" in element) {
        this.#stack.push({ items: [], length: element.arrayOf });
        continue;
      }
      let value: RespValue = element;
      // Close every array this element completes; a top-level value is a whole reply.
      for (;;) {
        const top = this.#stack.at(-1);
        if (top === undefined) return value;
        top.items.push(value);
        if (top.items.length < top.length) break;
        this.#stack.pop();
        value = top.items;
      }
    }
  }

  /** One element at #start, an array header to open, or INCOMPLETE (then #start is unchanged). */
  #element(): RespValue | { arrayOf: number } | typeof INCOMPLETE {
    const buf = this.#buf;
    const start = this.#start;
    const cr = buf.subarray(0, this.#end).indexOf(CR, start + 1);
    if (cr === -1 || cr + 1 >= this.#end) return INCOMPLETE;
    if (buf[cr + 1] !== LF) throw new Error("malformed reply: a line does not end in CRLF");
    const body = start + 1;
    const next = cr + 2;
    switch (buf[start]) {
      case 0x2b: // +
        this.#start = next;
        return decoder.decode(buf.subarray(body, cr));
      case 0x2d: // -
        this.#start = next;
        return new RespErrorReply(decoder.decode(buf.subarray(body, cr)));
      case 0x3a: // :
        this.#start = next;
        return integer(buf, body, cr);
      case 0x24: { // $
        const length = integer(buf, body, cr);
        if (length < 0) {
          this.#start = next;
          return null;
        }
        const stop = next + length;
        if (stop + 2 > this.#end) {
          this.#want = stop + 2 - start;
          return INCOMPLETE;
        }
        this.#want = 0;
        this.#start = stop + 2;
        return bulk(buf.subarray(next, stop));
      }
      case 0x2a: { // *
        const length = integer(buf, body, cr);
        this.#start = next;
        if (length < 0) return null;
        return length === 0 ? [] : { arrayOf: length };
      }
      default:
        throw new Error(`malformed reply: unknown type byte ${buf[start]}`);
    }
  }
}

/** The decimal integer in buf[from, to). */
/**
 * A bulk string: its text, or, when its bytes are not valid UTF-8, a copy
 * of the bytes (a lossy decoding would make a value that matches nothing
 * when sent back, say to remove it from a list).
 */
function bulk(bytes: Uint8Array): string | Uint8Array {
  try {
    return strict.decode(bytes);
  } catch {
    return bytes.slice();
  }
}

function integer(buf: Uint8Array, from: number, to: number): number {
  const value = Number(decoder.decode(buf.subarray(from, to)));
  if (!Number.isFinite(value) || from === to) throw new Error("malformed reply: bad integer");
  return value;
}

/**
 * Encodes commands into one growing buffer, so that a tick's commands leave
 * in one write. Strings are UTF-8, numbers their decimal form, bytes as is.
 *
 * @example Two commands in one buffer
 * ```ts
 * import { RespWriter } from "./_resp.ts";
 * import assert from "node:assert";
 *
 * const writer = new RespWriter();
 * writer.write(["PING"]);
 * writer.write(["EXPIRE", "k", 10]);
 * assert.strictEqual(
 *   new TextDecoder().decode(writer.take()),
 *   "*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n",
 * );
 * assert.strictEqual(writer.length, 0);
 * ```
 */
export class RespWriter {
  #buf = new Uint8Array(0);
  #length = 0;

  /** Bytes encoded and not yet taken. */
  get length(): number {
    return this.#length;
  }

  /** Appends one command as a RESP array of bulk strings. */
  write(args: readonly (string | number | Uint8Array)[]): void {
    this.#ascii(`*${args.length}\r\n`);
    for (const arg of args) {
      const bytes = arg instanceof Uint8Array
        ? arg
        : typeof arg === "number"
        ? undefined
        : encoder.encode(arg);
      if (bytes === undefined) {
        const text = String(arg);
        this.#ascii(`$${text.length}\r\n${text}\r\n`);
        continue;
      }
      this.#ascii(`$${bytes.length}\r\n`);
      this.#reserve(bytes.length + 2);
      this.#buf.set(bytes, this.#length);
      this.#length += bytes.length;
      this.#ascii("\r\n");
    }
  }

  /** Hands over what was encoded and starts afresh. */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#length);
    this.#buf = new Uint8Array(0);
    this.#length = 0;
    return out;
  }

  #ascii(text: string): void {
    this.#reserve(text.length);
    for (let i = 0; i < text.length; i++) this.#buf[this.#length++] = text.charCodeAt(i);
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(4096, this.#length + n, this.#buf.length * 2));
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }
}
