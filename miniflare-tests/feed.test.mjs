// Feed engagement (§6.2): many posts' counts in one request, a post's comments by page; the
// main backend's import and on_behalf_of (§6.3); deleting a channel as a whole (§6.4).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, opFrame, serviceToken, token, useWorker, eventually } from "./helpers.mjs";

const w = useWorker();
const svc = serviceToken();

const act = (post, what, user, body, method = "POST") => api(w.url, `/api/v1/posts/${post}/${what}`, { method, tok: token(user), body });
const feed = (ids, tok = token("reader")) => api(w.url, `/api/v1/posts/engagement?ids=${ids}`, { tok });
const single = async (post) => {
  const r = await api(w.url, `/api/v1/posts/${post}/engagement`, { tok: token("single-reader") });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
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

const inbox = async (user) => (await api(w.url, "/api/v1/me/notifications?limit=100", { tok: token(user) })).json.notifications;
const svcAct = (post, what, body, method = "POST") => api(w.url, `/api/v1/posts/${post}/${what}`, { method, tok: svc, body });
const importInto = (post, body, tok = svc) => api(w.url, `/api/v1/posts/${post}/engagement/import`, { method: "POST", tok, body });

describe("the main backend's engagement (§6.3)", () => {
  it("on_behalf_of makes a service action that user's own: state, counts and the owner's notification", async () => {
    const post = "obo-post";
    assert.equal((await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: svc, body: { owner_id: "obo-owner" } })).status, 200);
    const r = await svcAct(post, "likes", { on_behalf_of: "obo-fan", emoji: "🎸" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.like_count, 1);
    assert.equal(r.json.changed, true);
    // The user's own like after it changes nothing: it was theirs.
    const again = await act(post, "likes", "obo-fan");
    assert.equal(again.json.changed, false);
    assert.equal(again.json.like_count, 1);
    const c = await svcAct(post, "comments", { on_behalf_of: "obo-fan", text: "from the app" });
    assert.equal(c.status, 201, c.text);
    // The comment is the user's: they may remove it themselves.
    const del = await act(post, `comments/${encodeURIComponent(c.json.comment_id)}`, "obo-fan", undefined, "DELETE");
    assert.equal(del.json.changed, true);
    // And unlike on their behalf works with DELETE bodies too.
    const un = await svcAct(post, "likes", { on_behalf_of: "obo-fan" }, "DELETE");
    assert.equal(un.json.like_count, 0);
    const notes = await eventually(async () => {
      const n = (await inbox("obo-owner")).filter((x) => x.post_id === post || x.payload?.post_id === post);
      return n.length >= 2 && n;
    }, "the owner's notifications");
    const actors = notes.map((n) => (n.actor ?? n.payload?.actor)?.id);
    assert.ok(actors.every((a) => a === "obo-fan"), JSON.stringify(notes));
  });

  it("refuses on_behalf_of from user tokens (403) and malformed values (400), changing nothing", async () => {
    const post = "obo-refused";
    const r = await act(post, "likes", "sneaky", { on_behalf_of: "victim" });
    assert.equal(r.status, 403, r.text);
    for (const bad of [42, "", "x".repeat(300), ["a"]]) {
      const b = await svcAct(post, "saves", { on_behalf_of: bad });
      assert.equal(b.status, 400, `${JSON.stringify(bad)}: ${b.text}`);
    }
    assert.deepEqual(counts(await truth(post)), { like_count: 0, comment_count: 0, repost_count: 0, save_count: 0 });
  });

  it("imports 5,000 likes and 500 comments twice: the same result, counts equal a recount, no notifications", async () => {
    const post = "imported-post";
    // Engagement that exists before the import, some of it repeated inside the import.
    await act(post, "likes", "imp-u-00007", { emoji: "🔥" });
    await act(post, "likes", "live-only-liker");
    await act(post, "reposts", "imp-u-00003");
    const likes = Array.from({ length: 5000 }, (_, i) => ({ user_id: `imp-u-${String(i).padStart(5, "0")}`, ...(i % 10 === 0 ? { emoji: "👏" } : {}) }));
    likes.push({ user_id: "imp-u-00001" }); // a repeat inside the batch
    const reposts = Array.from({ length: 40 }, (_, i) => `imp-u-${String(i).padStart(5, "0")}`);
    const saves = Array.from({ length: 25 }, (_, i) => `imp-s-${i}`);
    const comments = Array.from({ length: 500 }, (_, i) => ({ comment_id: `legacy-${i}`, user_id: `imp-u-${String(i % 50).padStart(5, "0")}`, name: `Legacy ${i % 50}`, text: `old comment ${i}`, created_at: 1_700_000_000_000 + i * 1000 }));
    const body = { likes, reposts, saves, comments, owner_id: "imp-owner" };
    const first = await importInto(post, body);
    assert.equal(first.status, 200, first.text);
    // Recount: distinct likers (import ∪ live), reposters, savers, comments.
    const likers = new Set([...likes.map((l) => l.user_id), "imp-u-00007", "live-only-liker"]);
    const reposters = new Set([...reposts, "imp-u-00003"]);
    const recount = { like_count: likers.size, comment_count: 500, repost_count: reposters.size, save_count: saves.length };
    assert.deepEqual(counts(first.json), recount);
    assert.equal(first.json.changed, true);
    assert.deepEqual(first.json.imported, { likes: likers.size - 2, reposts: 39, saves: 25, comments: 500 });
    // 👏 for every tenth importer, except imp-u-00000.. none of whom liked before; 🔥 kept.
    assert.equal(first.json.reactions["👏"], 500);
    assert.equal(first.json.reactions["🔥"], 1);

    const second = await importInto(post, body);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(counts(second.json), recount);
    assert.equal(second.json.changed, false);
    assert.deepEqual(second.json.imported, { likes: 0, reposts: 0, saves: 0, comments: 0 });
    assert.deepEqual(counts(await truth(post)), recount);

    // A user from the import likes again: nothing changes.
    const relike = await act(post, "likes", "imp-u-04999");
    assert.equal(relike.json.changed, false);
    assert.equal(relike.json.like_count, recount.like_count);
    // Their unlike counts down once, as for any like of theirs.
    assert.equal((await act(post, "likes", "imp-u-04999", undefined, "DELETE")).json.like_count, recount.like_count - 1);

    // Imported comments are listed with their own times and names, newest first.
    const page = await api(w.url, `/api/v1/posts/${post}/comments?limit=3`, { tok: token("page-reader") });
    assert.deepEqual(page.json.comments.map((c) => [c.comment_id, c.name, c.created_at]), [
      ["legacy-499", "Legacy 49", 1_700_000_499_000],
      ["legacy-498", "Legacy 48", 1_700_000_498_000],
      ["legacy-497", "Legacy 47", 1_700_000_497_000],
    ]);
    // The owner was registered and told nothing of the import; later actions reach them.
    await act(post, "reposts", "after-import");
    const notes = await eventually(async () => {
      const n = (await inbox("imp-owner")).filter((x) => (x.post_id ?? x.payload?.post_id) === post);
      return n.length >= 1 && n;
    }, "the owner's notification of a later repost");
    assert.deepEqual(notes.map((n) => (n.actor ?? n.payload?.actor)?.id), ["after-import"]);
  });

  it("refuses imports from user tokens and invalid bodies whole (422 naming each entry)", async () => {
    const post = "import-refused";
    assert.equal((await importInto(post, { likes: [{ user_id: "a" }] }, token("not-a-service"))).status, 403);
    const bad = await importInto(post, {
      likes: [{ user_id: "ok" }, { user_id: "" }, { emoji: "🔥" }, { user_id: "e", emoji: "x".repeat(40) }],
      reposts: [7],
      saves: "everyone",
      comments: [{ comment_id: "c", user_id: "u", text: "", created_at: "yesterday" }],
    });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.json.error.details.errors.map((e) => e.split(":")[0]).sort(), [
      "comments[0].created_at", "comments[0].text", "likes[1].user_id", "likes[2].user_id", "likes[3].emoji", "reposts[0]", "saves",
    ].sort());
    const tooMany = await importInto(post, { saves: Array.from({ length: 10_001 }, (_, i) => `s${i}`) });
    assert.equal(tooMany.status, 422, tooMany.text);
    assert.equal((await importInto(post, "[1,2")).status, 400);
    assert.equal((await importInto(post, [])).status, 422);
    assert.deepEqual(counts(await truth(post)), { like_count: 0, comment_count: 0, repost_count: 0, save_count: 0 });
  });
});

