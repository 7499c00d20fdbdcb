// Real responses of the worker validated against docs/openapi.yaml (bodies and required headers)
// and real WebSocket frames against docs/schemas/ws-messages.schema.json; the SDK's types
// (client/index.d.ts) agree with the schemas' enums.
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";
import { api, Client, opFrame, serviceToken, token, useWorker } from "./helpers.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const BASE = "https://sidechain.invalid/docs/";
const OA = `${BASE}openapi.yaml`;
const wsSchema = JSON.parse(readFileSync(join(ROOT, "docs/schemas/ws-messages.schema.json"), "utf8"));
const openapi = YAML.parse(readFileSync(join(ROOT, "docs/openapi.yaml"), "utf8"), { maxAliasCount: -1 });
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(wsSchema);
ajv.addSchema({ $id: OA, components: openapi.components });

/** Local refs ("#/components/…") point into openapi.yaml wherever the schema is compiled. */
const rebase = (s) =>
  Array.isArray(s) ? s.map(rebase) : s && typeof s === "object" ? Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === "$ref" && v.startsWith("#/") ? OA + v : rebase(v)])) : s;
const deref = (o) => (o?.$ref ? deref(o.$ref.replace("#/components/", "").split("/").reduce((a, k) => a[k], openapi.components)) : o);
let n = 0;
const validators = new Map();
function validatorFor(schema) {
  if (!validators.has(schema)) validators.set(schema, ajv.compile({ $id: `${BASE}inline-${++n}.json`, ...rebase(schema) }));
  return validators.get(schema);
}
const serverMsg = ajv.compile({ $ref: `${BASE}schemas/ws-messages.schema.json#/$defs/ServerMessage` });
const clientMsg = ajv.compile({ $ref: `${BASE}schemas/ws-messages.schema.json#/$defs/ClientMessage` });

