// client/terminal.mjs, the walkthrough's terminal client, is a thin SDK user that survives a
// reload of the runtime: lines typed while the worker is down are sent once it is back.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import readline from "node:readline";
import { api, startWorker, token } from "./helpers.mjs";
import { portOf, startProxy, trackWorker } from "./sdk-helpers.mjs";

const ROOT = new URL("..", import.meta.url).pathname;

describe("terminal client", () => {
  it("keeps running through a runtime restart and sends what was typed meanwhile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sc-term-"));
    let w = trackWorker(await startWorker({ persistDir: dir }));
    const proxy = await startProxy(portOf(w.url));
    const doc = "channel:terminal:description";
    const clientId = `term-${process.pid}-${Date.now()}`;
    const child = spawn(process.execPath, [join(ROOT, "client/terminal.mjs"), doc, clientId, token("termie"), `http://127.0.0.1:${proxy.port}`], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines = [];
    const waiters = new Set();
    readline.createInterface({ input: child.stdout }).on("line", (l) => {
      lines.push(l);
      for (const w of [...waiters]) w();
    });
    let exited = null;
    child.on("exit", (code) => {
      exited = code;
      for (const w of [...waiters]) w();
    });
    /** Resolves when the terminal prints a line matching `re` (after index `from`). */
    const printed = (re, from = 0, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`terminal never printed ${re}; got:\n${lines.join("\n")}`))), timeoutMs);
        const check = () => {
          const hit = lines.slice(from).find((l) => re.test(l));
          if (hit || exited !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            hit ? resolve(hit) : reject(new Error(`terminal exited (${exited}):\n${lines.join("\n")}`));
          }
        };
        waiters.add(check);
        check();
      });
    try {
      await printed(/^-- synced/);
      child.stdin.write("first line 🎹\n");
      await printed(/saved\] "first line 🎹\\n"/);

      // A reload: the runtime goes away (sockets die with it) and comes back on the same storage.
      const mark = lines.length;
      proxy.accepting = false;
      proxy.cutAll();
      await w.mf.dispose();
      await printed(/^-- (offline|connecting)/, mark);
      child.stdin.write("typed while down\n");
      w = trackWorker(await startWorker({ persistDir: dir }));
      proxy.target = portOf(w.url);
      proxy.accepting = true;
      await printed(/saved\] "first line 🎹\\ntyped while down\\n"/, mark);
      assert.equal(exited, null, "the terminal is still running");
      const state = (await api(w.url, `/api/v1/documents/${doc}`, { tok: token("termie") })).json;
      assert.equal(state.content, "first line 🎹\ntyped while down\n");

      // End of input: it waits for the acks and leaves cleanly.
      child.stdin.end();
      await new Promise((r) => (exited !== null ? r() : child.once("exit", r)));
      assert.equal(exited, 0);
    } finally {
      if (exited === null) child.kill();
      await proxy.close();
    }
  });
});
