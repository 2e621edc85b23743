import assert from "node:assert";
import { ChannelClosedError, syncChannel, SyncReceiver, SyncSender, TimeoutError } from "../mod.ts";
import type { Command } from "./fixtures/channel_worker.ts";
import { eventually } from "./_gate.ts";
import { createBuffer } from "../src/channel/_buffer.ts";
import { Encoder } from "../src/channel/_codec.ts";
import { RECV_EPOCH, RECV_WAITERS } from "../src/channel/_layout.ts";
import { ringFor } from "../src/channel/_ring.ts";

const WORKER = new URL("./fixtures/channel_worker.ts", import.meta.url);

/** A fixture worker and the messages it answers with, in order. */
function spawn(): { worker: Worker; next: () => Promise<unknown>; send: (c: Command) => void } {
  const worker = new Worker(WORKER, { type: "module" });
  const inbox: unknown[] = [];
  const waiting: Array<(value: unknown) => void> = [];
  worker.onmessage = (event) => {
    const resolve = waiting.shift();
    if (resolve) resolve(event.data);
    else inbox.push(event.data);
  };
  worker.onerror = (event) => event.preventDefault(); // some fixtures die on purpose
  return {
    worker,
    // A safety net only: a fixture that never answers fails the test instead of hanging it.
    next: () =>
      inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(settle), 1);
          reject(new Error("the worker did not answer within 60 s"));
        }, 60_000);
        const settle = (value: unknown) => {
          clearTimeout(timer);
          resolve(value);
        };
        waiting.push(settle);
      }),
    send: (command) => worker.postMessage(command),
  };
}

// -- Smoke and capacity --

Deno.test("syncChannel() sends and receives one message", async () => {
  const [tx, rx] = syncChannel<number>(1);
  await tx.send(1);
  assert.strictEqual(await rx.recv(), 1);
});

Deno.test("syncChannel() rejects capacities that are not integers from 0 to 2^24", () => {
  for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 24 + 1, 2 ** 40]) {
    assert.throws(
      () => syncChannel(bad),
      (error: Error) =>
        error instanceof RangeError && error.message.includes("'capacity'") &&
        error.message.includes(`current value is ${bad}`),
    );
  }
  assert.throws(() => syncChannel("3" as unknown as number), RangeError);
});

Deno.test("syncChannel() rejects bad slot sizes and oversized buffers", () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, 7]) {
    assert.throws(() => syncChannel(1, { slotSize: bad }), /'slotSize'/);
  }
  assert.throws(() => syncChannel(1 << 20, { slotSize: 1 << 20 }), /more than/);
});

Deno.test("syncChannel() rejects a bad spin and works without one", async () => {
  for (const bad of [-1, 1.5, NaN, Infinity, 1001]) {
    assert.throws(
      () => syncChannel(1, { spin: bad }),
      /'spin' must be an integer number of microseconds/,
    );
  }
  const [tx, rx] = syncChannel<number>(1, { spin: 0 });
  const later = rx.recv();
  await tx.send(9);
  assert.strictEqual(await later, 9);
});

Deno.test("SyncSender.capacity reports the capacity and holds that many messages", () => {
  for (const capacity of [1, 2, 3, 5, 8, 100]) {
    const [tx, rx] = syncChannel<number>(capacity);
    assert.strictEqual(tx.capacity, capacity);
    assert.strictEqual(rx.capacity, capacity);
    for (let i = 0; i < capacity; i++) assert.deepStrictEqual(tx.trySend(i), { ok: true });
    assert.deepStrictEqual(tx.trySend(-1), { ok: false, reason: "full", value: -1 });
    for (let i = 0; i < capacity; i++) assert.deepStrictEqual(rx.tryRecv(), { ok: true, value: i });
  }
});

Deno.test("SyncReceiver.len counts queued messages through many laps of the ring", () => {
  const [tx, rx] = syncChannel<number>(3);
  for (let lap = 0; lap < 1000; lap++) {
    assert.strictEqual(rx.len, 0);
    tx.trySend(lap);
    assert.strictEqual(tx.len, 1);
    tx.trySend(lap);
    tx.trySend(lap);
    assert.strictEqual(rx.len, 3);
    assert.strictEqual(tx.trySend(0).ok, false);
    for (let i = 0; i < 3; i++) assert.deepStrictEqual(rx.tryRecv(), { ok: true, value: lap });
  }
});

