// The demo's Yjs pane (§3.6): a textarea bound to the Y.Text "t" of a `ydoc:` document opened with
// client.yjs (the npm y-websocket provider underneath). Local input becomes one Yjs transaction
// (the changed middle of the text); remote changes rewrite the textarea with the caret kept on
// the same character through Yjs relative positions. Loaded after demo.js (window.sidechain).
import { Y } from "/vendor/sidechain-realtime.js";

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const client = window.sidechain;
const room = client.yjs(q.get("ydoc") ?? "demo-notes");
window.sidechainYjs = room; // for the browser test
const text = room.doc.getText("t");
const area = $("yjs-notes");
const LOCAL = "textarea";

room.on("status", (s) => ($("yjs-status").textContent = s));
room.on("error", (e) => ($("yjs-status").textContent = `error: ${e.code}`));
room.whenSynced().then(() => (area.dataset.synced = "true"));

// Input: the difference between the old and the new value is one replaced range.
area.addEventListener("input", () => {
  const before = text.toString();
  const after = area.value;
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (end < before.length - start && end < after.length - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
  room.doc.transact(() => {
    if (before.length - start - end > 0) text.delete(start, before.length - start - end);
    if (after.length - start - end > 0) text.insert(start, after.slice(start, after.length - end));
  }, LOCAL);
});

// Remote changes: rewrite, keeping the caret (and selection) on the characters it was on; the
// positions are taken before the change, while the textarea still shows the text Yjs had.
let caret = null;
room.doc.on("beforeTransaction", (tr) => {
  if (tr.origin === LOCAL) return;
  const at = (i) => Y.createRelativePositionFromTypeIndex(text, Math.min(i, text.length));
  caret = [at(area.selectionStart), at(area.selectionEnd)];
});
text.observe((_event, tr) => {
  if (tr.origin === LOCAL) return;
  area.value = text.toString();
  if (!caret || document.activeElement !== area) return;
  const [a, h] = caret.map((p) => Y.createAbsolutePositionFromRelativePosition(p, room.doc)?.index ?? 0);
  area.setSelectionRange(a, h);
});
