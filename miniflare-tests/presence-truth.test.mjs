// Presence that tells the truth (§5.6): leases without sockets, room reports that lapse unless
// renewed (a runtime restart never sends the close report), audiences, playback over the channel,
// and the metrics' live counts lapsing the same way. The lapse is shortened to 1.5 s for this file
// (PRESENCE_LAPSE_MS; 3 minutes in production, rooms renewing every 60 s).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, objectCall, serviceToken, token, useWorker, eventually } from "./helpers.mjs";

const LAPSE_MS = 1500;
const w = useWorker({ bindings: { PRESENCE_LAPSE_MS: String(LAPSE_MS) } });
const presenceOf = async (user, asker = "anyone") => (await api(w.url, `/api/v1/users/${user}/presence`, { tok: token(asker) })).json;

async function watching(watcherId, userId) {
  const c = await Client.open(w.url, null, { tok: token(watcherId) });
  c.send({ type: "watch_presence", id: "w", payload: { user_ids: [userId] } });
  const first = await c.next("presence");
  return { c, first: first.payload };
}

describe("presence that tells the truth", () => {
  it("a lease holds the plugin's status without any socket, then lapses and watchers hear offline", async () => {
    const put = await api(w.url, "/api/v1/me/presence", { method: "PUT", tok: token("plugin-user"), body: { status: "online", in_studio: true, daw_type: "Bitwig", ttl: 2 } });
    assert.equal(put.status, 200, put.text);
    const { c, first } = await watching("lease-fan", "plugin-user");
    assert.deepEqual([first.status, first.in_studio, first.daw_type], ["online", true, "Bitwig"]);
    assert.equal((await presenceOf("plugin-user")).in_studio, true);
    const gone = await c.next((m) => m.type === "presence" && m.payload.status === "offline", 10_000);
    assert.equal(gone.payload.user_id, "plugin-user");
    assert.equal((await presenceOf("plugin-user")).status, "offline");
    for (const ttl of [0, 301, "90", 1.5]) {
      const bad = await api(w.url, "/api/v1/me/presence", { method: "PUT", tok: token("plugin-user"), body: { status: "online", ttl } });
      assert.deepEqual([bad.status, bad.json.error.code], [400, "bad_request"], String(ttl));
    }
    c.close();
  });

  it("the channel's presence message takes the same body, lease included", async () => {
    const me = await Client.open(w.url, null, { tok: token("channel-setter") });
    me.send({ type: "presence", id: "p1", payload: { status: "away", ttl: 60 } });
    const own = await me.next((m) => m.type === "presence" && m.reply_to === "p1");
    assert.equal(own.payload.status, "away");
    me.send({ type: "presence", id: "p2", payload: { status: "busy" } });
    assert.equal((await me.next((m) => m.type === "error" && m.reply_to === "p2")).payload.code, "bad_request");
    me.close();
    await eventually(async () => (await presenceOf("channel-setter", "setter-reader")).status === "away", "the lease outlives the socket");
  });

  it("a room report whose close never came (a restart) lapses: the user reads offline, watchers are told", async () => {
    // What a room reported before its runtime restarted with the user's socket open: never renewed, never closed.
    const reported = await objectCall(w.mf, "USER_CHANNEL", "restarted", "/rooms", { user_id: "restarted", document_id: "channel:gone:description", connections: 1 });
    assert.equal(reported.status, 200);
    const { c, first } = await watching("restart-fan", "restarted");
    assert.equal(first.status, "online");
    const gone = await c.next((m) => m.type === "presence" && m.payload.status === "offline", 10_000);
    assert.equal(gone.payload.user_id, "restarted");
    assert.equal((await presenceOf("restarted", "restart-reader")).status, "offline");
    c.close();
  });

  it("a live room renews its reports: a user in a room stays online past the lapse", async () => {
    const doc = "channel:renewed:description";
    const studio = await Client.join(w.url, doc, { tok: token("renewed"), clientId: "renewed" });
    const { c, first } = await watching("renew-fan", "renewed");
    assert.equal(first.status, "online");
    // Three lapse periods: only renewals (every LAPSE/3) keep the report alive that long.
    const until = Date.now() + 3 * LAPSE_MS;
    while (Date.now() < until) {
      const p = await presenceOf("renewed", "renew-reader");
      assert.equal(p.status, "online", JSON.stringify(p));
      await new Promise((r) => setTimeout(r, 150)); // paces the polls (the API allows 100 a minute)
    }
    studio.close();
    assert.equal((await c.next((m) => m.type === "presence" && m.payload.status === "offline")).payload.user_id, "renewed");
    c.close();
  });

  it("the metrics' live counts lapse the same way", async () => {
    const svc = serviceToken();
    const before = (await api(w.url, "/api/v1/websocket/metrics", { tok: svc })).json;
    const report = { document_id: "channel:ghost:description", connections: 7, at: Date.now(), seq: 1 };
    // Any shard sums into the metrics; the report is the last one a restarted room ever sent.
    assert.equal((await objectCall(w.mf, "STATS", "stats-0", "/report", { report })).status, 200);
    const during = (await api(w.url, "/api/v1/websocket/metrics", { tok: svc })).json;
    assert.equal(during.connections, before.connections + 7);
    await eventually(async () => (await api(w.url, "/api/v1/websocket/metrics", { tok: svc })).json.connections === before.connections, "the ghost room's sockets lapse");
  });

  it("an audience limits who reads, watches and hears playback; others read offline", async () => {
    const svc = serviceToken();
    const user = await Client.open(w.url, null, { tok: token("star") });
    const { c: friend, first: seenByFriend } = await watching("friend", "star");
    const { c: stranger, first: seenByStranger } = await watching("stranger", "star");
    assert.deepEqual([seenByFriend.status, seenByStranger.status], ["online", "online"]);

    const set = await api(w.url, "/api/v1/users/star/presence-audience", { method: "PUT", tok: svc, body: { user_ids: ["friend"] } });
    assert.deepEqual([set.status, set.json.user_ids], [200, ["friend"]], set.text);
    assert.equal((await stranger.next((m) => m.type === "presence" && m.payload.status === "offline")).payload.user_id, "star");
    assert.equal((await presenceOf("star", "stranger")).status, "offline");
    assert.equal((await presenceOf("star", "friend")).status, "online");
    assert.equal((await api(w.url, "/api/v1/users/star/presence", { tok: token("star") })).json.status, "online");

    user.send({ type: "playback", payload: { state: "started", track_id: "beat-7", position_ms: 1200 } });
    const heard = await friend.next("playback_started");
    assert.deepEqual(heard.payload, { user_id: "star", track_id: "beat-7", position_ms: 1200 });
    user.send({ type: "playback", payload: { state: "stopped" } });
    assert.equal((await friend.next("playback_stopped")).payload.user_id, "star");
    // The stranger got neither: the next thing it hears is its own pong.
    await roundTrip(stranger);
    assert.ok(!stranger.inbox.some((m) => m.type.startsWith("playback")), "playback reached a user outside the audience");
    user.send({ type: "playback", id: "bad", payload: { state: "paused" } });
    assert.equal((await user.next((m) => m.type === "error" && m.reply_to === "bad")).payload.code, "bad_request");

    const refused = await api(w.url, "/api/v1/users/star/presence-audience", { method: "PUT", tok: token("star"), body: { user_ids: null } });
    assert.equal(refused.status, 403);
    const tooMany = await api(w.url, "/api/v1/users/star/presence-audience", { method: "PUT", tok: svc, body: { user_ids: Array.from({ length: 5001 }, (_, i) => `u${i}`) } });
    assert.equal(tooMany.status, 413, tooMany.text);
    assert.equal((await api(w.url, "/api/v1/users/star/presence-audience", { method: "PUT", tok: svc, body: { user_ids: null } })).status, 200);
    assert.equal((await presenceOf("star", "stranger")).status, "online");
    for (const c of [user, friend, stranger]) c.close();
  });
});


let pings = 0;
/** A ping and its pong: everything the socket was sent before has arrived. */
async function roundTrip(c) {
  const id = `rt-${++pings}`;
  c.send({ type: "ping", id });
  await c.next((m) => m.type === "pong" && m.reply_to === id);
}
