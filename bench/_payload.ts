// Payloads and the protocol shared by bench/channel_bench.ts and its workers.
import type { ChannelEndDescriptor } from "../src/channel/mod.ts";

/** What one message carries. */
export type PayloadKind = "number" | "json" | "bytes";

/** Bytes in a `bytes` payload. */
export const BYTES_LEN = 256;

/** Ids of producer `p` start at `p * STRIDE`, so values from different producers never collide. */
export const STRIDE = 10_000_000;

/** A JSON message: its `JSON.stringify` is about 256 bytes (see `jsonSize`). */
export interface Item {
  id: number;
  name: string;
  kind: string;
  tags: string[];
  location: { lat: number; lon: number };
  readings: number[];
  active: boolean;
  note: string;
}

/** The template the producers send, with only `id` changed per message. */
export function makeItem(): Item {
  return {
    id: 0,
    name: "sensor-north-wing-0042",
    kind: "temperature",
    tags: ["building-a", "floor-3", "calibrated", "v2"],
    location: { lat: 52.520008, lon: 13.404954 },
    readings: [21.5, 21.75, 22.125, 21.875],
    active: true,
    note: "steady readings since calibration.",
  };
}

/** Bytes of `JSON.stringify` of the record with the given id. */
export function jsonSize(id: number): number {
  const record = makeItem();
  record.id = id;
  return new TextEncoder().encode(JSON.stringify(record)).byteLength;
}

/** Writes `id` into the first 4 bytes of `bytes` (little endian). */
export function writeId(bytes: Uint8Array, id: number): void {
  bytes[0] = id;
  bytes[1] = id >>> 8;
  bytes[2] = id >>> 16;
  bytes[3] = id >>> 24;
}

/** Reads the id that {@linkcode writeId} wrote. */
export function readId(bytes: Uint8Array): number {
  return (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
}

/** Sets up a worker. `end` for the channel worker, `port` for the postMessage worker. */
export interface Init {
  type: "init";
  role: "producer" | "consumer";
  payload: PayloadKind;
  /** Messages each producer sends. */
  n: number;
  /** Producer: its index (ids start at `producer * STRIDE`). Consumer: number of producers. */
  producer: number;
  /** Consumer of a postMessage run: messages to wait for before reporting. */
  expect?: number;
  end?: ChannelEndDescriptor;
  port?: MessagePort;
  /** Post a `progress` report every this many messages (0: never), to find hangs. */
  progressEvery: number;
}

/** Starts the timed part. */
export interface Go {
  type: "go";
}

/** What workers report to the main thread. */
export type Report =
  | { type: "ready" }
  | { type: "sent"; count: number }
  | {
    type: "done";
    count: number;
    sum: number;
    outOfOrder: number;
    bad: number;
    /** Messages received after the first quarter, and the ms they took (steady state, JIT warm). */
    steadyCount: number;
    steadyMs: number;
  }
  | { type: "progress"; count: number }
  | { type: "error"; message: string };

/** A consumer starts its steady-state clock after this many of its messages (a quarter of `n`). */
export function steadyAfter(n: number): number {
  return Math.floor(n / 4);
}

/** Extracts the id of a received value. */
export function idOf(payload: PayloadKind, value: unknown): number {
  switch (payload) {
    case "number":
      return value as number;
    case "json":
      return (value as Item).id;
    case "bytes":
      return readId(value as Uint8Array);
  }
}

/** True when a received value has the shape its payload kind promises. */
export function wellFormed(payload: PayloadKind, value: unknown): boolean {
  switch (payload) {
    case "number":
      return typeof value === "number";
    case "json":
      return typeof value === "object" && value !== null &&
        (value as Item).tags?.length === 4 && (value as Item).readings?.length === 4;
    case "bytes":
      return value instanceof Uint8Array && value.byteLength === BYTES_LEN &&
        value[BYTES_LEN - 1] === 0xab;
  }
}

/** Builds the producer's message factory: call it with an id, send what it returns. */
export function makeProducer(payload: PayloadKind): (id: number) => unknown {
  switch (payload) {
    case "number":
      return (id) => id;
    case "json": {
      const record = makeItem();
      return (id) => {
        record.id = id;
        return record;
      };
    }
    case "bytes": {
      const bytes = new Uint8Array(BYTES_LEN).fill(0xab);
      return (id) => {
        writeId(bytes, id);
        return bytes;
      };
    }
  }
}
