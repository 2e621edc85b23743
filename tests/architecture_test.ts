import assert from "node:assert";

// The layers of ARCHITECTURE.md, checked from the imports themselves: each
// part of src/ may import only the parts listed for it (and itself).

const SRC = new URL("../src/", import.meta.url);
const SHARED = ["errors.ts", "_util.ts"];
const ALLOWED: Record<string, string[]> = {
  channel: [],
  pool: ["channel"],
  jobs: [],
  run: ["jobs", "pool"],
  redis: ["jobs", "run", "pool"],
  dashboard: ["jobs", "run", "redis"],
  cli: ["jobs", "run", "redis", "dashboard"],
};
/** Lines that hold code (not blank, not comment-only) a file under src/ may have. */
const MAX_CODE_LINES = 600;

async function* sources(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* sources(url);
    else if (entry.name.endsWith(".ts")) yield url;
  }
}

/** The relative specifiers a module imports or re-exports (doc examples excluded). */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "");
  return [...code.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"(\.[^"]+)"/gm)].map((m) => m[1]);
}

/** The part of src/ a file belongs to ("" for src/errors.ts and src/_util.ts). */
function partOf(url: URL): string {
  const path = url.pathname.slice(SRC.pathname.length);
  return path.includes("/") ? path.slice(0, path.indexOf("/")) : "";
}

function codeLines(text: string): number {
  let n = 0;
  let comment = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (comment) {
      if (line.includes("*/")) comment = false;
      continue;
    }
    if (line.startsWith("/*") && !line.includes("*/")) {
      comment = true;
      continue;
    }
    if (line === "" || line.startsWith("//") || /^\/\*.*\*\/$/.test(line)) continue;
    n++;
  }
  return n;
}

Deno.test("src/: every import runs down the layers of ARCHITECTURE.md", async () => {
  const wrong: string[] = [];
  let checked = 0;
  for await (const file of sources(SRC)) {
    const from = partOf(file);
    for (const specifier of importsOf(await Deno.readTextFile(file))) {
      checked++;
      const target = new URL(specifier, file);
      assert(target.pathname.startsWith(SRC.pathname), `${file.pathname} imports outside src/`);
      const to = partOf(target);
      if (to === "") {
        const name = target.pathname.slice(SRC.pathname.length);
        if (!SHARED.includes(name)) wrong.push(`${file.pathname} → ${name}`);
        continue;
      }
      if (to !== from && !(ALLOWED[from] ?? []).includes(to)) {
        wrong.push(`${file.pathname.slice(SRC.pathname.length)} (${from || "src"}) → ${to}`);
      }
    }
  }
  assert(checked > 100, `only ${checked} imports found: the scan is broken`);
  assert.deepStrictEqual(wrong, [], "imports against the layers");
});

Deno.test("src/: the shared files import no part", async () => {
  for (const name of SHARED) {
    const imports = importsOf(await Deno.readTextFile(new URL(name, SRC)));
    assert.deepStrictEqual(
      imports.filter((specifier) => !SHARED.includes(specifier.replace("./", ""))),
      [],
      `${name} must stay at the bottom`,
    );
  }
});

Deno.test(`src/: no file has more than ${MAX_CODE_LINES} lines of code`, async () => {
  const big: string[] = [];
  for await (const file of sources(SRC)) {
    const lines = codeLines(await Deno.readTextFile(file));
    if (lines > MAX_CODE_LINES) big.push(`${file.pathname}: ${lines}`);
  }
  assert.deepStrictEqual(big, []);
});

Deno.test("importsOf() finds imports and re-exports, not examples in comments", () => {
  const text = `/**
 * import { x } from "../cli/main.ts";
 */
import { a } from "./a.ts";
import type { B } from "../pool/b.ts";
export { c } from "../c.ts";
export * from "./d.ts";
import {
  e,
  f,
} from "./ef.ts";
const g = "from \\"./g.ts\\"";
`;
  assert.deepStrictEqual(importsOf(text), [
    "./a.ts",
    "../pool/b.ts",
    "../c.ts",
    "./d.ts",
    "./ef.ts",
  ]);
});
