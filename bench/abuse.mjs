// Hostile load (§5): 50 honest users type in 10 shared text documents (one insert in flight each,
// ~10 keys/s) and are notified twice a second through the publish API, first alone, then while
// one attacker floods from a worker thread of its own: 8 sockets (the per-user maximum) liking,
// unliking and commenting on an honest user's post, a 9th tried there every 100 ms, 2 more typing
// into the honest users' document and 2 on its personal channel sending notification_read and
// watch_presence; each socket at ~1,000 frames/s, reconnecting when closed; REST reads 4 at a time. Prints, per phase, the
// honest ack and notification latencies, and what the attacker got refused.
// Usage: node bench/abuse.mjs [seconds per phase=10]
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";
import { api, startWorker, token, serviceToken } from "../miniflare-tests/helpers.mjs";
import { workerdCpuMs } from "./proc-cpu.mjs";

const SECONDS = Number(process.argv[2] ?? 10);
const HONEST = 50;
const DOCS = 10;
const pct = (s, p) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);
const wsUrl = (url, path, q) => `${url.replace(/^http/, "ws")}${path}?${new URLSearchParams(q)}`;
const tick = (ms) => new Promise((r) => setTimeout(r, ms)); // pacing of the load, not synchronisation

async function main() {
  const w = await startWorker();
  const users = Array.from({ length: HONEST }, (_, i) => `honest${i}`);
  const post = `abuse-post-${Date.now()}`;
  if ((await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token(users[0]), body: {} })).status !== 200) throw new Error("post");
  const typists = await Promise.all(users.map((u, i) => Typist.open(w.url, `channel:abuse-${i % DOCS}:description`, u)));
  const inboxes = await Promise.all(users.map((u) => Inbox.open(w.url, u)));
  console.log(`${SECONDS} s per phase; ${HONEST} honest users in ${DOCS} documents; attacker: 12 sockets at ~1,000 frames/s each\n`);
  console.log("| phase | honest acks | ack p50 ms | ack p99 ms | ack p99 ms in the attacked document | notifications | notify p50 ms | notify p99 ms | owner's notifications from the post | runtime CPU % of one core |\n|---|---|---|---|---|---|---|---|---|---|");
  const quiet = await phase(w, typists, inboxes, null);
  console.log(row("honest users alone", quiet));
  const attacker = new Worker(new URL(import.meta.url), { workerData: { url: w.url, post, doc: "channel:abuse-0:description", victims: users.slice(0, 100) } });
  const report = new Promise((r) => attacker.once("message", r));
  const loud = await phase(w, typists, inboxes, attacker);
  console.log(row("with the attacker", loud));
  const a = await report;
  console.log(`\nattacker: ${a.sent} frames sent, ${a.acked} acked, refused ${JSON.stringify(a.refused)}; sockets closed by the server ${JSON.stringify(a.closes)}; ` +
    `9th socket tried ${a.extraTried}× and refused ${a.extraRefused}×; REST reads ${a.rest.ok} ok, ${a.rest.limited} answered 429`);
  [...typists, ...inboxes].forEach((c) => c.ws.close());
  await w.mf.dispose();
}

const row = (name, r) =>
  `| ${name} | ${r.acks.length} | ${pct(r.acks, 50).toFixed(1)} | ${pct(r.acks, 99).toFixed(1)} | ${pct(r.attacked, 99).toFixed(1)} | ${r.notes.length} | ${pct(r.notes, 50).toFixed(1)} | ${pct(r.notes, 99).toFixed(1)} | ${r.ownerPostNotes} | ${r.cpu.toFixed(0)} |`;

