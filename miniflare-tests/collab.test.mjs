// Collaborative editing over real WebSockets against the built worker.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, applyOps, Client, opFrame, token, useWorker } from "./helpers.mjs";

const w = useWorker();

/** A client that mirrors the server: applies every op (its own acks included) in version order. */
class Mirror {
  constructor(client, id, docId) {
    Object.assign(this, { client, id, docId, text: "", version: 0, seq: 0 });
  }
  absorb(msg) {
    const p = msg.payload;
    if (msg.type === "initial_state") {
      this.text = p.content;
      this.version = p.version;
    } else if (msg.type === "operation" || msg.type === "sync_operation" || (msg.type === "operation_ack" && p.status !== "noop" && p.status !== "duplicate")) {
      assert.equal(p.version, this.version + 1, `${this.id}: ${msg.type} out of order (at ${this.version}, got ${p.version})`);
      this.text = applyOps(this.text, p.ops);
      this.version = p.version;
    }
  }
  async drainUntil(pred) {
    for (;;) {
      const m = await this.client.next();
      this.absorb(m);
      if (pred(m)) return m;
    }
  }
  async submit(op) {
    this.client.send(opFrame(this.docId, this.id, ++this.seq, this.version, op));
    return this.drainUntil((m) => m.type === "operation_ack" || m.type === "error");
  }
}

function randomOp(text, marker, rnd) {
  const len = Array.from(text).length;
  if (len > 4 && rnd() < 0.25) {
    const position = Math.floor(rnd() * (len - 2));
    return { type: "delete", position, length: 1 + Math.floor(rnd() * 2) };
  }
  return { type: "insert", position: Math.floor(rnd() * (len + 1)), content: marker };
}

function seeded(seed) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
}

