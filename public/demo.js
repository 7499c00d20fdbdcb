// The demo page: one channel description edited together, a small canvas, a post with live
// counts and owner notifications, who is here / typing / presence, and the sync status.
// URL: /?user=alice&token=<dev token>[&owner=1][&channel=demo][&post=demo-post] (make dev prints them)
// [&canvas=board-id][&x=0&y=0] (the sketch pane's board and where its view starts).
import { SidechainClient, TextDoc, inView } from "/vendor/sidechain-realtime.js";

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const token = q.get("token");
const user = q.get("user") ?? "guest";
const channelId = q.get("channel") ?? "demo";
const postId = q.get("post") ?? "demo-post";
if (!token) {
  $("no-token").hidden = false;
  throw new Error("no token in the URL");
}
$("app").hidden = false;
$("me-name").textContent = user;
$("post-id").textContent = `post:${postId}`;

// One client id per tab, kept across reloads of that tab.
const clientId = sessionStorage.getItem("sc-client-id") ?? `web-${user}-${Math.random().toString(36).slice(2, 8)}`;
sessionStorage.setItem("sc-client-id", clientId);
const colour = `hsl(${[...user].reduce((h, c) => h * 31 + c.codePointAt(0), 7) % 360} 80% 60%)`;

const client = new SidechainClient({ url: location.origin, token, clientId });
window.sidechain = client; // for the browser test and curious developers

// --- sync status ----------------------------------------------------------------------------
const showStatus = () => {
  const s = client.status;
  $("status").dataset.status = s;
  $("status").textContent = s;
  $("unsaved").hidden = !client.hasUnsavedChanges;
};
client.on("status", showStatus);
client.on("unsaved", showStatus);
$("offline-toggle").addEventListener("click", () => {
  if (client.online) client.goOffline();
  else client.goOnline();
  $("offline-toggle").textContent = client.online ? "Go offline" : "Go online";
  showStatus();
});

// --- the description: a textarea bound to a TextDoc --------------------------------------------
const doc = client.text(`channel:${channelId}:description`);
const ta = $("description");
const cpToUnit = (s, cp) => {
  let units = 0;
  for (const ch of s) {
    if (cp-- <= 0) break;
    units += ch.length;
  }
  return units;
};
const unitToCp = (s, unit) => Array.from(s.slice(0, unit)).length;

const sendCursor = () => {
  doc.setAwareness({ name: user, colour, cursor: unitToCp(ta.value, ta.selectionStart) });
};
ta.addEventListener("input", () => {
  doc.setValue(ta.value); // one diff-based edit per input event
  doc.typing();
  sendCursor();
});
ta.addEventListener("select", sendCursor);
ta.addEventListener("keyup", (e) => e.key.startsWith("Arrow") && sendCursor());
ta.addEventListener("click", sendCursor);

doc.on("change", (c) => {
  $("doc-version").textContent = `v${doc.version}`;
  if (c.local) return;
  // Keep the caret where it was relative to the text around it.
  const old = ta.value;
  const focused = document.activeElement === ta;
  const start = TextDoc.transformPosition(unitToCp(old, ta.selectionStart), c.ops);
  const end = TextDoc.transformPosition(unitToCp(old, ta.selectionEnd), c.ops);
  ta.value = doc.value;
  if (focused) ta.setSelectionRange(cpToUnit(ta.value, start), cpToUnit(ta.value, end));
});
doc.on("ack", () => ($("doc-version").textContent = `v${doc.version}`));
doc.on("status", showStatus);

// --- who is here, typing, presence ----------------------------------------------------------
const channel = client.channel();
const renderPeople = () => {
  const others = doc.others;
  const byUser = new Map();
  for (const o of others) if (!byUser.has(o.userId)) byUser.set(o.userId, o);
  const ul = $("others");
  ul.replaceChildren(
    ...[{ userId: user, name: `${user} (you)`, state: { colour }, typing: false }, ...byUser.values()].map((o) => {
      const li = document.createElement("li");
      li.dataset.user = o.userId;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = o.state?.colour ?? "#888";
      const name = document.createElement("span");
      name.textContent = o.state?.name && o.userId !== user ? o.state.name : o.name ?? o.userId;
      const pres = document.createElement("span");
      pres.className = "presence";
      const p = channel.presence.get(o.userId) ?? doc.presence.get(o.userId);
      const bits = [];
      if (p) bits.push(p.status + (p.in_studio ? " · in studio" : ""));
      if (o.state?.cursor !== undefined && o.userId !== user) bits.push(`cursor ${o.state.cursor}`);
      pres.textContent = bits.join(" · ");
      li.append(dot, name, pres);
      return li;
    }),
  );
  const typing = [...byUser.values()].filter((o) => o.typing).map((o) => o.name ?? o.userId);
  $("typing").textContent = typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : "";
  channel.watchPresence([...byUser.keys()]);
};
doc.on("others", renderPeople);
doc.on("presence", renderPeople);
channel.on("presence", renderPeople);
channel.setPresence({ status: "online", in_studio: false }).catch(() => {});
document.addEventListener("visibilitychange", () => {
  channel.setPresence({ status: document.hidden ? "away" : "online", in_studio: false }).catch(() => {});
});
renderPeople();

