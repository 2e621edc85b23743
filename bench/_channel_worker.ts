// Producer or consumer of one channel run of bench/channel_bench.ts.
import { SyncReceiver, SyncSender } from "../src/channel/mod.ts";
import {
  type Go,
  idOf,
  type Init,
  makeProducer,
  type Report,
  steadyAfter,
  STRIDE,
  wellFormed,
} from "./_payload.ts";

let init: Init | undefined;
let tx: SyncSender<unknown> | undefined;
let rx: SyncReceiver<unknown> | undefined;

/** The worker's global scope, typed here because `deno check` types files with the window lib. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Init | Go>) => void) | null;
  postMessage(message: Report): void;
};

function report(message: Report): void {
  scope.postMessage(message);
}

function produce(tx: SyncSender<unknown>, init: Init): void {
  const make = makeProducer(init.payload);
  const base = init.producer * STRIDE;
  const every = init.progressEvery;
  const n = init.n;
  for (let i = 0; i < n; i++) {
    tx.sendSync(make(base + i));
    if (every !== 0 && (i + 1) % every === 0) report({ type: "progress", count: i + 1 });
  }
  tx.close();
  report({ type: "sent", count: n });
}

function consume(rx: SyncReceiver<unknown>, init: Init): void {
  const payload = init.payload;
  const every = init.progressEvery;
  // Last sequence number seen from each producer: each producer's messages must arrive in order.
  const last = new Array<number>(init.producer).fill(-1);
  let count = 0;
  let sum = 0;
  let outOfOrder = 0;
  let bad = 0;
  const skip = steadyAfter(init.n);
  let steadyFrom = 0;
  for (const value of rx) {
    if (count === skip) steadyFrom = performance.now();
    if (!wellFormed(payload, value)) bad++;
    const id = idOf(payload, value);
    const p = Math.floor(id / STRIDE);
    const i = id - p * STRIDE;
    if (!(i > last[p])) outOfOrder++;
    last[p] = i;
    sum += id;
    count++;
    if (every !== 0 && count % every === 0) report({ type: "progress", count });
  }
  rx.close();
  const steadyMs = count > skip ? performance.now() - steadyFrom : 0;
  report({ type: "done", count, sum, outOfOrder, bad, steadyCount: count - skip, steadyMs });
}

scope.onmessage = async (event: MessageEvent<Init | Go>) => {
  try {
    const message = event.data;
    if (message.type === "init") {
      init = message;
      if (init.role === "producer") tx = await SyncSender.from(init.end!);
      else rx = await SyncReceiver.from(init.end!);
      report({ type: "ready" });
    } else if (init!.role === "producer") {
      produce(tx!, init!);
    } else {
      consume(rx!, init!);
    }
  } catch (error) {
    report({
      type: "error",
      message: error instanceof Error ? error.stack ?? error.message : String(error),
    });
  }
};
