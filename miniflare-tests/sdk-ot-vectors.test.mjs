// docs/ot-vectors.json re-checked against ot-text-unicode (the Rust side checks the same file
// against the server engine). Needs no worker.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import otText from "ot-text-unicode";

const ROOT = new URL("..", import.meta.url).pathname;
const FILE = join(ROOT, "docs/ot-vectors.json");
const { type } = otText;
const vectors = JSON.parse(readFileSync(FILE, "utf8"));

/** Sequential primitives applied by splicing code points (independent of the SDK's converter). */
function applyPrims(text, prims) {
  const cps = Array.from(text);
  for (const p of prims) {
    assert.ok(p.position >= 0 && p.position <= cps.length, `position ${p.position} outside ${cps.length}`);
    if (p.type === "insert") cps.splice(p.position, 0, ...Array.from(p.content));
    else {
      assert.ok(p.position + p.length <= cps.length, "delete past the end");
      cps.splice(p.position, p.length);
    }
  }
  return cps.join("");
}

/** Primitives → one ot-text-unicode op, one composed op per primitive. */
function toTextOp(prims) {
  let op = [];
  for (const p of prims) {
    const c = p.type === "insert" ? p.content : { d: p.length };
    op = type.compose(op, p.position ? [p.position, c] : [c]);
  }
  return op;
}

const codePointLess = (a, b) => {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i];
  return x.length < y.length;
};

describe("OT vectors (docs/ot-vectors.json)", () => {
  it("has at least 500 cases with unique names and the required coverage", () => {
    const cases = vectors.cases;
    assert.ok(cases.length >= 500, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
    const nonBmp = (c) => /[\u{10000}-\u{10FFFF}]/u.test(c.base + JSON.stringify([c.a.ops, c.b.ops]));
    assert.ok(cases.filter(nonBmp).length >= 100, "code points outside the BMP");
    // delete + insert at one spot in one op, against a concurrent insert at that spot
    const anchoring = cases.filter((c) => {
      const d = c.a.ops.find((p) => p.type === "delete");
      const i = c.a.ops.find((p) => p.type === "insert");
      return d && i && c.b.ops.some((p) => p.type === "insert");
    });
    assert.ok(anchoring.length >= 50, "anchoring cases");
    const overlaps = cases.filter((c) => {
      if (c.a.ops.length !== 1 || c.b.ops.length !== 1) return false;
      const [a] = c.a.ops;
      const [b] = c.b.ops;
      return a.type === "delete" && b.type === "delete" && a.position < b.position + b.length && b.position < a.position + a.length;
    });
    assert.ok(overlaps.length >= 30, "delete/delete overlaps");
    const example = cases.find((c) => c.name === "protocol/anchoring-example");
    assert.equal(example.final, "ayxc"); // PROTOCOL v1.1 §3.3
  });

  it("every case holds under ot-text-unicode", () => {
    for (const c of vectors.cases) {
      const afterA = applyPrims(c.base, c.a.ops);
      const afterB = applyPrims(c.base, c.b.ops);
      assert.equal(applyPrims(afterB, c.a_after_b), c.final, `${c.name}: base+b+a_after_b`);
      assert.equal(applyPrims(afterA, c.b_after_a), c.final, `${c.name}: base+a+b_after_a`);
      const A = toTextOp(c.a.ops);
      const B = toTextOp(c.b.ops);
      const aLeft = codePointLess(c.a.client_id, c.b.client_id);
      const a2 = A.length && B.length ? type.transform(A, B, aLeft ? "left" : "right") : A;
      const b2 = A.length && B.length ? type.transform(B, A, aLeft ? "right" : "left") : B;
      assert.equal(type.apply(afterB, a2), c.final, `${c.name}: ot-text-unicode a after b`);
      assert.equal(type.apply(afterA, b2), c.final, `${c.name}: ot-text-unicode b after a`);
      assert.deepEqual(toTextOp(c.a_after_b), type.normalize(a2), `${c.name}: a_after_b is the library's transform`);
      assert.deepEqual(toTextOp(c.b_after_a), type.normalize(b2), `${c.name}: b_after_a is the library's transform`);
    }
  });

  it("is exactly what scripts/gen-ot-vectors.mjs writes", () => {
    const out = join(mkdtempSync(join(tmpdir(), "sc-vectors-")), "v.json");
    execFileSync(process.execPath, [join(ROOT, "scripts/gen-ot-vectors.mjs"), out]);
    assert.equal(readFileSync(out, "utf8"), readFileSync(FILE, "utf8"));
  });
});
