// The demo page's sketch pane on a large board (§8 viewports) in real Chromium (Debian's chromium,
// driven by playwright-core): 3,000 strokes are seeded over a socket, two pages pan across the
// board (arrow buttons and Shift+drag) and each shows exactly the strokes of its view, as an
// unfiltered client has them there; a stroke drawn in one page reaches the other while in its
// view, and one drawn out of its view is not sent until the other pans to it.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startWorker, token } from "./helpers.mjs";
import { rng, sdkClient, waitFor } from "./sdk-helpers.mjs";
import { buildBrowserBundle } from "../client/build-browser.mjs";
import { inView } from "../client/src/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (make test installs it)` : false;
const BOARD = "canvas:big-board";
const STROKES = 3000;
const WORLD = { width: 4800, height: 2200 }; // 10 × 10 panes of 480 × 220

describe("demo sketch pane on a 3,000-stroke board in Chromium", { skip: missing }, () => {
  let w;
  let browser;
  let ref; // an unfiltered SDK canvas: the truth to compare each page's view with
  const pages = {};

  before(async () => {
    await buildBrowserBundle();
    w = await startWorker({ assetsDir: join(ROOT, "public"), bindings: { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" } });
    ref = sdkClient(w.url, token("seeder"), "seeder").canvas(BOARD);
    await ref.whenSynced();
    const r = rng(16);
    for (let i = 0; i < STROKES; i += 100) {
      await ref.submit(
        Array.from({ length: 100 }, (_, k) => {
          const [x, y] = [Math.round(r() * WORLD.width), Math.round(r() * WORLD.height)];
          const points = [[x, y], [x + Math.round(r() * 30), y + Math.round(r() * 20)], [x + Math.round(r() * 40), y - Math.round(r() * 10)]];
          return { type: "stroke_create", stroke_id: `seed-${i + k}`, data: { points, colour: `hsl(${(i + k) % 360} 60% 45%)`, width: 2 } };
        }),
      );
    }
    assert.equal(ref.strokes.size, STROKES);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    for (const [user, x, y] of [["alice", 960, 440], ["bob", 1200, 440]]) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      const page = await ctx.newPage();
      page.on("pageerror", (e) => console.error(`[${user}] page error:`, e));
      await page.goto(`${w.url}/?user=${user}&token=${token(user, { "*": "write" }, { name: user })}&canvas=big-board&x=${x}&y=${y}`);
      pages[user] = page;
    }
    for (const p of Object.values(pages)) await p.waitForSelector('#status[data-status="synced"]', { timeout: 15_000 });
  });

  after(async () => {
    await browser?.close();
    ref?.client.close();
    await w?.mf.dispose();
  });

  /** The page's view, the ids its board holds, and how many strokes it drew, once its view settled. */
  const shown = (page) =>
    page.evaluate(async () => {
      const b = window.sidechainBoard;
      await b.setViewport(b.viewport); // resolves once the current view's strokes are all here
      await new Promise(requestAnimationFrame);
      const cv = document.getElementById("canvas");
      return { view: b.viewport, ids: [...b.strokes.keys()].sort(), drawn: Number(cv.dataset.drawn), total: b.strokesTotal };
    });
  const expected = (view) => [...ref.strokes].filter(([, d]) => inView(d, view)).map(([id]) => id).sort();

  /** Each page holds and draws exactly the strokes the unfiltered client has in its view. */
  async function checkViews() {
    for (const [user, page] of Object.entries(pages)) {
      const s = await shown(page);
      assert.deepEqual(s.ids, expected(s.view), `${user} at ${JSON.stringify(s.view)}`);
      assert.equal(s.drawn, s.ids.length, `${user} draws what it holds`);
      assert.ok(s.ids.length > 5 && s.ids.length < STROKES / 20, `${user}: a pane's worth (${s.ids.length})`);
    }
  }

  it("each page loads and draws only the strokes of its view, and panning brings the new view's", async () => {
    await checkViews();
    const { alice, bob } = pages;
    // Arrows: half a pane each.
    for (const id of ["#pan-right", "#pan-right", "#pan-down"]) await alice.click(id);
    await bob.click("#pan-left");
    await alice.waitForFunction(() => document.getElementById("canvas").dataset.view === "1440,550");
    await checkViews();
    // Shift+drag pans by the distance dragged (the board follows the pointer).
    const box = await bob.locator("#canvas").boundingBox();
    const scale = box.width / 480;
    await bob.keyboard.down("Shift");
    await bob.mouse.move(box.x + 300 * scale, box.y + 150 * scale);
    await bob.mouse.down();
    for (let i = 1; i <= 10; i++) await bob.mouse.move(box.x + (300 - 20 * i) * scale, box.y + (150 - 8 * i) * scale);
    await bob.mouse.up();
    await bob.keyboard.up("Shift");
    const v = await bob.evaluate(() => window.sidechainBoard.viewport);
    assert.ok(Math.abs(v.x - (960 + 200)) <= 2 && Math.abs(v.y - (440 + 80)) <= 2, JSON.stringify(v));
    await checkViews();
  });

  it("a stroke drawn in one page reaches the other when in its view, and only then", async () => {
    const { alice, bob } = pages;
    // Both views share a region: alice draws in it.
    for (const [p, x, y] of [[alice, 1200, 550], [bob, 1300, 600]]) await p.evaluate(([x, y]) => window.sidechainPanTo(x, y), [x, y]);
    const box = await alice.locator("#canvas").boundingBox();
    const scale = box.width / 480;
    const drawAt = async (page, px, py) => {
      await page.mouse.move(box.x + px * scale, box.y + py * scale);
      await page.mouse.down();
      for (let i = 1; i <= 8; i++) await page.mouse.move(box.x + (px + i * 6) * scale, box.y + (py + 3 * Math.sin(i)) * scale);
      await page.mouse.up();
    };
    const alices = () => alice.evaluate(() => [...window.sidechainBoard.strokes].filter(([, d]) => d.by === "alice").map(([id]) => id));
    await drawAt(alice, 300, 150); // board (1500, 700): in both views
    await alice.waitForFunction(() => window.sidechain.status === "synced" && !window.sidechain.hasUnsavedChanges);
    const [shared] = await alices();
    await bob.waitForFunction((id) => window.sidechainBoard.strokes.has(id), shared, { timeout: 15_000 });

    await drawAt(alice, 20, 20); // board (1220, 570): outside bob's view
    await alice.waitForFunction(() => window.sidechain.status === "synced" && !window.sidechain.hasUnsavedChanges);
    const hidden = (await alices()).find((id) => id !== shared);
    await waitFor(() => ref.strokes.has(hidden), [ref]);
    // A later stroke in bob's view has reached him: the hidden one would have come before it.
    const marker = ref.createStroke({ points: [[1400, 650], [1410, 655]], by: "seeder" });
    await bob.waitForFunction((id) => window.sidechainBoard.strokes.has(id), marker, { timeout: 15_000 });
    assert.equal(await bob.evaluate((id) => window.sidechainBoard.strokes.has(id), hidden), false);
    // Bob pans to it: it arrives.
    await bob.click("#pan-left");
    await bob.click("#pan-up");
    await bob.waitForFunction((id) => window.sidechainBoard.strokes.has(id), hidden, { timeout: 15_000 });
    await checkViews();
  });
});
