// Test harness: runs the built worker (build/index.js) in Miniflare with the bindings of
// wrangler.toml, applies the D1 migrations, signs tokens and wraps WebSocket clients.
import { readFileSync, readdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { Miniflare } from "miniflare";
import WebSocket from "ws";
import { signToken } from "../scripts/token.mjs";

export const SECRET = "miniflare-test-secret";
const ROOT = new URL("..", import.meta.url).pathname;
/** The history shards tests run with (two, as in wrangler.toml); `bindings` may override it. */
export const HISTORY_SHARDS = "DB,HISTORY_1";

/**
 * Starts the worker. `persistDir` keeps DO and D1 storage on disk across restarts; `assetsDir`
 * serves that directory as Workers static assets in front of the worker (the demo page).
 * Returns `db` (DB: error reports, and history shard 0) and `shards` (every history database,
 * in shard order), each with the migrations applied.
 */
export async function startWorker(opts = {}) {
  const dir = opts.persistDir ?? mkdtempSync(join(tmpdir(), "sc-mf-"));
  // Miniflare's synchronous proxy (what `getD1Database` hands node) can fail an internal
  // assertion (`message?.id === id`) while the migrations are applied: seen once in a CI run,
  // in the set-up of a test file, before any test ran. The runtime is started again from the
  // same directory (migrations are idempotent); a second failure is reported.
  try {
    return await startOnce(opts, dir);
  } catch (e) {
    if (!String(e?.stack ?? "").includes("SynchronousFetcher")) throw e;
    console.error(`restarting the runtime after a Miniflare proxy failure: ${e.message}`);
    return await startOnce(opts, dir);
  }
}

async function startOnce({ bindings = {}, assetsDir, handleRuntimeStdio = quietLogs, queueOverrides = {}, inspectorPort }, dir) {
  const shardNames = (bindings.HISTORY_SHARDS ?? HISTORY_SHARDS).split(",").map((s) => s.trim());
  const d1Names = [...new Set(["DB", ...shardNames])];
  const mf = new Miniflare({
    scriptPath: join(ROOT, "build/index.js"),
    ...(handleRuntimeStdio ? { handleRuntimeStdio } : {}),
    ...(inspectorPort ? { inspectorPort } : {}), // benchmarks read heap and CPU profiles over CDP
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-20",
    durableObjects: {
      DOCUMENT_ROOM: { className: "DocumentRoom", useSQLite: true },
      RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
      USER_CHANNEL: { className: "UserChannel", useSQLite: true },
      INBOX_SHARD: { className: "InboxShard", useSQLite: true },
      STATS: { className: "Stats", useSQLite: true },
    },
    d1Databases: d1Names,
    kvNamespaces: ["ENGAGEMENT_CACHE"],
    analyticsEngineDatasets: { METRICS: { dataset: "sidechain_metrics" } },
    // As in wrangler.toml: the publish API's fan-out queue, consumed by the same worker.
    queueProducers: { NOTIFY_QUEUE: { queueName: "sidechain-notify" } },
    // Retries wait as the consumer says (its age: 1, 1, 2, 4 … s); exhausted ones go to the DLQ.
    queueConsumers: {
      "sidechain-notify": { maxBatchSize: 50, maxBatchTimeout: 1, maxRetries: 20, retryDelay: 0, deadLetterQueue: "sidechain-notify-dlq", ...queueOverrides },
      "sidechain-notify-dlq": { maxBatchSize: 50, maxBatchTimeout: 1, maxRetries: 20, retryDelay: 1 },
    },
    kvPersist: join(dir, "kv"),
    durableObjectsPersist: join(dir, "do"),
    d1Persist: join(dir, "d1"),
    bindings: { JWT_SECRET: SECRET, CORS_ORIGIN: "*", JWT_ISSUER: "", JWT_AUDIENCE: "", HISTORY_SHARDS, ...bindings },
    ...(assetsDir ? { assets: { directory: assetsDir, routerConfig: { has_user_worker: true } } } : {}),
  });
  let url;
  try {
    url = (await mf.ready).toString().replace(/\/$/, "");
  } catch (e) {
    await mf.dispose(); // a runtime that failed to start must not keep the test process alive
    throw e;
  }
  const dbs = {};
  try {
    for (const name of d1Names) {
      dbs[name] = await mf.getD1Database(name);
      await applyMigrations(dbs[name]);
    }
  } catch (e) {
    await mf.dispose();
    throw e;
  }
  const kv = await mf.getKVNamespace("ENGAGEMENT_CACHE");
  return { mf, url, db: dbs.DB, shards: shardNames.map((n) => dbs[n]), kv, dir };
}

/**
 * The worker's own JSON log lines (one per request and close) are left out of test output
 * unless SC_LOGS=1; everything else the runtime prints (errors, panics) passes through.
 */
function quietLogs(stdout, stderr) {
  for (const [stream, out] of [[stdout, process.stdout], [stderr, process.stderr]]) {
    createInterface({ input: stream }).on("line", (line) => {
      if (process.env.SC_LOGS === "1" || !line.startsWith('{"at":')) out.write(line + "\n");
    });
  }
}

/** Applies migrations/*.sql in order, the way `wrangler d1 migrations apply` does, once. */
export async function applyMigrations(db) {
  await db.prepare("CREATE TABLE IF NOT EXISTS d1_migrations (name TEXT PRIMARY KEY)").run();
  const dir = join(ROOT, "migrations");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    if (await db.prepare("SELECT name FROM d1_migrations WHERE name = ?").bind(file).first()) continue;
    const sql = readFileSync(join(dir, file), "utf8")
      .split("\n")
      .filter((l) => !l.trim().startsWith("--"))
      .join("\n");
    for (const stmt of sql.split(";").map((s) => s.trim()).filter(Boolean)) {
      await db.prepare(stmt).run();
    }
    await db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file).run();
  }
}

