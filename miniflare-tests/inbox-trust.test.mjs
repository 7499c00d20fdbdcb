// PROTOCOL v1.2 §5.2–§5.4, written as the attacker (and the unlucky) first: like/unlike and
// comment floods against a post owner's inbox, resuming a channel by seq, transient events, an
// inbox shard down for longer than the old retry budget, and the dead-letter queue.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { useWorker, startWorker, Client, api, token, inboxShard, objectCall, eventually as poll } from "./helpers.mjs";

// The flood below is about the inbox, not the per-socket message budget (§3.4, tested elsewhere).
const w = useWorker({ bindings: { SOCKET_RATE_PER_SEC: "2000", SOCKET_BURST: "5000" } });
// A service token per caller, so these tests stay within one caller's request budget.
const serviceToken = (sub = "svc-inbox") => token(sub, {}, { role: "service" });
let calls = 0;
const notify = (body, url = w.url) => api(url, "/api/v1/notify", { method: "POST", tok: serviceToken(`svc-${Math.floor(calls++ / 50)}`), body });
// Deliveries here cross queues and retries: a longer default wait than the helpers'.
const eventually = (check, what, timeoutMs = 30_000) => poll(check, what, timeoutMs);
const modify = (seq, action, extra = {}) => ({ type: "operation", id: `m${seq}`, payload: { seq, type: "modify", action, ...extra } });


/** Every notification of `user` over REST, newest first (all pages). */
async function inboxOf(user, url = w.url) {
  const out = [];
  let before = "";
  for (;;) {
    const r = await api(url, `/api/v1/me/notifications?limit=100${before}`, { tok: token(user) });
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.notifications);
    if (r.json.next_before == null) return { items: out, unread: r.json.unread };
    before = `&before=${r.json.next_before}`;
  }
}

/** A user's notifications read from their inbox shard directly (polling without the API's limits). */
async function shardInbox(user, mf = w.mf) {
  const r = await objectCall(mf, "INBOX_SHARD", inboxShard(user), "/page", { user_id: user, limit: 100, before: null, timeline: false });
  return r.json.notifications;
}

const notes = (c) => c.inbox.filter((m) => m.type === "notification").map((m) => m.payload);