// -- Values --

Deno.test("SyncSender.send() carries numbers, strings, undefined, bytes and JSON", async () => {
  const [tx, rx] = syncChannel<unknown>(16, { slotSize: 256 });
  const values = [
    0,
    -0,
    NaN,
    Infinity,
    1e308,
    -42.5,
    "",
    "plain",
    "ünïcödé 🎉",
    undefined,
    null,
    true,
    [1, "two", { three: 3 }],
    { nested: { list: [null, false] } },
    new Uint8Array([0, 1, 2, 255]),
    new Uint8Array(0),
  ];
  for (const value of values) await tx.send(value);
  for (const value of values) {
    const got = await rx.recv();
    if (typeof value === "number" && Number.isNaN(value)) assert(Number.isNaN(got));
    else if (Object.is(value, -0)) assert(Object.is(got, -0));
    else assert.deepStrictEqual(got, value);
  }
});

Deno.test("SyncReceiver.recv() returns a copy of the bytes, not a view of shared memory", async () => {
  const [tx, rx] = syncChannel<Uint8Array>(2, { slotSize: 16 });
  const sent = new Uint8Array([1, 2, 3]);
  await tx.send(sent);
  sent[0] = 99; // the send copied the bytes
  const got = await rx.recv();
  assert.deepStrictEqual([...got], [1, 2, 3]);
  assert(!(got.buffer instanceof SharedArrayBuffer));
  await tx.send(new Uint8Array([7, 7, 7]));
  assert.deepStrictEqual([...got], [1, 2, 3]); // the slot's reuse does not touch it
});

Deno.test("SyncSender.send() rejects values it cannot carry and stays usable", async () => {
  const [tx, rx] = syncChannel<unknown>(2, { slotSize: 64 });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const cases: Array<[unknown, RegExp, ErrorConstructor | RangeErrorConstructor]> = [
    [() => 1, /Cannot send a function/, TypeError],
    [Symbol("s"), /Cannot send a symbol/, TypeError],
    [10n, /Cannot send a bigint.*string or a number/, TypeError],
    [cycle, /not JSON-serialisable.*circular/, TypeError],
    [{ big: 1n }, /not JSON-serialisable/, TypeError],
    ["x".repeat(65), /takes 65 bytes but a slot holds 64.*slotSize: 128/, RangeError],
    [{ text: "y".repeat(100) }, /slot holds 64/, RangeError],
    [new Uint8Array(65), /takes 65 bytes/, RangeError],
    ["é".repeat(40), /takes 80 bytes/, RangeError],
  ];
  for (const [value, message, type] of cases) {
    await assert.rejects(
      tx.send(value),
      (e: Error) => e instanceof type && message.test(e.message),
    );
    assert.throws(() => tx.trySend(value), type);
    assert.throws(() => tx.sendSync(value), type);
    assert.strictEqual(tx.len, 0, "nothing was queued");
  }
  await tx.send("x".repeat(64)); // exactly a slot still fits
  assert.strictEqual(await rx.recv(), "x".repeat(64));
  await tx.send({ ok: 1 });
  assert.deepStrictEqual(await rx.recv(), { ok: 1 });
});

// -- try_send / try_recv --

Deno.test("SyncSender.trySend() reports full and closed, handing the value back", () => {
  const [tx, rx] = syncChannel<string>(1);
  assert.deepStrictEqual(tx.trySend("a"), { ok: true });
  assert.deepStrictEqual(tx.trySend("b"), { ok: false, reason: "full", value: "b" });
  rx.close();
  assert.deepStrictEqual(tx.trySend("c"), { ok: false, reason: "closed", value: "c" });
});

