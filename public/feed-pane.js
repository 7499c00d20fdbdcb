// The demo's feed pane (PROTOCOL §6.2): a few posts with live counts through client.feed (one batch
// read, then watch_posts on the personal channel), and the post's comments: listed over REST
// (GET /api/v1/posts/{id}/comments, newest first) and kept live through the post's room.
// Loaded after demo.js, whose client it uses (window.sidechain).
const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const client = window.sidechain;
const postId = q.get("post") ?? "demo-post";
const feedPosts = (q.get("feed") ?? `${postId},${postId}-2,${postId}-3`).split(",").filter(Boolean);

// --- the live feed ---------------------------------------------------------------------------
const feed = client.feed(feedPosts);
window.sidechainFeed = feed; // for the browser test
const renderFeed = () => {
  $("feed").replaceChildren(
    ...feed.postIds.map((id) => {
      const c = feed.get(id);
      const li = document.createElement("li");
      li.dataset.post = id;
      const name = document.createElement("code");
      name.textContent = `post:${id}`;
      const likes = document.createElement("span");
      likes.className = "likes";
      likes.textContent = c ? String(c.like_count) : "…";
      const comments = document.createElement("span");
      comments.className = "comments";
      comments.textContent = c ? String(c.comment_count) : "…";
      li.append(name, " ♥ ", likes, " · 💬 ", comments);
      return li;
    }),
  );
};
feed.on("change", renderFeed);
feed.on("error", (e) => ($("feed-note").textContent = `feed: ${e.code ?? e.message}`));
renderFeed();

// --- the post's comments ------------------------------------------------------------------------
$("feed-comments-post").textContent = `post:${postId}`;
const shown = new Map(); // comment_id → li
const commentItem = (c) => {
  const li = document.createElement("li");
  li.dataset.comment = c.comment_id;
  const who = document.createElement("b");
  who.textContent = c.name ?? c.user_id ?? (c.local ? q.get("user") ?? "me" : "someone");
  li.append(who, `: ${c.text}`);
  li.title = new Date(c.created_at).toISOString();
  return li;
};
const addComment = (c, newest) => {
  if (shown.has(c.comment_id)) return;
  const li = commentItem(c);
  shown.set(c.comment_id, li);
  if (newest) $("feed-comments").prepend(li);
  else $("feed-comments").append(li);
};
const post = client.post(postId);
post.on("comment", (c) => addComment(c, true));
post.on("uncomment", (c) => {
  shown.get(c.comment_id)?.remove();
  shown.delete(c.comment_id);
});
let nextBefore = null;
const loadPage = async () => {
  const page = await post.comments({ limit: 10, before: nextBefore ?? undefined });
  for (const c of page.comments) addComment(c, false);
  nextBefore = page.next_before;
  $("feed-more").hidden = !nextBefore;
};
$("feed-more").addEventListener("click", () => loadPage().catch(() => {}));
loadPage().catch((e) => ($("feed-note").textContent = `comments: ${e.code ?? e.message}`));
