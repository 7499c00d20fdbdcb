// The SDK (@sidechain/realtime, client/) against the built worker: the OT client rule, offline
// edits, the failure paths (401, 403, version_too_old, rate_limited, a lost ack), awareness and
// typing, posts, canvases and the personal channel.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import WebSocket from "ws";
import { api, Client, opFrame, serviceToken, startWorker, token, useWorker } from "./helpers.mjs";
import { portOf, sdkClient, startProxy, trackedClients, trackWorker, waitFor } from "./sdk-helpers.mjs";
import { SidechainClient } from "../client/src/index.js";

// Ops go out as fast as acks come back in some tests: lift the per-socket budget here; the
// rate-limit test starts its own worker with a tiny budget.
const w = useWorker({ bindings: { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" } });
const make = trackedClients();

/** `ws` without compression, so the proxy can read the server's frames. */
class PlainWS extends WebSocket {
  constructor(url) {
    super(url, { perMessageDeflate: false });
  }
}

const serverDoc = async (docId, base = w.url) => (await api(base, `/api/v1/documents/${encodeURIComponent(docId)}`, { tok: token("reader") })).json;

/** Waits until every doc shows the server's text and version. */
async function converged(docs, docId, base) {
  await Promise.all(docs.map((d) => d.whenSynced({ timeoutMs: 10_000 })));
  const s = await serverDoc(docId, base);
  await waitFor(() => docs.every((d) => d.value === s.content && d.version === s.version), docs, {
    describe: () => `server v${s.version} ${JSON.stringify(s.content)}; ${docs.map((d) => `v${d.version} ${JSON.stringify(d.value)}`).join(" | ")}`,
  });
  return s;
}

describe("SDK: text", () => {
  it("two clients typing at the same spot converge; change events and whenSynced", async () => {
    const docId = "channel:sdk-same-spot:description";
    const a = make(w.url, token("ann"), "c-a").text(docId);
    const b = make(w.url, token("ben"), "c-b").text(docId);
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    assert.equal(a.status, "synced");
    const remoteSeen = [];
    b.on("change", (c) => !c.local && remoteSeen.push(c));
    a.insert(0, "héllo 👋");
    await a.whenSynced();
    await waitFor(() => b.value === "héllo 👋", [b]);
    assert.equal(remoteSeen.at(-1).userId, "ann");
    // Concurrent inserts at one position, several rounds, before either sees the other.
    for (let i = 0; i < 5; i++) {
      a.insert(5, `A${i}`);
      b.insert(5, `B${i}😀`);
      a.delete(0, 1);
      b.insert(b.length, "!");
    }
    assert.ok(a.pending > 0 && a.hasUnsavedChanges);
    await converged([a, b], docId);
    assert.equal(a.pending, 0);
    assert.equal(a.hasUnsavedChanges, false);
    // One more round at one spot, neither seeing the other: c-a < c-b, so A's text comes first.
    a.insert(0, "[a]");
    b.insert(0, "[b😀]");
    const s = await converged([a, b], docId);
    assert.ok(s.content.startsWith("[a][b😀]"), s.content);
  });

  it("anchoring (v1.1): a replace at one spot and a concurrent insert there converge as ayxc", async () => {
    const docId = "channel:sdk-anchor:description";
    const a = make(w.url, token("ann"), "c-a").text(docId);
    const b = make(w.url, token("ben"), "c-b").text(docId);
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    a.insert(0, "abc");
    await a.whenSynced();
    await waitFor(() => b.value === "abc", [b]);
    a.replace(1, 1, "y");
    b.insert(1, "x");
    const s = await converged([a, b], docId);
    assert.equal(s.content, "ayxc");
  });

  it("edits made offline are kept and sent on reconnect; the unsaved signal follows them", async () => {
    const docId = "channel:sdk-offline:description";
    const ca = make(w.url, token("ann"), "off-a");
    const a = ca.text(docId);
    const b = make(w.url, token("ben"), "off-b").text(docId);
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    const unsaved = [];
    ca.on("unsaved", (u) => unsaved.push(u));
    ca.goOffline();
    assert.equal(a.status, "offline");
    a.insert(0, "typed offline 1. ");
    a.insert(a.length, "typed offline 2.");
    b.insert(0, "online text. ");
    await b.whenSynced();
    assert.equal(a.pending, 2);
    assert.equal(ca.hasUnsavedChanges, true);
    ca.goOnline();
    const s = await converged([a, b], docId);
    assert.match(s.content, /typed offline 1\. /);
    assert.match(s.content, /typed offline 2\./);
    assert.match(s.content, /online text\. /);
    assert.deepEqual(unsaved, [true, false]);
  });

  it("a handshake that hangs is given up after heartbeatTimeoutMs and tried again", async () => {
    const docId = "channel:sdk-hung-handshake:description";
    const proxy = await startProxy(portOf(w.url));
    proxy.dropUp = true; // the upgrade request goes into the void: the handshake never ends
    const c = make(`http://127.0.0.1:${proxy.port}`, token("ann"), "hung-a", { WebSocket: PlainWS, heartbeatTimeoutMs: 300 });
    const d = c.text(docId);
    await waitFor(() => proxy.connections >= 2, [d], { events: ["status", "disconnect", "error"], describe: () => `${proxy.connections} connections` });
    proxy.dropUp = false;
    await d.whenSynced({ timeoutMs: 10_000 });
    assert.equal(d.status, "synced");
    assert.ok(d.stats.connects >= 1);
    await proxy.close();
  });

  for (const [lost, historyCatchUp] of [["the ack", true], ["the operation", true], ["the ack", false], ["the operation", false]]) {
    const how = historyCatchUp ? "caught up from the history" : "probe + diff rebase";
    it(`${lost} lost with the connection, then more than the retained log: the edit lands exactly once (${how})`, async () => {
      const docId = `channel:sdk-lost-${lost.replace(/\W/g, "")}-${historyCatchUp}:description`;
      const proxy = await startProxy(portOf(w.url));
      const ca = make(`http://127.0.0.1:${proxy.port}`, token("ann"), "lost-a", { WebSocket: PlainWS, heartbeatMs: 0, historyCatchUp });
      const errors = [];
      const a = ca.text(docId);
      a.on("error", (e) => errors.push(e.code));
      await a.whenSynced();
      a.insert(0, "base ");
      await a.whenSynced();
      const resets = [];
      a.on("change", (c) => c.reset && resets.push(c));
      // Swallow one direction, submit, and cut once the frame went into the void (the SDK asks for
      // §9 batches, so its ack comes inside an `operations` frame).
      const dir = lost === "the ack" ? "down" : "up";
      const swallowed = new Promise((resolve) => {
        const off = proxy.onData((d, chunk, dropped) => {
          if (d === dir && dropped && (dir === "up" || chunk.includes("operation_ack") || chunk.includes('"operations"'))) (off(), resolve());
        });
      });
      if (dir === "down") proxy.dropDown = true;
      else proxy.dropUp = true;
      a.insert(5, "MARK😀");
      await swallowed;
      proxy.accepting = false;
      proxy.cutAll();
      proxy.dropDown = proxy.dropUp = false;
      // Another client moves the document past the retained log (1,000 ops) meanwhile.
      const b = await Client.join(w.url, docId, { tok: token("ben"), clientId: "lost-b" });
      let v = (await serverDoc(docId)).version;
      for (let i = 1; i <= 1005; i++) v = (await b.submit(opFrame(docId, "lost-b", i, v, { type: "insert", position: 0, content: "b" }))).payload.version;
      b.close();
      proxy.accepting = true;
      const s = await converged([a], docId);
      assert.equal(s.content.split("MARK😀").length - 1, 1, `exactly one MARK in ${s.content.slice(-20)}`);
      assert.equal(s.content, "b".repeat(1005) + "base MARK😀");
      if (historyCatchUp) assert.ok(!errors.includes("history_unavailable"), errors.join());
      else assert.ok(resets.length >= 1, "the reconnect loaded a fresh state (since was too old)");
      await proxy.close();
    });
  }

  it("offline past the retained log: an edit stays exactly where it was typed (history catch-up)", async () => {
    const docId = "channel:sdk-long-offline:description";
    const ca = make(w.url, token("ann"), "long-a");
    const a = ca.text(docId);
    await a.whenSynced();
    a.insert(0, "‹T1›‹T2›");
    await a.whenSynced();
    ca.goOffline();
    a.insert(4, "X"); // between the two tokens
    // Others edit both ends of the text, more than the server replays (1,000 ops).
    const b = await Client.join(w.url, docId, { tok: token("ben"), clientId: "long-b" });
    let v = (await serverDoc(docId)).version;
    let len = 8;
    for (let i = 1; i <= 1004; i++) {
      const op = i % 2 ? { type: "insert", position: 0, content: "b" } : { type: "insert", position: len, content: "c" };
      v = (await b.submit(opFrame(docId, "long-b", i, v, op))).payload.version;
      len++;
    }
    b.close();
    let integrated = 0;
    a.on("change", (c) => !c.local && !c.reset && integrated++);
    ca.goOnline();
    const s = await converged([a], docId);
    assert.equal(s.content, "b".repeat(502) + "‹T1›X‹T2›" + "c".repeat(502));
    assert.ok(integrated >= 1000, `${integrated} operations integrated one by one`);
  });

  it("a reused client_id without stored seq finds its next seq", async () => {
    const docId = "channel:sdk-reuse:description";
    const first = make(w.url, token("ann"), "reuse-me");
    const d1 = first.text(docId);
    for (let i = 0; i < 5; i++) {
      d1.insert(d1.length, `${i}`);
      await d1.whenSynced();
    }
    assert.equal(d1.seq, 5);
    first.close();
    const second = make(w.url, token("ann"), "reuse-me"); // fresh in-memory storage: seq unknown
    const d2 = second.text(docId);
    await d2.whenSynced();
    d2.insert(0, ">");
    await d2.whenSynced();
    assert.equal(d2.seq, 6);
    assert.equal((await serverDoc(docId)).content, ">01234");
  });
});

describe("SDK: failure paths", () => {
  it("401: a token function is called again and the connection recovers", async () => {
    let calls = 0;
    const tok = () => (++calls === 1 ? "not-a-jwt" : token("ann"));
    const c = make(w.url, tok, "tok-fn");
    const d = c.text("channel:sdk-401:description");
    const errors = [];
    d.on("error", (e) => errors.push(e.code));
    await d.whenSynced({ timeoutMs: 10_000 });
    assert.ok(calls >= 2);
    assert.ok(errors.includes("unauthorized"));
  });

  it("401 with a fixed token and 403 without a grant stop retrying with a fatal error", async () => {
    const bad = make(w.url, "not-a-jwt", "bad-tok").text("channel:sdk-401b:description");
    await assert.rejects(bad.whenSynced({ timeoutMs: 10_000 }), { code: "unauthorized" });
    assert.equal(bad.status, "offline");
    assert.equal(bad.stopped, "unauthorized");
    const ro = make(w.url, token("ann", { "channel:other:*": "write" }), "no-grant").text("channel:sdk-403:description");
    await assert.rejects(ro.whenSynced({ timeoutMs: 10_000 }), { code: "forbidden" });
    assert.equal(ro.stopped, "forbidden");
  });

  it("a token function is called again when the token is about to expire", async () => {
    let calls = 0;
    // Valid for 20 s: inside the SDK's 30 s refresh margin, so every connect asks for a new one.
    const tok = () => (++calls, token("ann", { "*": "write" }, { exp: Math.floor(Date.now() / 1000) + 20 }));
    const d = make(w.url, tok, "tok-exp").text("channel:sdk-exp:description");
    await d.whenSynced();
    const before = calls;
    d.drop(); // the connection is lost; the reconnect must not reuse the expiring token
    await waitFor(() => d.stats.connects === 2 && d.status === "synced", [d]);
    assert.ok(calls > before, `token function calls: ${before} then ${calls}`);
  });

  it("409 client_id_taken: another user's client_id stops the connection", async () => {
    const docId = "channel:sdk-taken:description";
    const owner = make(w.url, token("ann"), "taken-id").text(docId);
    owner.insert(0, "mine");
    await owner.whenSynced();
    const thief = make(w.url, token("eve"), "taken-id").text(docId);
    await assert.rejects(thief.whenSynced({ timeoutMs: 10_000 }), { code: "client_id_taken" });
    assert.equal(thief.stopped, "client_id_taken");
  });

  it("4404: a deleted document closes the socket for good", async () => {
    const docId = "channel:sdk-deleted:description";
    const d = make(w.url, token("ann"), "del-a").text(docId);
    d.insert(0, "soon gone");
    await d.whenSynced();
    const stopped = new Promise((resolve) => d.on("error", (e) => e.fatal && resolve(e)));
    const r = await api(w.url, `/api/v1/documents/${docId}`, { method: "DELETE", tok: serviceToken() });
    assert.equal(r.status, 200);
    assert.equal((await stopped).code, "deleted");
    assert.equal(d.status, "offline");
    assert.equal(d.stopped, "deleted");
  });

  it("a read grant: the document loads, local edits are refused", async () => {
    const docId = "channel:sdk-ro:description";
    const writer = make(w.url, token("ann"), "rw").text(docId);
    writer.insert(0, "read me");
    await writer.whenSynced();
    const reader = make(w.url, token("ro", { "channel:sdk-ro:*": "read" }), "ro").text(docId);
    await reader.whenSynced();
    assert.equal(reader.role, "read");
    assert.equal(reader.value, "read me");
    assert.throws(() => reader.insert(0, "x"), { code: "forbidden" });
  });

  it("rate_limited: the SDK waits retry_after_ms and sends again; nothing is lost", async () => {
    const slow = trackWorker(await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "2", SOCKET_BURST: "2" } }));
    try {
      const docId = "channel:sdk-rate:description";
      const c = sdkClient(slow.url, token("ann"), "rate-a", { heartbeatMs: 0 });
      const d = c.text(docId);
      await d.whenSynced();
      const limited = [];
      d.on("error", (e) => e.code === "rate_limited" && limited.push(e));
      // §8 [1.2]: setAwareness sends at most once per 50 ms, so four calls are no longer four
      // frames; the burst that trips the limit is sent as raw frames, then the state is set.
      for (let i = 0; i < 3; i++) d.send("awareness", { state: { cursor: i } });
      d.setAwareness({ cursor: 3 });
      const seen = [];
      d.on("error", (e) => seen.push(`${e.code}${e.retry_after_ms !== undefined ? ` ${e.retry_after_ms}ms` : ""}`));
      d.on("disconnect", (e) => seen.push(`disconnect ${e.code}`));
      d.on("ack", (e) => seen.push(`ack ${e.seq}`));
      d.insert(0, "still here");
      await d.whenSynced({ timeoutMs: 15_000 }).catch((e) => {
        const inf = d.inflight && { seq: d.inflight.seq, awaiting: d.inflight.awaiting, id: d.inflight.id };
        throw new Error(`${e.message}: status ${d.status}, ready ${d.ready}, connected ${d.connected}, inflight ${JSON.stringify(inf)}, pending ${d.pendingOp.length}, blocked ${d.rateBlocked}; ${seen.join(", ")}`);
      });
      assert.ok(limited.length >= 1 && limited.every((e) => e.retry_after_ms > 0), JSON.stringify(limited));
      const s = (await api(slow.url, `/api/v1/documents/${docId}`, { tok: token("ann") })).json;
      assert.equal(s.content, "still here");
      c.close();
    } finally {
      await slow.mf.dispose();
    }
  });
});