describe("deleting a channel (§6.4)", () => {
  const write = async (doc, text, user = "chan-writer") => {
    const r = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token(user), body: { operation: { document_id: doc, client_id: `cw-${doc}`, type: "insert", position: 0, content: text } } });
    assert.equal(r.status, 202, r.text);
  };
  const content = async (doc) => (await api(w.url, `/api/v1/documents/${doc}`, { tok: token("chan-reader") })).json;
  const history = async (doc) => (await api(w.url, `/api/v1/operations/history/${doc}`, { tok: token("chan-reader") })).json.operations.length;
  const delChannel = (id, tok = svc) => api(w.url, `/api/v1/channels/${id}`, { method: "DELETE", tok });

  it("deletes every document of the channel (state, history, sockets 4404) and nothing else; twice is harmless", async () => {
    const mine = ["channel:del-1:description", "channel:del-1:notes", "channel:del-1:lyrics:v2"];
    const others = ["channel:del-10:description", "channel:del-1x:notes", "channel:other:del-1:x"];
    for (const d of [...mine, ...others]) await write(d, `text of ${d}`);
    const c = await Client.join(w.url, mine[1], { tok: token("chan-listener"), clientId: "listener" });
    // An active socket, as in rest.test.mjs's single delete (an idle hibernated socket's close
    // frame is delivered late by the local runtime).
    await c.submit(opFrame(mine[1], "listener", 1, 1, { type: "insert", position: 0, content: "!" }));
    const r = await delChannel("del-1");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.deleted, [...mine].sort());
    assert.equal(await c.waitClosed(), 4404);
    const again = await delChannel("del-1");
    assert.deepEqual(again.json, { deleted: [] });
    for (const d of mine) {
      const after = await content(d);
      assert.deepEqual([after.version, after.content], [0, ""], d);
      assert.equal(await history(d), 0, d);
    }
    for (const d of others) assert.equal((await content(d)).content, `text of ${d}`, d);
    // The reads above started new lives of the ids: they are on record again, and go with the next delete.
    await write(mine[0], "reborn");
    assert.deepEqual((await delChannel("del-1")).json.deleted, [...mine].sort());
    assert.equal((await content(mine[0])).content, "");
  });

  it("a channel id holding ':' takes the documents under that longer prefix only", async () => {
    await write("channel:nest:a:x", "inner");
    await write("channel:nest:b", "outer");
    assert.deepEqual((await delChannel("nest:a")).json.deleted, ["channel:nest:a:x"]);
    assert.equal((await content("channel:nest:b")).content, "outer");
    // channel:nest:a:x was deleted and not used since: nothing of it is left to delete.
    assert.deepEqual((await delChannel("nest")).json.deleted, ["channel:nest:b"]);
  });

  it("an unknown channel answers an empty list; user tokens get 403, bad ids 400", async () => {
    assert.deepEqual((await delChannel("never-made")).json, { deleted: [] });
    await write("channel:kept:description", "mine");
    const r = await delChannel("kept", token("chan-writer"));
    assert.equal(r.status, 403, r.text);
    assert.equal((await content("channel:kept:description")).content, "mine");
    for (const bad of ["a%2Fb", "%C3%A9", "x".repeat(300)]) {
      const b = await delChannel(bad);
      assert.equal(b.status, 400, `${bad}: ${b.text}`);
    }
  });
});
