// Throughput of syncChannel between two Web Workers, against postMessage over a
// MessageChannel between the same two workers. The main thread only orchestrates.
//
//   deno run -A bench/channel_bench.ts [--quick] [--debug]
//
// --quick: 2 runs per case instead of 5. --debug: workers report progress and
// the main thread logs it (to find where a run hangs).
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";
import { syncChannel, type SyncSender } from "../src/channel/mod.ts";
import {
  HEAD,
  RECEIVERS,
  RECV_EPOCH,
  RECV_WAITERS,
  SEND_EPOCH,
  SEND_WAITERS,
  SENDERS,
  TAIL,
} from "../src/channel/_layout.ts";
import {
  BYTES_LEN,
  type Init,
  jsonSize,
  type PayloadKind,
  type Report,
  STRIDE,
} from "./_payload.ts";

const { values: flags } = benchFlags(
  "deno run -A bench/channel_bench.ts [--quick] [--debug]",
  () =>
    parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        debug: { type: "boolean", default: false },
      },
    }),
);
const RUNS = flags.quick ? 2 : 5;
const DEBUG = flags.debug;
/** A run that takes longer than this is reported as hung. */
const RUN_TIMEOUT_MS = 30_000;

/** Producers × consumers. For postMessage, `2x2` is two independent 1→1 MessageChannel pairs. */
type Topology = "1x1" | "2x2";

interface Baseline {
  key: string;
  payload: PayloadKind;
  /** Messages each producer sends. */
  n: number;
  topology: Topology;
}

interface Row {
  label: string;
  payload: PayloadKind;
  n: number;
  topology: Topology;
  capacity: number;
  baseline: Baseline;
}

function baseline(payload: PayloadKind, n: number, topology: Topology): Baseline {
  return { key: `${payload}/${n}/${topology}`, payload, n, topology };
}

const numbers = baseline("number", 500_000, "1x1");
const json = baseline("json", 200_000, "1x1");
const bytes = baseline("bytes", 200_000, "1x1");
const numbers2x2 = baseline("number", 250_000, "2x2");

const ROWS: Row[] = [
  { label: "number, capacity 1024", capacity: 1024, ...numbers, baseline: numbers },
  { label: "number, capacity 64", capacity: 64, ...numbers, baseline: numbers },
  { label: "~256 B JSON object, capacity 1024", capacity: 1024, ...json, baseline: json },
  { label: `${BYTES_LEN} B Uint8Array, capacity 1024`, capacity: 1024, ...bytes, baseline: bytes },
  {
    label: "number, 2 producers × 2 consumers, capacity 1024",
    capacity: 1024,
    ...numbers2x2,
    baseline: numbers2x2,
  },
];

function producersOf(topology: Topology): number {
  return topology === "2x2" ? 2 : 1;
}

/** Sum of all ids the producers send: producer p sends p * STRIDE + 0 … n - 1. */
function expectedSum(producers: number, n: number): number {
  let sum = 0;
  for (let p = 0; p < producers; p++) sum += p * STRIDE * n + (n * (n - 1)) / 2;
  return sum;
}

interface Participant {
  name: string;
  worker: Worker;
  init: Init;
  transfer: Transferable[];
}

interface Outcome {
  seconds: number;
  /** Messages per second after each consumer's first quarter (JIT warm), summed over consumers. */
  steady: number;
  count: number;
  sum: number;
  outOfOrder: number;
  bad: number;
}

function spawn(script: string): Worker {
  return new Worker(new URL(script, import.meta.url), { type: "module" });
}

/**
 * Initialises every worker, waits until all are ready, sends "go" (consumers
 * first), and resolves when every consumer reported "done" and every producer
 * "sent". The time runs from "go" until the last consumer's "done".
 * Terminates the workers in every case.
 */