Deno.test("SyncReceiver.tryRecv() reports empty, then closed once senders are gone", () => {
  const [tx, rx] = syncChannel<number>(2);
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" });
  tx.trySend(1);
  tx.close();
  assert.deepStrictEqual(rx.tryRecv(), { ok: true, value: 1 });
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "closed" });
});

// -- Timeouts --

Deno.test("SyncReceiver.recv() times out on an empty channel, then still receives", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const start = performance.now();
  await assert.rejects(rx.recv({ timeout: 30 }), TimeoutError);
  assert(performance.now() - start >= 25, "waited for the timeout");
  await tx.send(5);
  assert.strictEqual(await rx.recv({ timeout: 30 }), 5);
});

Deno.test("SyncSender.send() times out on a full channel without sending", async () => {
  const [tx, rx] = syncChannel<number>(1);
  await tx.send(1);
  await assert.rejects(tx.send(2, { timeout: 20 }), /Timed out after 20 ms waiting to send/);
  assert.strictEqual(rx.tryRecv().ok, true);
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" });
});

Deno.test("recvSync() and sendSync() time out", () => {
  const [tx, rx] = syncChannel<number>(1);
  assert.throws(() => rx.recvSync({ timeout: 10 }), TimeoutError);
  tx.sendSync(1);
  assert.throws(() => tx.sendSync(2, { timeout: 10 }), TimeoutError);
  assert.strictEqual(rx.recvSync(), 1);
});

Deno.test("waiting calls reject a bad timeout", async () => {
  const [tx, rx] = syncChannel<number>(1);
  tx.trySend(1);
  for (const bad of [-1, NaN, "5" as unknown as number]) {
    await assert.rejects(tx.send(2, { timeout: bad }), /'timeout'/);
    assert.throws(() => tx.sendSync(2, { timeout: bad }), /'timeout'/);
  }
  rx.tryRecv();
  await assert.rejects(rx.recv({ timeout: -5 }), RangeError);
});

// -- Disconnection --

Deno.test("SyncSender.send() after every receiver closed fails with the value", async () => {
  const [tx, rx] = syncChannel<{ id: number }>(4);
  rx.close();
  rx.close(); // idempotent
  await assert.rejects(tx.send({ id: 7 }), (error: unknown) => {
    assert(error instanceof ChannelClosedError);
    assert.deepStrictEqual(error.value, { id: 7 });
    assert.match(error.message, /every receiver/);
    return true;
  });
  assert.throws(() => tx.sendSync({ id: 8 }), ChannelClosedError);
});

Deno.test("SyncReceiver.recv() drains queued messages after the last sender closed, then ends", async () => {
  const [tx, rx] = syncChannel<number>(4);
  const tx2 = tx.clone();
  for (const n of [1, 2, 3]) tx.trySend(n);
  tx.close();
  assert.strictEqual(rx.senderCount, 1);
  tx2.trySend(4);
  tx2[Symbol.dispose]();
  assert.strictEqual(rx.senderCount, 0);
  assert.deepStrictEqual(await Array.fromAsync(rx), [1, 2, 3, 4]);
  await assert.rejects(rx.recv(), /every sender of the channel is closed/);
  assert.throws(() => rx.recvSync(), ChannelClosedError);
});

Deno.test("closing the last receiver wakes a sender blocked on a full channel", async () => {
  const [tx, rx] = syncChannel<string>(1);
  await tx.send("fill");
  const blocked = tx.send("waiting");
  setTimeout(() => rx.close(), 20);
  await assert.rejects(
    blocked,
    (e: unknown) => e instanceof ChannelClosedError && e.value === "waiting",
  );
  assert.strictEqual(tx.receiverCount, 0);
});

Deno.test("closing the last sender wakes a receiver blocked on an empty channel", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const blocked = rx.recv();
  setTimeout(() => tx.close(), 20);
  await assert.rejects(blocked, ChannelClosedError);
});

Deno.test("closing an end wakes that end's own pending calls", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const pending = rx.recv();
  rx.close();
  await assert.rejects(pending, /this receiver end is closed/);
  assert.throws(() => rx.clone(), /this receiver end is closed/);
  const [tx2] = syncChannel<number>(1);
  tx2.trySend(1);
  const pendingSend = tx2.send(2);
  tx2.close();
  await assert.rejects(pendingSend, /closed while the send waited/);
  assert.throws(() => tx2.trySend(3), /this sender end is closed/);
  tx.close();
});

