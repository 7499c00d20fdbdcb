// The demo page's Yjs pane in real Chromium: two pages type into the same `ydoc:` document (each
// keystroke a Yjs update through client.yjs and the worker) and both show the same text, which is
// the text the server stored.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { api, startWorker, token } from "./helpers.mjs";
import { buildBrowserBundle } from "../client/build-browser.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (make test installs it)` : false;

describe("demo page Yjs pane in Chromium", { skip: missing }, () => {
  let w;
  let browser;
  const pages = [];

  before(async () => {
    await buildBrowserBundle();
    w = await startWorker({ assetsDir: join(ROOT, "public") });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    for (const user of ["erin", "finn"]) {
      const page = await (await browser.newContext()).newPage();
      page.on("pageerror", (e) => console.error("page error:", e));
      await page.goto(`${w.url}/?user=${user}&ydoc=browser-notes&token=${token(user, { "*": "write" }, { name: user })}`);
      await page.waitForSelector('#yjs-notes[data-synced="true"]', { timeout: 15_000 });
      pages.push(page);
    }
  });

  after(async () => {
    await browser?.close();
    await w?.mf.dispose();
  });

  const value = (page) => page.locator("#yjs-notes").inputValue();

  it("two pages type into one Yjs document and converge on what the server stored", async () => {
    const [a, b] = pages;
    await a.locator("#yjs-notes").pressSequentially("kick on one ");
    await b.waitForFunction(() => document.getElementById("yjs-notes").value === "kick on one ", null, { timeout: 15_000 });
    // Both type at once: b at the end, a at the start.
    await b.locator("#yjs-notes").focus();
    await b.keyboard.press("End");
    await a.locator("#yjs-notes").focus();
    await a.keyboard.press("Home");
    await Promise.all([b.keyboard.type("snare on two"), a.keyboard.type(">> ")]);
    const want = ">> kick on one snare on two";
    for (const p of pages) await p.waitForFunction((t) => document.getElementById("yjs-notes").value === t, want, { timeout: 15_000 });
    assert.equal(await value(a), await value(b));
    const server = await api(w.url, "/api/v1/documents/ydoc:browser-notes?text=t", { tok: token("reader") });
    assert.equal(server.json.text, want);
  });
});
