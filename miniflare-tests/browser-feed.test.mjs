// The demo page's feed pane in real Chromium: a comment made before the page opened is listed over
// REST; a like made by another client (node SDK) on a feed post shows in the page's live feed;
// a comment by another client appears live, and one removed disappears.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { chromium } from "playwright-core";
import { startWorker, token } from "./helpers.mjs";
import { buildBrowserBundle } from "../client/build-browser.mjs";
import { SidechainClient } from "../client/src/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (make test installs it)` : false;

describe("demo page feed pane in Chromium", { skip: missing }, () => {
  let w;
  let browser;
  let page;
  let other;
  const feedCount = (post, cls) => page.locator(`#feed li[data-post="${post}"] .${cls}`).textContent();

  before(async () => {
    await buildBrowserBundle();
    w = await startWorker({ assetsDir: join(ROOT, "public") });
    other = new SidechainClient({ url: w.url, token: token("dora", { "*": "write" }, { name: "Dora" }), clientId: "dora-node", WebSocket });
    await other.post("fp").comment("before the page opened");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on("pageerror", (e) => console.error("page error:", e));
    await page.goto(`${w.url}/?user=erin&post=fp&token=${token("erin", { "*": "write" }, { name: "Erin" })}`);
    await page.waitForSelector('#status[data-status="synced"]', { timeout: 15_000 });
  });

  after(async () => {
    other?.close();
    await browser?.close();
    await w?.mf.dispose();
  });

  it("lists the post's comments over REST when it opens", async () => {
    await page.waitForFunction(() => /before the page opened/.test(document.getElementById("feed-comments").textContent), null, { timeout: 15_000 });
    assert.match(await page.locator("#feed-comments li").first().textContent(), /Dora: before the page opened/);
  });

  it("a like by another client shows in the page's feed; comments come and go live", async () => {
    await page.waitForFunction(() => document.querySelector('#feed li[data-post="fp-2"] .likes')?.textContent === "0", null, { timeout: 15_000 });
    await other.post("fp-2").like("🔥");
    await page.waitForFunction(() => document.querySelector('#feed li[data-post="fp-2"] .likes')?.textContent === "1", null, { timeout: 15_000 });
    assert.equal(await feedCount("fp", "likes"), "0", "only the liked post changed");
    const { commentId } = await other.post("fp").comment("live 🎧");
    await page.waitForSelector(`#feed-comments li[data-comment="${commentId}"]`, { timeout: 15_000 });
    assert.match(await page.locator("#feed-comments li").first().textContent(), /live 🎧/, "newest first");
    await page.waitForFunction(() => document.querySelector('#feed li[data-post="fp"] .comments')?.textContent === "2", null, { timeout: 15_000 });
    await other.post("fp").uncomment(commentId);
    await page.waitForSelector(`#feed-comments li[data-comment="${commentId}"]`, { state: "detached", timeout: 15_000 });
  });
});