/** One measured window: honest typing and a notification every 500 ms to every honest user. */
async function phase(w, typists, inboxes, attacker) {
  typists.forEach((t) => t.start());
  inboxes.forEach((b) => b.reset());
  const cpu0 = workerdCpuMs();
  const t0 = performance.now();
  const sent = new Map();
  const end = performance.now() + SECONDS * 1000;
  for (let n = 0; performance.now() < end; n++) {
    const event_id = `tick-${attacker ? "a" : "q"}-${n}`;
    sent.set(event_id, performance.now());
    const r = await api(w.url, "/api/v1/notify", { method: "POST", tok: serviceToken(), body: { event_id, kind: "new_post", user_ids: inboxes.map((b) => b.user) } });
    if (r.status !== 202) throw new Error(`notify: ${r.status} ${r.text}`);
    await tick(500);
  }
  const cpu = (100 * (workerdCpuMs() - cpu0)) / (performance.now() - t0);
  attacker?.postMessage("stop");
  typists.forEach((t) => t.stop());
  await Promise.all(typists.map((t) => t.idle()));
  await Promise.all(inboxes.map((b) => b.holds([...sent.keys()])));
  const lat = typists.map((t) => t.take());
  const acks = lat.flat().sort((a, b) => a - b);
  const attacked = lat.filter((_, i) => i % DOCS === 0).flat().sort((a, b) => a - b);
  const notes = inboxes.flatMap((b) => [...sent].map(([id, t0]) => b.arrived.get(id) - t0)).sort((a, b) => a - b);
  return { acks, attacked, notes, ownerPostNotes: inboxes[0].fromPost, cpu };
}

/** An honest typist: one insert in flight, the next ~100 ms after its ack. */
class Typist {
  static async open(url, doc, user) {
    const t = new Typist(new WebSocket(wsUrl(url, `/ws/documents/${encodeURIComponent(doc)}`, { token: token(user), client_id: user })), user);
    await new Promise((res, rej) => ((t.onSynced = res), t.ws.once("error", rej)));
    return t;
  }
  constructor(ws, id) {
    Object.assign(this, { ws, id, version: 0, seq: 0, sentAt: 0, lat: [], running: false, inFlight: false, onIdle: null });
    ws.on("message", (d) => this.receive(JSON.parse(d.toString())));
  }
  receive(m) {
    const p = m.payload ?? {};
    if (m.type === "sync_status") (this.version = Math.max(this.version, p.version ?? 0)), this.onSynced?.(), (this.onSynced = null);
    if (m.type === "operation") this.version = Math.max(this.version, p.version);
    if (m.type === "operation_ack" && p.seq === this.seq) {
      this.version = Math.max(this.version, p.version);
      this.lat.push(performance.now() - this.sentAt);
      this.inFlight = false;
      if (this.running) tick(100).then(() => this.running && this.send());
      else this.onIdle?.();
    }
    if (m.type === "error" && p.code !== "version_conflict") console.error("honest", this.id, p.code, p.message);
  }
  send() {
    if (this.inFlight) return;
    Object.assign(this, { inFlight: true, sentAt: performance.now() });
    this.ws.send(JSON.stringify({ type: "operation", payload: { client_id: this.id, seq: ++this.seq, version: this.version, ops: [{ type: "insert", position: 0, content: "k" }] } }));
  }
  start() {
    this.running = true;
    this.send();
  }
  stop() {
    this.running = false;
  }
  idle() {
    return this.inFlight ? new Promise((r) => (this.onIdle = r)) : Promise.resolve();
  }
  take() {
    return this.lat.splice(0);
  }
}

/** An honest user's personal channel: when each notification arrived. */
class Inbox {
  static async open(url, user) {
    const b = new Inbox(new WebSocket(wsUrl(url, "/ws", { token: token(user) })), user);
    await new Promise((res, rej) => ((b.onReady = res), b.ws.once("error", rej)));
    return b;
  }
  constructor(ws, user) {
    Object.assign(this, { ws, user, arrived: new Map(), fromPost: 0, waiting: null });
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === "notification_count") this.onReady?.(), (this.onReady = null);
      if (m.type !== "notification") return;
      if (m.payload.event_id?.startsWith("tick-")) this.arrived.set(m.payload.event_id, performance.now());
      else this.fromPost++;
      this.waiting?.();
    });
  }
  reset() {
    this.fromPost = 0;
  }
  holds(ids) {
    return new Promise((resolve) => {
      const check = () => ids.every((id) => this.arrived.has(id)) && resolve();
      this.waiting = check;
      check();
    });
  }
}

