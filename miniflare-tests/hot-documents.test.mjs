// PROTOCOL v1.2 §9 through the worker: 16 writers with `?batch=1` on one document, a batch
// observer and a v1 observer, and the runtime killed (SIGKILL) in the middle of the burst.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyOps, Client, eventually, opFrame, startWorker, token } from "./helpers.mjs";

const WRITERS = 16;
const fast = { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" };

/** The operations a socket received, in arrival order, whichever frame carried them. */
const received = (c) => c.inbox.flatMap((m) => (m.type === "operations" ? m.payload.operations : m.type === "operation" ? [m.payload] : []));

/** A writer with one insert in flight, sending the next when its own op comes back in a batch. */
function writer(c, doc, id, state) {
  let seq = 0;
  let version = 0;
  const send = () => c.send(opFrame(doc, id, ++seq, version, { type: "insert", position: 0, content: id.slice(-1) }));
  c.ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.type !== "operations") return;
    for (const op of m.payload.operations) {
      version = Math.max(version, op.version);
      if (op.client_id === id && op.seq === seq) {
        state.acked.set(`${id}/${seq}`, op.version);
        if (state.running) send();
      }
    }
  });
  send();
}

describe("§9 batched frames", () => {
  it("operations frames: gap-free versions, own ops as acks, no operation_ack, and every op any client saw survives a kill -9", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sc-hot-"));
    const doc = "channel:hot-batch:description";
    const first = await startWorker({ persistDir: dir, bindings: fast });
    const batchObserver = await Client.join(first.url, doc, { tok: token("obs"), clientId: "obs", query: { batch: "1" } });
    const plainObserver = await Client.join(first.url, doc, { tok: token("plain"), clientId: "plain" });
    const ids = Array.from({ length: WRITERS }, (_, i) => `w${String(i).padStart(2, "0")}`);
    const sockets = await Promise.all(ids.map((id) => Client.join(first.url, doc, { tok: token(id), clientId: id, query: { batch: "1" } })));
    const state = { running: true, acked: new Map() };
    sockets.forEach((c, i) => writer(c, doc, ids[i], state));
    await eventually(() => state.acked.size >= 300, "300 acks", 60_000);
    state.running = false;
    await first.mf.dispose(); // SIGKILL, with operations in flight

    // What the batch observer saw: strictly increasing, gap-free versions, several ops per frame.
    const seen = received(batchObserver);
    assert.ok(seen.length >= 300);
    seen.forEach((op, i) => assert.equal(op.version, i + 1, "versions strictly increasing, no gap"));
    assert.ok(batchObserver.inbox.some((m) => m.type === "operations" && m.payload.operations.length >= 2), "ops were batched");
    assert.ok(!batchObserver.inbox.some((m) => m.type === "operation"), "a batch socket gets no single operation frames");
    // The v1 observer saw the same ops, one frame each, in the same order.
    const plain = received(plainObserver);
    assert.ok(plainObserver.inbox.every((m) => m.type !== "operations"));
    assert.deepEqual(plain.map((o) => [o.version, o.client_id, o.seq]), seen.slice(0, plain.length).map((o) => [o.version, o.client_id, o.seq]));
    // Writers' acks came only inside batches, each op once.
    for (const c of sockets) {
      assert.ok(!c.inbox.some((m) => m.type === "operation_ack" || m.type === "error"), JSON.stringify(c.inbox.find((m) => m.type === "error")));
      const mine = received(c);
      mine.forEach((op, i) => assert.equal(op.version, i + 1));
    }

    // After the kill: every op any client saw is in the document, at the version it was seen at.
    const second = await startWorker({ persistDir: dir, bindings: fast });
    const replay = await Client.open(second.url, doc, { tok: token("after"), clientId: "after", since: 0 });
    const status = await replay.synced();
    const log = replay.inbox.filter((m) => m.type === "sync_operation").map((m) => m.payload);
    assert.ok(status.version >= seen.length, `version ${status.version} after the restart holds the ${seen.length} ops seen`);
    for (const op of seen) assert.deepEqual([log[op.version - 1].client_id, log[op.version - 1].seq], [op.client_id, op.seq]);
    for (const [key, version] of state.acked) assert.equal(`${log[version - 1].client_id}/${log[version - 1].seq}`, key);
    assert.equal(applyOps("", log.flatMap((o) => o.ops)).length, log.length, "one character per op");
    [batchObserver, plainObserver, ...sockets, replay].forEach((c) => c.close());
    await second.mf.dispose();
  });
});
