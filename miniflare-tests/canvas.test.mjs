// Canvas documents over real sockets against the built worker.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, opFrame, token, useWorker } from "./helpers.mjs";

const w = useWorker();

const DOC = "canvas:beat-sketch";
const grant = { "canvas:*": "write" };

describe("canvas", () => {
  it("strokes are shared, updates settle by timestamp, delete beats update, clear_all clears", async () => {
    const a = await Client.open(w.url, DOC, { tok: token("ana", grant), clientId: "ana" });
    const init = await a.next("initial_state");
    assert.deepEqual([init.payload.kind, init.payload.strokes], ["canvas", {}]);
    const b = await Client.join(w.url, DOC, { tok: token("ben", grant), clientId: "ben" });

    a.send(opFrame(DOC, "ana", 1, 0, { type: "stroke_create", stroke_id: "s1", data: { pts: [0, 0, 5, 5], color: "#f0f" } }));
    assert.equal((await a.next("operation_ack")).payload.status, "accepted");
    assert.deepEqual((await b.next("operation")).payload.ops, [{ type: "stroke_create", stroke_id: "s1", data: { pts: [0, 0, 5, 5], color: "#f0f" } }]);

    // Two concurrent updates (both against version 1): the later client timestamp wins.
    a.send({ ...opFrame(DOC, "ana", 2, 1, { type: "stroke_update", stroke_id: "s1", data: { color: "late" } }), payload: { client_id: "ana", seq: 2, version: 1, type: "stroke_update", stroke_id: "s1", data: { color: "late" }, timestamp: 2000 } });
    await a.next("operation_ack");
    b.send({ type: "operation", id: "b1", payload: { client_id: "ben", seq: 1, version: 1, type: "stroke_update", stroke_id: "s1", data: { color: "early" }, timestamp: 1000 } });
    assert.equal((await b.next("operation_ack")).payload.status, "noop");
    let doc = (await api(w.url, `/api/v1/documents/${DOC}`, { tok: token("ana", grant) })).json;
    assert.deepEqual(doc.strokes, { s1: { color: "late" } });

    b.send({ type: "operation", id: "b2", payload: { client_id: "ben", seq: 2, version: 2, type: "stroke_delete", stroke_id: "s1" } });
    await b.next("operation_ack");
    a.send(opFrame(DOC, "ana", 3, 2, { type: "stroke_update", stroke_id: "s1", data: { color: "zombie" } }));
    assert.equal((await a.next("operation_ack")).payload.status, "noop", "delete beats update");

    await a.submit(opFrame(DOC, "ana", 4, 3, { ops: [{ type: "stroke_create", stroke_id: "s2", data: 2 }, { type: "stroke_create", stroke_id: "s3", data: 3 }] }));
    b.send({ type: "operation", id: "b3", payload: { client_id: "ben", seq: 3, version: 4, type: "clear_all" } });
    await b.next("operation_ack");
    doc = (await api(w.url, `/api/v1/documents/${DOC}`, { tok: token("ana", grant) })).json;
    assert.deepEqual([doc.strokes, doc.version], [{}, 5]);

    a.send(opFrame(DOC, "ana", 5, 5, { type: "cursor_move", x: 1, y: 2 }));
    assert.equal((await a.next("error")).payload.code, "invalid_operation", "cursors go through awareness");
    a.send(opFrame(DOC, "ana", 5, 5, { type: "stroke_create", stroke_id: "big", data: "x".repeat(40_000) }));
    assert.equal((await a.next("error")).payload.code, "too_large");
    a.close();
    b.close();
  });

  it("a canvas needs a grant like a text document", async () => {
    const c = await Client.open(w.url, DOC, { tok: token("nobody", { "channel:*": "write" }), clientId: "n", expectFail: true });
    assert.equal(c.refusedStatus, 403);
  });
});
