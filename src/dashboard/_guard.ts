/**
 * Who may use a dashboard, checked before any route runs. A dashboard is a
 * door into the queue (its actions retry and delete jobs), so:
 *
 * - Without a token it must listen on a loopback address, and a request's
 *   `Host` must name loopback too: a page on another site that points its
 *   own domain at 127.0.0.1 (DNS rebinding) gets 403.
 * - With a token, every request carries it: `Authorization: Bearer <token>`,
 *   or the cookie that a one-time `?token=<token>` link sets (HttpOnly,
 *   SameSite=Strict). Anything else gets 401.
 * - Actions are POST only, and a POST whose `Origin` is not the dashboard's
 *   own gets 403 (a browser always sends `Origin` with a POST; a request
 *   without one must carry the token in its header, which no other site's
 *   page can set).
 *
 * @module
 */

/** The cookie that carries the token. */
export const COOKIE = "taskpool_dashboard";

/** Whether a host name (as listened on, or from a Host header) is loopback. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Compares two strings in time that depends only on their lengths. */
function same(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** The value of one cookie of a request, if it has it. */
function cookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key !== name) continue;
    try {
      return decodeURIComponent(value.join("="));
    } catch {
      return undefined; // not percent-encoding: no token
    }
  }
  return undefined;
}

function refuse(status: number, message: string): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

/**
 * Checks a request against the dashboard's rules.
 *
 * @param request The request.
 * @param token The token every request must carry, if any.
 * @returns A response that refuses it (401, 403, or the redirect that sets the cookie), or undefined to go on.
 */
export function guard(request: Request, token: string | undefined): Response | undefined {
  const url = new URL(request.url);
  const host = request.headers.get("host") ?? "";
  const bearer = /^bearer (.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (token === undefined) {
    const hostname = host.replace(/:\d+$/, "");
    if (!isLoopback(hostname)) {
      return refuse(
        403,
        `forbidden: this dashboard answers only to a loopback Host, not "${host}"`,
      );
    }
  } else {
    const link = url.searchParams.get("token");
    if (link !== null && request.method === "GET" && same(link, token)) {
      // The one-time link: set the cookie, and drop the token from the address bar.
      url.searchParams.delete("token");
      // A path, never "//host/…" (another site).
      const location = `/${url.pathname.replace(/^\/+/, "")}${url.search}`;
      return new Response(null, {
        status: 303,
        headers: {
          location,
          "set-cookie": `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
          "cache-control": "no-store",
        },
      });
    }
    const given = bearer ?? cookie(request, COOKIE);
    if (given === undefined || !same(given, token)) {
      return refuse(
        401,
        "unauthorized: open the link with ?token=<token> that the dashboard printed, or send Authorization: Bearer <token>",
      );
    }
  }
  if (request.method === "POST") {
    const origin = request.headers.get("origin");
    // Its own page, served directly or through a proxy that adds TLS.
    const own = origin === `http://${host}` || origin === `https://${host}`;
    // Without Origin (not a browser): only with the token in the header, which no page can set.
    const tokenInHeader = token !== undefined && bearer !== undefined && same(bearer, token);
    if (origin === null ? !tokenInHeader : !own) {
      return refuse(
        403,
        `forbidden: an action must come from the dashboard's own page (http://${host})`,
      );
    }
  }
  return undefined;
}
