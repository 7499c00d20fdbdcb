// `watch_posts` on the personal channel (§6.2 [1.2]): the attacker's bounds first, then 2,000
// feeds (1,000 users, two sockets each) watching one post while 200 likes arrive over 10 s
// (every feed ends with the final counts, none hears of the post more than about once a
// second), and a feed of 100 posts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, eventually, pool, serviceToken, token, useWorker } from "./helpers.mjs";

const w = useWorker();
// 2,000 feeds: 1,000 users with two sockets each (a web tab and the plugin), so 1,000 personal
// channel objects. The local runtime fails past ~1,300 SQLite-backed objects in one process
// (SQLITE_NOMEM, docs/benchmarks.md "Feed fan-out"), which a deployment does not share.
const FEEDS = Number(process.env.FEED_WATCHERS ?? 2000);

const like = (post, user) => api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: serviceToken(), body: { on_behalf_of: user } });
const metrics = async (post) => (await api(w.url, `/api/v1/documents/post:${post}/metrics`, { tok: serviceToken() })).json;

/** A channel socket that keeps every `engagement_update` it hears, with when. */
async function feed(user, postIds) {
  const c = await Client.open(w.url, null, { tok: token(user) });
  c.updates = [];
  c.ws.on("message", (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === "engagement_update") c.updates.push({ at: Date.now(), pushed: m.reply_to === null, ...m.payload });
  });
  c.send({ type: "watch_posts", id: "w", payload: { post_ids: postIds } });
  return c;
}

/** [`feed`] whose watch is answered: a user's second socket may be inside the user's one watch
 * a second, so a `rate_limited` answer is sent again after the wait the server names. */
async function answeredFeed(user, postIds) {
  const c = await feed(user, postIds);
  for (let n = 0; ; n++) {
    const m = await c.next((x) => x.reply_to === (n ? `w${n}` : "w"), 30_000);
    if (m.type === "engagement_update") return c;
    assert.equal(m.payload.code, "rate_limited", JSON.stringify(m.payload));
    await new Promise((res) => setTimeout(res, m.payload.retry_after_ms)); // the server's own backoff
    c.send({ type: "watch_posts", id: `w${n + 1}`, payload: { post_ids: postIds } });
  }
}

const latest = (c, post) => c.updates.filter((u) => u.post_id === post).at(-1);

