// Live metrics (issue 10): rooms report to stats shards chosen by a hash of the document id,
// off the request path; GET /api/v1/websocket/metrics merges the shards. Nothing here waits
// on a timer: each check polls the endpoint until the figures arrive or a deadline passes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, opFrame, token, useWorker, objectCall } from "./helpers.mjs";

const w = useWorker();
// A fresh service subject per call keeps polling clear of the 100 requests/min API limit.
let calls = 0;
const metrics = async () => (await api(w.url, "/api/v1/websocket/metrics", { tok: token(`ops-${calls++}`, {}, { role: "service" }) })).json;

/** Polls the metrics until `ok(m)` holds (reports arrive after responses and from alarms). */
async function metricsUntil(ok, what) {
  const end = Date.now() + 30_000;
  let m;
  while (Date.now() < end) {
    m = await metrics();
    if (ok(m)) return m;
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not a synchronisation
  }
  assert.fail(`${what}: ${JSON.stringify(m)}`);
}

describe("live metrics from sharded stats objects", () => {
  it("count messages, operations, sync lag, apply time, errors by code and refused connects", async () => {
    const doc = "channel:metrics-live:description";
    const a = await Client.join(w.url, doc, { tok: token("ann"), clientId: "ma" });
    const b = await Client.join(w.url, doc, { tok: token("bob"), clientId: "mb" });
    await a.submit(opFrame(doc, "ma", 1, 0, { type: "insert", position: 0, content: "x" }));
    // Bob's op is based on version 0: it is transformed over Ann's, a sync lag of one version.
    const ack = await b.submit(opFrame(doc, "mb", 1, 0, { type: "insert", position: 0, content: "y" }));
    assert.equal(ack.payload.version, 2);
    b.send(opFrame(doc, "mb", 5, 2, { type: "insert", position: 0, content: "z" }));
    assert.equal((await b.next("error")).payload.code, "seq_gap");
    // Ann's client id is hers: Bob's connect with it is refused, and counted.
    const refused = await Client.open(w.url, doc, { tok: token("bob"), clientId: "ma", expectFail: true });
    assert.equal(refused.refusedStatus, 409);

    const m = await metricsUntil(
      (m) => m.operations_per_minute >= 2 && m.errors_by_code?.seq_gap >= 1 && m.failed_connections_per_minute >= 1,
      "operations, the seq_gap and the refused connect are counted",
    );
    assert.ok(m.connections >= 2 && m.active_documents >= 1);
    assert.ok(m.room_sizes["2-5"] >= 1, "a room of two");
    assert.ok(m.messages_per_second > 0 && m.operations_per_second > 0);
    assert.ok(m.sync_lag_versions.p99 >= 1, "the transformed op's lag");
    assert.equal(typeof m.apply_time_ms.p50, "number");
    assert.ok(m.errors_by_code.client_id_taken >= 1);
    assert.ok(m.error_replies_per_minute >= 2);
    assert.ok(m.memory_bytes_max > 0);
    assert.ok(Number.isInteger(m.errors_per_minute), "client error reports, from D1");

    const doc_ = (await api(w.url, `/api/v1/documents/${doc}/metrics`, { tok: token("ann") })).json;
    assert.ok(doc_.since_wake.messages_since_wake >= 3);
    assert.equal(doc_.since_wake.sync_lag_versions.p99, 1);
    assert.equal(typeof doc_.since_wake.apply_time_ms.p99, "number");
    a.close();
    b.close();
  });

  it("documents spread over the shards, and the endpoint sums them", async () => {
    const docs = Array.from({ length: 24 }, (_, i) => `channel:spread-${i}:description`);
    const sockets = [];
    for (const [i, doc] of docs.entries()) sockets.push(await Client.join(w.url, doc, { tok: token(`s${i}`), clientId: `s${i}` }));
    const snapshot = async (i) => (await objectCall(w.mf, "STATS", `stats-${i}`, "/snapshot")).json;
    let shards;
    const end = Date.now() + 30_000;
    do {
      shards = await Promise.all(Array.from({ length: 16 }, (_, i) => snapshot(i)));
    } while (shards.reduce((n, s) => n + s.connections, 0) < 24 && Date.now() < end && (await new Promise((r) => setTimeout(r, 100))) === undefined);
    const used = shards.filter((s) => s.active_documents > 0).length;
    assert.ok(used >= 8, `24 documents over 16 shards use many of them (${used})`);
    const m = await metrics();
    assert.equal(m.connections, shards.reduce((n, s) => n + s.connections, 0));
    assert.equal(m.active_documents, shards.reduce((n, s) => n + s.active_documents, 0));
    sockets.forEach((c) => c.close());
    await metricsUntil((m) => m.connections === 0, "closed sockets leave the gauges");
  });
});
