// A minimal Chrome DevTools Protocol client for the benchmarks: the V8 inspector of a workerd
// isolate (Miniflare's `inspectorPort`) or of a node process (`--inspect`), to read heap usage
// after a GC and to take CPU profiles.
import WebSocket from "ws";

/** Connects to the first inspector target whose title matches `pick` (all titles when none does). */
export async function connect(port, pick = () => true) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => pick(t.title ?? "")) ?? targets[0];
  if (!target) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  let id = 0;
  const waiting = new Map();
  ws.on("message", (data) => {
    const m = JSON.parse(data);
    const w = m.id && waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(`${m.error.message} (${JSON.stringify(m.error)})`));
    else w.resolve(m.result);
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      waiting.set(++id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    title: target.title,
    call,
    /** The isolate's V8 heap after a full GC: used bytes of the heap, its embedder objects and
     * the array buffers' backing stores (a wasm module's linear memory is not among them). */
    async heapAfterGc() {
      await call("HeapProfiler.collectGarbage");
      const u = await call("Runtime.getHeapUsage");
      return (u.usedSize ?? 0) + (u.embedderHeapUsedSize ?? 0) + (u.backingStorageSize ?? 0);
    },
    close: () => ws.close(),
  };
}
