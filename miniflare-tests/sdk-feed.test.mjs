// SDK: `client.feed(postIds)` (§6.2) against the built worker: the live counts map from the batch
// read and watch_posts, updates when other users like and comment, a reconnect through a proxy
// that cuts every connection, bad input refused with clear errors; `post.comments()` and the
// post room's live `comment` events.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { api, serviceToken, token, useWorker } from "./helpers.mjs";
import { portOf, startProxy, trackedClients, waitFor } from "./sdk-helpers.mjs";

const w = useWorker();
const make = trackedClients();

/** `ws` without compression, so the proxy passes plain frames. */
class PlainWS extends WebSocket {
  constructor(url) {
    super(url, { perMessageDeflate: false });
  }
}

const likeAs = async (post, user) => {
  const r = await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: serviceToken(), body: { on_behalf_of: user } });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const count = (feed, post, key = "like_count") => feed.get(post)?.[key];

describe("SDK: client.feed", () => {
  it("reads the counts at once, then follows other users' likes and comments", async () => {
    const posts = ["sdkfeed-a", "sdkfeed-b", "sdkfeed-c"];
    await likeAs(posts[0], "early-1");
    await likeAs(posts[0], "early-2");
    const feed = make(w.url, token("feed-reader"), "feed-r").feed(posts.map((p, i) => (i === 1 ? `post:${p}` : p)));
    await feed.ready;
    assert.deepEqual(feed.postIds, posts, "post: prefixes are dropped");
    assert.equal(feed.counts.size, 3, "the batch read brought every post's counts");
    // KV may serve the batch read a second stale; the watch's answer brings the latest.
    await waitFor(() => count(feed, posts[0]) === 2, [feed], { describe: () => JSON.stringify(feed.get(posts[0])) });
    assert.equal(count(feed, posts[2]), 0, "a post nobody engaged with yet has zero counts");
    const seen = [];
    feed.on("change", (p) => seen.push(p.post_id));
    // Another user likes through the SDK; a third comments.
    await make(w.url, token("feed-liker"), "feed-l").post(posts[1]).like("🔥");
    await waitFor(() => count(feed, posts[1]) === 1, [feed], { describe: () => JSON.stringify(feed.get(posts[1])) });
    const { commentId } = await make(w.url, token("feed-commenter"), "feed-c").post(posts[2]).comment("nice 🎧");
    assert.ok(commentId);
    await waitFor(() => count(feed, posts[2], "comment_count") === 1, [feed], { describe: () => JSON.stringify(feed.get(posts[2])) });
    assert.ok(seen.includes(posts[1]) && seen.includes(posts[2]), seen.join());
    // Dropping a post from the feed forgets it; a change to it is not taken any more.
    await feed.setPosts([posts[0], posts[1]]);
    assert.equal(feed.get(posts[2]), undefined);
    feed.close();
  });

  it("survives a reconnect: counts changed while cut off arrive with the new watch", async () => {
    const post = "sdkfeed-cut";
    const proxy = await startProxy(portOf(w.url));
    const client = make(`http://127.0.0.1:${proxy.port}`, token("feed-cut"), "feed-cut", { WebSocket: PlainWS, heartbeatMs: 0 });
    const feed = client.feed([post]);
    await feed.ready;
    await likeAs(post, "cut-1");
    await waitFor(() => count(feed, post) === 1, [feed]);
    // Cut every connection and refuse new ones while two more likes land.
    proxy.accepting = false;
    assert.ok(proxy.cutAll() >= 1);
    await likeAs(post, "cut-2");
    await likeAs(post, "cut-3");
    proxy.accepting = true;
    await waitFor(() => count(feed, post) === 3, [feed], { describe: () => JSON.stringify(feed.get(post)) });
    assert.ok(proxy.connections >= 2, "the channel connected again");
    // And the renewed watch keeps following.
    await likeAs(post, "cut-4");
    await waitFor(() => count(feed, post) === 4, [feed]);
    feed.close();
    await proxy.close();
  });

  it("bad input: too many ids, malformed ids and a refused watch give clear errors", async () => {
    const client = make(w.url, token("feed-bad"), "feed-bad");
    assert.throws(() => client.feed(Array.from({ length: 101 }, (_, i) => `p${i}`)), { name: "RangeError", message: /at most 100 posts \(got 101\)/ });
    assert.throws(() => client.feed(["fine", "no spaces"]), { name: "TypeError", message: /"no spaces" must match/ });
    assert.throws(() => client.feed("p1"), { name: "TypeError", message: /array/ });
    assert.ok(!client._channel, "a refused feed opened no channel");
    // The REST batch read refuses the same with 400 and says why.
    await assert.rejects(client.feedCounts(["bad id"]), (e) => e.status === 400 && e.code === "bad_request" && /must match/.test(e.message));
    const r = await api(w.url, `/api/v1/posts/engagement?ids=${Array.from({ length: 101 }, (_, i) => `q${i}`).join(",")}`, { tok: token("feed-bad") });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /at most 100/);
    // Unknown ids are posts with no engagement yet: zero counts, version 0 — not an error.
    const unknown = client.feed(["never-seen-1", "never-seen-2"]);
    await unknown.ready;
    assert.deepEqual([unknown.get("never-seen-1").like_count, unknown.get("never-seen-2").comment_count], [0, 0]);
    unknown.close();
    // Over 200 distinct posts across the user's sockets: the server refuses the watch, the feed says so.
    const a = make(w.url, token("feed-greedy"), "g-a").feed(Array.from({ length: 100 }, (_, i) => `greedy-a${i}`));
    const b = make(w.url, token("feed-greedy"), "g-b").feed(Array.from({ length: 100 }, (_, i) => `greedy-b${i}`));
    await Promise.all([a.ready, b.ready]);
    // Both watches are in place once a like on each is pushed to them.
    await Promise.all([likeAs("greedy-a0", "g-liker"), likeAs("greedy-b0", "g-liker")]);
    await waitFor(() => count(a, "greedy-a0") === 1 && count(b, "greedy-b0") === 1, [a, b]);
    const c = make(w.url, token("feed-greedy"), "g-c").feed(["greedy-c0"]);
    let refused;
    c.on("error", (e) => (refused = e));
    await waitFor(() => refused !== undefined, [c], { events: ["error"], describe: () => "the third feed's watch to be refused" });
    assert.equal(refused.code, "too_large");
    for (const f of [a, b, c]) f.close();
  });
});

