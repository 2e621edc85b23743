/** Tasks of examples/jobs.json: make data, hash it, compress it. Files go to examples/out/. */

const OUT = new URL("../out/", import.meta.url);

/** Writes `megabytes` MB of pseudo-random data to out/<name>.bin; returns its size. */
export async function generate(name: string, megabytes: number, seed: number): Promise<number> {
  await Deno.mkdir(OUT, { recursive: true });
  const data = new Uint8Array(megabytes * 1024 * 1024);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = (x >>> 0) % 16; // low entropy, so that compression has work to show
  }
  await Deno.writeFile(new URL(`${name}.bin`, OUT), data);
  return data.length;
}

/** The SHA-256 of out/<name>.bin, as hex. */
export async function sha256(name: string): Promise<string> {
  const data = await Deno.readFile(new URL(`${name}.bin`, OUT));
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Gzips out/<name>.bin to out/<name>.bin.gz; returns the sizes. */
export async function compress(name: string): Promise<{ before: number; after: number }> {
  const input = await Deno.open(new URL(`${name}.bin`, OUT));
  const output = await Deno.open(new URL(`${name}.bin.gz`, OUT), {
    write: true,
    create: true,
    truncate: true,
  });
  const before = (await input.stat()).size;
  await input.readable.pipeThrough(new CompressionStream("gzip")).pipeTo(output.writable);
  const after = (await Deno.stat(new URL(`${name}.bin.gz`, OUT))).size;
  return { before, after };
}

/** Writes a manifest of every file's hash; returns how many files. */
export async function manifest(names: string[], hashes: string[]): Promise<number> {
  const lines = names.map((name, i) => `${hashes[i] ?? "?"}  ${name}.bin`);
  await Deno.writeTextFile(new URL("MANIFEST", OUT), lines.join("\n") + "\n");
  return names.length;
}