// -- Abort --

Deno.test("SyncReceiver.recv() stops with the signal's reason and takes nothing", async () => {
  const [tx, rx] = syncChannel<number>(2);
  const controller = new AbortController();
  const pending = rx.recv({ signal: controller.signal });
  controller.abort(new Error("stop waiting"));
  await assert.rejects(pending, /stop waiting/);
  await assert.rejects(rx.recv({ signal: AbortSignal.abort() }), { name: "AbortError" });
  await tx.send(3);
  assert.strictEqual(await rx.recv(), 3); // nothing lost, no zombie waiter
});

Deno.test("SyncSender.send() stops with the signal's reason and sends nothing", async () => {
  const [tx, rx] = syncChannel<number>(1);
  await tx.send(1);
  const controller = new AbortController();
  const pending = tx.send(2, { signal: controller.signal });
  const behind = tx.send(3);
  controller.abort();
  await assert.rejects(pending, { name: "AbortError" });
  assert.strictEqual(await rx.recv(), 1);
  await behind;
  assert.strictEqual(await rx.recv(), 3);
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" });
});

Deno.test("an aborted waiter does not swallow the wake-up of another waiter", async () => {
  const [tx, rx] = syncChannel<number>(1);
  for (let round = 0; round < 50; round++) {
    const controller = new AbortController();
    const doomed = rx.recv({ signal: controller.signal });
    const live = rx.recv({ timeout: 5000 });
    controller.abort();
    await assert.rejects(doomed);
    await tx.send(round);
    assert.strictEqual(await live, round);
  }
});

// -- Ordering --

Deno.test("async sends of one end complete in call order", async () => {
  const [tx, rx] = syncChannel<number>(2);
  const sends = [];
  for (let i = 0; i < 50; i++) sends.push(tx.send(i));
  assert.deepStrictEqual(tx.trySend(-1), { ok: false, reason: "full", value: -1 });
  const got = [];
  for (let i = 0; i < 50; i++) got.push(await rx.recv());
  await Promise.all(sends);
  assert.deepStrictEqual(got, Array.from({ length: 50 }, (_, i) => i));
});

// -- Rendezvous --

