// A tiny terminal client for trying the service: every line you type is appended to the shared
// text, and the text is printed whenever anyone changes it.
// Usage: node client/terminal.mjs DOCUMENT_ID CLIENT_ID TOKEN [ws://127.0.0.1:8787]
import readline from "node:readline";
import WebSocket from "ws";

const [doc = "channel:demo:description", clientId = `cli-${process.pid}`, token, base = "ws://127.0.0.1:8787"] = process.argv.slice(2);
if (!token) {
  console.error("usage: node client/terminal.mjs DOCUMENT_ID CLIENT_ID TOKEN [ws://host:port]  (make token prints one)");
  process.exit(2);
}
const ws = new WebSocket(`${base}/ws/documents/${encodeURIComponent(doc)}?client_id=${encodeURIComponent(clientId)}&token=${token}`);
let text = "";
let version = 0;
let seq = 0;
let inFlight = false;
let ready = false; // lines typed before the initial state arrives wait in the queue
const queue = [];

const apply = (ops) => {
  const cps = Array.from(text);
  for (const p of ops) p.type === "insert" ? cps.splice(p.position, 0, ...Array.from(p.content)) : cps.splice(p.position, p.length);
  text = cps.join("");
};
const show = (why) => console.log(`[v${version} ${why}] ${JSON.stringify(text)}`);
// One op in flight; it is made against the latest version we know, the server transforms it.
const pump = () => {
  if (!ready || inFlight || !queue.length) return;
  inFlight = true;
  const line = queue.shift();
  ws.send(JSON.stringify({ type: "operation", id: `m${seq + 1}`, payload: { client_id: clientId, seq: ++seq, version, type: "insert", position: Array.from(text).length, content: line } }));
};

ws.on("message", (raw) => {
  const m = JSON.parse(raw.toString());
  const p = m.payload ?? {};
  if (m.type === "initial_state") {
    text = p.content;
    version = p.version;
    ready = true;
    show("joined");
    pump();
  }
  else if (m.type === "operation" || m.type === "sync_operation") (apply(p.ops), (version = p.version), show(`${p.user_id} edited`));
  else if (m.type === "operation_ack") {
    if (p.status !== "noop" && p.status !== "duplicate") (apply(p.ops), (version = p.version));
    inFlight = false;
    show(`ack ${p.status}`);
    pump();
  } else if (m.type === "error") console.log("error:", p.code, p.message);
  else if (m.type === "join" || m.type === "leave") console.log(`${p.user.name} ${m.type === "join" ? "joined" : "left"}`);
});
ws.on("unexpected-response", (_q, res) => (console.error(`refused: HTTP ${res.statusCode}`), process.exit(1)));
ws.on("close", (code) => (console.log(`closed ${code}`), process.exit(0)));
readline.createInterface({ input: process.stdin }).on("line", (line) => (queue.push(line + "\n"), pump()));
