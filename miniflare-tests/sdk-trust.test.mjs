// The SDK under PROTOCOL v1.2 §5.5: a browser cannot read the status of a refused upgrade, so the
// SDK probes the same URL without `Upgrade` and reports client_id_taken / forbidden /
// unauthorized instead of retrying; it renews its token in-band before the server closes the
// socket for an expired token.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { token, useWorker } from "./helpers.mjs";
import { trackedClients, waitFor } from "./sdk-helpers.mjs";

// Sockets are closed as soon as their token expires (no 60 s grace) in this worker.
const w = useWorker({ bindings: { TOKEN_GRACE_MS: "0" } });
const make = trackedClients();
const nowSecs = () => Math.floor(Date.now() / 1000);

/** A WebSocket as browsers have it: a refused upgrade is an `error` and a 1006 `close`, no status. */
let upgrades = 0;
class BrowserWebSocket {
  constructor(url) {
    upgrades++;
    this.inner = new WebSocket(url);
    this.inner.on("open", () => this.onopen?.({}));
    this.inner.on("message", (data) => this.onmessage?.({ data: data.toString() }));
    this.inner.on("error", () => this.onerror?.({ type: "error" }));
    this.inner.on("close", (code) => this.onclose?.({ code: this.refused ? 1006 : code }));
    this.inner.on("unexpected-response", (_req, res) => {
      this.refused = true;
      res.resume();
      this.onerror?.({ type: "error" });
      this.onclose?.({ code: 1006 });
    });
  }
  send(text) {
    this.inner.send(text);
  }
  close() {
    try {
      this.inner.close();
    } catch {}
  }
}

const browser = (tok, clientId) => make(w.url, tok, clientId, { WebSocket: BrowserWebSocket });

describe("SDK: refused upgrades seen through the probe (§5.5)", () => {
  it("client_id_taken: stops after one upgrade instead of retrying", async () => {
    const docId = "channel:sdk-probe-taken:description";
    const owner = make(w.url, token("ann"), "12345").text(docId);
    owner.insert(0, "mine");
    await owner.whenSynced();
    const before = upgrades;
    const thief = browser(token("eve"), "12345").text(docId);
    await assert.rejects(thief.whenSynced({ timeoutMs: 10_000 }), { code: "client_id_taken" });
    assert.equal(thief.stopped, "client_id_taken");
    assert.equal(upgrades - before, 1, "no retry after the probe said 409");
  });

  it("forbidden and unauthorized stop too", async () => {
    const docId = "channel:sdk-probe-forbidden:description";
    const outsider = browser(token("out", { "other:*": "write" }), "o").text(docId);
    await assert.rejects(outsider.whenSynced({ timeoutMs: 10_000 }), { code: "forbidden" });
    assert.equal(outsider.stopped, "forbidden");
    const expired = browser(token("late", { "*": "write" }, { exp: nowSecs() - 10 }), "l").text(docId);
    await assert.rejects(expired.whenSynced({ timeoutMs: 10_000 }), { code: "unauthorized" });
    assert.equal(expired.stopped, "unauthorized");
  });
});

describe("SDK: token renewal in-band (§5.5)", () => {
  it("a token function renews the socket before exp: no reconnect, still editing after the first token expired", async () => {
    const docId = "channel:sdk-renew:description";
    let minted = 0;
    // Each token lives 3 s: the SDK asks for the next one well before and sends it as `auth`.
    const tok = () => (minted++, token("renewer", { "*": "write" }, { exp: nowSecs() + 3 }));
    const c = make(w.url, tok, "renew-1");
    const d = c.text(docId);
    await d.whenSynced();
    const firstExp = nowSecs() + 3;
    let renewals = 0;
    d.on("token_renewed", () => renewals++);
    // Wait (on the renewals themselves) until the first token is long past its exp.
    await waitFor(() => renewals >= 1 && nowSecs() > firstExp + 1, [d], { events: ["token_renewed"], timeoutMs: 15_000 });
    d.insert(0, "still here");
    await d.whenSynced();
    assert.equal(d.stats.connects, 1, "the socket was never closed");
    assert.equal(d.stats.disconnects, 0);
    assert.ok(minted >= 2);
  });

  it("a fixed token that expires: the server closes 4401 and the SDK reports unauthorized", async () => {
    const docId = "channel:sdk-expire:description";
    const d = make(w.url, token("fixed", { "*": "write" }, { exp: nowSecs() + 2 }), "fixed-1").text(docId);
    await d.whenSynced();
    await assert.rejects(
      new Promise((resolve, reject) => {
        d.on("error", (e) => e.fatal && reject(Object.assign(new Error(e.message), { code: e.code })));
        setTimeout(resolve, 15_000);
      }),
      { code: "unauthorized" },
    );
    assert.equal(d.stopped, "unauthorized");
  });
});
