// Operation history sharded across two D1 databases by FNV-1a 64 of the document id: the flush,
// history reads, deletion, the metrics' operation rate and retention each use the right shard.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { api, Client, opFrame, serviceToken, token, useWorker } from "./helpers.mjs";

const w = useWorker();
const DAY = 24 * 3600 * 1000;

/** FNV-1a 64 over the UTF-8 bytes, as src/history_shards.rs computes it. */
function fnv1a64(id) {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(id)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}
const shardOf = (id) => Number(fnv1a64(id) % BigInt(w.shards.length));

/** The first `channel:<prefix>-<n>:description` that lands in `shard`. */
function docIn(shard, prefix) {
  for (let n = 0; ; n++) {
    const id = `channel:${prefix}-${n}:description`;
    if (shardOf(id) === shard) return id;
  }
}

const count = async (db, doc) =>
  (await db.prepare("SELECT COUNT(*) AS n FROM operations WHERE document_id = ?").bind(doc).first()).n;

/** Polls `fn` until it returns a truthy value; fails with `what` after the deadline. */
async function until(what, fn, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every page of a document's history, `limit` at a time. */
async function fullHistory(doc, tok, limit) {
  const seen = [];
  let since = 0;
  for (let pages = 0; ; pages++) {
    const page = await api(w.url, `/api/v1/operations/history/${encodeURIComponent(doc)}?since=${since}&limit=${limit}`, { tok });
    assert.equal(page.status, 200, page.text);
    assert.ok(page.json.operations.length <= limit);
    seen.push(...page.json.operations);
    since = page.json.next_since;
    if (!page.json.has_more) return { seen, pages: pages + 1 };
  }
}

describe("history shards", () => {
  it("the hash is pinned to the same values as the Rust unit tests", () => {
    assert.equal(fnv1a64(""), 0xcbf29ce484222325n);
    assert.equal(fnv1a64("channel:abc123:description"), 0x36fea401fa13848an);
    assert.equal(fnv1a64("post:42"), 0xd96df78c9dd91e41n);
    assert.equal(fnv1a64("canvas:é🎧"), 0x85b78dba78e57b8fn);
    assert.deepEqual(["channel:abc123:description", "post:42"].map((id) => Number(fnv1a64(id) % 2n)), [0, 1]);
  });

  it("migrations are applied from empty on both shards and /health asks each", async () => {
    assert.equal(w.shards.length, 2);
    const files = readdirSync(new URL("../migrations", import.meta.url)).filter((f) => f.endsWith(".sql")).sort();
    for (const db of w.shards) {
      const applied = (await db.prepare("SELECT name FROM d1_migrations ORDER BY name").all()).results.map((r) => r.name);
      assert.deepEqual(applied, files);
      const cols = (await db.prepare("SELECT name FROM pragma_table_info('operations')").all()).results.map((r) => r.name);
      assert.ok(cols.includes("incarnation"), cols.join());
    }
    const h = await api(w.url, "/health", { tok: serviceToken() });
    assert.equal(h.status, 200, h.text);
    assert.deepEqual([h.json.d1, h.json.d1_databases], ["ok", { DB: "ok", HISTORY_1: "ok" }]);
  });

  it("each document's flushed history is in its shard only, read back in order and paged", async () => {
    const tok = token("sharder");
    const docs = [docIn(0, "sock"), docIn(1, "sock"), docIn(0, "rest"), docIn(1, "rest")];
    const counts = [7, 6, 5, 4];
    const acks = [];
    // Two documents over WebSocket, two over REST: one of each in each shard.
    for (const [i, doc] of docs.slice(0, 2).entries()) {
      const c = await Client.join(w.url, doc, { tok, clientId: `ws-${i}` });
      const mine = [];
      for (let v = 1; v <= counts[i]; v++) {
        mine.push((await c.submit(opFrame(doc, `ws-${i}`, v, v - 1, { type: "insert", position: 0, content: `${v};` }))).payload);
      }
      acks.push(mine);
      c.close();
    }
    for (const [j, doc] of docs.slice(2).entries()) {
      const mine = [];
      for (let v = 1; v <= counts[j + 2]; v++) {
        const body = { operation: { document_id: doc, client_id: "rest-c", seq: v, version: v - 1, type: "insert", position: 0, content: `${v}.` } };
        const r = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.json.version, v);
        mine.push(r.json);
      }
      acks.push(mine);
    }

    // The alarm's flush (not a history read, which flushes first) puts the rows in D1.
    for (const [i, doc] of docs.entries()) {
      const home = w.shards[shardOf(doc)];
      await until(`${counts[i]} rows of ${doc}`, async () => (await count(home, doc)) === counts[i]);
      assert.equal(await count(w.shards[1 - shardOf(doc)], doc), 0, `${doc} has rows in the other shard`);
    }
    for (const db of w.shards) {
      assert.ok((await db.prepare("SELECT COUNT(*) AS n FROM operations").first()).n > 0, "both shards hold history");
    }

    for (const [i, doc] of docs.entries()) {
      const { seen, pages } = await fullHistory(doc, tok, 2);
      assert.equal(pages, Math.ceil(counts[i] / 2));
      assert.deepEqual(seen.map((o) => o.version), acks[i].map((a) => a.version));
      assert.deepEqual(seen.map((o) => o.id), acks[i].map((a) => a.operation_id));
    }

    // The metrics' operation rate counts every document's operations, whichever shard holds them
    // (rooms report from the alarm that flushed them, so it may trail the flush a little).
    const total = counts.reduce((a, b) => a + b);
    let m;
    for (const end = Date.now() + 30_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      m = await api(w.url, "/api/v1/websocket/metrics", { tok: serviceToken() });
      if (m.json.operations_per_minute >= total) break;
    }
    assert.ok(m.json.operations_per_minute >= total, JSON.stringify(m.json));

    // Deleting a document clears its rows in its shard and leaves the others alone.
    for (const doc of [docs[0], docs[1]]) {
      const del = await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}`, { method: "DELETE", tok: serviceToken() });
      assert.equal(del.status, 200, del.text);
      assert.equal(await count(w.shards[shardOf(doc)], doc), 0);
      assert.equal((await api(w.url, `/api/v1/operations/history/${encodeURIComponent(doc)}`, { tok })).json.operations.length, 0);
    }
    assert.equal(await count(w.shards[shardOf(docs[2])], docs[2]), counts[2]);
    assert.equal(await count(w.shards[shardOf(docs[3])], docs[3]), counts[3]);
  });

  it("retention removes history older than 30 days in every shard, error reports in DB", async () => {
    const now = Date.now();
    const insertOp = (db, doc, v, ts) =>
      db
        .prepare("INSERT INTO operations (document_id, version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops) VALUES (?, ?, ?, 'c', 'u', ?, ?, ?, '[]')")
        .bind(doc, v, `c:${v}`, v, ts, ts)
        .run();
    const docs = [docIn(0, "old"), docIn(1, "old")];
    for (const doc of docs) {
      const db = w.shards[shardOf(doc)];
      await insertOp(db, doc, 1, now - 40 * DAY);
      await insertOp(db, doc, 2, now - 31 * DAY);
      await insertOp(db, doc, 3, now - 29 * DAY);
    }
    await w.db
      .prepare("INSERT INTO error_logs (user_id, source, severity, message, client_timestamp, first_seen, last_seen) VALUES ('shard-ret', 'UI', 'Info', 'm', ?, ?, ?)")
      .bind(now - 91 * DAY, now - 91 * DAY, now - 91 * DAY)
      .run();
    const worker = await w.mf.getWorker();
    await worker.scheduled({ cron: "17 * * * *" });
    for (const doc of docs) {
      const rows = (await w.shards[shardOf(doc)].prepare("SELECT version FROM operations WHERE document_id = ? ORDER BY version").bind(doc).all()).results;
      assert.deepEqual(rows.map((r) => r.version), [3], `${doc} in shard ${shardOf(doc)}`);
    }
    assert.equal((await w.db.prepare("SELECT COUNT(*) AS n FROM error_logs WHERE user_id = 'shard-ret'").first()).n, 0);
  });
});
