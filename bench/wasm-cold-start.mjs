// The release wasm's cold-start cost: its size (raw and gzip -9) and the time V8 takes to compile
// it (`WebAssembly.compile`) and to instantiate the compiled module, each the median of several
// runs, every run in a fresh process (V8 shares compiled modules with the same bytes within a
// process, so a second compile there would measure a cache).
// Two V8s: node's, and headless Chromium's (the one `make test` installs, driven by
// playwright-core). node 20's V8 cannot compile this module (it uses Wasm GC types and exception
// handling with exnref, which workerd's V8 has): that row then says so, and Chromium's is the figure.
// Instantiation gets an import object with the module's own import names: functions that do
// nothing (the glue in build/index.js calls none of them while instantiating; it runs
// `__wbindgen_start` afterwards) and an exception tag for a tag import (the glue passes
// `WebAssembly.JSTag`). So the figure is V8's work, not the glue's.
// Usage: node bench/wasm-cold-start.mjs [runs=7] [path=build/index_bg.wasm]
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = new URL("..", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Compiles and instantiates `bytes`; runs unchanged in node and in a page. */
async function coldStart(bytes) {
  const t0 = performance.now();
  const module = await WebAssembly.compile(bytes);
  const t1 = performance.now();
  const imports = {};
  for (const { module: m, name, kind } of WebAssembly.Module.imports(module)) {
    imports[m] ??= {};
    if (kind === "function") imports[m][name] = () => {};
    else if (kind === "tag") imports[m][name] = WebAssembly.JSTag ?? new WebAssembly.Tag({ parameters: ["externref"] });
    else throw new Error(`an import of kind ${kind} (${m}.${name}) is not handled`);
  }
  const t2 = performance.now();
  new WebAssembly.Instance(module, imports);
  return { compile: t1 - t0, instantiate: performance.now() - t2 };
}

/** One run in a fresh node process. */
function inNode(path) {
  try {
    return JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--once", path], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  } catch (e) {
    return { error: /failed: ([^@\]]*)/.exec(e.stderr ?? "")?.[1]?.trim() ?? e.message.split("\n")[0] };
  }
}

/** One run in a fresh headless Chromium; `eager`: every function compiled up front (V8 compiles
 * lazily by default, on a function's first call). */
async function inChromium(bytes, eager) {
  const { chromium } = await import("playwright-core");
  const flags = eager ? ["--js-flags=--no-wasm-lazy-compilation"] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", ...flags] });
  try {
    const page = await browser.newPage();
    const version = browser.version();
    const r = await page.evaluate(`(async () => {
      const bytes = Uint8Array.from(atob(${JSON.stringify(bytes.toString("base64"))}), (c) => c.charCodeAt(0));
      return (${coldStart.toString()})(bytes);
    })()`);
    return { ...r, version };
  } finally {
    await browser.close();
  }
}

if (process.argv[2] === "--once") {
  console.log(JSON.stringify(await coldStart(readFileSync(process.argv[3]))));
} else {
  const runs = Number(process.argv[2] ?? 7);
  const path = process.argv[3] ?? `${ROOT}build/index_bg.wasm`;
  const bytes = readFileSync(path);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const n = (v) => v.toLocaleString("en-US");
  const row = (where, samples) => {
    if (samples[0].error) return `| ${where} | cannot compile it: ${samples[0].error} | |`;
    const [c, i] = ["compile", "instantiate"].map((k) => median(samples.map((s) => s[k])).toFixed(1));
    return `| ${where} | ${c} | ${i} |`;
  };
  const glue = readFileSync(join(dirname(path), "index.js"));
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  console.log(`${path.replace(ROOT, "")}: ${n(bytes.length)} bytes raw, ${n(gz(bytes))} gzip -9; with the glue (index.js, ${n(gz(glue))} gzipped) ${n(gz(bytes) + gz(glue))} bytes gzipped (1 MiB = 1,048,576)\n`);
  console.log(`| V8 (fresh process per run) | compile ms (median of ${runs}) | instantiate ms |\n|---|---|---|`);
  const nodeRuns = [inNode(path)];
  while (!nodeRuns[0].error && nodeRuns.length < runs) nodeRuns.push(inNode(path));
  console.log(row(`node ${process.version}`, nodeRuns));
  for (const eager of [false, true]) {
    const chromeRuns = [];
    for (let k = 0; k < runs; k++) chromeRuns.push(await inChromium(bytes, eager));
    console.log(row(`headless Chromium ${chromeRuns[0].version}${eager ? ", --no-wasm-lazy-compilation" : " (lazy compilation, the default)"}`, chromeRuns));
  }
}
