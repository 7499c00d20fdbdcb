// The demo page (public/, served as Workers static assets) in real Chromium (Debian's chromium,
// driven by playwright-core): two users type into the description at the same time and at the
// same place and converge; a like in one page updates the count in the other and notifies the
// post's owner; presence and typing show. A screenshot goes to $SIDECHAIN_SCREENSHOT, or to
// docs/demo.png when SIDECHAIN_UPDATE_SCREENSHOT=1.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { api, startWorker, token } from "./helpers.mjs";
import { buildBrowserBundle } from "../client/build-browser.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (make test installs it)` : false;
const SHOT = process.env.SIDECHAIN_UPDATE_SCREENSHOT === "1" ? join(ROOT, "docs/demo.png") : process.env.SIDECHAIN_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), "sc-shot-")), "demo.png");

const cps = (s) => Array.from(s);
/** True when the code points of `part` appear in `whole` in order. */
const subsequence = (part, whole) => {
  const w = cps(whole);
  let i = 0;
  for (const c of cps(part)) {
    i = w.indexOf(c, i);
    if (i < 0) return false;
    i++;
  }
  return true;
};

describe("demo page in Chromium", { skip: missing }, () => {
  let w;
  let browser;
  const pages = {};

  before(async () => {
    await buildBrowserBundle();
    w = await startWorker({ assetsDir: join(ROOT, "public") });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    for (const [user, extra] of [["alice", "&owner=1"], ["bob", ""]]) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      const page = await ctx.newPage();
      page.on("pageerror", (e) => console.error(`[${user}] page error:`, e));
      const tok = token(user, { "*": "write" }, { name: user[0].toUpperCase() + user.slice(1) });
      await page.goto(`${w.url}/?user=${user}${extra}&token=${tok}`);
      pages[user] = page;
    }
    for (const p of Object.values(pages)) await p.waitForSelector('#status[data-status="synced"]', { timeout: 15_000 });
  });

  after(async () => {
    await browser?.close();
    await w?.mf.dispose();
  });

  const settled = async () => {
    for (const p of Object.values(pages))
      await p.waitForFunction(() => window.sidechain.status === "synced" && !window.sidechain.hasUnsavedChanges, null, { timeout: 15_000 });
    const s = (await api(w.url, `/api/v1/documents/${encodeURIComponent("channel:demo:description")}`, { tok: token("reader") })).json;
    for (const p of Object.values(pages))
      await p.waitForFunction((text) => document.getElementById("description").value === text, s.content, { timeout: 15_000 });
    return s.content;
  };

  it("serves the page and the bundled SDK as static assets", async () => {
    const html = await fetch(`${w.url}/`);
    assert.equal(html.status, 200);
    assert.match(await html.text(), /Sidechain/);
    const js = await fetch(`${w.url}/vendor/sidechain-realtime.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
  });

  it("two users typing at the same place converge, and see each other", async () => {
    const { alice, bob } = pages;
    await alice.click("#description");
    await alice.keyboard.type("Hello 🎹 world");
    let text = await settled();
    assert.equal(text, "Hello 🎹 world");

    // Both carets right after "Hello ", then both type at once.
    for (const p of [alice, bob]) {
      await p.focus("#description");
      await p.evaluate(() => document.getElementById("description").setSelectionRange(6, 6));
    }
    const typingSeen = alice.waitForFunction(() => /Bob is typing/.test(document.getElementById("typing").textContent), null, { timeout: 15_000 });
    await Promise.all([alice.keyboard.type("ALICE😀 ", { delay: 40 }), bob.keyboard.type("bob🎶 ", { delay: 40 })]);
    await typingSeen;
    text = await settled();
    assert.equal(cps(text).length, cps("Hello 🎹 world").length + cps("ALICE😀 ").length + cps("bob🎶 ").length, text);
    assert.ok(text.startsWith("Hello ") && text.endsWith("🎹 world"), text);
    assert.ok(subsequence("ALICE😀 ", text) && subsequence("bob🎶 ", text), text);

    // Who is here, with presence from the personal channel.
    await alice.waitForSelector('#others li[data-user="bob"]');
    await bob.waitForSelector('#others li[data-user="alice"]');
    await alice.waitForFunction(() => /online/.test(document.querySelector('#others li[data-user="bob"] .presence')?.textContent ?? ""), null, { timeout: 15_000 });
    // Typing stops by itself.
    await alice.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout: 15_000 });
  });

  it("a like in one page updates the count in the other and notifies the owner", async () => {
    const { alice, bob } = pages;
    await alice.waitForFunction(() => document.getElementById("owner-note").textContent.includes("you own"), null, { timeout: 15_000 });
    await bob.click("#like");
    await alice.waitForFunction(() => document.getElementById("like-count").textContent === "1", null, { timeout: 15_000 });
    await alice.waitForFunction(() => /Bob liked post:demo-post/.test(document.getElementById("notifications").textContent), null, { timeout: 15_000 });
    await bob.fill("#comment-text", "great loop 🎧");
    await bob.press("#comment-text", "Enter");
    await alice.waitForFunction(() => document.getElementById("comment-count").textContent === "1", null, { timeout: 15_000 });
  });

  it("a stroke drawn in one page shows in the other", async () => {
    const { alice, bob } = pages;
    const box = await bob.locator("#canvas").boundingBox();
    await bob.mouse.move(box.x + 40, box.y + 110);
    await bob.mouse.down();
    for (let i = 1; i <= 16; i++) await bob.mouse.move(box.x + 40 + i * 25, box.y + 110 + Math.round(60 * Math.sin(i / 2)));
    await bob.mouse.up();
    await alice.waitForFunction(() => window.sidechain.docs.get("canvas:channel-demo")?.strokes.size === 1, null, { timeout: 15_000 });
    await alice.screenshot({ path: SHOT });
    assert.ok(existsSync(SHOT));
  });
});
