// Generates docs/ot-vectors.json: text-OT test vectors for client authors, computed with
// ot-text-unicode (the engine the JS SDK uses; it counts code points as the protocol does).
// Deterministic: the same script always writes the same file. Usage: node scripts/gen-ot-vectors.mjs [out]
import { rng } from "./rng.mjs";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { applyWire, compareIds, fromWire, toWire, textType } from "../client/src/ot.js";

const OUT = process.argv[2] ?? fileURLToPath(new URL("../docs/ot-vectors.json", import.meta.url));

const rand = rng(20261122);
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];

// Code points from several planes: ASCII, Latin-1, BMP CJK, non-BMP emoji and music symbols,
// a combining mark (a code point of its own).
const ALPHABET = ["a", "b", "c", "x", "y", " ", "é", "ß", "漢", "字", "😀", "🎹", "𝄞", "👋", "\u0301", "～"];
const randText = (n) => Array.from({ length: n }, () => pick(ALPHABET)).join("");
const cps = (s) => Array.from(s).length;

// Client id pairs; the smaller (byte order of UTF-8, i.e. code point order) goes first at a tie.
// "～" (U+FF5E) < "😀" (U+1F600) in code points although its UTF-16 unit 0xFF5E > 0xD83D: a
// client comparing UTF-16 units gets these wrong.
const ID_PAIRS = [
  ["c-a", "c-b"],
  ["c-b", "c-a"],
  ["B", "a"],
  ["a", "B"],
  ["plugin-1", "plugin-10"],
  ["z", "é"],
  ["é", "z"],
  ["～", "😀"],
  ["😀", "～"],
  ["42", "7"],
];

/** A random primitive valid on a text of `len` code points (sequential form). */
function randPrim(len) {
  if (len === 0 || rand() < 0.55) return { type: "insert", position: int(len + 1), content: randText(1 + int(3)) };
  const position = int(len);
  return { type: "delete", position, length: 1 + int(Math.min(4, len - position)) };
}

function randOp(text, maxPrims = 3) {
  const prims = [];
  let len = cps(text);
  const n = 1 + int(maxPrims);
  for (let i = 0; i < n; i++) {
    const p = randPrim(len);
    prims.push(p);
    len += p.type === "insert" ? cps(p.content) : -p.length;
  }
  return prims;
}

const cases = [];
const names = new Set();

function addCase(name, base, aId, aOps, bId, bOps) {
  if (names.has(name)) throw new Error(`duplicate case name ${name}`);
  names.add(name);
  const A = fromWire(aOps);
  const B = fromWire(bOps);
  const aSide = compareIds(aId, bId) < 0 ? "left" : "right";
  const bSide = aSide === "left" ? "right" : "left";
  const aAfterB = A.length && B.length ? textType.transform(A, B, aSide) : A;
  const bAfterA = A.length && B.length ? textType.transform(B, A, bSide) : B;
  const viaB = applyWire(applyWire(base, bOps), toWire(aAfterB));
  const viaA = applyWire(applyWire(base, aOps), toWire(bAfterA));
  if (viaA !== viaB) throw new Error(`${name}: ot-text-unicode did not converge (${viaA} vs ${viaB})`);
  cases.push({
    name,
    base,
    a: { client_id: aId, ops: aOps },
    b: { client_id: bId, ops: bOps },
    a_after_b: toWire(aAfterB),
    b_after_a: toWire(bAfterA),
    final: viaA,
  });
}

const ins = (position, content) => ({ type: "insert", position, content });
const del = (position, length) => ({ type: "delete", position, length });

// 1. The protocol's own examples.
addCase("protocol/anchoring-example", "abc", "c-a", [del(1, 1), ins(1, "y")], "c-b", [ins(1, "x")]);
addCase("protocol/anchoring-example-swapped-ids", "abc", "c-b", [del(1, 1), ins(1, "y")], "c-a", [ins(1, "x")]);
addCase("protocol/same-position-inserts", "héllo 👋", "c-1", [ins(5, "A")], "c-2", [ins(5, "B")]);
addCase("protocol/length-counts-code-points", "héllo 👋", "c-1", [del(6, 1)], "c-2", [ins(7, "!")]);

// 2. Concurrent inserts at one position, every id pair, BMP and non-BMP content.
for (const [i, [aId, bId]] of ID_PAIRS.entries()) {
  for (const [j, base] of ["", "ab", "😀🎹", "a𝄞b"].entries()) {
    const pos = int(cps(base) + 1);
    addCase(`same-spot-insert/${i}-${j}`, base, aId, [ins(pos, pick(["X", "😀", "XY", "漢"]))], bId, [ins(pos, pick(["Z", "🎹", "zz", "字"]))]);
  }
}