describe("SDK: comments", () => {
  it("lists comments over REST and hears new ones live in the post room", async () => {
    const id = "sdkfeed-comments";
    const reader = make(w.url, token("c-reader"), "c-reader").post(id);
    await reader.whenSynced();
    const live = [];
    reader.on("comment", (c) => live.push(c));
    const writer = make(w.url, token("c-writer", undefined, { name: "Writer" }), "c-writer").post(id);
    const ids = [];
    for (const text of ["first", "second 🎶", "third"]) ids.push((await writer.comment(text)).commentId);
    await waitFor(() => live.length === 3, [reader], { events: ["comment"], describe: () => JSON.stringify(live) });
    assert.deepEqual(live.map((c) => [c.comment_id, c.user_id, c.text, c.local]), [
      [ids[0], "c-writer", "first", false],
      [ids[1], "c-writer", "second 🎶", false],
      [ids[2], "c-writer", "third", false],
    ]);
    const page1 = await reader.comments({ limit: 2 });
    assert.deepEqual(page1.comments.map((c) => c.text), ["third", "second 🎶"], "newest first");
    assert.equal(page1.comments[0].user_id, "c-writer");
    assert.ok(Number.isSafeInteger(page1.comments[0].created_at));
    const page2 = await reader.comments({ limit: 2, before: page1.next_before });
    assert.deepEqual(page2.comments.map((c) => c.text), ["first"]);
    assert.equal(page2.next_before, null);
    // A removed comment is absent from the listing and announced live.
    await writer.uncomment(ids[1]);
    await waitFor(() => reader.counts.comment_count === 2, [reader]);
    assert.deepEqual((await reader.comments()).comments.map((c) => c.comment_id), [ids[2], ids[0]]);
    await assert.rejects(reader.comments({ limit: 0 }), (e) => e.status === 400 && /limit/.test(e.message));
  });
});