Deno.test("syncChannel(0) is a rendezvous: send completes only once received", async () => {
  const [tx, rx] = syncChannel<string>(0);
  assert.strictEqual(tx.capacity, 0);
  assert.deepStrictEqual(tx.trySend("nobody waits"), {
    ok: false,
    reason: "full",
    value: "nobody waits",
  });
  let delivered = false;
  const sending = tx.send("hand").then(() => delivered = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.strictEqual(delivered, false, "no receiver yet");
  assert.strictEqual(await rx.recv(), "hand");
  await sending;
  assert.strictEqual(delivered, true);
  const receiving = rx.recv();
  await new Promise((r) => setTimeout(r, 5));
  assert.deepStrictEqual(tx.trySend("direct"), { ok: true });
  assert.strictEqual(await receiving, "direct");
});

Deno.test("syncChannel(0): an aborted or timed-out send takes its value back", async () => {
  const [tx, rx] = syncChannel<number>(0);
  await assert.rejects(tx.send(1, { timeout: 20 }), TimeoutError);
  await assert.rejects(tx.send(2, { signal: AbortSignal.timeout(20) }), { name: "TimeoutError" });
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" });
  rx.close();
  await assert.rejects(
    tx.send(3),
    (e: unknown) => e instanceof ChannelClosedError && e.value === 3,
  );
});

Deno.test("syncChannel(0) hands 200 messages to a worker, each send waiting for its receive", async () => {
  const [tx, rx] = syncChannel<number>(0);
  const consumer = spawn();
  consumer.send({ op: "consume", end: rx.share(), producers: 1, perProducer: 200 });
  rx.close();
  for (let i = 0; i < 200; i++) {
    await tx.send(i, { timeout: 10_000 });
    // Taken, not queued: a capacity-1 channel would often still hold it here.
    assert.strictEqual(tx.len, 0, `message ${i} still queued after its send`);
  }
  tx.close();
  const report = await consumer.next() as { count: number; outOfOrder: number };
  assert.strictEqual(report.count, 200);
  assert.strictEqual(report.outOfOrder, 0);
  consumer.worker.terminate();
});

Deno.test("syncChannel(0): a sendSync that times out takes its value back", () => {
  const [tx, rx] = syncChannel<string>(0);
  assert.throws(() => tx.sendSync("first", { timeout: 20 }), TimeoutError);
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" }, "nothing was sent");
});

// -- Descriptors --

Deno.test("SyncSender.from() rejects what is not a descriptor of its kind", async () => {
  const [tx, rx] = syncChannel<number>(1);
  await assert.rejects(SyncSender.from(rx.share()), /not a sender descriptor/);
  await assert.rejects(SyncReceiver.from(tx.share()), /not a receiver descriptor/);
  await assert.rejects(
    SyncSender.from({
      kind: "sender",
      buffer: new SharedArrayBuffer(8192),
      claim: new SharedArrayBuffer(4),
    }),
    TypeError,
  );
  await assert.rejects(SyncSender.from(null as never), TypeError);
});

Deno.test("share() reserves one end, and opening its descriptor once makes it that end", async () => {
  const [tx, rx] = syncChannel<number>(2);
  const descriptor = tx.share();
  assert.strictEqual(rx.senderCount, 2);
  const opened = await SyncSender.from<number>(descriptor);
  assert.strictEqual(rx.senderCount, 2, "opening adds no end: it is the reserved one");
  tx.close();
  opened.trySend(7);
  opened.close();
  assert.deepStrictEqual(rx.tryRecv(), { ok: true, value: 7 });
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "closed" });
});

Deno.test("a descriptor opens once: a second from() fails, here or after another thread opened it", async () => {
  const [tx, rx] = syncChannel<number>(4);
  const here = tx.share();
  const opened = await SyncSender.from<number>(here);
  await assert.rejects(SyncSender.from<number>(here), /already opened once; call share\(\) again/);
  await assert.rejects(SyncSender.from<number>(structuredClone(here)), /already opened/);
  assert.strictEqual(rx.senderCount, 2, "the failed openings count no end");

  const there = tx.share();
  const holder = spawn();
  holder.send({ op: "hold-sender", end: there, fill: 1 });
  await holder.next(); // the worker opened it and sent 0 (then -1: there is room)
  await assert.rejects(SyncSender.from<number>(there), /already opened/);
  assert.strictEqual(rx.senderCount, 3);
  holder.worker.terminate();
  opened.close();
  tx.close();
  // The worker's end is released when it dies, so the channel ends: had the
  // second opening counted, it would stay open for ever.
  assert.deepStrictEqual(await Array.fromAsync(rx), [0, -1]);
});

Deno.test("share() counts the end it reserves", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const descriptor = tx.share();
  assert.strictEqual(rx.senderCount, 2);
  tx.close();
  assert.strictEqual(rx.tryRecv().ok, false);
  assert.deepStrictEqual(
    rx.tryRecv(),
    { ok: false, reason: "empty" },
    "the shared end keeps it open",
  );
  const adopted = await SyncSender.from<number>(descriptor);
  adopted.close();
  assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "closed" });
});

// -- Threads that die --

Deno.test("a worker terminated while blocked holding the only sender ends the receiver's wait", async () => {
  const [tx, rx] = syncChannel<number>(4);
  const holder = spawn();
  holder.send({ op: "hold-sender", end: tx.share(), fill: 4 });
  tx.close();
  await holder.next(); // it holds the only sender, blocked on a full channel
  assert.strictEqual(rx.senderCount, 1);
  holder.worker.terminate();
  // Every queued message still arrives, then the end; no hang. The fixture
  // never closes its sender, so only the dead thread's release ends the loop.
  // (The blocked send of -1 may complete as room appears before it dies.)
  const got = await Array.fromAsync(rx);
  assert.deepStrictEqual(got.slice(0, 4), [0, 1, 2, 3]);
  assert(got.length === 4 || (got.length === 5 && got[4] === -1), `got ${got}`);
  assert.strictEqual(rx.senderCount, 0);
});

