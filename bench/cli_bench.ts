// Scheduling overhead of the CLI: 10,000 no-op task jobs, every 10th one
// waiting for the 10th before it (a chain of 1,000 links), run end to end by
// `cli.ts`, beside the same 10,000 tasks run straight through a WorkerPool by
// a script (all at once, ignoring the chain: the baseline of the overhead
// figure), all as fresh processes in the same run. For context, a third
// script runs them through the pool by hand with the chain honoured (each
// link awaits the one before, the others all at once): what the chain itself
// costs. Peak memory is each process's VmHWM.
//
//   deno run -A bench/cli_bench.ts [--quick]
import { quickFlags } from "./_args.ts";

const flags = quickFlags("deno run -A bench/cli_bench.ts [--quick]");
const RUNS = flags.quick ? 2 : 11; // the baseline alone moves by a third between runs here
const JOBS = 10_000;
const cli = new URL("../cli.ts", import.meta.url).pathname;
const tasks = new URL("./_pool_tasks.ts", import.meta.url).pathname;
const mod = new URL("../mod.ts", import.meta.url).href;

const dir = await Deno.makeTempDir();
const jobsPath = `${dir}/jobs.json`;
await Deno.writeTextFile(
  jobsPath,
  JSON.stringify({
    workers: 2,
    jobs: Array.from({ length: JOBS }, (_, i) => ({
      id: `j${i}`,
      task: `${tasks}#noop`,
      args: [i],
      ...(i >= 10 && i % 10 === 0 ? { after: [`j${i - 10}`] } : {}),
    })),
  }),
);
const scriptPath = `${dir}/straight.ts`;
await Deno.writeTextFile(
  scriptPath,
  `import { WorkerPool } from ${JSON.stringify(mod)};
   const pool = new WorkerPool({ workers: 2, module: ${JSON.stringify(`file://${tasks}`)} });
   const results = await Promise.all(Array.from({ length: ${JOBS} }, (_, i) => pool.run("noop", i)));
   if (results.length !== ${JOBS}) throw new Error("lost results");
   await pool.close();`,
);

const chainedPath = `${dir}/chained.ts`;
await Deno.writeTextFile(
  chainedPath,
  `import { WorkerPool } from ${JSON.stringify(mod)};
   const pool = new WorkerPool({ workers: 2, module: ${JSON.stringify(`file://${tasks}`)} });
   let done = 0;
   const others = Promise.all(Array.from({ length: ${JOBS} }, (_, i) => i % 10 === 0 ? null : pool.run("noop", i).then(() => done++)));
   for (let i = 0; i < ${JOBS}; i += 10) await pool.run("noop", i).then(() => done++);
   await others;
   if (done !== ${JOBS}) throw new Error("lost results");
   await pool.close();`,
);

interface Measure {
  seconds: number;
  peakMb: number;
}

/** Runs a command to its end; its wall time and peak RSS (VmHWM, polled). */
async function measure(args: string[]): Promise<Measure> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
    .spawn();
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // ended
    }
  }, 20);
  const output = await child.output();
  clearInterval(poll);
  if (!output.success) {
    throw new Error(
      `${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).slice(-500)}`,
    );
  }
  return { seconds: (performance.now() - started) / 1000, peakMb: peak };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const cliRuns: Measure[] = [];
const poolRuns: Measure[] = [];
const chainedRuns: Measure[] = [];
await measure(["run", "-A", scriptPath]); // warm the module cache
await measure(["run", "-A", chainedPath]);
for (let run = 0; run < RUNS; run++) {
  const order = run % 2 === 0 ? ["cli", "pool", "chained"] : ["chained", "pool", "cli"];
  for (const which of order) {
    if (which === "cli") cliRuns.push(await measure(["run", "-A", cli, jobsPath]));
    else if (which === "pool") poolRuns.push(await measure(["run", "-A", scriptPath]));
    else chainedRuns.push(await measure(["run", "-A", chainedPath]));
    console.error(`run ${run + 1}/${RUNS} ${which} done`);
  }
}
await Deno.remove(dir, { recursive: true });

const cliS = median(cliRuns.map((m) => m.seconds));
const poolS = median(poolRuns.map((m) => m.seconds));
console.log(`## CLI scheduling overhead\n`);
console.log(
  `Deno ${Deno.version.deno}, navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}. ` +
    `${JOBS} no-op task jobs (every 10th waits for the 10th before it), 2 workers; ` +
    `fresh processes, wall time from spawn to exit, medians of ${RUNS}.\n`,
);
console.log("| Run | wall s | jobs/s | peak RSS MB |");
console.log("| --- | ---: | ---: | ---: |");
console.log(
  `| \`cli.ts jobs.json\` | ${cliS.toFixed(2)} | ${Math.round(JOBS / cliS)} | ${
    median(cliRuns.map((m) => m.peakMb)).toFixed(0)
  } |`,
);
console.log(
  `| the same tasks straight through \`WorkerPool\` | ${poolS.toFixed(2)} | ${
    Math.round(JOBS / poolS)
  } | ${median(poolRuns.map((m) => m.peakMb)).toFixed(0)} |`,
);
const chainedS = median(chainedRuns.map((m) => m.seconds));
console.log(
  `| for context: the same tasks through \`WorkerPool\` by hand, the chain honoured | ${
    chainedS.toFixed(2)
  } | ${Math.round(JOBS / chainedS)} | ${median(chainedRuns.map((m) => m.peakMb)).toFixed(0)} |`,
);
console.log(
  `\nThe CLI adds ${
    ((cliS / poolS - 1) * 100).toFixed(0)
  } % to the wall time of the straight run ` +
    `(${((cliS / chainedS - 1) * 100).toFixed(0)} % to that of the hand-chained one).`,
);
