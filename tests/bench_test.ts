// The benches' command lines (bench/_args.ts): a wrong flag ends a bench at
// once, with what is wrong and how the bench is run, not a stack trace.
import assert from "node:assert";

const BENCH = new URL("../bench/", import.meta.url);

/** The benches that take flags: every file of bench/ that parses them (bench/_args.ts). */
function flagged(): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(BENCH)) {
    if (!entry.name.endsWith(".ts") || entry.name.startsWith("_")) continue;
    if (Deno.readTextFileSync(new URL(entry.name, BENCH)).match(/\b(bench|quick)Flags\(/)) {
      names.push(entry.name);
    }
  }
  return names.sort();
}

Deno.test("benches: an unknown flag is refused with what is wrong and the bench's usage, no stack trace, exit 2", async () => {
  const names = flagged();
  assert.ok(names.length >= 10, `only ${names.length} benches parse flags: ${names}`);
  for (const name of names) {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(name, BENCH).pathname, "--no-such-flag"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const lines = new TextDecoder().decode(stderr).trimEnd().split("\n");
    assert.strictEqual(code, 2, `${name}: exit ${code}, stderr: ${lines.join(" | ")}`);
    assert.strictEqual(new TextDecoder().decode(stdout), "", name);
    // The last two lines (the runtime may print others first, a warning):
    // what is wrong, then how the bench is run; and no stack trace.
    const [what, usage] = lines.slice(-2);
    assert.match(what, /Unknown option '--no-such-flag'/, `${name}: ${lines.join(" | ")}`);
    assert.match(usage, new RegExp(`^usage: deno run -A bench/${name.replace(".", "\\.")} `), name);
    assert.ok(!lines.some((line) => /^\s+at /.test(line)), `${name}: a stack trace`);
  }
});
