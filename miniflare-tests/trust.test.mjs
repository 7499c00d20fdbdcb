// PROTOCOL v1.2 §5.1 and §5.5, tried the way a hostile user would: per-user socket limits, shared
// message budgets, client_id claims, token expiry and in-band refresh, revocation, probes,
// private posts, and the service class of limits.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, opFrame, serviceToken, token, useWorker } from "./helpers.mjs";

// A socket may outlive its token by TOKEN_GRACE_MS (60 s in production): 0 here, so a token
// that expires in two seconds closes its socket at the first alarm after that.
const w = useWorker({ bindings: { TOKEN_GRACE_MS: "0" } });

const nowSecs = () => Math.floor(Date.now() / 1000);
const wsPath = (doc, qs) => `/ws/documents/${encodeURIComponent(doc)}?${new URLSearchParams(qs)}`;
/** The probe of an upgrade: the same URL without `Upgrade` (§5.5). */
const probe = (doc, tok, clientId) => api(w.url, wsPath(doc, { token: tok, client_id: clientId }));
const integer = (v) => assert.match(String(v), /^[1-9]\d*$/, `Retry-After must be a positive integer, got ${v}`);

/** Sends `frame` and waits for its direct answer (reply_to = its id). */
async function ask(c, frame) {
  c.send(frame);
  return c.next((m) => m.reply_to === frame.id);
}