describe("collaborative text", () => {
  it("three clients typing concurrently converge on the server's text", async () => {
    const doc = "channel:converge:description";
    const tok = token("alice");
    const mirrors = [];
    for (const id of ["c-a", "c-b", "c-c"]) {
      const c = await Client.open(w.url, doc, { tok, clientId: id });
      const m = new Mirror(c, id, doc);
      await m.drainUntil((msg) => msg.type === "sync_status");
      mirrors.push(m);
    }
    const statuses = { accepted: 0, transformed: 0, noop: 0 };
    await Promise.all(
      mirrors.map(async (m, i) => {
        const rnd = seeded(17 + i);
        for (let k = 0; k < 25; k++) {
          const ack = await m.submit(randomOp(m.text, `${m.id}${k}|`, rnd));
          assert.equal(ack.type, "operation_ack", JSON.stringify(ack.payload));
          statuses[ack.payload.status]++;
        }
      }),
    );
    const doc_ = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json;
    for (const m of mirrors) {
      if (m.version < doc_.version) await m.drainUntil(() => m.version === doc_.version);
      assert.equal(m.text, doc_.content, `${m.id} diverged`);
      m.client.close();
    }
    assert.equal(statuses.accepted + statuses.transformed + statuses.noop, 75);
    assert.ok(statuses.transformed > 0, "the clients really were concurrent");
    assert.equal(doc_.version, statuses.accepted + statuses.transformed);
  });

  it("a resend after reconnect with since is acked as duplicate, never applied twice", async () => {
    const doc = "channel:resend:description";
    const tok = token("bob");
    const a = await Client.join(w.url, doc, { tok, clientId: "dev-1" });
    a.send(opFrame(doc, "dev-1", 1, 0, { type: "insert", position: 0, content: "hello" }));
    assert.equal((await a.next("operation_ack")).payload.version, 1);
    // The second op is applied but its ack is "lost": the socket drops before we read it.
    await a.submit(opFrame(doc, "dev-1", 2, 1, { type: "insert", position: 5, content: " world" }));
    a.close();

    const b = await Client.open(w.url, doc, { tok, clientId: "dev-1", since: 1 });
    const replayed = await b.next("sync_operation");
    assert.deepEqual([replayed.payload.client_id, replayed.payload.seq, replayed.payload.version], ["dev-1", 2, 2]);
    await b.synced();
    b.send({ ...opFrame(doc, "dev-1", 2, 1, { type: "insert", position: 5, content: " world" }), id: "again" });
    const dup = await b.next("operation_ack");
    assert.equal(dup.reply_to, "again");
    assert.equal(dup.payload.status, "duplicate");
    assert.equal(dup.payload.version, 2);
    const state = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json;
    assert.equal(state.content, "hello world");
    assert.equal(state.version, 2);
    b.close();
  });

  it("an operation from a stale version is transformed; deleting deleted text is a noop", async () => {
    const doc = "channel:stale:description";
    const tok = token("carol");
    const a = await Client.join(w.url, doc, { tok, clientId: "a" });
    await a.submit(opFrame(doc, "a", 1, 0, { type: "insert", position: 0, content: "abcdef" }));
    await a.submit(opFrame(doc, "a", 2, 1, { type: "delete", position: 1, length: 4 }));
    // Made against version 1: insert inside the range a deleted, and a delete of the same range.
    const ins = (await a.submit(opFrame(doc, "a", 3, 1, { type: "insert", position: 3, content: "XY" }))).payload;
    assert.equal(ins.status, "transformed");
    assert.deepEqual(ins.ops, [{ type: "insert", position: 1, content: "XY" }]);
    assert.equal(ins.original_position, 3);
    assert.equal(ins.transformed_position, 1);
    const noop = (await a.submit(opFrame(doc, "a", 4, 1, { type: "delete", position: 1, length: 4 }))).payload;
    assert.equal(noop.status, "noop");
    assert.equal(noop.version, 3);
    assert.equal((await api(w.url, `/api/v1/documents/${doc}`, { tok })).json.content, "aXYf");
    a.close();
  });

  it("REST apply is broadcast to sockets and goes through the same engine", async () => {
    const doc = "channel:rest:description";
    const tok = token("dave");
    const s = await Client.join(w.url, doc, { tok, clientId: "watcher" });
    const r = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok,
      body: { operation: { document_id: doc, client_id: "server-1", type: "insert", position: 0, content: "from REST" } },
    });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.status, "accepted");
    assert.equal(r.json.version, 1);
    assert.equal(r.json.operation_id, "server-1:1");
    const op = await s.next("operation");
    assert.equal(op.payload.version, 1);
    assert.equal(op.payload.client_id, "server-1");
    assert.deepEqual(op.payload.ops, [{ type: "insert", position: 0, content: "from REST" }]);
    // Same (client_id, seq) again: duplicate, nothing applied.
    const again = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok,
      body: { operation: { document_id: doc, client_id: "server-1", seq: 1, type: "insert", position: 0, content: "from REST" } },
    });
    assert.equal(again.json.status, "duplicate");
    const gap = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok,
      body: { operation: { document_id: doc, client_id: "server-1", seq: 5, type: "insert", position: 0, content: "x" } },
    });
    assert.equal(gap.status, 409);
    assert.equal(gap.json.error.code, "seq_gap");
    s.close();
  });

  it("history lists every acked operation exactly once, in version order, paged", async () => {
    const doc = "channel:history:description";
    const tok = token("erin");
    const c = await Client.join(w.url, doc, { tok, clientId: "h" });
    const acks = [];
    let text = "";
    for (let i = 1; i <= 12; i++) {
      c.send(opFrame(doc, "h", i, i - 1, { type: "insert", position: 0, content: `${i};` }));
      const ack = (await c.next("operation_ack")).payload;
      acks.push(ack);
      text = applyOps(text, ack.ops);
    }
    const seen = [];
    let since = 0;
    for (;;) {
      const page = await api(w.url, `/api/v1/operations/history/${doc}?since=${since}&limit=5`, { tok });
      assert.equal(page.status, 200, page.text);
      seen.push(...page.json.operations);
      since = page.json.next_since;
      if (!page.json.has_more) break;
    }
    assert.deepEqual(
      seen.map((o) => [o.version, o.id, o.seq, o.user_id]),
      acks.map((a) => [a.version, a.operation_id, a.seq, "erin"]),
    );
    assert.deepEqual(seen.map((o) => o.ops), acks.map((a) => a.ops));
    assert.equal(seen.reduce((t, o) => applyOps(t, o.ops), ""), text);
    c.close();
  });

  it("malformed frames get an error and the socket keeps working", async () => {
    const doc = "channel:malformed:description";
    const tok = token("frank");
    const c = await Client.join(w.url, doc, { tok, clientId: "m" });
    const cases = [
      ["not json", "bad_request"],
      ["[1,2]", "bad_request"],
      [JSON.stringify({ id: "x1", payload: {} }), "bad_request"],
      [JSON.stringify({ type: "dance", id: "x2" }), "unknown_type"],
      [JSON.stringify(opFrame(doc, "m", 1, 0, { type: "insert", position: 99, content: "x" })), "invalid_operation"],
      [JSON.stringify(opFrame(doc, "m", 1, 0, { type: "insert", position: 0, content: "" })), "invalid_operation"],
      [JSON.stringify(opFrame(doc, "m", 1, 0, { type: "stroke_create", stroke_id: "s" })), "invalid_operation"],
      [JSON.stringify(opFrame("channel:other:description", "m", 1, 0, { type: "insert", position: 0, content: "x" })), "invalid_operation"],
      [JSON.stringify(opFrame(doc, "m", 1, 7, { type: "insert", position: 0, content: "x" })), "version_ahead"],
      [JSON.stringify(opFrame(doc, "m", 3, 0, { type: "insert", position: 0, content: "x" })), "seq_gap"],
      [JSON.stringify(opFrame(doc, "m", 1, 0, { type: "insert", position: "zero", content: "x" })), "bad_request"],
      [JSON.stringify(opFrame(doc, "m", 1, 0, { type: "insert", position: 0, content: "x".repeat(70_000) })), "too_large"],
      [JSON.stringify({ type: "awareness", payload: { state: { blob: "y".repeat(3000) } } }), "too_large"],
    ];
    for (const [frame, code] of cases) {
      c.send(frame);
      const err = await c.next("error");
      assert.equal(err.payload.code, code, `${frame.slice(0, 80)} → ${JSON.stringify(err.payload)}`);
    }
    c.send(opFrame(doc, "m", 1, 0, { type: "insert", position: 0, content: "still alive" }));
    assert.equal((await c.next("operation_ack")).payload.status, "accepted");
    c.send({ type: "ping", id: "p1" });
    const pong = await c.next("pong");
    assert.equal(pong.reply_to, "p1");
    c.send('{"type":"ping"}');
    assert.equal((await c.next((m) => m.__raw === '{"type":"pong"}')).__raw, '{"type":"pong"}');
    c.close();
  });

  it("join, leave, awareness and typing reach the other sockets", async () => {
    const doc = "channel:presence:description";
    const a = await Client.join(w.url, doc, { tok: token("ann"), clientId: "ann-1" });
    const b = await Client.open(w.url, doc, { tok: token("ben"), clientId: "ben-1" });
    const init = await b.next("initial_state");
    assert.deepEqual(init.payload.users.map((u) => u.user_id).sort(), ["ann", "ben"]);
    const join = await a.next("join");
    assert.deepEqual(join.payload, { user: { id: "ben", name: "User ben" }, client_id: "ben-1" });
    b.send({ type: "awareness", payload: { state: { cursor: 3 } } });
    const aw = await a.next("awareness");
    assert.deepEqual(aw.payload, { client_id: "ben-1", user_id: "ben", state: { cursor: 3 } });
    const c = await Client.open(w.url, doc, { tok: token("cid"), clientId: "cid-1" });
    const initC = await c.next("initial_state");
    assert.deepEqual(initC.payload.awareness, [{ client_id: "ben-1", user_id: "ben", state: { cursor: 3 } }]);
    b.send({ type: "typing", payload: {} });
    assert.deepEqual((await a.next("typing")).payload, { user_id: "ben", name: "User ben" });
    // Not refreshed: the server itself says the typing stopped (its alarm fires after 5 s).
    assert.deepEqual((await a.next("stopped_typing", 15_000)).payload, { user_id: "ben", name: "User ben" });
    b.close();
    const leave = await a.next("leave");
    assert.deepEqual(leave.payload, { user: { id: "ben", name: "User ben" }, client_id: "ben-1" });
    a.close();
    c.close();
  });

  it("a socket over 20 messages a second (burst 100) gets rate_limited, a flooding one is closed with 1008", async () => {
    const doc = "channel:flood:description";
    const c = await Client.join(w.url, doc, { tok: token("flood"), clientId: "f" });
    for (let i = 0; i < 130; i++) c.send({ type: "ping", id: `p${i}` });
    const replies = [];
    for (let i = 0; i < 130; i++) replies.push(await c.next((m) => m.type === "pong" || m.type === "error"));
    const limited = replies.filter((m) => m.type === "error");
    assert.ok(replies.filter((m) => m.type === "pong").length >= 100, "the burst of 100 passes");
    assert.ok(limited.length >= 1, "beyond the burst, messages are refused");
    for (const e of limited) {
      assert.equal(e.payload.code, "rate_limited");
      assert.ok(Number.isInteger(e.payload.retry_after_ms) && e.payload.retry_after_ms > 0);
      assert.match(e.reply_to, /^p\d+$/);
    }
    for (let i = 0; i < 600; i++) c.send({ type: "ping", id: `q${i}` });
    assert.equal(await c.waitClosed(), 1008);
  });
});