async function orchestrate(
  participants: Participant[],
  describe: () => string,
): Promise<Outcome> {
  const ready = participants.map(() => Promise.withResolvers<void>());
  const finished = participants.map(() => Promise.withResolvers<Report>());
  const state = participants.map(() => "spawned");
  let doneAt = 0;
  let failed: (reason: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => failed = reject);
  participants.forEach(({ name, worker }, k) => {
    worker.onmessage = (event: MessageEvent<Report>) => {
      const report = event.data;
      switch (report.type) {
        case "ready":
          state[k] = "ready";
          ready[k].resolve();
          break;
        case "progress":
          state[k] = `running, ${report.count} messages`;
          if (DEBUG) console.error(`    [${name}] ${report.count}`);
          break;
        case "sent":
          state[k] = `sent ${report.count}`;
          finished[k].resolve(report);
          break;
        case "done":
          doneAt = Math.max(doneAt, performance.now());
          state[k] = `done, received ${report.count}`;
          finished[k].resolve(report);
          break;
        case "error":
          failed(new Error(`${name} failed: ${report.message}`));
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      failed(new Error(`${name} threw: ${event.message}`));
    };
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const where = participants.map(({ name }, k) => `${name}: ${state[k]}`).join("; ");
      reject(new Error(`Run hung for ${RUN_TIMEOUT_MS} ms (${where}; ${describe()})`));
    }, RUN_TIMEOUT_MS);
  });
  try {
    for (const { worker, init, transfer } of participants) worker.postMessage(init, transfer);
    await Promise.race([Promise.all(ready.map((r) => r.promise)), failure, timeout]);
    const order = [
      ...participants.filter((p) => p.init.role === "consumer"),
      ...participants.filter((p) => p.init.role === "producer"),
    ];
    const start = performance.now();
    for (const { worker } of order) worker.postMessage({ type: "go" });
    const reports = await Promise.race([
      Promise.all(finished.map((f) => f.promise)),
      failure,
      timeout,
    ]);
    const outcome: Outcome = {
      seconds: (doneAt - start) / 1000,
      steady: 0,
      count: 0,
      sum: 0,
      outOfOrder: 0,
      bad: 0,
    };
    for (const report of reports) {
      if (report.type !== "done") continue;
      outcome.count += report.count;
      outcome.sum += report.sum;
      outcome.outOfOrder += report.outOfOrder;
      outcome.bad += report.bad;
      if (report.steadyMs > 0) outcome.steady += report.steadyCount / (report.steadyMs / 1000);
    }
    return outcome;
  } finally {
    clearTimeout(timer);
    for (const { worker } of participants) worker.terminate();
  }
}

function baseInit(payload: PayloadKind, n: number): Omit<Init, "role" | "producer"> {
  return { type: "init", payload, n, progressEvery: DEBUG ? 50_000 : 0 };
}

function runChannel(row: Row): Promise<Outcome> {
  const producers = producersOf(row.topology);
  const consumers = producers;
  const [tx, rx] = syncChannel<unknown>(row.capacity);
  const participants: Participant[] = [];
  for (let p = 0; p < producers; p++) {
    participants.push({
      name: `producer ${p}`,
      worker: spawn("./_channel_worker.ts"),
      init: { ...baseInit(row.payload, row.n), role: "producer", producer: p, end: tx.share() },
      transfer: [],
    });
  }
  for (let c = 0; c < consumers; c++) {
    participants.push({
      name: `consumer ${c}`,
      worker: spawn("./_channel_worker.ts"),
      init: {
        ...baseInit(row.payload, row.n),
        role: "consumer",
        producer: producers,
        end: rx.share(),
      },
      transfer: [],
    });
  }
  // The workers hold their own ends now; the main thread's ends must not keep the channel open.
  tx.close();
  rx.close();
  const buffer = participants[0].init.end!.buffer;
  return orchestrate(participants, () => channelState(tx, buffer));
}

/** For a hung run: the channel's counters, read from its memory (layout in src/channel/_layout.ts). */
function channelState(tx: SyncSender<unknown>, buffer: SharedArrayBuffer): string {
  const i32 = new Int32Array(buffer);
  const words = {
    HEAD,
    TAIL,
    RECV_WAITERS,
    RECV_EPOCH,
    SEND_WAITERS,
    SEND_EPOCH,
    SENDERS,
    RECEIVERS,
  };
  const raw = Object.entries(words).map(([name, at]) => `${name}=${Atomics.load(i32, at)}`);
  return `channel: ${tx.len} queued, ${tx.senderCount} senders, ${tx.receiverCount} receivers; ` +
    raw.join(" ");
}

function runPort(base: Baseline): Promise<Outcome> {
  const pairs = producersOf(base.topology);
  const participants: Participant[] = [];
  for (let p = 0; p < pairs; p++) {
    const { port1, port2 } = new MessageChannel();
    participants.push({
      name: `producer ${p}`,
      worker: spawn("./_port_worker.ts"),
      init: { ...baseInit(base.payload, base.n), role: "producer", producer: p, port: port1 },
      transfer: [port1],
    });
    participants.push({
      name: `consumer ${p}`,
      worker: spawn("./_port_worker.ts"),
      init: {
        ...baseInit(base.payload, base.n),
        role: "consumer",
        producer: pairs,
        expect: base.n,
        port: port2,
      },
      transfer: [port2],
    });
  }
  return orchestrate(participants, () => "postMessage run");
}

function check(what: string, outcome: Outcome, producers: number, n: number): void {
  const count = producers * n;
  const sum = expectedSum(producers, n);
  const problems: string[] = [];
  if (outcome.count !== count) {
    problems.push(`received ${outcome.count} messages, expected ${count}`);
  }
  if (outcome.sum !== sum) problems.push(`checksum ${outcome.sum}, expected ${sum}`);
  if (outcome.outOfOrder !== 0) problems.push(`${outcome.outOfOrder} messages out of order`);
  if (outcome.bad !== 0) problems.push(`${outcome.bad} malformed messages`);
  if (problems.length > 0) throw new Error(`${what}: ${problems.join("; ")}`);
}

