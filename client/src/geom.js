// Canvas geometry as the server computes it (PROTOCOL §8, src/geom.rs): a stroke's bounding box
// from `data.points` (`[[x,y,…],…]` or `[{x,y},…]`), widened by `data.width / 2`; no points, or any
// point that is not two numbers → no box → in every view. Rectangles are closed: touching counts.

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

function point(p) {
  if (Array.isArray(p)) return [num(p[0]), num(p[1])];
  if (p && typeof p === "object") return [num(p.x), num(p.y)];
  return [undefined, undefined];
}

/** `{minX, minY, maxX, maxY}` of a stroke's data, or null (no box: always in view). */
export function strokeBox(data) {
  if (!data || typeof data !== "object" || Array.isArray(data) || !Array.isArray(data.points) || !data.points.length) return null;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of data.points) {
    const [x, y] = point(p);
    if (x === undefined || y === undefined) return null;
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  const w = num(data.width);
  const half = w !== undefined && w > 0 ? w / 2 : 0;
  return { minX: minX - half, minY: minY - half, maxX: maxX + half, maxY: maxY + half };
}

/** A viewport `{x, y, width, height}` checked as the server checks it; null stays null. */
export function checkViewport(v) {
  if (v === null || v === undefined) return null;
  const { x, y, width, height } = v;
  if (![x, y, width, height].every((n) => typeof n === "number" && Number.isFinite(n))) throw new TypeError("a viewport needs finite numbers x, y, width, height");
  if (width < 0 || height < 0) throw new RangeError("a viewport's width and height must not be negative");
  return { x, y, width, height };
}

/** Whether a stroke's data is in a viewport (null: everything) by §8's rule. */
export function inView(data, view) {
  if (!view) return true;
  const b = strokeBox(data);
  return b === null || (b.minX <= view.x + view.width && view.x <= b.maxX && b.minY <= view.y + view.height && view.y <= b.maxY);
}

export const sameViewport = (a, b) =>
  (a ?? null) === (b ?? null) || Boolean(a && b && a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height);