/** Starts one worker for the calling test file and stops it afterwards; fields fill in on start. */
export function useWorker(opts) {
  const w = {};
  before(async () => Object.assign(w, await startWorker(opts)));
  after(async () => w.mf.dispose());
  return w;
}

export function token(sub, docs = { "*": "write" }, extra = {}) {
  return signToken({ sub, name: `User ${sub}`, docs, ...extra }, SECRET);
}

export const serviceToken = () => token("svc", {}, { role: "service" });

/** Polls an observable condition (never a fixed sleep standing in for one): resolves with the
 * first truthy value `check` returns, or fails naming `what` after `timeoutMs`. */
export async function eventually(check, what, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function api(url, path, { method = "GET", tok, body, headers = {} } = {}) {
  const h = { ...headers };
  if (tok) h.authorization = `Bearer ${tok}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const resp = await fetch(url + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await resp.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: resp.status, headers: resp.headers, json, text };
}

/** Code-point-correct application of sequential primitives. */
export function applyOps(text, ops) {
  const cps = Array.from(text);
  for (const p of ops) {
    if (p.type === "insert") cps.splice(p.position, 0, ...Array.from(p.content));
    else cps.splice(p.position, p.length);
  }
  return cps.join("");
}

/** A WebSocket client with an inbox and awaitable message matching. */
export class Client {
  static async open(url, docId, { tok, clientId, since, sinceSeq, expectFail = false, query = {} } = {}) {
    const qs = new URLSearchParams(query);
    if (tok) qs.set("token", tok);
    if (clientId !== undefined) qs.set("client_id", clientId);
    if (since !== undefined) qs.set("since", String(since));
    if (sinceSeq !== undefined) qs.set("since_seq", String(sinceSeq));
    const path = docId === null ? "/ws" : `/ws/documents/${encodeURIComponent(docId)}`;
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}${path}?${qs}`);
    const c = new Client(ws);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("unexpected-response", (_req, res) => {
        c.refusedStatus = res.statusCode;
        c.refusedHeaders = res.headers;
        expectFail ? resolve() : reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
      ws.once("error", (e) => (expectFail ? resolve() : reject(e)));
    });
    return c;
  }

  /** Opens a socket and waits until the connect sequence (state, then sync_status) has arrived. */
  static async join(url, docId, opts) {
    const c = await Client.open(url, docId, opts);
    await c.synced();
    return c;
  }

  constructor(ws) {
    this.ws = ws;
    this.inbox = [];
    this.arrivals = 0;
    this.waiters = [];
    this.closed = null;
    ws.on("message", (data) => {
      const raw = data.toString();
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        msg = { type: "__unparsed", raw };
      }
      msg.__raw = raw;
      msg.__n = ++this.arrivals;
      this.inbox.push(msg);
      this.wake();
    });
    // The server's close frame (its code and reason) arrives before the TCP connection ends,
    // which the runtime may hold open for seconds after the closing handshake.
    const onCloseFrame = (code, reason) => {
      this.closeFrame = { code, reason: reason?.toString() };
      this.wake();
    };
    if (ws._receiver) ws._receiver.on("conclude", onCloseFrame);
    else ws.once("open", () => ws._receiver?.on("conclude", onCloseFrame));
    ws.on("close", (code) => {
      this.closed = code;
      this.wake();
    });
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  send(obj) {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  /** Resolves with (and removes) the first inbox message matching `pred`. */
  next(pred = () => true, timeoutMs = 10_000) {
    const p = typeof pred === "string" ? (m) => m.type === pred : pred;
    return this.#until(() => {
      const i = this.inbox.findIndex(p);
      if (i >= 0) return { value: this.inbox.splice(i, 1)[0] };
      if (this.closed !== null) return { error: new Error(`socket closed (${this.closed}) while waiting`) };
    }, timeoutMs, () => `timed out waiting; inbox: ${JSON.stringify(this.inbox.map((m) => m.type))}`);
  }

  /** Resolves once `probe` (run at every arrival and close) returns `{value}` or `{error}`. */
  #until(probe, timeoutMs, timeoutMessage) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const r = probe();
        if (!r) return;
        done();
        "error" in r ? reject(r.error) : resolve(r.value);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(timeoutMessage()));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  /** Sends an operation frame and resolves with its ack; an `error` reply fails the test. */
  async submit(frame) {
    this.send(frame);
    const m = await this.next((x) => x.type === "operation_ack" || x.type === "error");
    if (m.type === "error") throw new Error(`operation refused: ${JSON.stringify(m.payload)}`);
    return m;
  }

  /** Waits for the connect sequence and returns the initial state (or replayed ops). */
  async synced() {
    const status = await this.next((m) => m.type === "sync_status" && m.payload?.status !== "syncing"); // v1.2: `syncing` comes first on a replay
    return status.payload;
  }

  waitClosed(timeoutMs = 10_000) {
    if (this.closed !== null) return Promise.resolve(this.closed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("not closed")), timeoutMs);
      this.ws.once("close", (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  /** Resolves with the code of the server's close frame (or of the close, if none came). */
  closedBy(timeoutMs = 10_000) {
    return this.#until(() => {
      const code = this.closeFrame?.code ?? this.closed;
      return code === null || code === undefined ? null : { value: code };
    }, timeoutMs, () => "no close frame came");
  }

  close() {
    this.ws.close();
  }
}

let msgId = 0;
export function opFrame(docId, clientId, seq, version, op) {
  return { type: "operation", id: `m-${++msgId}`, payload: { document_id: docId, client_id: clientId, seq, version, ...op } };
}

/** Runs `fn` over `items` with at most `n` calls in flight; results in input order. */
export async function pool(items, n, fn) {
  const out = [];
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) {
        const k = i++;
        out[k] = await fn(items[k], k);
      }
    }),
  );
  return out;
}

/** The inbox shard object of `userId`: FNV-1a 64 of the id modulo 64, as src/sharding.rs. */
export function inboxShard(userId) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(userId, "utf8")) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return `inbox-${h % 64n}`;
}

/**
 * A typed call straight to a Durable Object (operators' reads such as an inbox shard's
 * `/holders` or a stats shard's `/snapshot`): POST of the call's JSON body, the reply parsed.
 */
export async function objectCall(mf, binding, name, path, body = {}) {
  const ns = await mf.getDurableObjectNamespace(binding);
  const r = await ns.get(ns.idFromName(name)).fetch(`https://object${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  return { status: r.status, json: await r.json() };
}
