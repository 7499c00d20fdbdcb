// Feed engagement (§6.2): many posts' counts in one request, a post's comments by page; the
// main backend's import and on_behalf_of (§6.3); deleting a channel as a whole (§6.4).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, serviceToken, token, useWorker } from "./helpers.mjs";

const w = useWorker();
const svc = serviceToken();

const act = (post, what, user, body, method = "POST") => api(w.url, `/api/v1/posts/${post}/${what}`, { method, tok: token(user), body });
const feed = (ids, tok = token("reader")) => api(w.url, `/api/v1/posts/engagement?ids=${ids}`, { tok });
const single = async (post) => {
  const r = await api(w.url, `/api/v1/posts/${post}/engagement`, { tok: token("single-reader") });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
/** Polls an observable condition (not a fixed sleep): resolves once `check` returns truthy. */
async function eventually(check, what, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
/** The post object's own counts (the source of truth, never KV). */
const truth = async (post) => (await api(w.url, `/api/v1/documents/post:${post}`, { tok: token("truth-reader") })).json.counts;
const counts = ({ like_count, comment_count, repost_count, save_count }) => ({ like_count, comment_count, repost_count, save_count });

describe("feed counts (§6.2)", () => {
  it("answers many posts in one request, each as its own read would, KV where cached", async () => {
    await act("feed-a", "likes", "fa1", { emoji: "🔥" });
    await act("feed-a", "likes", "fa2");
    await act("feed-a", "reposts", "fa1");
    await act("feed-b", "saves", "fb1");
    await act("feed-b", "comments", "fb1", { text: "first" });
    // A cached value the object does not have proves the batch reads KV first.
    await w.kv.put("engagement:feed-cached", JSON.stringify({ post_id: "feed-cached", like_count: 42, comment_count: 0, repost_count: 0, save_count: 0, reactions: {}, version: 9 }));
    // KV is a cache written at most once a second per post (§4.3): the batch converges on the
    // objects' counts as the single read does.
    const r = await eventually(async () => {
      const r = await feed("feed-a,feed-b,feed-cached,feed-never,feed-a");
      assert.equal(r.status, 200, r.text);
      const a = counts(r.json.posts["feed-a"]), b = counts(r.json.posts["feed-b"]);
      return JSON.stringify([a, b]) === JSON.stringify([counts(await truth("feed-a")), counts(await truth("feed-b"))]) && r;
    }, "the batch to show the objects' counts");
    assert.deepEqual(Object.keys(r.json.posts).sort(), ["feed-a", "feed-b", "feed-cached", "feed-never"]);
    assert.deepEqual(counts(r.json.posts["feed-a"]), { like_count: 2, comment_count: 0, repost_count: 1, save_count: 0 });
    assert.deepEqual(r.json.posts["feed-a"].reactions, { "🔥": 1 });
    assert.deepEqual(counts(r.json.posts["feed-b"]), { like_count: 0, comment_count: 1, repost_count: 0, save_count: 1 });
    assert.equal(r.json.posts["feed-cached"].like_count, 42);
    assert.deepEqual(counts(r.json.posts["feed-never"]), { like_count: 0, comment_count: 0, repost_count: 0, save_count: 0 });
    for (const id of ["feed-a", "feed-b", "feed-never"]) assert.deepEqual(counts(r.json.posts[id]), counts(await single(id)));
    assert.ok(Number(r.headers.get("x-cache-hits")) >= 1);
  });

  it("100 posts at once, all answered (misses asked of the objects a few at a time)", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `feed-many-${i}`);
    await act(ids[37], "likes", "many-liker");
    await act(ids[99], "saves", "many-liker");
    const r = await feed(ids.join(","));
    assert.equal(r.status, 200, r.text);
    assert.equal(Object.keys(r.json.posts).length, 100);
    assert.equal(r.json.posts[ids[37]].like_count, 1);
    assert.equal(r.json.posts[ids[99]].save_count, 1);
    assert.equal(r.json.posts[ids[0]].like_count, 0);
  });

  it("hostile id lists get 400 naming the problem; no token is 401", async () => {
    const many = Array.from({ length: 101 }, (_, i) => `x${i}`).join(",");
    for (const [q, word] of [["", "ids"], ["a,,b", "post id"], ["a%2Fb", "post id"], [many, "at most 100"], ["%C3%A9", "post id"]]) {
      const r = await feed(q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.error.code, "bad_request");
      assert.ok(r.json.error.message.includes(word), r.json.error.message);
    }
    assert.equal((await api(w.url, "/api/v1/posts/engagement")).status, 401);
    assert.equal((await api(w.url, "/api/v1/posts/engagement?ids=a", { method: "POST", tok: token("x") })).status, 405);
  });
});

describe("comment pages (§6.2)", () => {
  it("pages newest first with names and times, removed comments absent, nothing skipped or repeated", async () => {
    const post = "feed-comments";
    const made = [];
    for (let i = 0; i < 23; i++) {
      const r = await act(post, "comments", `commenter-${i % 4}`, { text: `comment ${i}` });
      assert.equal(r.status, 201, r.text);
      made.push({ id: r.json.comment_id, user: `commenter-${i % 4}`, text: `comment ${i}` });
    }
    for (const gone of [made[3], made[10]]) {
      assert.equal((await act(post, `comments/${encodeURIComponent(gone.id)}`, gone.user, undefined, "DELETE")).status, 200);
    }
    const live = made.filter((_, i) => i !== 3 && i !== 10).reverse();
    const seen = [];
    let before = null;
    for (let pages = 0; pages < 10; pages++) {
      const r = await api(w.url, `/api/v1/posts/${post}/comments?limit=5${before ? `&before=${encodeURIComponent(before)}` : ""}`, { tok: token("page-reader") });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.comments.length <= 5);
      seen.push(...r.json.comments);
      before = r.json.next_before;
      if (!before) break;
    }
    assert.deepEqual(seen.map((c) => c.comment_id), live.map((c) => c.id));
    assert.deepEqual(seen.map((c) => c.text), live.map((c) => c.text));
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1].created_at >= seen[i].created_at);
    const c = seen[0];
    assert.deepEqual(Object.keys(c).sort(), ["comment_id", "created_at", "name", "text", "user_id"]);
    assert.equal(c.user_id, live[0].user);
    assert.equal(c.name, `User ${live[0].user}`);
    assert.ok(Math.abs(c.created_at - Date.now()) < 60_000, `created_at ${c.created_at} is ms since the epoch`);
  });

  it("a post without comments answers an empty page; bad parameters are 400", async () => {
    const r = await api(w.url, "/api/v1/posts/feed-silent/comments", { tok: token("page-reader") });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { comments: [], next_before: null });
    for (const q of ["limit=0", "limit=101", "limit=ten", "before=yesterday", "before=5:", "before=-1"]) {
      const bad = await api(w.url, `/api/v1/posts/feed-silent/comments?${q}`, { tok: token("page-reader") });
      assert.equal(bad.status, 400, `${q}: ${bad.text}`);
      assert.equal(bad.json.error.code, "bad_request");
    }
  });
});
