// The publish API, the inbox and the timeline (§4.8), the shipped plugin's shapes (§4.7),
// reactions and notification details (§4.3), presence visibility (§4.5).
import { describe, it, after } from "node:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { useWorker, startWorker, Client, api, token, serviceToken, pool, inboxShard, objectCall } from "./helpers.mjs";

const w = useWorker();
const svc = () => serviceToken();
const notify = (body, url = w.url) => api(url, "/api/v1/notify", { method: "POST", tok: svc(), body });
const mine = (c, eventId) => c.inbox.filter((m) => m.type === "notification" && m.payload.event_id === eventId);

/** Resolves once `c` holds a notification of `eventId` (the queue delivers asynchronously). */
const received = (c, eventId) => c.next((m) => m.type === "notification" && m.payload.event_id === eventId, 240_000).then((m) => (c.inbox.push(m), m));


describe("publish API, inbox and timeline", () => {
  it("10,000 recipients in one call: every one gets it exactly once, on sockets and in inboxes", async () => {
    const users = Array.from({ length: 10_000 }, (_, i) => `fan${i}`);
    const online = users.filter((_, i) => i % 20 === 0); // 500 with a socket open
    const sockets = await pool(online, 25, (u) => Client.open(w.url, null, { tok: token(u) }));
    await Promise.all(sockets.map((c) => c.next("notification_count"))); // attached to their inbox
    const res = await notify({ kind: "new_post", user_ids: users, payload: { post_id: "p1" }, actor: { id: "artist", name: "Artist" } });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.json.recipients, 10_000);
    const eventId = res.json.event_id;
    await Promise.all(sockets.map((c) => received(c, eventId)));
    // The same event again (a retried call) delivers nothing twice.
    assert.equal((await notify({ event_id: eventId, kind: "new_post", user_ids: users.slice(0, 3_000), payload: {} })).status, 202);
    const marker = (await notify({ kind: "marker", user_ids: online, payload: {} })).json.event_id;
    await Promise.all(sockets.map((c) => received(c, marker)));
    for (const c of sockets) assert.equal(mine(c, eventId).length, 1, "once per socket");
    // Every inbox: each of the 64 inbox shards lists who holds the event (10,000 REST reads would
    // also open 10,000 rate-limiter objects); a sample of inboxes is read through the API.
    const holders = [];
    for (let i = 0; i < 64; i++) {
      const r = await objectCall(w.mf, "INBOX_SHARD", `inbox-${i}`, "/holders", { event_id: eventId });
      assert.equal(r.status, 200);
      for (const u of r.json.user_ids) {
        assert.equal(inboxShard(u), `inbox-${i}`, "kept in the user's own shard");
        holders.push(u);
      }
    }
    assert.deepEqual(holders.sort(), [...users].sort(), "once in every inbox");
    for (const u of users.filter((_, i) => i % 97 === 1 && i % 20 !== 0)) {
      const r = await api(w.url, "/api/v1/me/notifications?limit=10", { tok: token(u) });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.notifications.map((n) => [n.event_id, n.read]), [[eventId, false]]);
      assert.equal(r.json.unread, 1);
    }
    // An offline user who connects now is handed what was kept, once, with the count.
    const late = await Client.open(w.url, null, { tok: token("fan1") });
    assert.equal((await late.next("notification")).payload.event_id, eventId);
    assert.equal((await late.next("notification_count")).payload.unread, 1);
    late.close();
    sockets.forEach((c) => c.close());
  });

  it("unread counts follow reads across two sockets of one user", async () => {
    const tok = token("reader");
    const [phone, laptop] = [await Client.open(w.url, null, { tok }), await Client.open(w.url, null, { tok })];
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await notify({ kind: "new_follower", user_ids: ["reader"], payload: { follower: `f${i}` } });
      ids.push(r.json.event_id);
      for (const c of [phone, laptop]) await received(c, r.json.event_id);
    }
    for (const c of [phone, laptop]) {
      await c.next((m) => m.type === "notification_count" && m.payload.unread === 3);
      c.inbox = c.inbox.filter((m) => m.type !== "notification_count"); // earlier counts are history
    }
    phone.send({ type: "notification_read", payload: { event_ids: [ids[0]] } });
    for (const c of [phone, laptop]) await c.next((m) => m.type === "notification_count" && m.payload.unread === 2);
    const inbox = await api(w.url, "/api/v1/me/notifications", { tok });
    assert.equal(inbox.json.unread, 2);
    assert.deepEqual(inbox.json.notifications.map((n) => [n.event_id, n.read]), [[ids[2], false], [ids[1], false], [ids[0], true]]);
    const all = await api(w.url, "/api/v1/me/notifications/read", { method: "POST", tok, body: { all: true } });
    assert.deepEqual(all.json, { unread: 0 });
    await laptop.next((m) => m.type === "notification_count" && m.payload.unread === 0);
    // A new socket is told the count on connect.
    const tablet = await Client.open(w.url, null, { tok });
    assert.equal((await tablet.next("notification_count")).payload.unread, 0);
    [phone, laptop, tablet].forEach((c) => c.close());
  });

  it("activities land in each recipient's timeline, newest first, paged with before", async () => {
    const tok = token("follower");
    const c = await Client.open(w.url, null, { tok });
    const made = [];
    for (let i = 0; i < 5; i++) {
      const r = await notify({ kind: "activity", user_ids: ["follower"], actor: { id: "artist" }, payload: { verb: "posted", object_type: "post", object_id: `p${i}` } });
      made.push(r.json.event_id);
      const update = await c.next((m) => m.type === "activity_update" && m.payload.event_id === r.json.event_id, 240_000);
      assert.equal(update.payload.payload.object_id, `p${i}`);
    }
    const first = await api(w.url, "/api/v1/activity/timeline?limit=3", { tok });
    assert.deepEqual(first.json.activities.map((a) => a.payload.object_id), ["p4", "p3", "p2"]);
    const rest = await api(w.url, `/api/v1/activity/timeline?limit=3&before=${first.json.next_before}`, { tok });
    assert.deepEqual(rest.json.activities.map((a) => a.payload.object_id), ["p1", "p0"]);
    assert.equal(rest.json.next_before, null);
    assert.equal((await notify({ kind: "activity", user_ids: ["x"], payload: { verb: "posted" } })).status, 400, "an activity needs verb, object_type and object_id");
    assert.equal((await api(w.url, "/api/v1/notify", { method: "POST", tok, body: { kind: "k", user_ids: ["x"] } })).status, 403, "users cannot publish");
    c.close();
  });

  it("a room event reaches every socket of a document", async () => {
    const doc = "channel:live:description";
    const a = await Client.join(w.url, doc, { tok: token("a"), clientId: "a" });
    const b = await Client.join(w.url, doc, { tok: token("b"), clientId: "b" });
    const r = await api(w.url, `/api/v1/documents/${doc}/broadcast`, { method: "POST", tok: svc(), body: { name: "session_started", data: { bpm: 140 } } });
    assert.equal(r.status, 202, r.text);
    for (const c of [a, b]) assert.deepEqual((await c.next("room_event")).payload, { name: "session_started", data: { bpm: 140 } });
    assert.equal((await api(w.url, `/api/v1/documents/${doc}/broadcast`, { method: "POST", tok: svc(), body: { name: "Bad Name" } })).status, 400);
    a.close();
    b.close();
  });
});

