import assert from "node:assert/strict";
import { Browser, chromiumPath } from "./_cdp.ts";

const PAGE = `<!doctype html><title>cdp</title><p id="t">hello</p>` +
  `<button id="b" onclick="document.getElementById('t').textContent='clicked'">b</button>`;

/** The ids of processes whose command line mentions `text` (pgrep -f), none when it finds none. */
async function pgrep(text: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", text], stderr: "inherit" }).output();
  const ids = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "");
  assert.ok(out.code === 0 || out.code === 1, `pgrep failed with code ${out.code}`);
  return ids.filter((id) => id !== String(Deno.pid));
}

Deno.test("cdp: headless Chromium loads, clicks, screenshots, leaves no process", async () => {
  assert.ok(
    chromiumPath() !== undefined,
    "no Chromium found: install Debian's `chromium` (apt-get install chromium), " +
      "or point TASKPOOL_CHROMIUM at a Chromium binary",
  );
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;

  let profileDir: string;
  let socketDir: string;
  {
    await using browser = await Browser.launch();
    profileDir = browser.profileDir;
    socketDir = Deno.readLinkSync(`${profileDir}/SingletonSocket`).replace(/\/[^/]+$/, "");
    assert.notDeepEqual(await pgrep(profileDir), [], "Chromium should be running while in use");

    const page = await browser.newPage(url);
    assert.equal(await page.evaluate<string>("document.getElementById('t').textContent"), "hello");
    await page.click("#b");
    assert.equal(
      await page.waitFor("document.getElementById('t').textContent === 'clicked'", "the click"),
      true,
    );
    await assert.rejects(page.click("#missing"), /no element matches #missing/);
    await assert.rejects(page.evaluate("nope()"), /nope is not defined/);
    await assert.rejects(
      page.waitFor("false", "nothing", 200),
      /timed out after 200ms waiting for nothing; last value: false/,
    );
    await assert.rejects(browser.send("No.such"), /CDP No\.such failed: .+/);

    const png = await page.screenshot();
    assert.deepEqual([...png.subarray(0, 4)], [137, 80, 78, 71]);

    await page.goto(`${url}?again`);
    assert.equal(await page.evaluate<string>("location.search"), "?again");
    await page.close();
  }

  // close() has also read Chromium's stderr to its end, so no process (not even a crashpad
  // handler, whose command line does not name the profile) still holds it.
  assert.deepEqual(await pgrep(profileDir), [], `Chromium processes left behind for ${profileDir}`);
  assert.throws(() => Deno.statSync(profileDir), Deno.errors.NotFound);
  assert.throws(() => Deno.statSync(socketDir), Deno.errors.NotFound, "Chromium's socket dir");
});