// 3. Anchoring: an op that deletes and inserts at one spot against a concurrent insert there,
//    written in both sequential orders (delete first, insert first), and deletes never deciding
//    which insert goes first.
for (const [i, [aId, bId]] of ID_PAIRS.entries()) {
  for (let k = 0; k < 8; k++) {
    const base = randText(3 + int(5));
    const len = cps(base);
    const p = int(len);
    const dl = 1 + int(Math.min(3, len - p));
    const text = pick(["y", "😀", "yy", "𝄞é"]);
    const aOps = k % 2 ? [del(p, dl), ins(p, text)] : [ins(p, text), del(p + cps(text), dl)];
    const bPos = k % 4 < 2 ? p : p + dl; // at the start or at the end of the deleted range
    addCase(`anchoring/replace-vs-insert/${i}-${k}`, base, aId, aOps, bId, [ins(bPos, pick(["x", "🎹", "xx"]))]);
  }
  // Text inserted right after a range the same op deletes, written insert-first at the end of the
  // range: it stays after the range (the form ot-text-unicode's transform produces and a server
  // sends back), unlike [delete p, insert p] which anchors at the start.
  for (const [k, bAt] of [[0, 1], [1, 3]]) {
    addCase(`anchoring/insert-after-deleted-range/${i}-${k}`, "abcdef", aId, [ins(3, "Y😀"), del(1, 2)], bId, [ins(bAt, "x")]);
  }
  // a delete ending where the other inserts, and a delete starting there
  addCase(`anchoring/delete-before-insert/${i}`, "abcd", aId, [del(1, 1), ins(2, "y")], bId, [ins(2, "x")]);
  addCase(`anchoring/delete-then-insert-both/${i}`, "abcd", aId, [del(1, 2), ins(1, "y")], bId, [del(1, 2), ins(1, "x")]);
}

// 4. Delete/delete overlaps: identical, nested, partial both ways, adjacent, disjoint.
const DD = [
  ["identical", [2, 3], [2, 3]],
  ["nested", [1, 5], [2, 2]],
  ["nested-rev", [2, 2], [1, 5]],
  ["overlap-left", [1, 3], [2, 3]],
  ["overlap-right", [2, 3], [1, 3]],
  ["adjacent", [1, 2], [3, 2]],
  ["disjoint", [0, 1], [4, 2]],
  ["same-start", [2, 1], [2, 4]],
  ["same-end", [1, 4], [3, 2]],
];
for (const [name, [ap, al], [bp, bl]] of DD) {
  for (const [j, base] of ["abcdefgh", "a😀b🎹c𝄞d漢", "😀😀😀😀😀😀😀"].entries()) {
    for (const [k, [aId, bId]] of ID_PAIRS.slice(0, 2).entries()) addCase(`delete-delete/${name}/${j}-${k}`, base, aId, [del(ap, al)], bId, [del(bp, bl)]);
  }
}
// Overlapping multi-range deletes.
for (let k = 0; k < 30; k++) {
  const base = randText(8 + int(6));
  const len = cps(base);
  const mk = () => {
    const p1 = int(len - 2);
    const l1 = 1 + int(Math.min(3, len - p1 - 1));
    const rest = len - l1;
    const p2 = int(rest);
    return [del(p1, l1), del(p2, 1 + int(Math.min(2, rest - p2)))];
  };
  const [aId, bId] = pick(ID_PAIRS);
  addCase(`delete-delete/multi/${k}`, base, aId, mk(), bId, mk());
}

// 5. Inserts into a range the other deletes (the inserted text survives, the delete splits).
for (let k = 0; k < 40; k++) {
  const base = randText(5 + int(5));
  const len = cps(base);
  const p = int(len - 2);
  const l = 2 + int(Math.min(4, len - p - 2));
  const [aId, bId] = pick(ID_PAIRS);
  const at = p + int(l + 1);
  addCase(`insert-into-deleted/${k}`, base, aId, [del(p, l)], bId, [ins(at, pick(["x", "😀", "新"]))]);
}

// 6. Multi-primitive ops: a replace written as delete + insert, a self-cancelling insert + delete,
//    several inserts, against random ops.
for (let k = 0; k < 40; k++) {
  const base = randText(4 + int(6));
  const len = cps(base);
  const p = int(len);
  const [aId, bId] = pick(ID_PAIRS);
  const variants = [
    [ins(p, "ab"), del(p, 2)], // composes to nothing
    [ins(p, "😀"), ins(p + 1, "🎹")],
    [del(p, 1), ins(p, "Ω"), ins(0, "<")],
    [ins(len, "!"), del(0, 1)],
  ];
  addCase(`multi/${k}`, base, aId, variants[k % variants.length], bId, randOp(base, 2));
}

// 7. Random ops (1–3 primitives each) on random texts with non-BMP code points.
for (let k = 0; cases.length < 560; k++) {
  const base = randText(int(12));
  const [aId, bId] = pick(ID_PAIRS);
  addCase(`random/${k}`, base, aId, randOp(base), bId, randOp(base));
}

const out = {
  description:
    "Text-OT test vectors (PROTOCOL v1.1 §3.3, docs/protocol.md). Positions and lengths count Unicode code points. " +
    "ops are sequential primitives (each relative to the text left by the previous one). a_after_b is A transformed to apply " +
    "after B, b_after_a is B transformed to apply after A; the client_id smaller in UTF-8 byte order wins ties. " +
    "The primitives' form is not canonical: check a transform by the text it produces (base + b.ops + a_after_b == final). " +
    "Generated by scripts/gen-ot-vectors.mjs with ot-text-unicode.",
  cases,
};
// One case per line: small diffs, easy to grep.
const body = cases.map((c) => JSON.stringify(c)).join(",\n");
writeFileSync(OUT, `{"description": ${JSON.stringify(out.description)},\n"cases": [\n${body}\n]}\n`);
console.log(`wrote ${cases.length} cases to ${OUT}`);
