// Shared by the sdk-*.test.mjs files: a TCP proxy the test controls (to cut connections abruptly
// and to point at a restarted runtime), event-driven waiting, and SDK clients wired to `ws`.
export { rng } from "../scripts/rng.mjs";
import net from "node:net";
import { after } from "node:test";
import WebSocket from "ws";
import { SidechainClient } from "../client/src/index.js";

// Whatever a test opens is closed when its file ends, passed or failed: a reconnecting client
// or a listening proxy left behind would keep the test process alive.
const live = { clients: new Set(), proxies: new Set(), workers: new Set() };
after(async () => {
  for (const c of live.clients) c.close();
  for (const p of live.proxies) await p.close().catch(() => {});
  for (const w of live.workers) await w.mf.dispose().catch(() => {});
});

/** Registers a worker started inside a test for disposal at the end of the file. */
export function trackWorker(w) {
  const dispose = w.mf.dispose.bind(w.mf);
  let disposed;
  w.mf.dispose = () => (disposed ??= dispose()); // idempotent: the test may dispose it first
  live.workers.add(w);
  return w;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `targetPort`. `cutAll()` resets every open connection
 * (both directions, no close handshake); `target` may change (a restarted runtime).
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  const proxy = {
    target: targetPort,
    cuts: 0,
    connections: 0,
    /** While false, new connections are refused (reset at once). */
    accepting: true,
    /** While true, bytes in that direction are swallowed (a frame "lost in the network"). */
    dropUp: false,
    dropDown: false,
    listeners: new Set(),
    /** Calls fn(direction, bytes, dropped) for every chunk; returns an unsubscribe function. */
    onData(fn) {
      proxy.listeners.add(fn);
      return () => proxy.listeners.delete(fn);
    },
    port: 0,
    server: null,
    cutAll() {
      let n = 0;
      for (const pair of [...pairs]) {
        n += pair.cut();
      }
      return n;
    },
    /** Cuts one random open connection; returns true when there was one. */
    cutOne() {
      const open = [...pairs];
      if (!open.length) return false;
      open[Math.floor(Math.random() * open.length)].cut();
      return true;
    },
    get open() {
      return pairs.size;
    },
    async close() {
      live.proxies.delete(proxy);
      proxy.cutAll();
      if (proxy.server.listening) await new Promise((r) => proxy.server.close(r));
    },
  };
  const kill = (s) => {
    if (s.destroyed) return;
    if (typeof s.resetAndDestroy === "function" && s.readyState !== "opening") s.resetAndDestroy();
    else s.destroy();
  };
  proxy.server = net.createServer((down) => {
    if (!proxy.accepting) return kill(down);
    proxy.connections++;
    const up = net.connect(proxy.target, "127.0.0.1");
    const pair = {
      cut() {
        if (!pairs.delete(pair)) return 0;
        proxy.cuts++;
        kill(down);
        kill(up);
        return 1;
      },
    };
    pairs.add(pair);
    const end = () => {
      if (pairs.delete(pair)) {
        kill(down);
        kill(up);
      }
    };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    const forward = (dir, to) => (chunk) => {
      const dropped = dir === "up" ? proxy.dropUp : proxy.dropDown;
      if (!dropped && !to.destroyed) to.write(chunk);
      for (const fn of [...proxy.listeners]) fn(dir, chunk, dropped);
    };
    down.on("data", forward("up", up));
    up.on("data", forward("down", down));
  });
  await new Promise((r) => proxy.server.listen(0, "127.0.0.1", r));
  proxy.port = proxy.server.address().port;
  live.proxies.add(proxy);
  return proxy;
}

export const portOf = (url) => Number(new URL(url).port);

/**
 * Resolves once `cond()` is true, re-checking whenever one of `emitters` emits one of `events`.
 * Rejects after `timeoutMs` with `describe()` in the message.
 */
export function waitFor(cond, emitters, { events = ["change", "status", "synced", "others", "ack"], timeoutMs = 20_000, describe = () => "" } = {}) {
  return new Promise((resolve, reject) => {
    const offs = [];
    let timer;
    const done = (err) => {
      clearTimeout(timer);
      offs.forEach((f) => f());
      err ? reject(err) : resolve();
    };
    const check = () => {
      let ok = false;
      try {
        ok = cond();
      } catch (e) {
        return done(e);
      }
      if (ok) done();
    };
    for (const em of emitters) for (const ev of events) offs.push(em.on(ev, check));
    timer = setTimeout(() => done(new Error(`timed out waiting: ${describe()}`)), timeoutMs);
    check();
  });
}

/** An SDK client on `url` with fast reconnects (tests should not wait out production backoff). */
/** An `sdkClient` maker whose clients are all closed after the test file (call at top level). */
export function trackedClients() {
  const open = [];
  after(() => open.forEach((c) => c.close()));
  return (...args) => {
    const c = sdkClient(...args);
    open.push(c);
    return c;
  };
}

export function sdkClient(url, token, clientId, opts = {}) {
  const c = new SidechainClient({
    url,
    token,
    clientId,
    WebSocket,
    backoff: { initialMs: 20, maxMs: 400 },
    heartbeatMs: 2_000,
    heartbeatTimeoutMs: 2_000,
    ...opts,
  });
  live.clients.add(c);
  return c;
}

