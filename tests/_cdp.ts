// Drives a real headless Chromium over the Chrome DevTools Protocol with Deno's own WebSocket.
// Every Chromium process (crashpad handlers too) inherits the stderr pipe, so reading stderr to
// its end after the browser exits proves that all of them have exited.

type Json = Record<string, unknown>;
type Timer = ReturnType<typeof setTimeout>;
type Pending = { method: string; resolve(v: Json): void; reject(e: Error): void; timer: Timer };
type Listener = (params: Json, sessionId?: string) => void;

const ARGS =
  "--headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check " +
  "--disable-extensions --remote-debugging-port=0";

/** Finds the browser: env `TASKPOOL_CHROMIUM`, else chromium, chromium-browser, google-chrome. */
export function chromiumPath(): string | undefined {
  const fromEnv = Deno.env.get("TASKPOOL_CHROMIUM");
  if (fromEnv) return fromEnv;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    for (const dir of dirs) {
      try {
        const info = Deno.statSync(`${dir}/${name}`);
        if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${name}`;
      } catch { /* not in this directory */ }
    }
  }
  return undefined;
}

/** Settles like `p`, or like `onTimeout()` if `p` takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: Timer | undefined;
  const late = new Promise<T>((resolve, reject) =>
    timer = setTimeout(() => Promise.resolve().then(onTimeout).then(resolve, reject), ms)
  );
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Calls `onLine` for each line of `stream`, until its end. */
async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    lines.forEach(onLine);
  }
  if (rest) onLine(rest);
}

/** A headless Chromium process and the WebSocket to its browser-wide DevTools endpoint. */
export class Browser implements AsyncDisposable {
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Map<string, Set<Listener>>();
  #ws?: WebSocket;
  #closing?: Promise<void>;

  private constructor(
    /** The temporary `--user-data-dir`, removed by `close()`. */
    readonly profileDir: string,
    private readonly child: Deno.ChildProcess,
    /** Settles once stdout and stderr hit their end: when no Chromium process holds them. */
    private readonly drained: Promise<unknown>,
  ) {}

  /** The process id of the browser. */
  get pid(): number {
    return this.child.pid;
  }

  /** Starts Chromium with a fresh temporary profile and connects to it (30 s deadline). */
  static async launch(): Promise<Browser> {
    const path = chromiumPath();
    if (path === undefined) {
      throw new Error("no Chromium found: install Debian's `chromium` (apt-get install chromium)");
    }
    const profileDir = await Deno.makeTempDir({ prefix: "taskpool-cdp-" });
    const args = [...ARGS.split(" "), `--user-data-dir=${profileDir}`, "about:blank"];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(path, { args, stdin: "null", stdout: "piped", stderr: "piped" })
        .spawn();
    } catch (e) {
      await Deno.remove(profileDir, { recursive: true });
      throw new Error(`cannot start Chromium (${path}): ${e}`);
    }
    const tail: string[] = [];
    let found: (url: string) => void = () => {};
    const endpoint = new Promise<string>((resolve) => found = resolve);
    const drained = Promise.allSettled([
      child.stdout.pipeTo(new WritableStream()),
      readLines(child.stderr, (line) => {
        if (tail.push(line) > 20) tail.shift();
        const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) found(m[1]);
      }),
    ]);
    const browser = new Browser(profileDir, child, drained);
    try {
      const exited = child.status.then((s) => Promise.reject(`it exited with code ${s.code}`));
      exited.catch(() => {});
      const url = await within(Promise.race([endpoint, exited]), 30_000, () => {
        throw "it printed no DevTools endpoint within 30 s";
      });
      const ws = new WebSocket(url);
      await new Promise((ok, fail) => {
        ws.onopen = ok;
        ws.onerror = (e) => fail(`WebSocket ${url}: ${(e as ErrorEvent).message}`);
      });
      browser.#attach(ws);
      return browser;
    } catch (e) {
      await browser.close();
      throw new Error(`Chromium (${path}) failed to start: ${e}; its stderr:\n${tail.join("\n")}`);
    }
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string);
      const call = this.#pending.get(msg.id);
      if (call) {
        this.#pending.delete(msg.id);
        clearTimeout(call.timer);
        if (msg.error) call.reject(new Error(`CDP ${call.method} failed: ${msg.error.message}`));
        else call.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of [...this.#listeners.get(msg.method) ?? []]) l(msg.params, msg.sessionId);
      }
    };
    ws.onclose = () => {
      for (const [id, call] of this.#pending) {
        this.#pending.delete(id);
        clearTimeout(call.timer);
        call.reject(new Error(`CDP ${call.method}: the socket closed before the reply`));
      }
    };
  }

  /** Calls CDP `method` (in session `sessionId` if given); resolves with its result. */
  send<T = Json>(
    method: string,
    params: Json = {},
    sessionId?: string,
    timeoutMs = 30_000,
  ): Promise<T> {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`CDP ${method}: the socket is not open`));
    }
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`CDP ${method}: no reply within ${timeoutMs}ms`));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve: resolve as (v: Json) => void, reject, timer });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Calls `listener` on every `method` event; returns the function that unsubscribes it. */
  on(method: string, listener: Listener): () => void {
    const set = this.#listeners.get(method) ?? new Set();
    this.#listeners.set(method, set.add(listener));
    return () => set.delete(listener);
  }

  /** Opens a new tab, attaches to it, enables Page and Runtime, and loads `url`. */
  async newPage(url: string): Promise<Page> {
    type Ids = { targetId: string; sessionId: string };
    const { targetId } = await this.send<Ids>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send<Ids>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    await this.send("Page.enable", {}, sessionId);
    await this.send("Runtime.enable", {}, sessionId);
    const page = new Page(this, targetId, sessionId);
    await page.goto(url);
    return page;
  }

  /** Closes the socket, kills Chromium (SIGKILL if SIGTERM takes > 2 s), removes the profile. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const ws = this.#ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => ws.addEventListener("close", resolve));
      ws.close();
      await within(closed, 2_000, () => undefined);
    }
    const kill = (signal: Deno.Signal) => {
      try {
        this.child.kill(signal);
      } catch { /* it has exited already */ }
    };
    kill("SIGTERM");
    await within(this.child.status.then(() => true), 2_000, () => false) || kill("SIGKILL");
    await this.child.status;
    await within(this.drained, 10_000, () => {
      throw new Error(`Chromium children still hold stderr 10 s after ${this.pid} exited`);
    });
    // Chromium keeps its singleton socket in a temp dir of its own, which a kill leaves behind.
    const socket = await Deno.readLink(`${this.profileDir}/SingletonSocket`).catch(() => "");
    const socketDir = socket.match(
      /^(.+\/\.?(org\.chromium\.|com\.google\.)[^/]+)\/SingletonSocket$/,
    );
    if (socketDir) await Deno.remove(socketDir[1], { recursive: true }).catch(() => {});
    await Deno.remove(this.profileDir, { recursive: true });
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** One tab, driven through its flattened CDP session. */
export class Page {
  constructor(readonly browser: Browser, readonly targetId: string, readonly sessionId: string) {}

  #send<T = Json>(method: string, params: Json = {}): Promise<T> {
    return this.browser.send<T>(method, params, this.sessionId);
  }

  /** Evaluates `expression`, awaiting a promise, and returns its value; throws on an exception. */
  async evaluate<T>(expression: string): Promise<T> {
    type Result = { result: { value?: T }; exceptionDetails?: Ex };
    type Ex = { text?: string; exception?: { description?: string } };
    const params = { expression, returnByValue: true, awaitPromise: true };
    const { result, exceptionDetails: ex } = await this.#send<Result>("Runtime.evaluate", params);
    if (ex) throw new Error(`evaluate failed: ${ex.exception?.description ?? ex.text}`);
    return result.value as T;
  }

  /** Polls `expression` every 50 ms until it is truthy and returns that value. */
  async waitFor(expression: string, what: string, timeoutMs = 20_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (true) {
      try {
        last = await this.evaluate(expression);
        if (last) return last;
      } catch (e) {
        last = e instanceof Error ? e.message : e; // e.g. the context went away mid-navigation
      }
      if (Date.now() >= deadline) {
        const value = JSON.stringify(last);
        throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last value: ${value}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Navigates to `url` and waits (30 s at most) for its load event. */
  async goto(url: string): Promise<void> {
    let off = () => {};
    const loaded = new Promise<void>((resolve) =>
      off = this.browser.on("Page.loadEventFired", (_, sid) => sid === this.sessionId && resolve())
    );
    try {
      type Nav = { loaderId?: string; errorText?: string };
      const r = await this.#send<Nav>("Page.navigate", { url });
      if (r.errorText) throw new Error(`navigating to ${url} failed: ${r.errorText}`);
      if (!r.loaderId) return; // a same-document navigation: no load event comes
      await within(loaded, 30_000, () => {
        throw new Error(`${url}: no Page.loadEventFired within 30 s`);
      });
    } finally {
      off();
    }
  }

  /** Clicks the first element matching `selector`; throws if there is none. */
  async click(selector: string): Promise<void> {
    const sel = JSON.stringify(selector);
    await this.evaluate(`(() => {
      const el = document.querySelector(${sel});
      if (!el) throw new Error("no element matches " + ${sel});
      el.click();
    })()`);
  }

  /** Captures the viewport as PNG bytes. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.#send<{ data: string }>("Page.captureScreenshot", {
      format: "png",
    });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Closes the tab. */
  async close(): Promise<void> {
    await this.browser.send("Target.closeTarget", { targetId: this.targetId });
  }
}