describe("a queue consumer that fails mid-batch", () => {
  const faulty = {};
  after(async () => faulty.w?.mf.dispose());
  it("is retried: nothing dropped, nothing delivered twice", async () => {
    faulty.w = await startWorker({ bindings: { FAULT_NOTIFY_FAIL_ONCE: "victim" } });
    const url = faulty.w.url;
    // Users of the victim's inbox shard travel in one queue message: the consumer handles
    // `early` and then fails at `victim`; `late` comes after.
    const shard = inboxShard("victim");
    const [early, late] = Array.from({ length: 2_000 }, (_, i) => `fan-${i}`).filter((u) => inboxShard(u) === shard);
    const before = await Client.open(url, null, { tok: token(early) });
    const after_ = await Client.open(url, null, { tok: token(late) });
    await Promise.all([before, after_].map((c) => c.next("notification_count")));
    const r = await notify({ kind: "new_post", user_ids: [early, "victim", late], payload: {} }, url);
    assert.equal(r.status, 202);
    await received(before, r.json.event_id);
    await received(after_, r.json.event_id);
    const marker = (await notify({ kind: "marker", user_ids: [early, late], payload: {} }, url)).json.event_id;
    await received(before, marker);
    await received(after_, marker);
    assert.equal(mine(before, r.json.event_id).length, 1);
    assert.equal(mine(after_, r.json.event_id).length, 1);
    const victim = await api(url, "/api/v1/me/notifications", { tok: token("victim") });
    assert.deepEqual(victim.json.notifications.map((n) => n.event_id), [r.json.event_id], "delivered on the retry");
    before.close();
    after_.close();
  });
});

describe("a channel that vanished without closing", () => {
  const runs = [];
  after(async () => Promise.all(runs.map((r) => r.mf.dispose().catch(() => {}))));
  it("is pushed to, found empty, and gets the notification on its next connect", async () => {
    // A runtime that stops with sockets open never runs their close handlers, so the inbox shard
    // still lists the user as online after the restart.
    const dir = mkdtempSync(join(tmpdir(), "sc-vanish-"));
    const first = await startWorker({ persistDir: dir });
    runs.push(first);
    const c = await Client.open(first.url, null, { tok: token("ghost") });
    await c.next("notification_count");
    await first.mf.dispose();
    const second = await startWorker({ persistDir: dir });
    runs.push(second);
    const r = await notify({ kind: "new_follower", user_ids: ["ghost"], payload: { follower: "f" } }, second.url);
    assert.equal(r.status, 202);
    // Kept in the inbox once the push found no socket (the shard answered the queue only then).
    for (let held = []; !held.includes("ghost"); await new Promise((res) => setTimeout(res, 50))) {
      held = (await objectCall(second.mf, "INBOX_SHARD", inboxShard("ghost"), "/holders", { event_id: r.json.event_id })).json.user_ids;
    }
    const back = await Client.open(second.url, null, { tok: token("ghost") });
    assert.equal((await back.next("notification")).payload.event_id, r.json.event_id, "handed over on the next connect");
    assert.equal((await back.next("notification_count")).payload.unread, 1);
    back.close();
  });
});

