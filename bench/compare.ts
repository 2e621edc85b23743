// Before/after in one run: runs a bench of this tree and the same bench of
// another checkout (a `git worktree` of an older commit) in turns, then sets
// the medians of every table row side by side with their ratio. The machines
// are shared and noisy: only ratios measured in one run mean much.
//
//   git worktree add /tmp/old <commit>
//   deno run -A bench/compare.ts --other /tmp/old [--rounds 3] pool_bench.ts --quick
//
// Every Markdown table row the bench prints is keyed by its first cell and
// its other cells that are not numbers; each numeric cell is compared column
// by column (the first number of a cell: "1.2 µs" reads 1.2, "460,000" reads
// 460000). The runs alternate which tree goes first.
import { parseArgs } from "node:util";
import { benchFlags } from "./_args.ts";

// The bench and its own flags start at the first argument that names a .ts file.
const at = Deno.args.findIndex((arg) => arg.endsWith(".ts"));
const USAGE =
  "deno run -A bench/compare.ts --other <checkout> [--rounds n] <bench.ts> [bench args]";
const { values } = benchFlags(
  USAGE,
  () =>
    parseArgs({
      args: at < 0 ? Deno.args : Deno.args.slice(0, at),
      options: {
        other: { type: "string" },
        rounds: { type: "string", default: "3" },
      },
    }),
);
const [bench, ...benchArgs] = at < 0 ? [] : Deno.args.slice(at);
const rounds = Number(values.rounds);
if (!values.other || !bench || !Number.isInteger(rounds) || rounds < 1) {
  console.error(`usage: ${USAGE}`);
  Deno.exit(2);
}
const here = new URL("..", import.meta.url).pathname;
const trees = { this: here, other: values.other.replace(/\/?$/, "/") };

/** Row key → column index → values, per tree. */
const rows: Record<string, Map<string, number[][]>> = { this: new Map(), other: new Map() };
const order: string[] = [];

for (let round = 0; round < rounds; round++) {
  const turns = round % 2 === 0 ? ["this", "other"] as const : ["other", "this"] as const;
  for (const tree of turns) {
    console.error(`round ${round + 1}/${rounds}: ${tree} (${trees[tree]})`);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${trees[tree]}bench/${bench}`, ...benchArgs],
      cwd: trees[tree],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!output.success) {
      console.error(`${tree}: the bench exited with ${output.code}`);
      Deno.exit(1);
    }
    collect(tree, new TextDecoder().decode(output.stdout));
  }
}

function collect(tree: "this" | "other", text: string): void {
  // A row named as a row of an earlier table (say, a series in a second
  // table of the same series) is told apart by its table's number, so that
  // their columns are not mixed.
  let table = 0;
  const tableOf = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("|") || /^\|[\s:|-]+\|?$/.test(line)) continue;
    const cells = line.split("|").slice(1, -1).map((cell) => cell.trim());
    // The first cell names the row even when it is a number (say, workers).
    const numbers = cells.map((cell, i) => i === 0 ? undefined : numberOf(cell));
    if (numbers.every((n) => n === undefined)) { // a header
      table++;
      continue;
    }
    let key = cells.filter((_, i) => numbers[i] === undefined).join(" / ");
    if ((tableOf.get(key) ?? table) !== table) key += ` (table ${table})`;
    else tableOf.set(key, table);
    let columns = rows[tree].get(key);
    if (columns === undefined) {
      rows[tree].set(key, columns = []);
      if (!order.includes(key)) order.push(key);
    }
    numbers.filter((n) => n !== undefined).forEach((n, i) => (columns![i] ??= []).push(n!));
  }
}

function numberOf(cell: string): number | undefined {
  const match = /^[~≈]?(-?[\d,]*\.?\d+)/.exec(cell.replaceAll("`", ""));
  return match ? Number(match[1].replaceAll(",", "")) : undefined;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const fmt = (n: number) => n >= 100 ? Math.round(n).toLocaleString("en") : n.toPrecision(3);
console.log(`\n${bench}: this tree against ${trees.other}, ${rounds} runs each, alternating\n`);
console.log("| row | column | this (median) | other (median) | this / other |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const key of order) {
  const mine = rows.this.get(key);
  const theirs = rows.other.get(key);
  if (mine === undefined || theirs === undefined) continue;
  for (let c = 0; c < Math.min(mine.length, theirs.length); c++) {
    const a = median(mine[c]);
    const b = median(theirs[c]);
    const ratio = b === 0 ? "" : `${(a / b).toFixed(2)}×`;
    console.log(`| ${key} | ${c + 1} | ${fmt(a)} | ${fmt(b)} | ${ratio} |`);
  }
}