describe("§5.2 aggregated owner notifications", () => {
  it("1,000 like/unlike toggles and 300 comments by 3 users leave 40 follows readable and ≤ 3 unread items for the post", async () => {
    const owner = "victim-owner";
    assert.equal((await api(w.url, "/api/v1/posts/flood", { method: "PUT", tok: token(owner), body: {} })).status, 200);
    const watcher = await Client.open(w.url, null, { tok: token(owner) });
    await watcher.next("notification_count");
    for (let i = 0; i < 40; i++) {
      assert.equal((await notify({ event_id: `follow-${i}`, kind: "new_follower", user_ids: [owner], actor: { id: `fan${i}`, name: `Fan ${i}` } })).status, 202);
    }
    await eventually(() => notes(watcher).length === 40, "the 40 follows, pushed");
    const attackers = ["att-a", "att-b", "att-c"];
    const sockets = await Promise.all(attackers.map((u) => Client.join(w.url, "post:flood", { tok: token(u), clientId: `${u}-1` })));
    const seqs = [0, 0, 0];
    const act = async (k, action, extra) => {
      const s = sockets[k];
      s.send(modify(++seqs[k], action, extra));
      const m = await s.next((x) => x.type === "operation_ack" || x.type === "error");
      assert.equal(m.type, "operation_ack", JSON.stringify(m.payload));
    };
    for (let i = 0; i < 500; i++) {
      await act(i % 3, "like", { emoji: "🔥" });
      await act(i % 3, "unlike");
    }
    for (let i = 0; i < 300; i++) await act(i % 3, "comment", { text: `spam ${i}` });
    await act(0, "like", { emoji: "🏁" });
    await act(1, "comment", { text: "last" });
    // The outbox delivers in order: once the last two are in, everything before them is.
    await eventually(() => notes(watcher).some((n) => n.emoji === "🏁") && notes(watcher).some((n) => n.text === "last"), "the owner's outbox to drain", 120_000);
    const inbox = await inboxOf(owner);
    const post = inbox.items.filter((n) => n.post_id === "flood");
    const done = { inbox, post, likes: post.find((n) => n.kind === "post_liked"), comments: post.find((n) => n.kind === "new_comment") };
    assert.deepEqual([done.likes.emoji, done.comments.text], ["🏁", "last"]);
    const follows = done.inbox.items.filter((n) => n.kind === "new_follower").map((n) => n.event_id).sort();
    assert.deepEqual(follows, Array.from({ length: 40 }, (_, i) => `follow-${i}`).sort(), "every earlier notification is readable");
    const unreadForPost = done.post.filter((n) => !n.read);
    assert.ok(unreadForPost.length <= 3, `${unreadForPost.length} unread items for the post`);
    assert.equal(done.post.length, 2, "one item per kind");
    assert.equal(done.likes.count, 3, "three distinct likers, however often they toggled");
    assert.deepEqual(done.likes.actors.map((a) => a.id), ["att-a", "att-b", "att-c"], "the latest three, newest first");
    assert.equal(done.comments.count, 3);
    assert.equal(done.inbox.unread, 42, "updates never raised unread");
    // Live: updates come as "updated": true on the same event id, and the count stayed at 42.
    const live = notes(watcher).find((n) => n.emoji === "🏁");
    assert.deepEqual([live.updated, live.event_id, live.count], [true, done.likes.event_id, 3]);
    const pushedSeqs = notes(watcher).map((n) => n.seq);
    assert.deepEqual(pushedSeqs, [...pushedSeqs].sort((a, b) => a - b), "pushed in seq order");
    const counts = watcher.inbox.filter((m) => m.type === "notification_count").map((m) => m.payload.unread);
    assert.ok(counts.every((c) => c <= 42), `counts: ${counts}`);
    // After a read the next like starts a new item.
    const read = await api(w.url, "/api/v1/me/notifications/read", { method: "POST", tok: token(owner), body: { event_ids: [done.likes.event_id] } });
    assert.equal(read.json.unread, 41);
    await act(2, "unlike");
    await act(2, "like", { emoji: "✨" });
    const fresh = await eventually(() => notes(watcher).find((n) => n.emoji === "✨"), "a new item");
    assert.notEqual(fresh.event_id, done.likes.event_id);
    assert.deepEqual([fresh.count, fresh.read], [1, false]);
    watcher.close();
    sockets.forEach((s) => s.close());
  });
});