describe("the shipped plugin and v1.1 details", () => {
  it("the plugin's operation shapes work over REST and WebSocket", async () => {
    const doc = "channel:abc123:description";
    const rest = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok: token("plugin-user"),
      body: { operation: { type: "Insert", clientId: 12345, timestamp: 1702569600123, position: 0, content: "Late-night" }, documentId: doc },
    });
    assert.equal(rest.status, 202, rest.text);
    assert.equal(rest.json.status, "accepted");
    const ws = await Client.join(w.url, doc, { tok: token("plugin-user"), clientId: 12345 });
    ws.send({ type: "operation", payload: { type: "INSERT", clientId: 12345, timestamp: 1702569600999, position: 10, content: " lo-fi", documentId: doc } });
    const ack = await ws.next("operation_ack");
    assert.deepEqual([ack.payload.status, ack.payload.seq], ["accepted", 2]);
    const del = { type: "Delete", clientId: 12345, position: 0, content: "Late-" };
    assert.equal((await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token("plugin-user"), body: { operation: del, documentId: doc } })).status, 202);
    const doc_ = await api(w.url, `/api/v1/documents/${doc}`, { tok: token("plugin-user") });
    assert.equal(doc_.json.content, "night lo-fi");
    ws.close();
  });

  it("error reports with second timestamps are recorded, deduplicated and counted like milliseconds", async () => {
    const tok = token("plugin-errors");
    const report = (timestamp) => ({ errors: [{ source: "Audio", severity: "Error", message: "buffer underrun", timestamp }] });
    const secs = Math.floor(Date.now() / 1000);
    const first = await api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body: report(secs) });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.recorded, 1);
    const again = await api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body: report(Date.now()) });
    assert.equal(again.json.deduplicated, 1, "seconds and milliseconds name the same hour");
    const stats = await api(w.url, "/api/v1/errors/stats?hours=1", { tok });
    assert.equal(stats.json.total, 2);
  });

  it("likes carry reactions and the owner hears the emoji and the comment text", async () => {
    const post = "reacted";
    await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("maker", { [`post:${post}`]: "write" }) });
    const owner = await Client.open(w.url, null, { tok: token("maker") });
    const watcher = await Client.join(w.url, `post:${post}`, { tok: token("w"), clientId: "w" });
    const like = await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: token("fan"), body: { emoji: "🔥" } });
    assert.equal(like.status, 200, like.text);
    assert.deepEqual((await watcher.next("engagement_update")).payload.reactions, { "🔥": 1 });
    const liked = await owner.next((m) => m.type === "notification" && m.payload.kind === "post_liked");
    assert.equal(liked.payload.emoji, "🔥");
    const c = await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("fan"), body: { text: "that bassline" } });
    const commented = await owner.next((m) => m.type === "notification" && m.payload.kind === "new_comment");
    assert.deepEqual([commented.payload.comment_id, commented.payload.text], [c.json.comment_id, "that bassline"]);
    const inbox = await api(w.url, "/api/v1/me/notifications", { tok: token("maker") });
    assert.deepEqual(inbox.json.notifications.map((n) => n.kind), ["new_comment", "post_liked"], "owner notifications are kept in the inbox");
    owner.close();
    watcher.close();
  });

  it("a hidden user reads and is pushed as offline to everyone else", async () => {
    const watcher = await Client.open(w.url, null, { tok: token("watcher") });
    const shy = await Client.open(w.url, null, { tok: token("shy") });
    assert.equal((await api(w.url, "/api/v1/me/presence", { method: "PUT", tok: token("shy"), body: { status: "online", in_studio: true } })).status, 200);
    watcher.send({ type: "watch_presence", payload: { user_ids: ["shy"] } });
    assert.equal((await watcher.next("presence")).payload.status, "online");
    const hide = await api(w.url, "/api/v1/me/presence", { method: "PUT", tok: token("shy"), body: { status: "online", in_studio: true, visible: false } });
    assert.deepEqual([hide.json.status, hide.json.visible], ["online", false], "the user still sees their own");
    assert.equal((await watcher.next("presence")).payload.status, "offline");
    const read = await api(w.url, "/api/v1/users/shy/presence", { tok: token("someone") });
    assert.deepEqual([read.json.status, read.json.in_studio], ["offline", false]);
    watcher.close();
    shy.close();
  });
});