describe("SDK: awareness, typing, posts, canvas, channel", () => {
  it("others, awareness and typing with automatic stop", async () => {
    const docId = "channel:sdk-aware:description";
    const a = make(w.url, token("ann"), "aw-a", { typingTimeoutMs: 150 }).text(docId);
    await a.whenSynced();
    const b = make(w.url, token("ben"), "aw-b").text(docId);
    await b.whenSynced();
    await waitFor(() => a.others.some((o) => o.clientId === "aw-b"), [a]);
    assert.deepEqual(b.others.map((o) => [o.clientId, o.userId]), [["aw-a", "ann"]]);
    a.setAwareness({ cursor: 3, color: "#f80" });
    await waitFor(() => b.others[0]?.state?.cursor === 3, [b]);
    a.typing();
    await waitFor(() => b.others[0]?.typing === true, [b]);
    await waitFor(() => b.others[0]?.typing === false, [b]); // stopped_typing after 150 ms of quiet
    b.close();
    await waitFor(() => !a.others.some((o) => o.clientId === "aw-b"), [a]);
  });

  it("posts: a like and a comment show in another client's counts; comment ids come from the server", async () => {
    const p1 = make(w.url, token("ann"), "post-a").post("sdk-p1");
    const p2 = make(w.url, token("ben"), "post-b").post("sdk-p1");
    await Promise.all([p1.whenSynced(), p2.whenSynced()]);
    await p1.like("🔥");
    await waitFor(() => p2.counts.like_count === 1, [p2]);
    const { commentId } = await p1.comment("nice loop");
    assert.ok(commentId, "a server-assigned comment id");
    await waitFor(() => p2.counts.comment_count === 1, [p2]);
    const again = await p1.like();
    assert.equal(again.status, "noop");
    await p1.uncomment(commentId);
    await waitFor(() => p2.counts.comment_count === 0, [p2]);
    const { commentId: kept } = await p1.comment("second take");
    const page = await p2.comments({ limit: 10 });
    assert.deepEqual(page.comments.map((c) => [c.comment_id, c.text, c.user_id]), [[kept, "second take", "ann"]]);
    assert.equal(page.next_before, null);
    const feed = await make(w.url, token("cat"), "feed-c").feedCounts(["sdk-p1", "post:sdk-p1", ...Array.from({ length: 120 }, (_, i) => `sdk-feed-${i}`)]);
    assert.equal(Object.keys(feed).length, 121);
    assert.equal(feed["sdk-feed-119"].like_count, 0);
    // KV converges on the object's counts within about a second: poll the observable value.
    const reader = make(w.url, token("cat"), "feed-d");
    for (let end = Date.now() + 10_000; (await reader.feedCounts(["sdk-p1"]))["sdk-p1"].comment_count !== 1; ) {
      assert.ok(Date.now() < end, "feed counts converge on the post's comment count");
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it("posts: two users acting on one post by turns keep their sockets (others' likes leave version gaps)", async () => {
    const a = make(w.url, token("turn-a"), "turn-a").post("sdk-turns");
    const b = make(w.url, token("turn-b"), "turn-b").post("sdk-turns");
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    // Each action of one user skips the other's socket (§9: batched sockets get counts, not
    // others' counter operations), so every ack after the first lands past version + 1.
    for (const [doc, act] of [[a, "like"], [b, "like"], [a, "repost"], [b, "save"], [a, "unlike"], [b, "repost"], [a, "save"], [b, "unlike"]]) {
      const ack = await doc[act]();
      assert.ok(["accepted", "transformed"].includes(ack.status), `${act}: ${JSON.stringify(ack)}`);
    }
    const final = { like_count: 0, repost_count: 2, save_count: 2 };
    const shows = (d) => Object.entries(final).every(([k, v]) => d.counts[k] === v);
    await waitFor(() => shows(a) && shows(b), [a, b], { describe: () => JSON.stringify([a.counts, b.counts]) });
    assert.deepEqual([a.stats.connects, b.stats.connects], [1, 1], "no socket reloaded on a version gap");
    assert.deepEqual([a.stats.disconnects, b.stats.disconnects], [0, 0]);
  });

  it("canvas: strokes from two clients converge", async () => {
    const c1 = make(w.url, token("ann"), "cv-a").canvas("sdk-board");
    const c2 = make(w.url, token("ben"), "cv-b").canvas("sdk-board");
    await Promise.all([c1.whenSynced(), c2.whenSynced()]);
    const s1 = c1.createStroke({ points: [[0, 0], [5, 5]], color: "red" });
    const s2 = c2.createStroke({ points: [[1, 1]], color: "blue" });
    await Promise.all([c1.whenSynced(), c2.whenSynced()]);
    await c2.updateStroke(s1, { points: [[0, 0]], color: "green" });
    await c1.deleteStroke(s2);
    await waitFor(() => c1.strokes.size === 1 && c2.strokes.size === 1 && c1.strokes.get(s1)?.color === "green" && c2.strokes.get(s1)?.color === "green", [c1, c2]);
  });

  it("channel: the post owner is notified of someone else's like", async () => {
    const owner = make(w.url, token("owner"), "own-web");
    const put = await owner.api("/api/v1/posts/sdk-owned", { method: "PUT", body: {} });
    assert.ok(put);
    const ch = owner.channel();
    await ch.whenSynced();
    const got = new Promise((resolve) => ch.on("notification", resolve));
    await make(w.url, token("fan"), "fan-web").post("sdk-owned").like();
    const n = await got;
    assert.equal(n.kind, "post_liked");
    assert.equal(n.post_id, "sdk-owned");
    assert.equal(n.actor.id, "fan");
  });

  it("channel: a lease holds presence without sockets, and playback reaches watchers (§5.6)", async () => {
    const producer = make(w.url, token("sdk-producer"), "prod-web");
    await producer.channel().setPresence({ status: "online", in_studio: true, daw_type: "FL Studio", ttl: 90 });
    const fan = make(w.url, token("sdk-fan"), "fan-web").channel();
    await fan.whenSynced();
    const seen = new Promise((resolve) => fan.on("presence", (p) => p.user_id === "sdk-producer" && resolve(p)));
    fan.watchPresence(["sdk-producer"]);
    const p = await seen;
    assert.deepEqual([p.status, p.in_studio, p.daw_type], ["online", true, "FL Studio"]);
    const ch = producer.channel();
    await ch.whenSynced();
    const heard = new Promise((resolve) => fan.on("playback", resolve));
    ch.setPlayback("started", { trackId: "loop-9", positionMs: 640 });
    assert.deepEqual(await heard, { user_id: "sdk-producer", track_id: "loop-9", position_ms: 640, state: "started" });
  });

  it("the package is importable by its name (client/package.json exports), types included", async () => {
    const mod = await import("@sidechain/realtime");
    assert.equal(mod.SidechainClient, SidechainClient);
    assert.equal(typeof mod.ot.transformWire, "function");
    const pkg = JSON.parse(readFileSync(new URL("../client/package.json", import.meta.url), "utf8"));
    assert.ok(existsSync(new URL(`../client/${pkg.exports["."].types}`, import.meta.url)));
    // ot-text-unicode for text; yjs + y-websocket for client.yjs (§3.6): nothing else.
    assert.deepEqual(Object.keys(pkg.dependencies ?? {}).sort(), ["ot-text-unicode", "y-websocket", "yjs"]);
  });
});