describe("§5.3 inbox delivery by cursor", () => {
  it("a reconnect with the highest seq seen shows nothing twice and loses nothing", async () => {
    const u = "cursor-user";
    const first = await Client.open(w.url, null, { tok: token(u) });
    await first.next("notification_count");
    for (let i = 0; i < 5; i++) await notify({ event_id: `cur-a${i}`, kind: "new_post", user_ids: [u] });
    await eventually(() => notes(first).length === 5, "five live notifications");
    const live = notes(first);
    const seqs = live.map((n) => n.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "pushed in seq order");
    assert.equal(new Set(seqs).size, 5);
    const highest = Math.max(...seqs);
    first.close();
    await first.waitClosed();
    // While away: five more, and an owner notification that is then updated.
    for (let i = 0; i < 5; i++) await notify({ event_id: `cur-b${i}`, kind: "new_post", user_ids: [u] });
    await api(w.url, "/api/v1/posts/cursor-post", { method: "PUT", tok: token(u), body: {} });
    await api(w.url, "/api/v1/posts/cursor-post/likes", { method: "POST", tok: token("liker1"), body: {} });
    await api(w.url, "/api/v1/posts/cursor-post/likes", { method: "POST", tok: token("liker2"), body: {} });
    await eventually(async () => {
      const kept = await shardInbox(u);
      return kept.some((n) => n.count === 2) && kept.filter((n) => n.event_id.startsWith("cur-b")).length === 5;
    }, "the five and the aggregated like, kept");
    const rest = await inboxOf(u);
    const again = await Client.open(w.url, null, { tok: token(u), sinceSeq: highest });
    const count = await again.next("notification_count");
    const resumed = notes(again);
    assert.deepEqual(resumed.map((n) => n.event_id).filter((id) => id.startsWith("cur-b")), ["cur-b0", "cur-b1", "cur-b2", "cur-b3", "cur-b4"]);
    assert.deepEqual(resumed.map((n) => n.seq), [...resumed.map((n) => n.seq)].sort((a, b) => a - b), "oldest first");
    assert.equal(resumed.length, 6, "the five and the like item once, at its latest");
    assert.ok(resumed.every((n) => n.seq > highest));
    assert.equal(resumed.find((n) => n.post_id === "cursor-post").count, 2);
    assert.ok(again.inbox.indexOf(count) === -1 && count.payload.unread === 11, "the count follows the items");
    // Socket and REST see the same inbox with the same seqs.
    const bySeq = Object.fromEntries(rest.items.map((n) => [n.event_id, n.seq]));
    for (const n of [...live, ...resumed]) assert.equal(bySeq[n.event_id], n.seq, n.event_id);
    // Without a cursor: the unread ones, oldest first.
    const plain = await Client.open(w.url, null, { tok: token(u) });
    await plain.next("notification_count");
    assert.equal(notes(plain).length, 11);
    again.close();
    plain.close();
  });

  it("refuses a since_seq that is not a non-negative integer", async () => {
    const bad = await Client.open(w.url, null, { tok: token("cursor-bad"), sinceSeq: "x", expectFail: true });
    assert.equal(bad.refusedStatus, 400);
  });
});

describe("§5.4 transient events", () => {
  it("store: false reaches open channels only, is not kept and changes no count", async () => {
    const on = await Client.open(w.url, null, { tok: token("tr-on") });
    assert.equal((await on.next("notification_count")).payload.unread, 0);
    const r = await notify({ kind: "follower_count_update", user_ids: ["tr-on", "tr-off"], payload: { followers: 12 }, store: false });
    assert.equal(r.status, 202, r.text);
    const got = await on.next("notification");
    assert.deepEqual([got.payload.event_id, got.payload.transient, got.payload.payload.followers, got.payload.seq], [r.json.event_id, true, 12, undefined]);
    // A kept marker afterwards: the transient event was not kept for either user.
    await notify({ event_id: "tr-marker", kind: "new_post", user_ids: ["tr-on", "tr-off"] });
    await on.next((m) => m.type === "notification" && m.payload.event_id === "tr-marker");
    for (const u of ["tr-on", "tr-off"]) {
      await eventually(async () => (await shardInbox(u)).length, `${u}'s marker`);
      const inbox = await inboxOf(u);
      assert.deepEqual([inbox.items.map((n) => n.event_id), inbox.unread], [["tr-marker"], 1]);
    }
    assert.equal(notes(on).length, 0, "no copy of the transient event");
    const late = await Client.open(w.url, null, { tok: token("tr-off") });
    await late.next("notification_count");
    assert.deepEqual(notes(late).map((n) => n.event_id), ["tr-marker"]);
    assert.equal((await notify({ kind: "k", user_ids: ["a"], store: "no" })).status, 400);
    on.close();
    late.close();
  });
});