Deno.test("a worker terminated holding the only receiver fails a blocked sender", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const holder = spawn();
  holder.send({ op: "hold-receiver", end: rx.share() });
  rx.close();
  await holder.next();
  await tx.send(1);
  const blocked = tx.send(2);
  holder.worker.terminate();
  await assert.rejects(blocked, (e: unknown) => e instanceof ChannelClosedError && e.value === 2);
  assert.strictEqual(tx.receiverCount, 0);
});

for (const how of ["close", "exit", "throw"] as const) {
  Deno.test(`a worker that ends by ${how}() holding a sender releases it`, async () => {
    const [tx, rx] = syncChannel<number>(1);
    const holder = spawn();
    holder.send({ op: "exit-holding", end: tx.share(), how });
    tx.close();
    await holder.next();
    await assert.rejects(rx.recv({ timeout: 10_000 }), ChannelClosedError);
    holder.worker.terminate();
  });
}

Deno.test("a worker blocked in recvSync is woken when a third thread holding the only sender dies", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const consumer = spawn();
  const holder = spawn();
  try {
    // The consumer loops on recvSync (no timeout) until the channel ends.
    consumer.send({ op: "consume", end: rx.share(), producers: 1, perProducer: 1 });
    holder.send({ op: "exit-holding", end: tx.share(), how: "close" });
    await holder.next(); // it holds a sender, and ends itself 20 ms later
    tx.trySend(0);
    tx.close(); // the dead-to-be holder has the only sender now
    // The consumer took the message: it is blocked in recvSync for the next.
    await eventually("the consumer to take the message", () => rx.len === 0);
    // This thread's asynchronous wait finds the dead holder's lock and returns
    // its end; that wakes the blocked consumer too.
    await assert.rejects(rx.recv({ timeout: 30_000 }), ChannelClosedError);
    const report = await consumer.next() as { count: number };
    assert.strictEqual(report.count, 1, "the consumer's loop ended after the one message");
    assert.strictEqual(rx.senderCount, 0);
  } finally {
    rx.close();
    consumer.worker.terminate();
    holder.worker.terminate();
  }
});

Deno.test("a worker blocked in sendSync is woken when a third thread holding the only receiver dies", async () => {
  const [tx, rx] = syncChannel<number>(1);
  const producer = spawn();
  const holder = spawn();
  try {
    holder.send({ op: "hold-receiver", end: rx.share() });
    await holder.next(); // it holds a receiver and never reads
    rx.close(); // the holder has the only receiver now
    // The producer loops on sendSync (no timeout) until the channel closes.
    producer.send({ op: "send-until-closed", end: tx.share() });
    await eventually("the producer to fill the channel", () => tx.len === 1);
    holder.worker.terminate();
    // This thread's asynchronous wait finds the dead holder's lock and returns
    // its end; that wakes the blocked producer too.
    await assert.rejects(tx.send(99, { timeout: 30_000 }), ChannelClosedError);
    const report = await producer.next() as { sent: number; error: string };
    assert.strictEqual(report.sent, 1, "one message went in before the channel filled");
    assert.match(report.error, /ChannelClosedError/);
    assert.strictEqual(tx.receiverCount, 0);
  } finally {
    tx.close();
    producer.worker.terminate();
    holder.worker.terminate();
  }
});

// -- Stress across workers --

