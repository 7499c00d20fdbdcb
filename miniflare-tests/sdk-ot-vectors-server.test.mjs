// docs/ot-vectors.json against the real server: the base text, then A and B both made against
// it, submitted over REST (A first for even cases, B first for odd ones); the document must end
// as `final`. The random cases are left to the engine's own check (tests/ot_vectors.rs).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { api, token, useWorker } from "./helpers.mjs";

const vectors = JSON.parse(readFileSync(new URL("../docs/ot-vectors.json", import.meta.url), "utf8"));
const w = useWorker();

async function run(c, i, order) {
  // One user per case: the REST budget is 100 requests a minute per user.
  const tok = token(`vectors-${i}`);
  const doc = `channel:vec${i}${order}:description`;
  const apply = async (operation) => {
    const r = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body: { operation: { document_id: doc, ...operation } } });
    assert.equal(r.status, 202, `${c.name}: ${r.text}`);
  };
  let v = 0;
  if (c.base) {
    await apply({ client_id: "base", seq: 1, version: 0, type: "insert", position: 0, content: c.base });
    v = 1;
  }
  const [first, second] = order === "ab" ? [c.a, c.b] : [c.b, c.a];
  await apply({ client_id: first.client_id, seq: 1, version: v, ops: first.ops });
  await apply({ client_id: second.client_id, seq: 1, version: v, ops: second.ops });
  const got = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json.content;
  return got === c.final ? null : `${c.name} (${order === "ab" ? "A then B" : "B then A"}): server ${JSON.stringify(got)}, vector ${JSON.stringify(c.final)}`;
}

describe("OT vectors on the server", () => {
  it("every structured case ends as `final`, whichever op the server receives first", async () => {
    const jobs = vectors.cases.map((c, i) => [c, i]).filter(([c]) => !c.name.startsWith("random/")).map(([c, i]) => () => run(c, i, i % 2 ? "ba" : "ab"));
    assert.ok(jobs.length >= 300);
    const failures = [];
    // A few at a time: the cases use separate documents.
    for (let k = 0; k < jobs.length; k += 8) failures.push(...(await Promise.all(jobs.slice(k, k + 8).map((j) => j()))).filter(Boolean));
    assert.deepEqual(failures, [], failures.slice(0, 10).join("\n"));
  });
});