describe("§5.4 accepted means delivered", () => {
  const DOWN_S = 15; // the old budget: 10 retries 1 s apart
  const faulty = {};
  before(async () => Object.assign(faulty, await startWorker({ bindings: { FAULT_INBOX_DOWN: `down-victim:${DOWN_S}` } })));
  after(async () => faulty.mf.dispose());

  it("an inbox shard failing for longer than the old retry budget: every recipient gets the event once", async () => {
    const users = ["down-victim", ...Array.from({ length: 40 }, (_, i) => `down-u${i}`)];
    const online = users.filter((_, i) => i % 4 === 0);
    const sockets = await Promise.all(online.map((u) => Client.open(faulty.url, null, { tok: token(u) })));
    await Promise.all(sockets.map((c) => c.next("notification_count")));
    const started = Date.now();
    const r = await notify({ event_id: "survives", kind: "new_post", user_ids: users }, faulty.url);
    assert.equal(r.status, 202);
    const metrics = () => api(faulty.url, "/api/v1/websocket/metrics", { tok: serviceToken(`svc-m${calls++}`) }).then((m) => m.json);
    assert.ok((await metrics()).notify_pending >= 1, "pending while the shard is down");
    await Promise.all(sockets.map((c) => c.next((m) => m.type === "notification" && m.payload.event_id === "survives", 120_000).then((m) => c.inbox.push(m))));
    assert.ok(Date.now() - started >= DOWN_S * 1000, "the victim's shard really was down past the old budget");
    for (const u of users) {
      await eventually(async () => (await shardInbox(u, faulty.mf)).length, `${u}'s inbox`, 60_000);
      const inbox = await inboxOf(u, faulty.url);
      assert.deepEqual(inbox.items.map((n) => n.event_id), ["survives"], u);
    }
    await eventually(async () => (await metrics()).notify_pending === 0, "nothing pending", 60_000);
    // A marker proves the sockets would have shown a second copy by now.
    await notify({ event_id: "after", kind: "new_post", user_ids: online }, faulty.url);
    await Promise.all(sockets.map((c) => c.next((m) => m.type === "notification" && m.payload.event_id === "after", 60_000)));
    for (const c of sockets) assert.equal(notes(c).filter((n) => n.event_id === "survives").length, 1, "exactly once");
    assert.equal((await metrics()).notify_dead_lettered, 0);
    sockets.forEach((c) => c.close());
  });
});

describe("§5.4 the dead-letter queue", () => {
  const dead = {};
  before(async () => Object.assign(dead, await startWorker({ bindings: { FAULT_INBOX_DOWN: "dl-victim:3600" }, queueOverrides: { maxRetries: 1 } })));
  after(async () => dead.mf.dispose());

  it("a message that exhausts its retries is kept for replay and counted", async () => {
    const r = await notify({ event_id: "doomed", kind: "new_post", user_ids: ["dl-victim"] }, dead.url);
    assert.equal(r.status, 202);
    const metrics = () => api(dead.url, "/api/v1/websocket/metrics", { tok: serviceToken(`svc-m${calls++}`) }).then((m) => m.json);
    const m = await eventually(async () => ((x) => x.notify_dead_lettered === 1 && x)(await metrics()), "the dead letter", 60_000);
    assert.equal(m.notify_pending, 0);
    const row = await dead.db.prepare("SELECT event_id, recipients, replayed_at FROM notify_dead_letters").first();
    assert.deepEqual([row.event_id, row.recipients, row.replayed_at], ["doomed", 1, null]);
    assert.equal((await api(dead.url, "/api/v1/notify/dead-letters/replay", { method: "POST", tok: token("someone"), body: {} })).status, 403);
    const replay = await api(dead.url, "/api/v1/notify/dead-letters/replay", { method: "POST", tok: serviceToken(), body: {} });
    assert.deepEqual([replay.status, replay.json.replayed], [202, 1]);
    const bad = await api(dead.url, "/api/v1/notify/dead-letters/replay", { method: "POST", tok: serviceToken("svc-bad"), body: { limit: 0 } });
    assert.equal(bad.status, 400, "a bad limit is refused");
    assert.equal((await metrics()).notify_dead_lettered, 0, "replayed letters leave the count");
  });
});
