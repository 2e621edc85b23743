// Run by `deno task test` after the tests, pass or fail: says once, at the end
// where a reader of the output looks, that the Redis tests were skipped (each
// test file runs in an isolate of its own, so no test can say it once).
import { REDIS_URL, SKIPPED } from "./_redis.ts";

if (REDIS_URL === undefined && Deno.env.get("CI") !== "true") console.error(`\n${SKIPPED}`);
