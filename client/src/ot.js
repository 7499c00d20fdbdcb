// Text OT for the wire format of PROTOCOL §3.3, on top of ot-text-unicode (positions count code
// points on both sides). A wire op is a list of sequential primitives
//   {type:"insert", position, content} | {type:"delete", position, length}
// each relative to the text left by the previous one; an ot-text-unicode op is one traversal
// (skip N / insert "s" / delete {d:N}). Converting by composition puts an insert and a delete at
// one spot insert-first, which is the v1.1 anchoring rule.
import otText from "ot-text-unicode";

export const textType = otText.type;

/** Number of code points in `s`. */
export function cpLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Compares two strings by code point, which is UTF-8 byte order (the protocol's client_id order). */
export function compareIds(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** The side our op takes in ot-text-unicode's transform: 'left' goes first at a tie. */
export const sideOf = (ours, theirs) => (compareIds(String(ours), String(theirs)) < 0 ? "left" : "right");

function primitiveToTextOp(p) {
  const pos = Number(p.position);
  if (!Number.isInteger(pos) || pos < 0) throw new RangeError(`bad position ${p.position}`);
  const type = String(p.type).toLowerCase();
  if (type === "insert") {
    if (typeof p.content !== "string" || p.content === "") throw new RangeError("insert needs non-empty content");
    return pos ? [pos, p.content] : [p.content];
  }
  if (type === "delete") {
    const len = p.length !== undefined ? Number(p.length) : cpLength(String(p.content ?? ""));
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`bad length ${p.length}`);
    if (len === 0) return [];
    return pos ? [pos, { d: len }] : [{ d: len }];
  }
  throw new RangeError(`unknown primitive type ${p.type}`);
}

/** Wire primitives (sequential) → one ot-text-unicode op, by composing one op per primitive. */
export function fromWire(prims) {
  let op = [];
  for (const p of prims) op = textType.compose(op, primitiveToTextOp(p));
  return op;
}

/**
 * ot-text-unicode op → sequential wire primitives, faithfully: `fromWire(toWire(op))` is `op`.
 * Where the op deletes and then inserts at one spot ([{d:n}, "s"]: the text goes after the
 * deleted range) the insert is written first, at the end of the range, then the delete; a
 * delete followed by an insert at one position would mean the opposite anchoring (v1.1).
 */
export function toWire(op) {
  const out = [];
  let pos = 0;
  let pendingDelete = 0; // deletes at `pos` not written yet
  const flush = () => {
    if (pendingDelete) out.push({ type: "delete", position: pos, length: pendingDelete });
    pendingDelete = 0;
  };
  for (const c of op) {
    if (typeof c === "number") {
      flush();
      pos += c;
    } else if (typeof c === "string") {
      out.push({ type: "insert", position: pos + pendingDelete, content: c });
      flush();
      pos += cpLength(c);
    } else {
      pendingDelete += typeof c.d === "number" ? c.d : cpLength(c.d);
    }
  }
  flush();
  return out;
}

/** Applies an ot-text-unicode op to a string. */
export const applyOp = (text, op) => (op.length ? textType.apply(text, op) : text);

/** Applies sequential wire primitives to a string. */
export const applyWire = (text, prims) => applyOp(text, fromWire(prims));

export const compose = (a, b) => (a.length ? (b.length ? textType.compose(a, b) : a) : b);

/**
 * Transforms `a` (by client `aId`) and `b` (by client `bId`), both made against one text:
 * returns [a', b'] with a' = a after b and b' = b after a.
 */
export function transformPair(a, aId, b, bId) {
  if (!a.length || !b.length) return [a, b];
  const side = sideOf(aId, bId);
  return [textType.transform(a, b, side), textType.transform(b, a, side === "left" ? "right" : "left")];
}

/** Transforms wire op `a` to apply after wire op `b` (both against one text). */
export function transformWire(a, aId, b, bId) {
  return toWire(transformPair(fromWire(a), aId, fromWire(b), bId)[0]);
}

/** One delete + insert turning `from` into `to` (common prefix and suffix in code points). */
export function diff(from, to) {
  if (from === to) return [];
  const a = Array.from(from);
  const b = Array.from(to);
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const op = [];
  if (pre) op.push(pre);
  const ins = b.slice(pre, b.length - suf).join("");
  if (ins) op.push(ins);
  const del = a.length - pre - suf;
  if (del) op.push({ d: del });
  return op;
}

/** Moves a cursor position (code points) over an op; inserts at the cursor push it right. */
export const transformPosition = (pos, op) => (op.length ? textType.transformPosition(pos, op) : pos);

/** The inverse of `op` given the text it applied to. */
export const invert = (op, text) => (op.length ? textType.invertWithDoc(op, text) : []);
