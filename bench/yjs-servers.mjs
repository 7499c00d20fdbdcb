// The two Yjs servers bench/yjs.mjs drives with the same clients: the built worker in the local
// runtime (workerd) and the reference y-websocket server from npm with its LevelDB persistence on.
// Each runs in processes of its own, so a kill -9 is a real SIGKILL and a restart reads what
// reached the disk. Memory is the servers' resident set, from /proc, and the V8 heap of the
// isolate that holds the rooms after a full GC, read over the inspector (bench/cdp.mjs).
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { api, serviceToken, startWorker, token } from "../miniflare-tests/helpers.mjs";
import { connect } from "./cdp.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const mib = (kb) => kb / 1024;

/** Resident set of one process, KiB (0 when it is gone). */
function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The workerd processes this benchmark started (descendants of this process). */
function workerdPids() {
  const parent = new Map();
  const workerd = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      parent.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).startsWith("workerd")) workerd.push(pid);
    } catch {
      // the process ended meanwhile
    }
  }
  const mine = (pid) => {
    for (let p = pid; p && p !== "0" && p !== "1"; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  return workerd.filter(mine).map(Number);
}

/** The built worker; `bindings` raise the socket budgets for the measurement. */
export function workerServer(dir, bindings) {
  let w = null;
  let inspectorPort = 0;
  return {
    name: "this worker",
    wsBase: () => `${w.url.replace(/^http/, "ws")}/ws/documents`,
    params: (user) => ({ token: token(user) }),
    async start() {
      // The metrics shards' storage is dropped (documents are kept), so the memory the rooms
      // report after a restart is that runtime's alone, not the last minute's before the kill.
      rmSync(join(dir, "do", "-Stats"), { recursive: true, force: true });
      inspectorPort ||= await freePort();
      w = await startWorker({ persistDir: dir, bindings, inspectorPort });
    },
    /** The worker's isolate (the user worker, whose objects hold the rooms): JS heap, MiB. */
    async heapMiB() {
      const c = await connect(inspectorPort, (t) => t.includes("core:user"));
      try {
        return (await c.heapAfterGc()) / 2 ** 20;
      } finally {
        c.close();
      }
    },
    /** SIGKILL to the runtime's processes, then the harness is cleaned up. */
    async kill9() {
      for (const pid of workerdPids()) process.kill(pid, "SIGKILL");
      await w.mf.dispose().catch(() => {});
    },
    async stop() {
      await w.mf.dispose();
    },
    memory() {
      return { rssMiB: mib(workerdPids().reduce((s, pid) => s + rssKiB(pid), 0)) };
    },
    /** The isolate's wasm memory as the rooms report it (every 10 s; the max of the last minute). */
    async wasmMiB() {
      for (let end = Date.now() + 30_000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
        const m = (await api(w.url, "/api/v1/websocket/metrics", { tok: serviceToken() })).json;
        if (m?.memory_bytes_max > 0) return m.memory_bytes_max / 2 ** 20;
      }
      return NaN;
    },
  };
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });

/** `@y/websocket-server`'s own server (its bin), with `YPERSISTENCE` = `dir` (y-leveldb). */
export function referenceServer(dir) {
  // Its bin, as `npx y-websocket` runs it (the package exports no path to it).
  const pkgDir = join(ROOT, "node_modules/@y/websocket-server");
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const bin = join(pkgDir, pkg.bin["y-websocket"]);
  const version = pkg.version;
  let child = null;
  let port = 0;
  let inspectorPort = 0;
  return {
    name: `@y/websocket-server ${version} + y-leveldb`,
    wsBase: () => `ws://127.0.0.1:${port}`,
    params: () => ({}),
    async start() {
      port ||= await freePort();
      inspectorPort ||= await freePort();
      child = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectorPort}`, bin], { env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), YPERSISTENCE: dir }, stdio: ["ignore", "ignore", "pipe"] });
      // Its stderr, less the inspector's banner.
      child.stderr.on("data", (d) => {
        const text = String(d).split("\n").filter((l) => l && !/Debugger listening|Debugger ending|devtools|nodejs\.org\/en\/docs\/inspector|Debugger attached|Waiting for the debugger/i.test(l));
        if (text.length) process.stderr.write(text.join("\n") + "\n");
      });
      let exit = null;
      child.once("exit", (code, signal) => (exit = signal ?? code));
      // Ready when its HTTP server answers (it listens only after loading its modules).
      while (!(await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false))) {
        if (exit !== null) throw new Error(`the reference server exited (${exit})`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async kill9() {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await gone;
    },
    async stop() {
      await this.kill9();
    },
    memory() {
      return { rssMiB: mib(rssKiB(child.pid)) };
    },
    /** Its node process's JS heap (the documents are JS objects there), MiB. */
    async heapMiB() {
      const c = await connect(inspectorPort);
      try {
        return (await c.heapAfterGc()) / 2 ** 20;
      } finally {
        c.close();
      }
    },
    async wasmMiB() {
      return NaN;
    },
  };
}
