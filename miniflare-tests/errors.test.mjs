// Client error tracking: batches, dedupe, validation, stats, and the retention cron.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, serviceToken, token, useWorker } from "./helpers.mjs";

const w = useWorker();

const report = (over = {}) => ({ source: "Audio", severity: "Error", message: "buffer underrun", timestamp: Date.now(), ...over });
const post = (tok, errors) => api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body: { errors } });
const rows = async (user) => (await w.db.prepare("SELECT * FROM error_logs WHERE user_id = ? ORDER BY id").bind(user).all()).results;

describe("error tracking", () => {
  it("records a batch and merges repeats within and across batches", async () => {
    const tok = token("prod-1");
    let r = await post(tok, [report(), report({ occurrences: 3 }), report({ source: "Network", message: "timeout", context: { url: "/x" } })]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: "recorded", recorded: 2, deduplicated: 1 });
    r = await post(tok, [report({ occurrences: 2 })]);
    assert.deepEqual(r.json, { status: "recorded", recorded: 0, deduplicated: 1 });
    const stored = await rows("prod-1");
    assert.equal(stored.length, 2);
    assert.equal(stored[0].occurrences, 6);
    assert.ok(stored[0].last_seen >= stored[0].first_seen);
    assert.deepEqual(JSON.parse(stored[1].context), { url: "/x" });
    // Another user's identical error is their own row.
    assert.deepEqual((await post(token("prod-2"), [report()])).json, { status: "recorded", recorded: 1, deduplicated: 0 });
  });

  it("a report first seen more than an hour ago starts a new row", async () => {
    const tok = token("prod-old");
    await post(tok, [report()]);
    await w.db.prepare("UPDATE error_logs SET first_seen = first_seen - 3601000 WHERE user_id = 'prod-old'").run();
    assert.deepEqual((await post(tok, [report()])).json, { status: "recorded", recorded: 1, deduplicated: 0 });
    assert.equal((await rows("prod-old")).length, 2);
  });

  it("concurrent batches of one error end in one row with every count", async () => {
    const tok = token("racer");
    const results = await Promise.all(Array.from({ length: 8 }, () => post(tok, [report({ message: "race" }), report({ message: "race" })])));
    for (const r of results) assert.equal(r.status, 200, r.text);
    const stored = await rows("racer");
    assert.equal(stored.length, 1);
    assert.equal(stored[0].occurrences, 16);
    const recorded = results.reduce((n, r) => n + r.json.recorded, 0);
    const merged = results.reduce((n, r) => n + r.json.deduplicated, 0);
    assert.deepEqual([recorded, merged], [1, 15]);
  });

  it("an invalid batch is refused whole with 422 naming each bad index and field", async () => {
    const tok = token("sloppy");
    const r = await post(tok, [
      report(),
      report({ source: "Kernel", severity: "Meh" }),
      report({ message: "" }),
      report({ context: "nope", occurrences: 0 }),
      report({ timestamp: "yesterday" }),
      report({ context: { big: "x".repeat(5000) } }),
    ]);
    assert.equal(r.status, 422, r.text);
    const got = r.json.error.details.errors.map((e) => `${e.index}:${e.field}`);
    assert.deepEqual(got, ["1:source", "1:severity", "2:message", "3:context", "3:occurrences", "4:timestamp", "5:context"]);
    assert.equal((await rows("sloppy")).length, 0, "nothing recorded");
    for (const body of [{}, { errors: [] }, { errors: Array(101).fill(report()) }]) {
      const bad = await api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body });
      assert.equal(bad.status, 422);
      assert.equal(bad.json.error.details.errors[0].field, "errors");
    }
    assert.equal((await api(w.url, "/api/v1/errors/batch", { method: "POST", body: { errors: [report()] } })).status, 401);
  });

  it("stats cover the caller's errors, or everyone's with a service token", async () => {
    const tok = token("stats-user");
    await post(tok, [
      report({ message: "a", occurrences: 5 }),
      report({ message: "b", severity: "Critical", source: "Sync" }),
      report({ message: "c", severity: "Info", source: "UI", occurrences: 2 }),
    ]);
    const s = (await api(w.url, "/api/v1/errors/stats?hours=24", { tok })).json;
    assert.equal(s.total, 8);
    assert.deepEqual(s.by_severity, { Critical: 1, Error: 5, Info: 2 });
    assert.deepEqual(s.by_source, { Audio: 5, Sync: 1, UI: 2 });
    assert.deepEqual(s.top_messages[0], { message: "a", occurrences: 5 });
    assert.equal(s.hourly.reduce((n, h) => n + h.count, 0), 8);
    assert.match(s.hourly[0].hour, /^\d{4}-\d\d-\d\dT\d\d:00:00Z$/);
    const all = (await api(w.url, "/api/v1/errors/stats", { tok: serviceToken() })).json;
    assert.ok(all.total > s.total);
    for (const h of ["0", "721", "x"]) {
      assert.equal((await api(w.url, `/api/v1/errors/stats?hours=${h}`, { tok })).status, 400);
    }
  });

  it("the cron job removes only history older than 30 days and errors older than 90", async () => {
    const day = 24 * 3600 * 1000;
    const now = Date.now();
    const insertOp = (doc, v, ts) =>
      w.db
        .prepare("INSERT INTO operations (document_id, version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops) VALUES (?, ?, ?, 'c', 'u', ?, ?, ?, '[]')")
        .bind(doc, v, `c:${v}`, v, ts, ts)
        .run();
    await insertOp("retention:doc", 1, now - 31 * day);
    await insertOp("retention:doc", 2, now - 29 * day);
    const insertErr = (user, ts) =>
      w.db.prepare("INSERT INTO error_logs (user_id, source, severity, message, client_timestamp, first_seen, last_seen) VALUES (?, 'UI', 'Info', 'm', ?, ?, ?)").bind(user, ts, ts, ts).run();
    await insertErr("retention-user", now - 91 * day);
    await insertErr("retention-user", now - 89 * day);
    const worker = await w.mf.getWorker();
    await worker.scheduled({ cron: "17 * * * *" });
    const ops = (await w.db.prepare("SELECT version FROM operations WHERE document_id = 'retention:doc'").all()).results;
    assert.deepEqual(ops.map((o) => o.version), [2]);
    const errs = await rows("retention-user");
    assert.equal(errs.length, 1);
    assert.ok(errs[0].last_seen > now - 90 * day);
  });
});

