// A terminal client built on the SDK: every line you type is appended to the shared text, and the
// text is printed whenever anyone changes it. It survives a `wrangler dev` reload (the SDK
// reconnects, replays what it missed and resends what was not acknowledged); lines typed while
// disconnected are kept and sent on reconnect.
// Usage: node client/terminal.mjs DOCUMENT_ID CLIENT_ID TOKEN [http://127.0.0.1:8787]
import readline from "node:readline";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { SidechainClient } from "./src/index.js";

const [docId = "channel:demo:description", clientId = `cli-${process.pid}`, token, url = "http://127.0.0.1:8787"] = process.argv.slice(2);
if (!token) {
  console.error("usage: node client/terminal.mjs DOCUMENT_ID CLIENT_ID TOKEN [http://host:port]  (make token prints one)");
  process.exit(2);
}

// The last seq per document is kept in a small file, so a restarted terminal with the same
// CLIENT_ID continues its seq instead of probing for it.
const stateFile = join(tmpdir(), `sidechain-terminal-${clientId.replace(/[^A-Za-z0-9_.-]/g, "_")}.json`);
const saved = (() => {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8"));
  } catch {
    return {};
  }
})();
const storage = {
  getItem: (k) => saved[k] ?? null,
  setItem: (k, v) => {
    saved[k] = v;
    writeFileSync(stateFile, JSON.stringify(saved));
  },
};

const client = new SidechainClient({ url, token, clientId, WebSocket, storage });
const doc = client.text(docId);
const show = (why) => console.log(`[v${doc.version} ${doc.status}${doc.pending ? `, ${doc.pending} unsent` : ""} ${why}] ${JSON.stringify(doc.value)}`);

doc.on("change", (c) => show(c.local ? "you" : c.reset ? "reloaded" : `${c.userId ?? "someone"} edited`));
doc.on("ack", () => show("saved"));
doc.on("status", (s) => console.log(`-- ${s}`));
doc.on("join", (p) => console.log(`${p.user?.name ?? p.user?.id} joined (${p.client_id})`));
doc.on("leave", (p) => console.log(`${p.user?.name ?? p.user?.id} left (${p.client_id})`));
doc.on("error", (e) => {
  console.log(`error: ${e.code}${e.message ? ` ${e.message}` : ""}`);
  if (e.fatal) process.exitCode = 1;
});

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  doc.typing();
  doc.insert(doc.length, line + "\n");
});
// End of input: wait until everything typed is acknowledged, then leave.
rl.on("close", async () => {
  await doc.whenSynced().catch(() => {});
  client.close();
});
