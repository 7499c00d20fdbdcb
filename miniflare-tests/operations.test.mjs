// Operator basics: structured JSON logs carrying the request id, and a health check that asks
// D1 and KV.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { createInterface } from "node:readline";
import { startWorker, api, token, serviceToken, Client } from "./helpers.mjs";

describe("operations", () => {
  const lines = [];
  const waiters = [];
  const w = {};
  after(async () => w.mf?.dispose());

  /** Resolves with the first log line (parsed JSON) matching `pred`. */
  const logged = (pred) =>
    new Promise((resolve) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) resolve(hit);
        return Boolean(hit);
      };
      if (!check()) waiters.push(check);
    });

  it("every request is one JSON log line with its request id, status, duration and error code", async () => {
    Object.assign(w, await startWorker({
      handleRuntimeStdio(stdout, stderr) {
        for (const stream of [stdout, stderr]) {
          createInterface({ input: stream }).on("line", (line) => {
            const start = line.indexOf("{");
            if (start < 0) return;
            try {
              lines.push(JSON.parse(line.slice(start)));
            } catch {
              return; // not one of ours
            }
            for (const check of [...waiters]) if (check()) waiters.splice(waiters.indexOf(check), 1);
          });
        }
      },
    }));
    const ok = await api(w.url, "/api/v1/documents/logdoc", { tok: token("logger") });
    const id = ok.headers.get("x-request-id");
    const line = await logged((l) => l.event === "request" && l.request_id === id);
    assert.equal(line.path, "/api/v1/documents/logdoc");
    assert.deepEqual([line.document_id, line.user_id], ["logdoc", "logger"]);
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, "number");
    const bad = await api(w.url, "/api/v1/documents/logdoc");
    const refused = await logged((l) => l.event === "request" && l.request_id === bad.headers.get("x-request-id"));
    assert.deepEqual([refused.status, refused.code, refused.user_id], [401, "unauthorized", undefined]);
    const ws = await Client.join(w.url, "logdoc", { tok: token("logger"), clientId: "log-c" });
    ws.close();
    const upgrade = await logged((l) => l.event === "request" && l.path === "/ws/documents/logdoc");
    assert.deepEqual([upgrade.status, upgrade.user_id, upgrade.document_id], [101, "logger", "logdoc"]);
    const closed = await logged((l) => l.event === "close" && l.client_id === "log-c");
    assert.deepEqual([closed.document_id, closed.user_id], ["logdoc", "logger"]);
  });

  it("/health says whether D1 and KV answer, to a service token only (§5.7)", async () => {
    const h = await api(w.url, "/health", { tok: serviceToken() });
    assert.equal(h.status, 200);
    assert.deepEqual([h.json.status, h.json.d1, h.json.kv], ["ok", "ok", "ok"]);
    for (const tok of [undefined, token("someone")]) {
      const plain = await api(w.url, "/health", { tok });
      assert.equal(plain.status, 200);
      assert.deepEqual(Object.keys(plain.json).sort(), ["status", "version"]);
    }
  });
});