const w = useWorker({ bindings: { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" } });
const checked = new Set();

/** Calls the route and validates the answer against the OpenAPI description of (path, method, status). */
async function call(template, path, { method = "GET", tok, body, headers, expect } = {}) {
  const r = await api(w.url, path, { method, tok, body, headers });
  if (expect !== undefined) assert.equal(r.status, expect, `${method} ${path}: ${r.status} ${r.text}`);
  const op = openapi.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not in openapi.yaml`);
  const resp = deref(op.responses[String(r.status)]);
  assert.ok(resp, `${method} ${template}: status ${r.status} is not documented (${r.text})`);
  for (const [name, h] of Object.entries(resp.headers ?? {})) {
    const hd = deref(h);
    if (hd.required) assert.ok(r.headers.get(name) !== null, `${method} ${template} ${r.status}: header ${name} missing`);
    if (hd.schema && r.headers.get(name) !== null) {
      const v = validatorFor(hd.schema);
      assert.ok(v(r.headers.get(name)), `${method} ${template} ${r.status}: header ${name}=${r.headers.get(name)}: ${JSON.stringify(v.errors)}`);
    }
  }
  const schema = resp.content?.["application/json"]?.schema;
  if (schema) {
    const v = validatorFor(schema);
    assert.ok(v(r.json), `${method} ${template} ${r.status}: ${JSON.stringify(v.errors)} in ${r.text}`);
  }
  checked.add(`${method} ${template} ${r.status}`);
  return r;
}

describe("API description (docs/openapi.yaml, docs/schemas)", () => {
  before(() => {
    // The schema files themselves compile.
    assert.ok(ajv.getSchema(`${BASE}schemas/ws-messages.schema.json`));
  });

  it("REST responses match openapi.yaml", async () => {
    const alice = token("alice");
    const svc = serviceToken();
    const doc = "channel:api:description";
    await call("/health", "/health", { expect: 200 });
    // v1.2 §5.5: a plain GET on a socket URL is a probe of the upgrade (was 426 before v1.2).
    await call("/ws/documents/{document_id}", `/ws/documents/${doc}?client_id=x`, { tok: alice, expect: 200 });
    await call("/ws/documents/{document_id}", `/ws/documents/${doc}?client_id=x`, { tok: token("nobody", { "other:*": "read" }), expect: 403 });
    await call("/ws", "/ws", { tok: alice, expect: 200 });

    const apply = (operation, opts) => call("/api/v1/operations/apply", "/api/v1/operations/apply", { method: "POST", tok: alice, body: { operation }, ...opts });
    await apply({ document_id: doc, client_id: "api-1", seq: 1, version: 0, type: "insert", position: 0, content: "héllo 👋" }, { expect: 202 });
    await apply({ document_id: doc, client_id: "api-1", seq: 1, version: 0, type: "insert", position: 0, content: "x" }, { expect: 202 }); // duplicate
    await apply({ document_id: doc, client_id: "api-1", seq: 9, version: 1, type: "insert", position: 0, content: "x" }, { expect: 409 });
    await apply({ document_id: doc, client_id: "api-1", seq: 2, version: 1, type: "insert", position: 99, content: "x" }, { expect: 422 });
    await call("/api/v1/operations/apply", "/api/v1/operations/apply", { method: "POST", tok: alice, body: "{not json", expect: 400 });
    await call("/api/v1/operations/apply", "/api/v1/operations/apply", { method: "POST", body: {}, expect: 401 });
    await call("/api/v1/operations/apply", "/api/v1/operations/apply", {
      method: "POST",
      tok: token("ro", { "channel:other:*": "write" }),
      body: { operation: { document_id: doc, client_id: "ro", type: "insert", position: 0, content: "x" } },
      expect: 403,
    });
    await call("/api/v1/operations/history/{document_id}", `/api/v1/operations/history/${doc}?limit=10`, { tok: alice, expect: 200 });
    await call("/api/v1/operations/history/{document_id}", `/api/v1/operations/history/${doc}?limit=0`, { tok: alice, expect: 400 });
    await call("/api/v1/documents/{document_id}", `/api/v1/documents/${doc}`, { tok: alice, expect: 200 });
    await call("/api/v1/documents/{document_id}", `/api/v1/documents/${doc}`, { tok: "bad", expect: 401 });
    await call("/api/v1/documents/{document_id}/metrics", `/api/v1/documents/${doc}/metrics`, { tok: alice, expect: 200 });
    await call("/api/v1/channels/{id}", "/api/v1/channels/api", { tok: alice, expect: 200 });
    await call("/api/v1/channels/{id}/description", "/api/v1/channels/api/description", { method: "PUT", tok: alice, body: { description: "Late-night lo-fi" }, expect: 200 });
    await call("/api/v1/channels/{id}/description", "/api/v1/channels/api/description", { method: "PUT", tok: alice, body: { description: "x", version: 0 }, expect: 409 });

    // canvas and post states
    await apply({ document_id: "canvas:api", client_id: "api-c", seq: 1, type: "stroke_create", stroke_id: "s1", data: { points: [[0, 0]] } }, { expect: 202 });
    await call("/api/v1/documents/{document_id}", "/api/v1/documents/canvas:api", { tok: alice, expect: 200 });
    await call("/api/v1/posts/{id}", "/api/v1/posts/api-post", { method: "PUT", tok: alice, body: {}, expect: 200 });
    await call("/api/v1/posts/{id}/likes", "/api/v1/posts/api-post/likes", { method: "POST", tok: token("bob"), body: { emoji: "🔥" }, expect: 200 });
    await call("/api/v1/posts/{id}/likes", "/api/v1/posts/api-post/likes", { method: "DELETE", tok: token("bob"), expect: 200 });
    await call("/api/v1/posts/{id}/reposts", "/api/v1/posts/api-post/reposts", { method: "POST", tok: token("bob"), expect: 200 });
    await call("/api/v1/posts/{id}/saves", "/api/v1/posts/api-post/saves", { method: "POST", tok: token("bob"), expect: 200 });
    const c = await call("/api/v1/posts/{id}/comments", "/api/v1/posts/api-post/comments", { method: "POST", tok: token("bob"), body: { text: "nice" }, expect: 201 });
    await call("/api/v1/posts/{id}/comments/{comment_id}", `/api/v1/posts/api-post/comments/${encodeURIComponent(c.json.comment_id)}`, { method: "DELETE", tok: token("bob"), expect: 200 });
    await call("/api/v1/posts/{id}/engagement", "/api/v1/posts/api-post/engagement", { tok: alice, expect: 200 });
    await call("/api/v1/posts/engagement", "/api/v1/posts/engagement?ids=api-post,api-other", { tok: alice, expect: 200 });
    await call("/api/v1/posts/engagement", "/api/v1/posts/engagement?ids=", { tok: alice, expect: 400 });
    await call("/api/v1/posts/{id}/comments", "/api/v1/posts/api-post/comments?limit=5", { tok: alice, expect: 200 });
    await call("/api/v1/posts/{id}/comments", "/api/v1/posts/api-post/comments?limit=0", { tok: alice, expect: 400 });
    const imp = { likes: [{ user_id: "imp-a", emoji: "🎹" }], reposts: ["imp-a"], saves: ["imp-b"], comments: [{ comment_id: "old-1", user_id: "imp-a", name: "A", text: "old", created_at: 1700000000000 }] };
    await call("/api/v1/posts/{id}/engagement/import", "/api/v1/posts/api-post/engagement/import", { method: "POST", tok: svc, body: imp, expect: 200 });
    await call("/api/v1/posts/{id}/engagement/import", "/api/v1/posts/api-post/engagement/import", { method: "POST", tok: svc, body: { likes: [{}] }, expect: 422 });
    await call("/api/v1/posts/{id}/engagement/import", "/api/v1/posts/api-post/engagement/import", { method: "POST", tok: alice, body: imp, expect: 403 });
    await call("/api/v1/posts/{id}/likes", "/api/v1/posts/api-post/likes", { method: "POST", tok: svc, body: { on_behalf_of: "obo" }, expect: 200 });
    await call("/api/v1/documents/{document_id}", "/api/v1/documents/post:api-post", { tok: alice, expect: 200 });

    // errors, presence, service routes
    const report = { source: "Audio", severity: "Error", message: "buffer underrun", timestamp: Date.now() };
    await call("/api/v1/errors/batch", "/api/v1/errors/batch", { method: "POST", tok: alice, body: { errors: [report, report] }, expect: 200 });
    await call("/api/v1/errors/batch", "/api/v1/errors/batch", { method: "POST", tok: alice, body: { errors: [{ ...report, severity: "Loud" }] }, expect: 422 });
    await call("/api/v1/errors/stats", "/api/v1/errors/stats?hours=1", { tok: alice, expect: 200 });
    const listed = await call("/api/v1/errors", "/api/v1/errors?resolved=false&limit=1", { tok: svc, expect: 200 });
    await call("/api/v1/errors", "/api/v1/errors?limit=abc", { tok: svc, expect: 400 });
    await call("/api/v1/errors", "/api/v1/errors", { tok: alice, expect: 403 });
    await call("/api/v1/errors/{id}", `/api/v1/errors/${listed.json.errors[0].id}`, { method: "PATCH", tok: svc, body: { resolved: true }, expect: 200 });
    await call("/api/v1/errors/{id}", "/api/v1/errors/424242", { method: "PATCH", tok: svc, body: { resolved: true }, expect: 404 });
    await call("/api/v1/errors/{id}", "/api/v1/errors/1", { method: "PATCH", tok: svc, body: { resolved: "x" }, expect: 422 });
    await call("/api/v1/me/presence", "/api/v1/me/presence", { method: "PUT", tok: alice, body: { status: "online", in_studio: true, daw_type: "Bitwig" }, expect: 200 });
    await call("/api/v1/users/{id}/presence", "/api/v1/users/alice/presence", { tok: token("bob"), expect: 200 });
    await call("/api/v1/websocket/metrics", "/api/v1/websocket/metrics", { tok: svc, expect: 200 });
    await call("/api/v1/websocket/metrics", "/api/v1/websocket/metrics", { tok: alice, expect: 403 });
    await call("/api/v1/documents/{document_id}", "/api/v1/documents/canvas:api", { method: "DELETE", tok: alice, expect: 403 });
    await call("/api/v1/documents/{document_id}", "/api/v1/documents/canvas:api", { method: "DELETE", tok: svc, expect: 200 });
    await call("/api/v1/channels/{id}", "/api/v1/channels/api", { method: "DELETE", tok: alice, expect: 403 });
    await call("/api/v1/channels/{id}", "/api/v1/channels/api", { method: "DELETE", tok: svc, expect: 200 });

    // 429 with Retry-After: the error batch class allows 20 a minute.
    const flood = token("flood");
    let last;
    for (let i = 0; i < 21; i++) last = await call("/api/v1/errors/batch", "/api/v1/errors/batch", { method: "POST", tok: flood, body: { errors: [report] } });
    assert.equal(last.status, 429);

    assert.ok(checked.size >= 30, `${checked.size} route/status pairs checked`);
  });

  it("§6 [1.2] REST: the plugin dialect, on_behalf_of on every engagement action, the feed reads", async () => {
    const svc = serviceToken();
    const doc = "channel:api-dialect:description";
    const plugin = { "X-Sidechain-Dialect": "plugin" };
    const ack = await call("/api/v1/operations/apply", "/api/v1/operations/apply", {
      method: "POST",
      tok: token("pia"),
      headers: plugin,
      body: { operation: { document_id: doc, clientId: 12345, type: "Insert", position: 0, content: "hé" } },
      expect: 202,
    });
    assert.equal(ack.json.client_id, 12345, "an integer client id is answered as that integer");
    assert.deepEqual([ack.json.transformed_operation.type, ack.json.error], ["insert", null]);
    assert.match(ack.json.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await call("/api/v1/operations/apply", "/api/v1/operations/apply", { method: "POST", tok: token("pia"), headers: { "X-Sidechain-Dialect": "klingon" }, body: { operation: { document_id: doc, client_id: "k", type: "insert", position: 0, content: "x" } }, expect: 400 });
    const hist = await call("/api/v1/operations/history/{document_id}", `/api/v1/operations/history/${doc}`, { tok: token("pia"), headers: plugin, expect: 200 });
    assert.deepEqual([hist.json.operations[0].type, hist.json.operations[0].content, hist.json.operations[0].client_id], ["insert", "hé", 12345]);
    await call("/ws/document/{document_id}", `/ws/document/${doc}?client_id=x&dialect=plugin`, { tok: token("pia"), expect: 200 });
    await call("/ws/documents/{document_id}", `/ws/documents/${doc}?client_id=x&dialect=klingon`, { tok: token("pia"), expect: 400 });
    // on_behalf_of: every engagement action takes it (service only).
    const post = "/api/v1/posts/api-obo";
    for (const coll of ["likes", "reposts", "saves"]) {
      await call(`/api/v1/posts/{id}/${coll}`, `${post}/${coll}`, { method: "POST", tok: svc, body: { on_behalf_of: "obo-u" }, expect: 200 });
      await call(`/api/v1/posts/{id}/${coll}`, `${post}/${coll}`, { method: "DELETE", tok: svc, body: { on_behalf_of: "obo-u" }, expect: 200 });
    }
    const c = await call("/api/v1/posts/{id}/comments", `${post}/comments`, { method: "POST", tok: svc, body: { text: "hi", on_behalf_of: "obo-u" }, expect: 201 });
    const listed = await call("/api/v1/posts/{id}/comments", `${post}/comments`, { tok: token("obo-r"), expect: 200 });
    assert.equal(listed.json.comments[0].user_id, "obo-u");
    await call("/api/v1/posts/{id}/comments/{comment_id}", `${post}/comments/${encodeURIComponent(c.json.comment_id)}`, { method: "DELETE", tok: svc, body: { on_behalf_of: "obo-u" }, expect: 200 });
    await call("/api/v1/posts/{id}/likes", `${post}/likes`, { method: "POST", tok: token("obo-x"), body: { on_behalf_of: "obo-u" }, expect: 403 });
    // The batch read names every id; a too-long list is a 400.
    const batch = await call("/api/v1/posts/engagement", "/api/v1/posts/engagement?ids=api-obo,never-seen", { tok: token("obo-r"), expect: 200 });
    assert.deepEqual(Object.keys(batch.json.posts).sort(), ["api-obo", "never-seen"]);
    assert.equal(batch.json.posts["never-seen"].like_count, 0);
    await call("/api/v1/posts/engagement", `/api/v1/posts/engagement?ids=${Array.from({ length: 101 }, (_, i) => `b${i}`).join(",")}`, { tok: token("obo-r"), expect: 400 });
    await call("/api/v1/channels/{id}", "/api/v1/channels/never-made", { method: "DELETE", tok: svc, expect: 200 });
  });

  it("every route of the router (src/edge/router.rs) is in openapi.yaml with each of its methods", () => {
    const src = readFileSync(join(ROOT, "src/edge/router.rs"), "utf8");
    const table = src.slice(src.indexOf("let allowed: &[Method] = match rest {"), src.indexOf("if !allowed.contains(method)"));
    const routes = [["GET", "/health"], ["GET", "/ws"], ["GET", "/ws/documents/_"], ["GET", "/ws/document/_"]];
    for (const [, patterns, methods] of table.matchAll(/^\s*(\[.*\]) => &\[([A-Za-z, ]+)\],$/gm)) {
      for (const pat of patterns.split(/\]\s*\|\s*\[/)) {
        // Expand alternatives ("likes" | "reposts") into one path each.
        let paths = [[]];
        for (const seg of pat.replace(/^\[|\]$/g, "").split(/,\s*/)) {
          const alts = seg.split(/\s*\|\s*/).map((a) => (a === "_" ? "_" : a.replace(/"/g, "")));
          paths = paths.flatMap((p) => alts.map((a) => [...p, a]));
        }
        for (const p of paths) for (const m of methods.split(/,\s*/)) routes.push([m.toUpperCase(), `/api/v1/${p.join("/")}`]);
      }
    }
    assert.ok(routes.length >= 40, `${routes.length} routes read from the router`);
    const templates = Object.keys(openapi.paths).map((t) => [t, t.replace(/\{[^}]+\}/g, "_")]);
    const missing = routes.filter(([m, r]) => !templates.some(([t, shape]) => shape === r && openapi.paths[t][m.toLowerCase()]));
    assert.deepEqual(missing, [], "routes the router serves that openapi.yaml does not describe");
  });

  it("WebSocket frames match ws-messages.schema.json", async () => {
    const doc = "channel:api-ws:description";
    const sent = [];
    const got = [];
    const send = (c, frame) => {
      sent.push(frame);
      c.send(frame);
    };
    const next = async (c, pred) => {
      const m = await c.next(pred);
      got.push(m);
      return m;
    };
    const a = await Client.join(w.url, doc, { tok: token("ann"), clientId: "ws-a" });
    const b = await Client.join(w.url, doc, { tok: token("ben"), clientId: "ws-b" });
    send(a, opFrame(doc, "ws-a", 1, 0, { type: "insert", position: 0, content: "hi 👋" }));
    await next(a, "operation_ack");
    await next(b, "operation");
    send(b, { type: "awareness", id: "aw", payload: { state: { cursor: 2 } } });
    await next(a, "awareness");
    send(b, { type: "typing", payload: {} });
    await next(a, "typing");
    send(b, { type: "stopped_typing", payload: {} });
    await next(a, "stopped_typing");
    send(a, { type: "ping", id: "p1", payload: {} });
    await next(a, "pong");
    send(a, { type: "sync", id: "s1", payload: { since: 0 } });
    await next(a, (m) => m.type === "sync_status" && m.reply_to === "s1");
    send(a, opFrame(doc, "ws-a", 5, 1, { type: "insert", position: 0, content: "x" }));
    await next(a, "error");
    const c = await Client.join(w.url, doc, { tok: token("cy"), clientId: "ws-c" });
    await next(a, "join");
    c.close();
    await next(a, "leave");

    const p = await Client.join(w.url, "post:api-ws", { tok: token("ann"), clientId: "ws-p" });
    send(p, { type: "operation", id: "l1", payload: { seq: 1, type: "modify", action: "like", emoji: "🔥" } });
    await next(p, "engagement_update");
    send(p, { type: "operation", id: "c1", payload: { seq: 2, type: "modify", action: "comment", text: "nice" } });
    await next(p, (m) => m.type === "engagement_update" && m.payload.comment_count === 1);

    const owner = token("api-owner");
    await api(w.url, "/api/v1/posts/api-owned", { method: "PUT", tok: owner, body: {} });
    const ch = await Client.open(w.url, null, { tok: owner });
    send(ch, { type: "watch_presence", id: "wp", payload: { user_ids: ["ann"] } });
    await next(ch, "presence");
    await api(w.url, "/api/v1/posts/api-owned/likes", { method: "POST", tok: token("ann"), body: {} });
    await next(ch, "notification");
    // [1.2] §6.2: watch_posts is answered with each post's counts, then pushed on change.
    send(ch, { type: "watch_posts", id: "wps", payload: { post_ids: ["api-owned", "api-ws"] } });
    await next(ch, (m) => m.type === "engagement_update" && m.reply_to === "wps");
    await api(w.url, "/api/v1/posts/api-ws/likes", { method: "POST", tok: token("bea"), body: {} });
    await next(ch, (m) => m.type === "engagement_update" && m.reply_to === null && m.payload.post_id === "api-ws");

    const clients = [a, b, p, ch, c];
    const frames = [...got, ...clients.flatMap((cl) => cl.inbox)];
    clients.forEach((cl) => cl.close());
    const types = new Set();
    for (const m of frames) {
      const frame = JSON.parse(m.__raw);
      types.add(frame.type);
      if (m.__raw === '{"type":"pong"}') continue;
      assert.ok(serverMsg(frame), `${m.__raw}: ${JSON.stringify(serverMsg.errors?.slice(0, 3))}`);
    }
    for (const f of sent) assert.ok(clientMsg(f), `${JSON.stringify(f)}: ${JSON.stringify(clientMsg.errors?.slice(0, 3))}`);
    for (const t of ["initial_state", "sync_status", "operation_ack", "operation", "sync_operation", "awareness", "typing", "stopped_typing", "pong", "error", "join", "leave", "engagement_update", "presence", "notification"])
      assert.ok(types.has(t), `no ${t} frame was validated`);
  });

  it("the SDK's types agree with the schemas", () => {
    const dts = readFileSync(join(ROOT, "client/index.d.ts"), "utf8");
    const union = (name) => {
      const m = new RegExp(`export type ${name} =([\\s\\S]*?);\\n\\n`).exec(dts);
      assert.ok(m, `${name} in index.d.ts`);
      return [...m[1].matchAll(/"([a-z_]+)"/g)].map((x) => x[1]).sort();
    };
    const defs = wsSchema.$defs;
    assert.deepEqual(union("ErrorCode"), [...defs.ErrorCode.enum].sort());
    assert.deepEqual(union("EngagementAction"), [...defs.EngagementAction.enum].sort());
    const ack = /status: ("accepted"[^;]+);/.exec(dts);
    assert.deepEqual([...ack[1].matchAll(/"([a-z_]+)"/g)].map((x) => x[1]).sort(), [...defs.AckStatus.enum].sort());
    const canvas = union("CanvasPrimitive").filter((t) => t.startsWith("stroke_") || t === "clear_all");
    assert.deepEqual(canvas.sort(), defs.CanvasPrimitive.oneOf.map((o) => o.properties.type.const).sort());
    for (const k of ["like_count", "comment_count", "repost_count", "save_count", "reactions"]) assert.match(dts, new RegExp(`${k}\\??:`), k);
    for (const k of Object.keys(defs.Presence.properties)) assert.match(dts, new RegExp(`\\b${k}\\??:`), `Presence.${k}`);
  });
});