function median(xs: number[]): number {
  const s = xs.toSorted((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function rate(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

type Task =
  | { kind: "channel"; row: Row }
  | { kind: "postMessage"; base: Baseline };

const baselines = [...new Map(ROWS.map((r) => [r.baseline.key, r.baseline])).values()];
// Each channel case sits next to its baseline, so that drifting noise hits both.
const tasks: Task[] = [];
for (const base of baselines) {
  tasks.push({ kind: "postMessage", base });
  for (const row of ROWS) if (row.baseline === base) tasks.push({ kind: "channel", row });
}
const channelRates = new Map<Row, number[]>(ROWS.map((r) => [r, []]));
const portRates = new Map<Baseline, number[]>(baselines.map((b) => [b, []]));
const channelSteady = new Map<Row, number[]>(ROWS.map((r) => [r, []]));
const portSteady = new Map<Baseline, number[]>(baselines.map((b) => [b, []]));

const jsonBytes = [0, 50_000, 99_999].map(jsonSize);
console.error(
  `JSON payload: ${
    jsonBytes.join("/")
  } bytes of JSON text (id 0/50000/99999); ${RUNS} runs per case`,
);
// One short untimed run of each kind first, so that loading and compiling the worker
// scripts for the first time does not land in a timed run.
for (const payload of ["number", "json", "bytes"] as const) {
  const warm = baseline(payload, 2_000, "1x1");
  check("warm-up postMessage", await runPort(warm), 1, warm.n);
  const row = { label: "warm-up", capacity: 64, ...warm, baseline: warm };
  check("warm-up channel", await runChannel(row), 1, warm.n);
}
const began = performance.now();
for (let run = 0; run < RUNS; run++) {
  // Alternate the order, so neither side always runs first.
  const ordered = run % 2 === 0 ? tasks : tasks.toReversed();
  for (const task of ordered) {
    if (task.kind === "channel") {
      const { row } = task;
      const producers = producersOf(row.topology);
      const outcome = await runChannel(row);
      check(`channel, ${row.label}`, outcome, producers, row.n);
      const r = (producers * row.n) / outcome.seconds;
      channelRates.get(row)!.push(r);
      channelSteady.get(row)!.push(outcome.steady);
      console.error(
        `run ${run + 1}/${RUNS}  channel      ${row.label.padEnd(50)} ${
          rate(r).padStart(11)
        } msgs/s`,
      );
    } else {
      const { base } = task;
      const producers = producersOf(base.topology);
      const outcome = await runPort(base);
      check(`postMessage, ${base.key}`, outcome, producers, base.n);
      const r = (producers * base.n) / outcome.seconds;
      portRates.get(base)!.push(r);
      portSteady.get(base)!.push(outcome.steady);
      console.error(
        `run ${run + 1}/${RUNS}  postMessage  ${base.key.padEnd(50)} ${
          rate(r).padStart(11)
        } msgs/s`,
      );
    }
  }
}
const elapsed = (performance.now() - began) / 1000;

console.log(`## syncChannel vs postMessage, worker → worker\n`);
console.log(
  `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${Deno.build.os}/${Deno.build.arch}, ` +
    `navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}. ` +
    `Median of ${RUNS} runs per case (${elapsed.toFixed(1)} s in all); ` +
    `fresh workers per run, timed from "go" to the consumers' last message.\n`,
);
console.log(
  "| Case | Messages | syncChannel msgs/s | postMessage msgs/s | syncChannel / postMessage |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const row of ROWS) {
  const ch = median(channelRates.get(row)!);
  const pm = median(portRates.get(row.baseline)!);
  const total = producersOf(row.topology) * row.n;
  console.log(
    `| ${row.label} | ${rate(total)} | ${rate(ch)} | ${rate(pm)} | ${(ch / pm).toFixed(2)}× |`,
  );
}
console.log(
  "\nSteady state: the same runs, counted from each consumer's first quarter of messages on " +
    "(fresh workers start with cold JIT; this leaves out their warm-up):\n",
);
console.log("| Case | syncChannel msgs/s | postMessage msgs/s | syncChannel / postMessage |");
console.log("| --- | ---: | ---: | ---: |");
for (const row of ROWS) {
  const ch = median(channelSteady.get(row)!);
  const pm = median(portSteady.get(row.baseline)!);
  console.log(`| ${row.label} | ${rate(ch)} | ${rate(pm)} | ${(ch / pm).toFixed(2)}× |`);
}
console.log("\nSpread over the runs (min – max msgs/s):\n");
console.log("| Case | syncChannel | postMessage |");
console.log("| --- | ---: | ---: |");
for (const row of ROWS) {
  const range = (xs: number[]) => `${rate(Math.min(...xs))} – ${rate(Math.max(...xs))}`;
  console.log(
    `| ${row.label} | ${range(channelRates.get(row)!)} | ${range(portRates.get(row.baseline)!)} |`,
  );
}
console.log(
  `\nChannel runs: \`sendSync\` in a loop then \`close()\` in the producer, \`for (const v of rx)\` in the ` +
    `consumer. postMessage runs: \`port.postMessage(v)\` in a loop over a \`MessageChannel\` ` +
    `(no flow control); for 2 × 2 the baseline is two independent 1 → 1 port pairs. ` +
    `Every run checks the message count, the sum of ids and per-producer order.`,
);
