// Live engagement: post counters, the KV cache, owner notifications on the personal channel.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, token, useWorker, eventually } from "./helpers.mjs";

const w = useWorker();

const like = (post, user, body) => api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: token(user), body });
const modify = (seq, action, extra = {}) => ({ type: "operation", id: `e${seq}`, payload: { seq, type: "modify", action, ...extra } });


describe("engagement", () => {
  it("two sockets on a post see every update, in order, the submitter included", async () => {
    const a = await Client.open(w.url, "post:p1", { tok: token("amy"), clientId: "amy-web" });
    const init = await a.next("initial_state");
    assert.equal(init.payload.kind, "engagement");
    assert.deepEqual(init.payload.counts, { like_count: 0, comment_count: 0, repost_count: 0, save_count: 0, reactions: {} });
    const b = await Client.join(w.url, "post:p1", { tok: token("bo"), clientId: "bo-plugin" });
    a.send(modify(1, "like", { emoji: "🔥" }));
    const ack = await a.next("operation_ack");
    assert.equal(ack.payload.status, "accepted");
    const update = await a.next("engagement_update");
    assert.ok(update.__n > ack.__n, "the update follows the ack");
    assert.deepEqual(update.payload, { post_id: "p1", like_count: 1, comment_count: 0, repost_count: 0, save_count: 0, reactions: { "🔥": 1 }, version: 1 });
    assert.equal((await b.next("operation")).payload.ops[0].action, "like");
    assert.equal((await b.next("engagement_update")).payload.like_count, 1);
    a.send(modify(2, "like"));
    assert.equal((await a.next("operation_ack")).payload.status, "noop", "a second like by the same user");
    await like("p1", "cy");
    await api(w.url, "/api/v1/posts/p1/reposts", { method: "POST", tok: token("cy") });
    // §9 [1.2]: updates are coalesced to at most one per 100 ms, always the latest counts, so
    // the two actions may arrive as one update; whatever comes is in order and ends at version 3.
    const versions = [];
    while (!versions.length || versions.at(-1).version < 3) versions.push((await b.next("engagement_update")).payload);
    const seen = Object.fromEntries(versions.map((v) => [v.version, [v.version, v.like_count, v.repost_count]]));
    assert.deepEqual(versions.map((v) => v.version), [...versions.map((v) => v.version)].sort((x, y) => x - y), "in order");
    assert.deepEqual(seen[3], [3, 2, 1]);
    if (seen[2]) assert.deepEqual(seen[2], [2, 2, 0]);
    a.close();
    b.close();
  });

  it("REST and WebSocket actions interleaved give exact counts", async () => {
    const post = "p2";
    const s = await Client.join(w.url, `post:${post}`, { tok: token("u1"), clientId: "u1-ws" });
    s.send(modify(1, "like"));
    await s.next("operation_ack");
    assert.equal((await like(post, "u1")).json.changed, false, "REST like after a WebSocket like by the same user");
    assert.equal((await like(post, "u2", { emoji: "❤️" })).json.like_count, 2);
    const c = await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("u2"), body: { text: "sick drop" } });
    assert.equal(c.status, 201, c.text);
    s.send(modify(2, "comment", { text: "thanks!" }));
    await s.next("operation_ack");
    assert.equal((await api(w.url, `/api/v1/posts/${post}/comments/${c.json.comment_id}`, { method: "DELETE", tok: token("u1") })).status, 403, "not the author");
    const del = await api(w.url, `/api/v1/posts/${post}/comments/${c.json.comment_id}`, { method: "DELETE", tok: token("u2") });
    assert.deepEqual([del.json.changed, del.json.comment_count], [true, 1]);
    const again = await api(w.url, `/api/v1/posts/${post}/comments/${c.json.comment_id}`, { method: "DELETE", tok: token("u2") });
    assert.deepEqual([again.json.changed, again.json.comment_count], [false, 1], "a comment is removed once");
    s.send(modify(3, "unlike"));
    await s.next("operation_ack");
    const unlikeAgain = await api(w.url, `/api/v1/posts/${post}/likes`, { method: "DELETE", tok: token("u1") });
    assert.equal(unlikeAgain.json.changed, false);
    await api(w.url, `/api/v1/posts/${post}/saves`, { method: "POST", tok: token("u3") });
    const final = await api(w.url, `/api/v1/documents/post:${post}`, { tok: token("u1") });
    assert.deepEqual(final.json.counts, { like_count: 1, comment_count: 1, repost_count: 0, save_count: 1, reactions: { "❤️": 1 } });
    const bad = await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("u1"), body: { text: "" } });
    assert.equal(bad.status, 413);
    s.close();
  });

  it("200 likes from 200 users in a burst: 200 everywhere, KV written about once a second", async () => {
    const post = "burst";
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => like(post, `fan-${i}`)));
    const burstSecs = (Date.now() - started) / 1000;
    assert.ok(results.every((r) => r.status === 200 && r.json.changed), results.find((r) => r.status !== 200)?.text);
    const doc = await api(w.url, `/api/v1/documents/post:${post}`, { tok: token("fan-0") });
    assert.equal(doc.json.counts.like_count, 200);
    const cached = await eventually(async () => {
      const v = await w.kv.get(`engagement:${post}`, "json");
      return v?.like_count === 200 && v;
    }, "KV to hold the final count");
    assert.equal(cached.version, 200);
    const viaApi = await api(w.url, `/api/v1/posts/${post}/engagement`, { tok: token("reader") });
    assert.equal(viaApi.headers.get("x-cache"), "hit");
    assert.equal(viaApi.json.like_count, 200);
    const writes = (await api(w.url, `/api/v1/documents/post:${post}/metrics`, { tok: token("reader") })).json.kv_writes;
    const elapsed = (Date.now() - started) / 1000;
    assert.ok(writes >= 1 && writes <= Math.ceil(elapsed) + 1, `${writes} KV writes in ${elapsed.toFixed(1)} s (burst ${burstSecs.toFixed(1)} s)`);
  });

  it("a cache miss is answered by the post's object and fills KV", async () => {
    await like("cold", "x1");
    await w.kv.delete("engagement:cold");
    const miss = await api(w.url, "/api/v1/posts/cold/engagement", { tok: token("x2") });
    assert.equal(miss.headers.get("x-cache"), "miss");
    assert.equal(miss.json.like_count, 1);
    await eventually(async () => (await w.kv.get("engagement:cold", "json"))?.like_count === 1, "KV refill");
    assert.equal((await api(w.url, "/api/v1/posts/cold/engagement", { tok: token("x2") })).headers.get("x-cache"), "hit");
  });

  it("the owner hears of others' likes, comments and reposts once per socket, never of their own", async () => {
    const post = "owned";
    const reg = await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("owner") });
    assert.equal(reg.status, 200, reg.text);
    assert.equal((await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("thief") })).status, 403);
    const phone = await Client.open(w.url, null, { tok: token("owner") });
    const laptop = await Client.open(w.url, null, { tok: token("owner") });
    await like(post, "owner");
    await like(post, "fan-a", { emoji: "🎧" });
    await like(post, "fan-a");
    await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("fan-b"), body: { text: "🔥" } });
    await api(w.url, `/api/v1/posts/${post}/reposts`, { method: "POST", tok: token("fan-c") });
    await api(w.url, `/api/v1/posts/${post}/saves`, { method: "POST", tok: token("fan-d") });
    await like(post, "fan-e");
    for (const socket of [phone, laptop]) {
      await socket.next((m) => m.type === "notification" && m.payload.actor.id === "fan-e");
      const seen = socket.inbox.filter((m) => m.type === "notification");
      assert.deepEqual(seen.map((m) => [m.payload.kind, m.payload.actor.id]), [["post_liked", "fan-a"], ["new_comment", "fan-b"], ["post_reposted", "fan-c"]]);
      assert.equal(seen[0].payload.post_id, post);
      assert.equal(seen[0].payload.counts.like_count, 2);
      socket.close();
    }
  });

  // §5.2/§5.3 [1.2] change this test: the two likes (unread) are one aggregated item, and
  // "once" is per cursor — a reconnect with the highest seq seen gets nothing again.
  it("notifications for an owner with no open socket are kept and delivered on connect, once", async () => {
    await api(w.url, "/api/v1/posts/offline", { method: "PUT", tok: token("sleeper") });
    await like("offline", "early-1");
    await like("offline", "early-2");
    const s = await Client.open(w.url, null, { tok: token("sleeper") });
    // Kept before the connect, or pushed as it is updated: the item with both likers.
    const got = [await s.next((m) => m.type === "notification" && m.payload.count === 2)];
    assert.deepEqual(got[0].payload.actors.map((a) => a.id), ["early-2", "early-1"]);
    s.send({ type: "ping", id: "p" });
    await s.next("pong");
    const seen = s.inbox.filter((m) => m.type === "notification");
    assert.ok(seen.every((m) => m.payload.event_id === got[0].payload.event_id && m.payload.seq < got[0].payload.seq), "one item, earlier versions only");
    s.close();
    await s.waitClosed();
    const again = await Client.open(w.url, null, { tok: token("sleeper"), sinceSeq: got[0].payload.seq });
    again.send({ type: "ping", id: "p2" });
    await again.next("pong");
    assert.equal(again.inbox.filter((m) => m.type === "notification").length, 0, "kept notifications are delivered once");
    again.close();
  });

  it("post routes validate methods and ids", async () => {
    const tok = token("v");
    assert.equal((await api(w.url, "/api/v1/posts/p/likes", { tok })).status, 405);
    assert.equal((await api(w.url, "/api/v1/posts/p/hugs", { method: "POST", tok })).status, 404);
    assert.equal((await api(w.url, "/api/v1/posts/bad%20id/likes", { method: "POST", tok })).status, 400);
    assert.equal((await api(w.url, "/api/v1/posts/p/likes", { method: "POST" })).status, 401);
  });

  it("posts need no grant: a token without docs may watch and act", async () => {
    const plain = token("plain", {});
    const s = await Client.open(w.url, "post:open", { tok: plain, clientId: "plain-1" });
    assert.equal((await s.next("initial_state")).payload.role, "write");
    const r = await api(w.url, "/api/v1/posts/open/saves", { method: "POST", tok: plain });
    assert.deepEqual([r.status, r.json.save_count], [200, 1]);
    assert.equal((await s.next("engagement_update")).payload.save_count, 1);
    assert.equal((await api(w.url, "/api/v1/documents/channel:x:description", { tok: plain })).status, 403, "text still needs a grant");
    s.close();
  });
});
