// Presence (§4.5): set, read, watch, and pushes to watchers and to the user's document rooms.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, token, useWorker } from "./helpers.mjs";

const w = useWorker();

describe("presence", () => {
  it("watchers and the user's rooms see presence change; no open socket reads as offline", async () => {
    const producer = token("producer");
    const watcher = await Client.open(w.url, null, { tok: token("fan") });
    watcher.send({ type: "watch_presence", id: "w1", payload: { user_ids: ["producer"] } });
    const first = await watcher.next("presence");
    assert.equal(first.reply_to, "w1");
    assert.deepEqual([first.payload.user_id, first.payload.status], ["producer", "offline"]);

    const doc = "channel:studio:description";
    const roommate = await Client.join(w.url, doc, { tok: token("mate"), clientId: "mate" });
    const studio = await Client.join(w.url, doc, { tok: producer, clientId: "plugin" });

    const put = await api(w.url, "/api/v1/me/presence", { method: "PUT", tok: producer, body: { status: "online", in_studio: true, daw_type: "Ableton Live" } });
    assert.equal(put.status, 200, put.text);
    const expected = { user_id: "producer", status: "online", in_studio: true, daw_type: "Ableton Live" };
    const pushed = await watcher.next("presence");
    assert.deepEqual({ ...pushed.payload, last_active: undefined }, { ...expected, last_active: undefined });
    assert.ok(pushed.payload.last_active > 0);
    const inRoom = await roommate.next("presence");
    assert.equal(inRoom.payload.daw_type, "Ableton Live");
    const got = await api(w.url, "/api/v1/users/producer/presence", { tok: token("anyone") });
    assert.deepEqual({ ...got.json, last_active: undefined }, { ...expected, last_active: undefined });

    studio.close();
    const gone = await watcher.next((m) => m.type === "presence" && m.payload.status === "offline");
    assert.equal(gone.payload.user_id, "producer");
    const after = (await api(w.url, "/api/v1/users/producer/presence", { tok: token("anyone") })).json;
    assert.equal(after.status, "offline");
    assert.ok(after.last_active >= pushed.payload.last_active);
    watcher.close();
    roommate.close();
  });

  it("bad presence updates and watch lists are refused", async () => {
    const tok = token("picky");
    assert.equal((await api(w.url, "/api/v1/me/presence", { method: "PUT", tok, body: { status: "busy" } })).status, 400);
    assert.equal((await api(w.url, "/api/v1/me/presence", { method: "PUT", tok, body: { status: "away", in_studio: "yes" } })).status, 400);
    const c = await Client.open(w.url, null, { tok });
    c.send({ type: "watch_presence", id: "x", payload: { user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`) } });
    assert.equal((await c.next("error")).payload.code, "bad_request");
    c.close();
  });
});
