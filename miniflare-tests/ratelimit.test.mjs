// HTTP rate limits: exact per-user counting, integer Retry-After, headers on every API response.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, token, useWorker } from "./helpers.mjs";

const w = useWorker();

const report = { source: "UI", severity: "Info", message: "m", timestamp: Date.now() };

describe("rate limits", () => {
  it("the 21st error batch in a minute gets 429 with an integer Retry-After", async () => {
    const tok = token("flooder");
    for (let i = 1; i <= 20; i++) {
      const r = await api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body: { errors: [report] } });
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      assert.equal(r.headers.get("x-ratelimit-limit"), "20");
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(20 - i));
    }
    const r = await api(w.url, "/api/v1/errors/batch", { method: "POST", tok, body: { errors: [report] } });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, "rate_limited");
    const retry = r.headers.get("retry-after");
    assert.match(retry, /^[1-9]\d*$/, `Retry-After must be a positive integer, got ${JSON.stringify(retry)}`);
    assert.ok(Number(retry) <= 60);
    assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
    assert.match(r.headers.get("x-ratelimit-reset"), /^\d+$/);
    // Other classes and other users are counted apart.
    assert.equal((await api(w.url, "/api/v1/errors/stats", { tok })).status, 200);
    assert.equal((await api(w.url, "/api/v1/errors/batch", { method: "POST", tok: token("calm"), body: { errors: [report] } })).status, 200);
  });

  it("the general API allows exactly 100 requests a minute per user, counted across parallel requests", async () => {
    const tok = token("busy");
    const results = await Promise.all(Array.from({ length: 110 }, () => api(w.url, "/api/v1/errors/stats", { tok })));
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok, 100);
    assert.equal(limited.length, 10);
    for (const r of limited) assert.match(r.headers.get("retry-after"), /^[1-9]\d*$/);
  });

  it("every API response carries the rate-limit headers, errors included; without a token the IP is counted", async () => {
    for (const [path, opts, status] of [
      ["/api/v1/errors/stats", {}, 401],
      ["/api/v1/nowhere", { tok: token("hdr") }, 404],
      ["/api/v1/errors/batch", { tok: token("hdr") }, 405],
      ["/api/v1/errors/stats", { tok: token("hdr") }, 200],
    ]) {
      const r = await api(w.url, path, opts);
      assert.equal(r.status, status, path);
      for (const h of ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-request-id"]) {
        assert.ok(r.headers.get(h), `${path} lacks ${h}`);
      }
    }
  });
});
