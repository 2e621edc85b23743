/**
 * Two producer workers and the main thread share one bounded channel.
 *
 * Run: deno run -A examples/channel.ts
 */
import { syncChannel } from "../mod.ts";

const producers = 2;
const perProducer = 50_000;
const [tx, rx] = syncChannel<{ worker: number; n: number }>(64);

const source = `
  import { SyncSender } from ${
  JSON.stringify(new URL("../src/channel/mod.ts", import.meta.url).href)
};
  self.onmessage = async ({ data }) => {
    const tx = await SyncSender.from(data.end);
    for (let n = 0; n < ${perProducer}; n++) tx.sendSync({ worker: data.worker, n });
    tx.close();
  };
`;
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
const workers = Array.from({ length: producers }, (_, worker) => {
  const w = new Worker(url, { type: "module" });
  w.postMessage({ worker, end: tx.share() });
  return w;
});
tx.close(); // the workers hold the only senders now

const start = performance.now();
const counts = new Array<number>(producers).fill(0);
for await (const message of rx) counts[message.worker]++;
const seconds = (performance.now() - start) / 1000;

for (const w of workers) w.terminate();
URL.revokeObjectURL(url);
const total = counts.reduce((a, b) => a + b, 0);
console.log(`received ${total} messages (${counts.join(" + ")}) in ${seconds.toFixed(3)} s`);
console.log(
  `${Math.round(total / seconds).toLocaleString("en-US")} messages/s through a capacity-64 channel`,
);
