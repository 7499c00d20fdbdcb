// Acked operations survive a stop and restart of the runtime on the same persisted storage.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, applyOps, Client, opFrame, startWorker, token } from "./helpers.mjs";

describe("durability", () => {
  it("every acked op is still there after the runtime restarts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sc-persist-"));
    const doc = "channel:durable:description";
    const tok = token("pat");
    let text = "";
    const acks = [];

    // Ops go out as fast as acks come back: raise the per-socket budget (tested in collab).
    const fast = { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" };
    const first = await startWorker({ persistDir: dir, bindings: fast });
    const c = await Client.join(first.url, doc, { tok, clientId: "p" });
    // Enough ops to cross a snapshot (every 100 versions) so waking uses snapshot + tail.
    for (let i = 1; i <= 130; i++) {
      const op = i % 7 === 0 ? { type: "delete", position: 0, length: 1 } : { type: "insert", position: Array.from(text).length, content: `${i % 10}` };
      const ack = (await c.submit(opFrame(doc, "p", i, i - 1, op))).payload;
      assert.equal(ack.version, i);
      acks.push(ack);
      text = applyOps(text, ack.ops);
    }
    c.close();
    await first.mf.dispose();

    const second = await startWorker({ persistDir: dir, bindings: fast });
    const state = (await api(second.url, `/api/v1/documents/${doc}`, { tok })).json;
    assert.equal(state.version, 130);
    assert.equal(state.content, text);

    const again = await Client.open(second.url, doc, { tok, clientId: "p", since: 120 });
    const replay = [];
    for (let v = 121; v <= 130; v++) replay.push((await again.next("sync_operation")).payload);
    assert.deepEqual(replay.map((o) => o.version), acks.slice(120).map((a) => a.version));
    assert.deepEqual(replay.map((o) => o.ops), acks.slice(120).map((a) => a.ops));
    assert.equal((await again.synced()).version, 130);
    // The client remembers its seq across the restart: a resend is a duplicate, the next is new.
    again.send(opFrame(doc, "p", 130, 129, { type: "insert", position: 0, content: "dup" }));
    assert.equal((await again.next("operation_ack")).payload.status, "duplicate");
    again.send(opFrame(doc, "p", 131, 130, { type: "insert", position: 0, content: "!" }));
    assert.equal((await again.next("operation_ack")).payload.version, 131);

    const hist = await api(second.url, `/api/v1/operations/history/${doc}?limit=1000`, { tok });
    assert.deepEqual(hist.json.operations.map((o) => o.version), Array.from({ length: 131 }, (_, i) => i + 1));
    again.close();
    await second.mf.dispose();
  });
});
