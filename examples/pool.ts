/**
 * A worker pool running exported functions and a closure-free function.
 *
 * Run: deno run -A examples/pool.ts
 */
import { WorkerPool } from "../mod.ts";

await using pool = new WorkerPool({ module: new URL("./tasks.ts", import.meta.url) });

// Exported functions of the pool's module, run in parallel on the workers.
const limits = [50_000, 60_000, 70_000, 80_000];
const counts = await Promise.all(limits.map((limit) => pool.run<number>("countPrimes", limit)));
limits.forEach((limit, i) => console.log(`primes below ${limit}: ${counts[i]}`));

// Backpressure: submit() resolves when the queue has room, so memory stays flat.
const digests: Promise<unknown>[] = [];
for (let i = 0; i < 1_000; i++) digests.push((await pool.submit("sha256", `line ${i}`)).result);
console.log(`hashed ${(await Promise.all(digests)).length} lines`);

// A self-contained function, sent by its source.
console.log(
  "fib(40) =",
  await pool.execute((n: number) => {
    let [a, b] = [0, 1];
    for (let i = 0; i < n; i++) [a, b] = [b, a + b];
    return a;
  }, 40),
);

console.log(pool.stats);
// Leaving the block closes the pool: queued tasks finish, then the workers end.