describe("§5.1 per-user socket limits", () => {
  it("the 9th socket of a user on one document is refused 429 too_many_connections", async () => {
    const doc = "channel:nine:description";
    const tok = token("hoarder");
    const open = [];
    for (let i = 0; i < 8; i++) open.push(await Client.join(w.url, doc, { tok, clientId: `tab-${i}` }));
    const ninth = await Client.open(w.url, doc, { tok, clientId: "tab-8", expectFail: true });
    assert.equal(ninth.refusedStatus, 429);
    integer(ninth.refusedHeaders["retry-after"]);
    const p = await probe(doc, tok, "tab-8");
    assert.equal(p.status, 429);
    assert.equal(p.json.error.code, "too_many_connections");
    // Another user is not affected, and a closed socket makes room again.
    const other = await Client.join(w.url, doc, { tok: token("bystander"), clientId: "b" });
    open[0].close();
    await open[0].waitClosed();
    await waitForProbe(doc, tok, "tab-8", 200);
    const again = await Client.join(w.url, doc, { tok, clientId: "tab-8" });
    for (const c of [...open.slice(1), other, again]) c.close();
  });

  it("the 61st upgrade of a user in a minute is refused; probes do not count", async () => {
    const tok = token("reconnector");
    for (let i = 0; i < 5; i++) assert.equal((await probe(`up:probe`, tok, "p")).status, 200);
    for (let i = 0; i < 60; i++) {
      const c = await Client.join(w.url, `up:${i % 6}`, { tok, clientId: `c${i}` });
      c.close();
      await c.waitClosed();
    }
    const refused = await Client.open(w.url, "up:0", { tok, clientId: "late", expectFail: true });
    assert.equal(refused.refusedStatus, 429);
    integer(refused.refusedHeaders["retry-after"]);
    assert.ok(Number(refused.refusedHeaders["retry-after"]) <= 60);
    const p = await probe("up:0", tok, "late");
    assert.equal(p.status, 429);
    assert.equal(p.json.error.code, "rate_limited");
    // The personal channel counts in the same window.
    const channel = await Client.open(w.url, null, { tok, expectFail: true });
    assert.equal(channel.refusedStatus, 429);
    // Someone else still connects.
    (await Client.join(w.url, "up:0", { tok: token("patient"), clientId: "x" })).close();
  });

  it("the message budget is per (user, document), shared by the user's sockets", async () => {
    const doc = "channel:budget:description";
    const tok = token("flooder");
    const socks = [];
    for (let i = 0; i < 4; i++) socks.push(await Client.join(w.url, doc, { tok, clientId: `f${i}` }));
    const calm = await Client.join(w.url, doc, { tok: token("calm"), clientId: "calm" });
    // 4 × 60 frames: within each socket's own burst of 100, but far over the user's.
    const answers = await Promise.all(
      socks.map(async (c, s) => {
        const ids = Array.from({ length: 60 }, (_, i) => `s${s}-${i}`);
        for (const id of ids) c.send({ type: "ping", id });
        return Promise.all(ids.map((id) => c.next((m) => m.reply_to === id)));
      }),
    );
    const all = answers.flat();
    const refused = all.filter((m) => m.type === "error" && m.payload.code === "rate_limited");
    assert.ok(refused.length >= 60, `refused ${refused.length} of 240`);
    assert.ok(refused.every((m) => m.payload.retry_after_ms > 0));
    assert.ok(all.every((m) => m.type === "pong" || refused.includes(m)), "every frame got a pong or rate_limited");
    // The other user's budget is their own.
    assert.equal((await ask(calm, { type: "ping", id: "calm-1" })).type, "pong");
    for (const c of [...socks, calm]) c.close();
  });

  it("a user who keeps flooding loses every socket there (1008), not just the one that flooded", async () => {
    const doc = "channel:flood:description";
    const tok = token("spammer");
    const [a, b] = [await Client.join(w.url, doc, { tok, clientId: "a" }), await Client.join(w.url, doc, { tok, clientId: "b" })];
    for (let i = 0; i < 400; i++) a.send({ type: "ping", id: `f${i}` });
    assert.equal(await a.closedBy(), 1008);
    // The shared budget was not reset by that close: what b sends next finds it spent (a token
    // or two may have come back meanwhile, at 20 a second), and b is closed at the first refusal.
    for (let i = 0; i < 30; i++) b.send({ type: "ping", id: `after-${i}` });
    assert.equal(await b.closedBy(), 1008);
    const pongs = b.inbox.filter((m) => m.type === "pong" && m.reply_to?.startsWith("after-")).length;
    assert.ok(pongs < 30, `${pongs} of 30 answered`);
  });

  it("the 17th socket on the personal channel is refused; notification_read and watch_presence are bounded", async () => {
    const tok = token("many-tabs");
    const open = [];
    for (let i = 0; i < 16; i++) open.push(await Client.open(w.url, null, { tok }));
    const extra = await Client.open(w.url, null, { tok, expectFail: true });
    assert.equal(extra.refusedStatus, 429);
    const p = await api(w.url, `/ws?token=${tok}`);
    assert.equal(p.status, 429);
    assert.equal(p.json.error.code, "too_many_connections");
    const c = open[0];
    const big = await ask(c, { type: "notification_read", id: "r1", payload: { event_ids: Array.from({ length: 101 }, (_, i) => `e${i}`) } });
    assert.equal(big.payload.code, "too_large");
    const tooMany = await ask(c, { type: "watch_presence", id: "w0", payload: { user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`) } });
    assert.equal(tooMany.type, "error");
    c.send({ type: "watch_presence", id: "w1", payload: { user_ids: ["someone"] } });
    const soon = await ask(c, { type: "watch_presence", id: "w2", payload: { user_ids: ["someone-else"] } });
    assert.equal(soon.payload.code, "rate_limited");
    assert.ok(soon.payload.retry_after_ms > 0 && soon.payload.retry_after_ms <= 1000);
    for (const s of open) s.close();
  });
});

describe("§5.1 watch_presence", () => {
  it("a watch list replaces the last one: a user dropped from it pushes nothing more", async () => {
    const me = await Client.open(w.url, null, { tok: token("wx", {}) });
    const first = await ask(me, { type: "watch_presence", id: "w1", payload: { user_ids: ["wb"] } });
    assert.equal(first.payload.user_id, "wb");
    // The next list is taken once the second since the last is over; the refusal says when.
    let next = await ask(me, { type: "watch_presence", id: "w2", payload: { user_ids: ["wc"] } });
    for (let n = 3; next.type === "error"; n++) {
      assert.equal(next.payload.code, "rate_limited");
      await new Promise((res) => setTimeout(res, next.payload.retry_after_ms));
      next = await ask(me, { type: "watch_presence", id: `w${n}`, payload: { user_ids: ["wc"] } });
    }
    assert.equal(next.payload.user_id, "wc");
    // wb's change is pushed (synchronously, within its PUT) before wc's: only wc's arrives.
    const put = (u, status) => api(w.url, "/api/v1/me/presence", { method: "PUT", tok: token(u, {}), body: { status, in_studio: false } });
    assert.equal((await put("wb", "away")).status, 200);
    assert.equal((await put("wc", "away")).status, 200);
    const pushed = await me.next((m) => m.type === "presence" && !m.reply_to);
    assert.equal(pushed.payload.user_id, "wc");
    me.close();
  });
});

/** Probes until the answer has `status` (a close reaches the object asynchronously). */
async function waitForProbe(doc, tok, clientId, status) {
  for (let i = 0; i < 200; i++) {
    const r = await probe(doc, tok, clientId);
    if (r.status === status) return r;
    await new Promise((res) => setImmediate(res));
  }
  throw new Error(`probe never answered ${status}`);
}

describe("§5.1 client_id claims", () => {
  it("two users race for the plugin's client_id 12345 and one only reads: the writer wins", async () => {
    const doc = "channel:race:description";
    const reader = await Client.join(w.url, doc, { tok: token("viewer", { [doc]: "read" }), clientId: 12345 });
    const refusedOp = await ask(reader, opFrame(doc, "12345", 1, 0, { type: "insert", position: 0, content: "mine?" }));
    assert.equal(refusedOp.payload.code, "forbidden");
    // A socket that only reads claimed nothing: the writer connects with the same id.
    assert.equal((await probe(doc, token("producer"), "12345")).status, 200);
    const writer = await Client.join(w.url, doc, { tok: token("producer"), clientId: 12345 });
    const early = await Client.join(w.url, doc, { tok: token("squatter"), clientId: 12345 });
    const ack = await writer.submit(opFrame(doc, "12345", 1, 0, { type: "insert", position: 0, content: "beat" }));
    assert.equal(ack.payload.status, "accepted");
    // Now it is the writer's: another user's upgrade gets 409, and a socket opened before the
    // claim gets client_id_taken on its next operation.
    const late = await Client.open(w.url, doc, { tok: token("squatter"), clientId: 12345, expectFail: true });
    assert.equal(late.refusedStatus, 409);
    const p = await probe(doc, token("squatter"), "12345");
    assert.equal(p.status, 409);
    assert.equal(p.json.error.code, "client_id_taken");
    const stolen = await ask(early, opFrame(doc, "12345", 2, 1, { type: "insert", position: 0, content: "evil" }));
    assert.equal(stolen.payload.code, "client_id_taken");
    assert.equal((await writer.submit(opFrame(doc, "12345", 2, 1, { type: "insert", position: 4, content: "!" }))).payload.status, "accepted");
    for (const c of [reader, writer, early]) c.close();
  });
});

describe("§5.5 live authorization", () => {
  const doc = "channel:live:description";

  it("a socket still open after its token's exp is closed 4401 token_expired; an in-band auth keeps another open", async () => {
    const exp = nowSecs() + 2;
    const short = (sub, docs = { "*": "write" }) => token(sub, docs, { exp });
    const lapsing = await Client.join(w.url, doc, { tok: short("mortal"), clientId: "m" });
    const renewed = await Client.join(w.url, doc, { tok: short("renewer"), clientId: "r" });
    const ok = await ask(renewed, { type: "auth", id: "a1", payload: { token: token("renewer") } });
    assert.equal(ok.type, "auth_ok");
    assert.ok(ok.payload.exp > exp);
    // An older token is refused without closing.
    const stale = await ask(renewed, { type: "auth", id: "a2", payload: { token: short("renewer") } });
    assert.equal(stale.payload.code, "bad_request");
    assert.equal(await lapsing.closedBy(15_000), 4401);
    assert.equal(lapsing.closeFrame.reason, "token_expired");
    // The alarm that closed the lapsed socket left the renewed one open and working.
    assert.equal(renewed.closeFrame, undefined);
    const ack = await renewed.submit(opFrame(doc, "r", 1, (await api(w.url, `/api/v1/documents/${doc}`, { tok: serviceToken() })).json.version, { type: "insert", position: 0, content: "still here" }));
    assert.equal(ack.payload.status, "accepted");
    renewed.close();
  });

  it("the personal channel's sockets live no longer than their token either", async () => {
    const exp = nowSecs() + 2;
    const lapsing = await Client.open(w.url, null, { tok: token("chan-user", {}, { exp }) });
    const renewed = await Client.open(w.url, null, { tok: token("chan-user", {}, { exp }) });
    const ok = await ask(renewed, { type: "auth", id: "a1", payload: { token: token("chan-user", {}) } });
    assert.equal(ok.type, "auth_ok");
    assert.equal(await lapsing.closedBy(15_000), 4401);
    assert.equal(lapsing.closeFrame.reason, "token_expired");
    assert.equal(renewed.closeFrame, undefined);
    assert.equal((await ask(renewed, { type: "ping", id: "p" })).type, "pong");
    renewed.send({ type: "auth", id: "a2", payload: { token: token("intruder", {}) } });
    assert.equal(await renewed.closedBy(), 4401);
  });

  it("auth with another sub or a bad token closes 4401; new grants apply at once", async () => {
    const a = await Client.join(w.url, doc, { tok: token("grantee"), clientId: "g1" });
    a.send({ type: "auth", id: "x", payload: { token: token("someone-else") } });
    assert.equal(await a.closedBy(), 4401);
    const b = await Client.join(w.url, doc, { tok: token("grantee"), clientId: "g2" });
    b.send({ type: "auth", id: "x", payload: { token: "not.a.jwt" } });
    assert.equal(await b.closedBy(), 4401);
    // Write taken away: operations get forbidden.
    const c = await Client.join(w.url, doc, { tok: token("grantee", { [doc]: "write" }, { exp: nowSecs() + 600 }), clientId: "g3" });
    assert.equal((await ask(c, { type: "auth", id: "ro", payload: { token: token("grantee", { [doc]: "read" }) } })).type, "auth_ok");
    const denied = await ask(c, opFrame(doc, "g3", 1, 0, { type: "insert", position: 0, content: "no" }));
    assert.equal(denied.payload.code, "forbidden");
    // Read taken away: closed 4403.
    c.send({ type: "auth", id: "none", payload: { token: token("grantee", { "other:*": "write" }, { exp: nowSecs() + 7200 }) } });
    assert.equal(await c.closedBy(), 4403);
  });

  it("revoke closes the user's sockets with 4403 and refuses them until `until`", async () => {
    const rdoc = "channel:revoked:description";
    const victim = await Client.join(w.url, rdoc, { tok: token("troll"), clientId: "t" });
    const stays = await Client.join(w.url, rdoc, { tok: token("nice"), clientId: "n" });
    const byUser = await api(w.url, `/api/v1/documents/${rdoc}/revoke`, { method: "POST", tok: token("nice"), body: { user_id: "troll" } });
    assert.equal(byUser.status, 403);
    const before = Date.now();
    const r = await api(w.url, `/api/v1/documents/${rdoc}/revoke`, { method: "POST", tok: serviceToken(), body: { user_id: "troll" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user_id, "troll");
    assert.ok(r.json.until >= before + 24 * 3600 * 1000 - 1000 && r.json.until <= Date.now() + 24 * 3600 * 1000);
    assert.equal(await victim.closedBy(1000), 4403, "closed within a second");
    assert.equal(victim.closeFrame.reason, "revoked");
    const again = await Client.open(w.url, rdoc, { tok: token("troll"), clientId: "t", expectFail: true });
    assert.equal(again.refusedStatus, 403);
    assert.equal((await probe(rdoc, token("troll"), "t")).status, 403);
    assert.equal((await api(w.url, `/api/v1/documents/${rdoc}`, { tok: token("troll") })).status, 403);
    assert.equal(stays.closeFrame, undefined);
    assert.equal((await ask(stays, { type: "ping", id: "p" })).type, "pong");
    // A past `until` is refused; a short one ends.
    const bad = await api(w.url, `/api/v1/documents/${rdoc}/revoke`, { method: "POST", tok: serviceToken(), body: { user_id: "x", until: 5 } });
    assert.equal(bad.status, 400);
    stays.close();
  });

  it("a probe answers what the upgrade would get and 200 {ok:true} otherwise", async () => {
    const pdoc = "channel:probe:description";
    assert.equal((await api(w.url, wsPath(pdoc, { client_id: "c" }))).status, 401);
    const noGrant = await probe(pdoc, token("outsider", { "other:*": "write" }), "c");
    assert.equal(noGrant.status, 403);
    assert.equal(noGrant.json.error.code, "forbidden");
    const fine = await probe(pdoc, token("insider"), "c");
    assert.equal(fine.status, 200);
    assert.deepEqual(fine.json, { ok: true });
    assert.deepEqual((await api(w.url, `/ws?token=${token("insider")}`)).json, { ok: true });
  });
});

describe("§5.5 private posts", () => {
  it("a private post's socket, counts, comments and actions need a read grant; KV never serves it", async () => {
    const post = "secret1";
    const owner = token("poster", { [`post:${post}`]: "write" });
    const stranger = token("stranger", {}); // posts need no grant; this one has none on the post
    const friend = token("friend", { [`post:${post}`]: "read" });
    assert.equal((await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: owner, body: {} })).status, 200);
    assert.equal((await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: stranger })).status, 200);
    // Public: the counts reach KV.
    await waitFor(async () => (await w.kv.get(`engagement:${post}`)) !== null);
    const bad = await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: owner, body: { visibility: "secret" } });
    assert.equal(bad.status, 400);
    const r = await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: owner, body: { visibility: "private" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(await w.kv.get(`engagement:${post}`), null, "a private post's counts leave KV");
    for (const [path, method] of [["engagement", "GET"], ["likes", "POST"], ["comments", "POST"], ["saves", "POST"]]) {
      const res = await api(w.url, `/api/v1/posts/${post}/${path}`, { method, tok: stranger, body: method === "POST" ? { text: "hi" } : undefined });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
    }
    const sock = await Client.open(w.url, `post:${post}`, { tok: stranger, clientId: "s", expectFail: true });
    assert.equal(sock.refusedStatus, 403);
    // Nor through the feed's batch read or the comment listing (§6.2).
    const feed = await api(w.url, `/api/v1/posts/engagement?ids=${post}`, { tok: stranger });
    assert.deepEqual([feed.status, feed.json.posts?.[post]], [200, null], feed.text);
    assert.equal((await api(w.url, `/api/v1/posts/${post}/comments`, { tok: stranger })).status, 403);
    // The owner, a reader with a grant and a service token may.
    for (const tok of [owner, friend, serviceToken()]) {
      const res = await api(w.url, `/api/v1/posts/${post}/engagement`, { tok });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get("x-cache"), "miss");
      assert.equal(res.json.like_count, 1);
    }
    (await Client.join(w.url, `post:${post}`, { tok: friend, clientId: "f" })).close();
    assert.equal((await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: friend })).status, 200);
    assert.equal(await w.kv.get(`engagement:${post}`), null, "nor do its later counts reach KV");
  });
});

describe("§5.1 history pages", () => {
  it("a page of 1,000 planted 30 KiB operations stops at 4 MiB and says more follow", async () => {
    const doc = "canvas:planted";
    const svc = serviceToken();
    const n = 150;
    const data = "x".repeat(30 * 1024);
    for (let i = 1; i <= n; i++) {
      const operation = { document_id: doc, client_id: "planter", seq: i, type: "stroke_create", stroke_id: `s${i}`, data: `${i}${data}` };
      const r = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: svc, body: { operation } });
      assert.equal(r.status, 202, r.text);
    }
    const first = await api(w.url, `/api/v1/operations/history/${doc}?limit=1000`, { tok: svc });
    assert.equal(first.status, 200);
    const bytes = first.json.operations.reduce((t, o) => t + Buffer.byteLength(JSON.stringify(o.ops)), 0);
    assert.ok(bytes <= 4 * 1024 * 1024, `page carries ${bytes} bytes of ops`);
    assert.ok(first.json.operations.length < n && first.json.operations.length > 100, `${first.json.operations.length} ops`);
    assert.equal(first.json.has_more, true);
    const rest = await api(w.url, `/api/v1/operations/history/${doc}?limit=1000&since=${first.json.next_since}`, { tok: svc });
    assert.equal(rest.json.has_more, false);
    const versions = [...first.json.operations, ...rest.json.operations].map((o) => o.version);
    assert.deepEqual(versions, Array.from({ length: n }, (_, i) => i + 1), "every op once, in order");
  });
});

describe("§5.1 service tokens", () => {
  it("service tokens have their own 6,000 a minute per sub, not the users' 100", async () => {
    const svc = token("backend", {}, { role: "service" });
    for (let i = 1; i <= 110; i++) {
      const r = await api(w.url, "/api/v1/errors/stats", { tok: svc });
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      assert.equal(r.headers.get("x-ratelimit-limit"), "6000");
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(6000 - i));
    }
    const user = await api(w.url, "/api/v1/errors/stats", { tok: token("person") });
    assert.equal(user.headers.get("x-ratelimit-limit"), "100");
  });
});

/** Polls an observable condition (KV has no event to wait on) until it holds. */
async function waitFor(cond, timeoutMs = 10_000) {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error("condition never held");
    await new Promise((res) => setTimeout(res, 50));
  }
}