// --- the canvas: a pannable view of a large board (§8 viewports) ------------------------------
// Only the strokes in the pane's rectangle are loaded; Shift+drag (or the middle button) or the
// arrows pan it, and the SDK fetches what comes into view. Coordinates are the board's own.
const cv = $("canvas");
const ctx = cv.getContext("2d");
const view = { x: Number(q.get("x") ?? 0), y: Number(q.get("y") ?? 0), width: cv.width, height: cv.height };
const board = client.canvas(q.get("canvas") ?? `channel-${channelId}`, { viewport: { ...view } });
window.sidechainBoard = board; // for the browser tests
let drawing = null;
let panning = null;
const drawStroke = (s) => {
  if (!s?.points?.length) return;
  ctx.strokeStyle = s.colour ?? "#222";
  ctx.lineWidth = s.width ?? 3;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...s.points[0]);
  for (const p of s.points.slice(1)) ctx.lineTo(...p);
  if (s.points.length === 1) ctx.lineTo(s.points[0][0] + 0.1, s.points[0][1]);
  ctx.stroke();
};
const renderBoard = () => {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, cv.width, cv.height);
  ctx.setTransform(1, 0, 0, 1, -view.x, -view.y);
  let drawn = 0;
  for (const s of board.strokes.values()) {
    if (!inView(s, view)) continue; // while a pan is settling
    drawStroke(s);
    drawn++;
  }
  if (drawing) drawStroke(drawing);
  for (const o of board.others) {
    const c = o.state?.cursor;
    if (!Array.isArray(c)) continue;
    ctx.fillStyle = o.state.colour ?? "#888";
    ctx.beginPath();
    ctx.arc(c[0], c[1], 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  cv.dataset.drawn = String(drawn);
  cv.dataset.view = `${view.x},${view.y}`;
  $("canvas-view").textContent = `${view.x}, ${view.y} · ${drawn} of ${board.strokesTotal ?? "?"} strokes`;
};
const panTo = (x, y) => {
  view.x = Math.round(x);
  view.y = Math.round(y);
  renderBoard();
  board.setViewport({ ...view }).then(renderBoard, () => {});
};
window.sidechainPanTo = panTo; // for the browser tests
const at = (e) => {
  const r = cv.getBoundingClientRect();
  return [Math.round(((e.clientX - r.left) * cv.width) / r.width) + view.x, Math.round(((e.clientY - r.top) * cv.height) / r.height) + view.y];
};
cv.addEventListener("pointerdown", (e) => {
  cv.setPointerCapture(e.pointerId);
  if (e.shiftKey || e.button === 1) panning = { from: at(e) };
  else drawing = { colour, points: [at(e)], by: user };
  renderBoard();
});
cv.addEventListener("pointermove", (e) => {
  const p = at(e);
  board.setAwareness({ name: user, colour, cursor: p }); // at most one frame per 50 ms (the SDK throttles)
  if (panning) {
    // The pointer stays on the same board point: the view moves the other way.
    view.x = Math.round(panning.from[0] - (p[0] - view.x));
    view.y = Math.round(panning.from[1] - (p[1] - view.y));
    return renderBoard();
  }
  if (!drawing) return;
  drawing.points.push(p);
  renderBoard();
});
cv.addEventListener("pointerup", () => {
  if (panning) panTo(view.x, view.y);
  if (drawing && drawing.points.length) board.createStroke(drawing);
  drawing = panning = null;
  renderBoard();
});
for (const [id, dx, dy] of [["pan-left", -1, 0], ["pan-right", 1, 0], ["pan-up", 0, -1], ["pan-down", 0, 1]])
  $(id).addEventListener("click", () => panTo(view.x + (dx * cv.width) / 2, view.y + (dy * cv.height) / 2));
board.on("change", renderBoard);
board.on("others", renderBoard);
$("clear").addEventListener("click", () => board.clear().catch(() => {}));
renderBoard();

// --- the post -------------------------------------------------------------------------------
const post = client.post(postId);
let liked = false;
const renderCounts = () => {
  $("like-count").textContent = post.counts.like_count;
  $("comment-count").textContent = post.counts.comment_count;
  $("like").setAttribute("aria-pressed", String(liked));
  $("like").textContent = liked ? "♥ Liked" : "♥ Like";
};
post.on("change", renderCounts);
$("like").addEventListener("click", async () => {
  liked = !liked;
  renderCounts();
  try {
    await (liked ? post.like() : post.unlike());
  } catch {
    liked = !liked;
    renderCounts();
  }
});
$("comment-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("comment-text").value.trim();
  if (!text) return;
  $("comment-text").value = "";
  const { commentId } = await post.comment(text);
  const li = document.createElement("li");
  li.textContent = `${user}: ${text}`;
  li.title = commentId ?? "";
  $("comments").prepend(li);
});

// --- notifications (the owner of the post gets them) -------------------------------------------
if (q.get("owner") === "1") {
  client
    .api(`/api/v1/posts/${encodeURIComponent(postId)}`, { method: "PUT", body: {} })
    .then(() => ($("owner-note").textContent = "you own this post"))
    .catch((e) => ($("owner-note").textContent = `could not register as owner: ${e.code}`));
}
channel.on("notification", (n) => {
  const li = document.createElement("li");
  const what = { post_liked: "liked", new_comment: "commented on", post_reposted: "reposted" }[n.kind] ?? n.kind;
  li.textContent = `${n.actor?.name ?? n.actor?.id ?? "someone"} ${what} ${n.post_id ? `post:${n.post_id}` : ""}`;
  $("notifications").prepend(li);
});

showStatus();