describe("error log listing and resolution (§6.1)", () => {
  const svc = serviceToken();
  const list = (query) => api(w.url, `/api/v1/errors${query}`, { tok: svc });
  const patch = (id, body, tok = svc) => api(w.url, `/api/v1/errors/${id}`, { method: "PATCH", tok, body });

  it("user tokens may neither list nor resolve; bad parameters get 400/422 and change nothing", async () => {
    await post(token("lister-1"), [report({ message: "listed one" })]);
    assert.equal((await api(w.url, "/api/v1/errors", { tok: token("lister-1") })).status, 403);
    const [row] = await rows("lister-1");
    assert.equal(row.is_resolved, 0);
    assert.equal((await patch(row.id, { resolved: true }, token("lister-1"))).status, 403);
    for (const q of ["?resolved=maybe", "?severity=Fatal", "?source=disk", "?limit=0", "?limit=5000", "?before=yesterday"]) {
      const r = await list(q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.error.code, "bad_request");
    }
    for (const body of [{}, { resolved: "yes" }, { resolved: 1 }]) {
      const r = await patch(row.id, body);
      assert.equal(r.status, 422, r.text);
    }
    assert.equal((await patch("abc", { resolved: true })).status, 400);
    assert.equal((await patch(999999999, { resolved: true })).status, 404);
    const bad = await fetch(`${w.url}/api/v1/errors/${row.id}`, { method: "PATCH", headers: { authorization: `Bearer ${svc}` }, body: "{nope" });
    assert.equal(bad.status, 400);
    assert.equal((await rows("lister-1"))[0].is_resolved, 0);
  });

  it("lists newest last_seen first with filters, pages by next_before, and resolves", async () => {
    const tok = token("lister-2");
    const sevs = ["Info", "Warning", "Error", "Critical"];
    for (let i = 0; i < 12; i++) {
      await post(tok, [report({ message: `paged ${i}`, severity: sevs[i % 4], source: i % 2 ? "UI" : "Sync" })]);
    }
    // Equal last_seen for some rows: the cursor must not skip or repeat ties.
    await w.db.prepare("UPDATE error_logs SET last_seen = 1800000000000 WHERE user_id = 'lister-2' AND message IN ('paged 3','paged 4','paged 5')").run();
    const seen = [];
    let before = "";
    for (;;) {
      const r = await list(`?limit=5${before ? `&before=${encodeURIComponent(before)}` : ""}`);
      assert.equal(r.status, 200, r.text);
      seen.push(...r.json.errors.filter((e) => e.user_id === "lister-2"));
      for (let i = 1; i < r.json.errors.length; i++) assert.ok(r.json.errors[i - 1].last_seen >= r.json.errors[i].last_seen);
      if (!r.json.next_before) break;
      before = r.json.next_before;
    }
    assert.equal(seen.length, 12);
    assert.equal(new Set(seen.map((e) => e.id)).size, 12);
    assert.deepEqual(seen.slice(0, 3).map((e) => e.message).sort(), ["paged 3", "paged 4", "paged 5"]);
    const e = seen[5];
    assert.deepEqual(Object.keys(e).sort(), ["context", "first_seen", "id", "is_resolved", "last_seen", "message", "occurrences", "severity", "source", "user_id"]);
    assert.equal(e.is_resolved, false);

    const crit = await list("?severity=Critical&source=UI&resolved=false&limit=200");
    const mine = crit.json.errors.filter((x) => x.user_id === "lister-2").map((x) => x.message).sort();
    assert.deepEqual(mine, ["paged 11", "paged 3", "paged 7"]);

    const r = await patch(e.id, { resolved: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.is_resolved, true);
    assert.equal(r.json.id, e.id);
    const open = await list("?resolved=false&limit=200");
    assert.ok(!open.json.errors.some((x) => x.id === e.id));
    const done = await list("?resolved=true&limit=200");
    assert.ok(done.json.errors.some((x) => x.id === e.id));
    // `resolved: false` reopens it.
    const reopened = await patch(e.id, { resolved: false });
    assert.equal(reopened.status, 200, reopened.text);
    assert.equal(reopened.json.is_resolved, false);
    assert.ok((await list("?resolved=false&limit=200")).json.errors.some((x) => x.id === e.id));
    assert.equal((await patch(e.id, { resolved: true })).json.is_resolved, true);
    // The same error reported again reopens it (merged into the row).
    await post(tok, [report({ message: e.message, severity: e.severity, source: e.source })]);
    const again = (await rows("lister-2")).find((x) => x.id === e.id);
    assert.equal(again.is_resolved, 0);
    assert.equal(again.occurrences, 2);
  });
});