/** The attacker's thread: floods until told to stop, then reports what it got. */
async function attack({ url, post, doc, victims }) {
  const stats = { sent: 0, acked: 0, refused: {}, closes: {}, extraTried: 0, extraRefused: 0, rest: { ok: 0, limited: 0 } };
  let running = true;
  parentPort.once("message", () => (running = false));
  const tok = token("mallory");
  // Per client id; after a refusal the attacker renumbers from its last ack, so every frame the
  // limits let through is valid and applied (the most a flood can make the room do).
  const seqs = new Map();
  const acked = new Map();
  const next = (k) => seqs.set(k, (seqs.get(k) ?? 0) + 1).get(k);
  const frames = {
    post: (i, k) => ({ type: "operation", id: `p${i}`, payload: { seq: next(k), type: "modify", ...(i % 3 === 2 ? { action: "comment", text: `spam ${i}` } : { action: i % 3 ? "unlike" : "like" }) } }),
    doc: (i, k) => ({ type: "operation", id: `d${i}`, payload: { client_id: `mallory-${k}`, seq: next(k), version: 0, ops: [{ type: "insert", position: 0, content: "spam" }] } }),
    channel: (i) => (i % 2 ? { type: "notification_read", id: `r${i}`, payload: { event_ids: victims.map((v, k) => `e-${v}-${k}`) } } : { type: "watch_presence", id: `w${i}`, payload: { user_ids: victims } }),
  };
  const paths = { post: `/ws/documents/${encodeURIComponent(`post:${post}`)}`, doc: `/ws/documents/${encodeURIComponent(doc)}`, channel: "/ws" };
  const flood = async (kind, k) => {
    for (let i = 0; running; await tick(100)) {
      const ws = new WebSocket(wsUrl(url, paths[kind], { token: tok, ...(kind === "channel" ? {} : { client_id: `mallory-${k}` }) }));
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === "operation_ack") stats.acked++, acked.set(k, Math.max(acked.get(k) ?? 0, m.payload.seq));
        if (m.type !== "error") return;
        stats.refused[m.payload.code] = (stats.refused[m.payload.code] ?? 0) + 1;
        if (kind !== "channel") seqs.set(k, acked.get(k) ?? 0);
      });
      const closed = new Promise((r) => ws.once("close", (code) => ((stats.closes[code] = (stats.closes[code] ?? 0) + 1), r())));
      ws.once("error", () => {});
      await new Promise((r) => (ws.once("open", r), ws.once("close", r)));
      while (running && ws.readyState === WebSocket.OPEN) {
        for (let j = 0; j < 10; j++, i++) ws.send(JSON.stringify(frames[kind](i, k))), stats.sent++;
        await tick(10);
      }
      ws.close();
      await closed;
    }
  };
  const extra = async () => {
    while (running) {
      await tick(100);
      stats.extraTried++;
      const ws = new WebSocket(wsUrl(url, paths.post, { token: tok, client_id: "mallory-9th" }));
      await new Promise((r) => {
        ws.once("unexpected-response", (req) => (stats.extraRefused++, req.destroy(), r()));
        ws.once("error", r);
        ws.once("open", () => (ws.close(), r()));
      });
    }
  };
  const rest = async () => {
    while (running) {
      const r = await api(url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok });
      r.status === 429 ? stats.rest.limited++ : stats.rest.ok++;
      if (r.status === 429) await tick(50);
    }
  };
  await Promise.all([...[...Array(8).fill("post"), "doc", "doc", "channel", "channel"].map(flood), extra(), ...Array.from({ length: 4 }, rest)]);
  parentPort.postMessage(stats);
}

if (!isMainThread) await attack(workerData);
else await main();