/** Runs `producers` workers sending `perProducer` numbers each to `consumers` workers. */
async function stress(producers: number, consumers: number, perProducer: number, capacity: number) {
  const [tx, rx] = syncChannel<number>(capacity);
  const consumerWorkers = Array.from({ length: consumers }, spawn);
  const producerWorkers = Array.from({ length: producers }, spawn);
  for (const c of consumerWorkers) {
    c.send({ op: "consume", end: rx.share(), producers, perProducer });
  }
  producerWorkers.forEach((p, producer) =>
    p.send({ op: "produce", end: tx.share(), producer, count: perProducer })
  );
  tx.close();
  rx.close();
  await Promise.all(producerWorkers.map((p) => p.next()));
  const reports = await Promise.all(consumerWorkers.map((c) => c.next())) as Array<
    { count: number; outOfOrder: number; seen: Uint8Array }
  >;
  for (const w of [...consumerWorkers, ...producerWorkers]) w.worker.terminate();
  const total = reports.reduce((sum, r) => sum + r.count, 0);
  assert.strictEqual(total, producers * perProducer, "every message arrived once");
  for (const r of reports) assert.strictEqual(r.outOfOrder, 0, "per-producer order held");
  for (let i = 0; i < producers * perProducer; i++) {
    let deliveries = 0;
    for (const r of reports) deliveries += r.seen[i];
    if (deliveries !== 1) assert.fail(`message ${i} was delivered ${deliveries} times`);
  }
  assert.strictEqual(tx.senderCount, 0);
  assert.strictEqual(tx.receiverCount, 0);
  assert.strictEqual(tx.len, 0);
}

Deno.test("spsc: one worker sends 100,000 messages to another", async () => {
  await stress(1, 1, 100_000, 16);
});

Deno.test("mpmc: 4 producer and 3 consumer workers move 200,000 messages through capacity 8", async () => {
  await stress(4, 3, 50_000, 8);
});

Deno.test("stress_oneshot: 300 fresh channels each pass one message between threads", async () => {
  const consumer = spawn();
  for (let i = 0; i < 300; i++) {
    const [tx, rx] = syncChannel<number>(i % 2);
    consumer.send({ op: "consume", end: rx.share(), producers: 1, perProducer: 1 });
    rx.close();
    await tx.send(0, { timeout: 10_000 });
    tx.close();
    const report = await consumer.next() as { count: number };
    assert.strictEqual(report.count, 1);
  }
  consumer.worker.terminate();
});

Deno.test("many async senders and receivers on the main thread lose nothing", async () => {
  const [tx, rx] = syncChannel<number>(3);
  const senders = Array.from({ length: 5 }, () => tx.clone());
  tx.close();
  const receivers = Array.from({ length: 4 }, () => rx.clone());
  rx.close();
  const received: number[] = [];
  const consuming = receivers.map(async (r) => {
    for await (const n of r) received.push(n);
  });
  await Promise.all(senders.map(async (s, k) => {
    for (let i = 0; i < 2000; i++) await s.send(k * 2000 + i);
    s.close();
  }));
  await Promise.all(consuming);
  received.sort((a, b) => a - b);
  assert.deepStrictEqual(received, Array.from({ length: 10_000 }, (_, i) => i));
});

Deno.test("a ring told how many receivers poll wakes that many fewer sleepers", () => {
  const ring = ringFor(createBuffer(16, 64));
  const enc = new Encoder(64);
  // A receiver says it sleeps; a wake-up shows as a bump of RECV_EPOCH.
  Atomics.add(ring.i32, RECV_WAITERS, 1);
  const epoch = () => Atomics.load(ring.i32, RECV_EPOCH);
  const push = () => {
    enc.encode(1);
    ring.push(enc, 0, 0, 0);
  };
  let pollers = 1;
  ring.polling = () => pollers;

  const before = epoch();
  push(); // one message, one poller: it takes it, no wake-up
  assert.strictEqual(epoch(), before);
  ring.beginBatch();
  push();
  ring.endBatch(); // the same for a batch of one
  assert.strictEqual(epoch(), before);
  ring.beginBatch();
  push();
  push();
  ring.endBatch(); // two messages, one poller: a sleeper for the other
  assert.strictEqual(epoch(), before + 1);
  pollers = 0;
  push(); // nobody polls: the sleeper is woken
  assert.strictEqual(epoch(), before + 2);
  ring.polling = null;
  push(); // a ring told nothing wakes a sleeper per message, as before
  assert.strictEqual(epoch(), before + 3);
});
