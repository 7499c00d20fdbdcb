// The SDK's personal channel under PROTOCOL v1.2 §5.3 and issue 15 point 6: it resumes from the
// highest seq it saw (nothing twice, nothing lost), shows an aggregated item once per version,
// and backs off further each time a server accepts the socket and then closes it.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { api, startWorker, token, useWorker } from "./helpers.mjs";
import { sdkClient, trackWorker, waitFor } from "./sdk-helpers.mjs";

const w = useWorker();
let calls = 0;
const notify = (url, body) => api(url, "/api/v1/notify", { method: "POST", tok: token(`svc-sdk-${calls++}`, {}, { role: "service" }), body });

describe("SDK channel", () => {
  it("resumes with since_seq after a drop: every notification once, none lost", async () => {
    const c = sdkClient(w.url, token("sdk-resume"), "sdk-resume-web");
    const ch = c.channel();
    await ch.whenSynced();
    const seen = [];
    ch.on("notification", (n) => seen.push(n));
    for (let i = 0; i < 3; i++) await notify(w.url, { event_id: `sr-a${i}`, kind: "new_post", user_ids: ["sdk-resume"] });
    await waitFor(() => seen.length === 3, [ch], { events: ["notification"] });
    const before = ch.lastSeq;
    assert.equal(before, Math.max(...seen.map((n) => n.seq)));
    ch.pause(); // offline: the socket is closed
    for (let i = 0; i < 3; i++) await notify(w.url, { event_id: `sr-b${i}`, kind: "new_post", user_ids: ["sdk-resume"] });
    // Kept before the channel comes back (read straight from REST, the same inbox).
    for (;;) {
      const r = await api(w.url, "/api/v1/me/notifications?limit=10", { tok: token("sdk-resume") });
      if (r.json.notifications.length === 6) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    ch.resume();
    await waitFor(() => seen.length === 6, [ch], { events: ["notification"] });
    assert.deepEqual(seen.map((n) => n.event_id), ["sr-a0", "sr-a1", "sr-a2", "sr-b0", "sr-b1", "sr-b2"], "each once, in order");
    assert.ok(seen.slice(3).every((n) => n.seq > before));
    await waitFor(() => ch.unread === 6, [ch], { events: ["notification_count"] });
    // A second drop with nothing new shows nothing again.
    ch.drop();
    await ch.whenSynced();
    await notify(w.url, { event_id: "sr-c", kind: "new_post", user_ids: ["sdk-resume"] });
    await waitFor(() => seen.length === 7, [ch], { events: ["notification"] });
    assert.equal(seen[6].event_id, "sr-c");
    c.close();
  });

  it("an aggregated owner notification is one entry, replaced by its updates", async () => {
    const owner = sdkClient(w.url, token("sdk-agg-owner"), "sdk-agg-web");
    await owner.api("/api/v1/posts/sdk-agg", { method: "PUT", body: {} });
    const ch = owner.channel();
    await ch.whenSynced();
    for (const fan of ["f1", "f2", "f3", "f4"]) await api(w.url, "/api/v1/posts/sdk-agg/likes", { method: "POST", tok: token(fan), body: {} });
    await waitFor(() => ch.notifications.some((n) => n.count === 4), [ch], { events: ["notification"] });
    const mine = ch.notifications.filter((n) => n.post_id === "sdk-agg");
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0].actors.map((a) => a.id), ["f4", "f3", "f2"]);
    assert.equal(ch.unread, 1);
    owner.close();
  });
});

describe("SDK channel backoff", () => {
  const down = {};
  before(async () => Object.assign(down, trackWorker(await startWorker({ bindings: { FAULT_ATTACH_DOWN: "sdk-down" } }))));
  after(async () => down.mf.dispose());

  it("grows on repeated failures after open (the server closes once the inbox is unreachable)", async () => {
    const c = sdkClient(down.url, token("sdk-down"), "sdk-down-web", { backoff: { initialMs: 20, maxMs: 10_000 } });
    const ch = c.channel();
    const closes = [];
    ch.on("disconnect", (e) => closes.push(e.code));
    await waitFor(() => closes.length >= 5, [ch], { events: ["disconnect"], timeoutMs: 30_000 });
    assert.ok(ch.stats.connects >= 5, "each attempt was opened, then closed by the server");
    // Closed by the server (1011) or, where the close frame is lost, found dead by the heartbeat (4000).
    assert.ok(closes.every((code) => code === 1011 || code === 4000), `codes: ${closes}`);
    assert.ok(ch.attempt >= 5, `the backoff kept growing (attempt ${ch.attempt})`);
    c.close();
  });
});
