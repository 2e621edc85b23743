// The dashboard in a real headless Chromium, driven over the DevTools
// protocol (tests/_cdp.ts): what a user sees, live updates without a reload,
// an action by keyboard, untrusted text shown as text, the token's door.
// TASKPOOL_SCREENSHOT=1 saves the screenshot as docs/dashboard.png.
import assert from "node:assert";
import { RedisClient, RedisQueue } from "../src/redis/mod.ts";
import { serveDashboard } from "../src/dashboard/mod.ts";
import { redisTest, uniqueKey } from "./_redis.ts";
import { jobs } from "./_queue.ts";
import { Gate } from "./_gate.ts";
import { Browser, chromiumPath, type Page } from "./_cdp.ts";
import { until } from "./_wait.ts";

const XSS = "<img src=x onerror=alert(1)>";

function needChromium(): void {
  assert.ok(
    chromiumPath() !== undefined,
    "no Chromium found: install Debian's `chromium` (apt-get install chromium), " +
      "or point TASKPOOL_CHROMIUM at a Chromium binary",
  );
}

/** The text of the count of `state` on the page. */
function count(state: string): string {
  return `document.querySelector('#counts [data-state="${state}"] dd')?.textContent`;
}

/** Presses Enter on the element `selector` after focusing it, as a keyboard user does. */
async function pressEnter(page: Page, selector: string): Promise<void> {
  await page.evaluate(`document.querySelector(${JSON.stringify(selector)}).focus()`);
  const key = { key: "Enter", code: "Enter", windowsVirtualKeyCode: 13, text: "\r" };
  await page.browser.send("Input.dispatchKeyEvent", { type: "keyDown", ...key }, page.sessionId);
  await page.browser.send("Input.dispatchKeyEvent", { type: "keyUp", ...key }, page.sessionId);
}

redisTest(
  "dashboard in Chromium: counts, running progress, live updates, keyboard retry, XSS as text",
  async (url) => {
    needChromium();
    const queue = uniqueKey("dash");
    const other = uniqueKey("dash");
    await using redis = await RedisClient.connect(url);
    await using gate = await Gate.create();
    await using producer = await RedisQueue.connect({ url, queue });
    // Watching from the start: the chart counts what follows.
    await using dashboard = await serveDashboard({
      queues: [queue, other],
      redis: { url },
      listen: { hostname: "127.0.0.1", port: 0 },
    });
    await producer.push(jobs([
      { id: "ok-1", task: "#noop", args: [1] },
      { id: "ok-2", task: "#noop", args: [2] },
      { id: "bad", command: ["sh", "-c", "echo it broke >&2; exit 3"] },
      { id: XSS, task: "#fail", args: [`</td><script>alert(2)</script>`] },
      { id: "slow", task: "#reportThenWait", args: [0.6, gate.path] },
    ]));
    await producer.setGroup(XSS, { concurrency: 1, rate: "5/1s" });
    const consumer = producer.consume({ workers: 2 });
    await until("four outcomes", async () => await redis.send(["XLEN", `${queue}:results`]) === 4);

    await using browser = await Browser.launch();
    const page = await browser.newPage(`${dashboard.url}?queue=${encodeURIComponent(queue)}`);
    await browser.send("Emulation.setDeviceMetricsOverride", {
      width: 1200,
      height: 1500,
      deviceScaleFactor: 1,
      mobile: false,
    }, page.sessionId);
    await page.waitFor(`${count("dead")} === "2"`, "two dead jobs on the page");
    await page.waitFor(
      `document.querySelector("#running")?.textContent.includes("60%")`,
      "the running job's progress",
    );
    assert.match(
      await page.evaluate<string>(`document.querySelector("#running").textContent`),
      /slow/,
    );
    assert.deepStrictEqual(
      await page.evaluate(`[...document.querySelectorAll("#queues a")].map((a) => a.textContent)`),
      [queue, other],
    );
    // Untrusted text is text: no element came from the job's id or its error.
    assert.strictEqual(
      await page.evaluate(`document.querySelectorAll("img, main script").length`),
      0,
    );
    assert.ok(
      await page.evaluate<boolean>(
        `document.querySelector("#dead").textContent.includes(${JSON.stringify(XSS)})`,
      ),
      "the id shows as text",
    );
    // The groups, with their limits; a group's name is text too.
    assert.strictEqual(
      await page.evaluate<string>(`document.querySelector("#groups tr").textContent`),
      `${XSS}concurrency 1, rate 5/1s000`,
    );
    const png = await page.screenshot();
    assert.deepStrictEqual([...png.subarray(0, 4)], [137, 80, 78, 71]);
    if (Deno.env.get("TASKPOOL_SCREENSHOT")) {
      await Deno.mkdir(new URL("../docs/", import.meta.url), { recursive: true });
      await Deno.writeFile(new URL("../docs/dashboard.png", import.meta.url), png);
    }

    // A job finishing while the page is open updates it, without a reload.
    await page.evaluate("window.notReloaded = true");
    await gate.open();
    await page.waitFor(
      `document.querySelector("#outcomes").textContent.includes("slow") && ` +
        `!document.querySelector("#running").textContent.includes("slow")`,
      "slow's outcome on the page",
    );
    assert.strictEqual(await page.evaluate("window.notReloaded"), true);
    consumer.stop();
    await consumer.done;

    // Retry by keyboard: the dead job goes back to the queue (checked in Redis).
    await pressEnter(page, `#dead button[aria-label="Retry bad"]`);
    await until("bad back in the queue", async () => {
      const waiting = await redis.send(["LRANGE", queue, 0, -1]) as string[];
      return waiting.some((entry) => JSON.parse(entry).id === "bad");
    });
    assert.strictEqual(await redis.send(["LLEN", `${queue}:dead`]), 1);
    await page.waitFor(
      `${count("dead")} === "1" && ${count("waiting")} === "1"`,
      "the counts after the retry",
    );

    // A dark and a light scheme, by the user's preference.
    const background = `getComputedStyle(document.documentElement).backgroundColor`;
    for (const [value, colour] of [["dark", "rgb(13, 17, 23)"], ["light", "rgb(255, 255, 255)"]]) {
      await browser.send("Emulation.setEmulatedMedia", {
        features: [{ name: "prefers-color-scheme", value }],
      }, page.sessionId);
      assert.strictEqual(await page.evaluate(background), colour, value);
    }
    await dashboard.close();
    const keys = await redis.send(["KEYS", `${queue}*`]) as string[];
    await redis.send(["DEL", ...keys]);
  },
);

redisTest(
  "dashboard in Chromium: beyond loopback the page is 401 without the token, and works with its link",
  async (url) => {
    needChromium();
    const queue = uniqueKey("dash");
    const token = crypto.randomUUID();
    await using dashboard = await serveDashboard({
      queues: [queue],
      redis: { url },
      listen: { hostname: "0.0.0.0", port: 0 },
      token,
    });
    const base = `http://127.0.0.1:${new URL(dashboard.url).port}/`;
    await using browser = await Browser.launch();
    const page = await browser.newPage(base);
    assert.match(await page.evaluate<string>("document.body.innerText"), /^unauthorized/);
    assert.strictEqual(await page.evaluate("fetch(location.href).then((r) => r.status)"), 401);
    await page.goto(`${base}?token=${token}`);
    assert.strictEqual(await page.evaluate("location.search"), "", "the token left the address");
    await page.waitFor(`${count("waiting")} === "0"`, "the counts, read over the event stream");
    assert.strictEqual(await page.evaluate("fetch('/api/queues').then((r) => r.status)"), 200);
    await dashboard.close();
  },
);