describe("watch_posts", () => {
  it("attacker first: one user's watches are bounded in size, in rate and across sockets", async () => {
    const c = await Client.open(w.url, null, { tok: token("greedy") });
    c.send({ type: "watch_posts", id: "big", payload: { post_ids: Array.from({ length: 101 }, (_, i) => `p${i}`) } });
    assert.equal((await c.next("error")).payload.code, "too_large");
    c.send({ type: "watch_posts", id: "bad", payload: { post_ids: ["no spaces"] } });
    assert.equal((await c.next("error")).payload.code, "bad_request");
    // Two watches back to back: the second is inside the first's second (the first is one post,
    // so its answer is quick even on a loaded machine).
    c.send({ type: "watch_posts", id: "ok", payload: { post_ids: ["greedy-a0"] } });
    c.send({ type: "watch_posts", id: "fast", payload: { post_ids: ["x"] } });
    await c.next((m) => m.type === "engagement_update" && m.reply_to === "ok");
    const fast = await c.next((m) => m.reply_to === "fast");
    assert.equal(fast.payload.code, "rate_limited", JSON.stringify(fast));
    assert.ok(fast.payload.retry_after_ms > 0 && fast.payload.retry_after_ms <= 1000);
    // The full 100 posts, once the second has passed.
    await eventually(async () => {
      c.send({ type: "watch_posts", id: "full", payload: { post_ids: Array.from({ length: 100 }, (_, i) => `greedy-a${i}`) } });
      const m = await c.next((x) => x.reply_to === "full");
      return m.type === "engagement_update" || (m.payload.code === "rate_limited" ? null : assert.fail(JSON.stringify(m.payload)));
    }, "the 100-post watch");
    // More sockets of the same user: together at most 200 distinct posts.
    const d = await Client.open(w.url, null, { tok: token("greedy") });
    await eventually(async () => {
      d.send({ type: "watch_posts", id: "b", payload: { post_ids: Array.from({ length: 100 }, (_, i) => `greedy-b${i}`) } });
      const m = await d.next((x) => x.reply_to === "b");
      return m.type === "engagement_update" || (m.payload.code === "rate_limited" ? null : assert.fail(JSON.stringify(m.payload)));
    }, "the second socket's watch");
    const e = await Client.open(w.url, null, { tok: token("greedy") });
    let refused;
    await eventually(async () => {
      e.send({ type: "watch_posts", id: "c", payload: { post_ids: ["greedy-c0"] } });
      refused = await e.next((x) => x.reply_to === "c");
      return refused.payload.code !== "rate_limited";
    }, "the third socket's answer");
    assert.equal(refused.payload.code, "too_large", "201 distinct posts across the user's sockets");
    for (const s of [c, d, e]) s.close();
  });

  it("a new list replaces the old: the post left out forgets the watcher, the new one is pushed", async () => {
    const c = await answeredFeed("switcher", ["sw-old"]);
    await like("sw-old", "sw-fan-1");
    await eventually(() => latest(c, "sw-old")?.like_count === 1, "the old post's push");
    // The second watch names only the new post (sent again after the server's once-a-second wait).
    for (let n = 1; ; n++) {
      c.send({ type: "watch_posts", id: `r${n}`, payload: { post_ids: ["sw-new"] } });
      const m = await c.next((x) => x.reply_to === `r${n}`);
      if (m.type === "engagement_update") break;
      assert.equal(m.payload.code, "rate_limited", JSON.stringify(m.payload));
      await new Promise((res) => setTimeout(res, m.payload.retry_after_ms)); // the server's own backoff
    }
    await like("sw-old", "sw-fan-3"); // after the replacement: not this socket's business any more
    await like("sw-new", "sw-fan-2");
    await eventually(() => latest(c, "sw-new")?.like_count === 1, "the new post's push");
    // The old post stops knowing the watcher's shard (it learns so when a push finds no one).
    const gone = await eventually(async () => ((await metrics("sw-old")).watch_shards === 0 ? true : (await like("sw-old", `sw-late-${Date.now()}`), false)), "the old post to forget its shard", 15_000);
    assert.ok(gone);
    assert.ok(!c.updates.some((u) => u.post_id === "sw-old" && u.like_count >= 2), "no push of the old post after the replacement");
    c.close();
  });

  it(`${FEEDS} feeds watch one post while 200 likes arrive over 10 s: all end on the final counts, ~1 update/s each`, async () => {
    const post = "hot-watch";
    const users = Array.from({ length: Math.ceil(FEEDS / 2) }, (_, i) => `fan-${i}`);
    const sockets = [...users, ...users].slice(0, FEEDS); // each user's second socket after all firsts
    const feeds = await pool(sockets, 50, (u) => answeredFeed(u, [post]));
    assert.equal(feeds.length, FEEDS);
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const r = await like(post, `liker-${i}`);
      assert.equal(r.status, 200, r.text);
      const wait = started + (i + 1) * 50 - Date.now(); // 20 likes a second: a paced load, not a sync
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
    await eventually(() => feeds.every((c) => latest(c, post)?.like_count === 200), "every feed to hear like_count 200", 30_000);
    const seconds = (Date.now() - started) / 1000;
    let worst = 0;
    for (const c of feeds) {
      const pushed = c.updates.filter((u) => u.pushed && u.post_id === post);
      for (let i = 1; i < pushed.length; i++) worst = Math.max(worst, 1000 / Math.max(1, pushed[i].at - pushed[i - 1].at));
      assert.ok(pushed.length <= seconds + 2, `${pushed.length} pushes in ${seconds.toFixed(1)} s`);
    }
    assert.ok(worst < 1.5, `no feed hears of the post faster than ~1/s (worst ${worst.toFixed(2)}/s)`);
    const m = await metrics(post);
    assert.ok(m.watch_shards <= 64, "the post knows shards, not channels");
    assert.ok(m.watch_calls <= m.watch_pushes * 64, `${m.watch_calls} calls for ${m.watch_pushes} pushes`);
    feeds.forEach((c) => c.close());
  });

  it("a feed of 100 posts with likes spread over them ends on every post's counts", async () => {
    const posts = Array.from({ length: 100 }, (_, i) => `spread-${i}`);
    const c = await feed("reader-100", posts);
    await eventually(() => new Set(c.updates.map((u) => u.post_id)).size === 100, "the first counts of all 100");
    const likes = Array.from({ length: 300 }, (_, i) => [posts[(i * 37) % 100], `sp-${i}`]);
    const statuses = await pool(likes, 10, async ([p, u]) => (await like(p, u)).status);
    assert.deepEqual([...new Set(statuses)], [200], "every like taken");
    // 300 likes by distinct users, three on each post (37 and 100 are coprime).
    await eventually(() => posts.every((p) => latest(c, p)?.like_count === 3), "every post's final counts", 20_000);
    assert.equal(posts.reduce((n, p) => n + latest(c, p).like_count, 0), 300);
    // Closing the socket lapses the watch: the next change is not pushed anywhere.
    c.close();
    await c.waitClosed();
    await like(posts[0], "after-close");
    const m = await eventually(async () => ((await metrics(posts[0])).watch_shards === 0 ? true : (await like(posts[0], `again-${Date.now()}`), false)), "the post to forget its shard", 15_000);
    assert.ok(m);
  });
});
