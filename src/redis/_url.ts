/**
 * Redis URLs: `redis://[user[:password]@]host[:port][/db]`, or `rediss://`
 * for TLS, read into the parts a connection needs.
 *
 * @module
 */

/** Where and how to connect, from {@linkcode parseRedisUrl}. */
export interface RedisUrl {
  /** Host name or IP address (IPv6 without brackets). */
  hostname: string;
  /** TCP port. */
  port: number;
  /** Whether to use TLS (`rediss://`). */
  tls: boolean;
  /** ACL user for AUTH; absent means the default user. */
  username?: string;
  /** Password for AUTH; absent means no AUTH. */
  password?: string;
  /** Database index for SELECT. */
  db: number;
}

const URL_EXAMPLE = "e.g. redis://127.0.0.1:6379/0 or rediss://user:password@host:6380/2";

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS).
 * The user and password are percent-decoded; the port defaults to 6379, the db to 0.
 *
 * @param url The URL.
 * @returns Its parts.
 * @throws {TypeError} When the URL is malformed, with a one-line message and a right example.
 *
 * @example Read a URL
 * ```ts
 * import { parseRedisUrl } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert.deepStrictEqual(parseRedisUrl("rediss://worker:p%40ss@cache.local/2"), {
 *   hostname: "cache.local", port: 6379, tls: true, username: "worker", password: "p@ss", db: 2,
 * });
 * assert.throws(() => parseRedisUrl("http://localhost"), TypeError);
 * ```
 */
export function parseRedisUrl(url: string): RedisUrl {
  // Never echo a password into an error message.
  const shown = String(url).replace(/\/\/([^@/]*):[^@/]*@/, "//$1:***@");
  const fail = (what: string) =>
    new TypeError(`Cannot use Redis URL "${shown}": ${what} (${URL_EXAMPLE})`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw fail("it is not a URL");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw fail("the scheme must be redis:// or rediss://");
  }
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (hostname === "") throw fail("the host is missing");
  const port = parsed.port === "" ? 6379 : Number(parsed.port);
  if (!(port >= 1 && port <= 65535)) throw fail("the port must be from 1 to 65535");
  const path = parsed.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,5}$/.test(path)) throw fail("the path must be a database number");
  if (parsed.search !== "" || parsed.hash !== "") throw fail("it cannot have a ?query or #hash");
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = parsed.username === "" ? undefined : decodeURIComponent(parsed.username);
    password = parsed.password === "" ? undefined : decodeURIComponent(parsed.password);
  } catch {
    throw fail("the user or password is not properly percent-encoded");
  }
  if (username !== undefined && password === undefined) {
    throw fail("a user needs a password (user:password@)");
  }
  const result: RedisUrl = { hostname, port, tls: parsed.protocol === "rediss:", db: Number(path) };
  if (username !== undefined) result.username = username;
  if (password !== undefined) result.password = password;
  return result;
}
