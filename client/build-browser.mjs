// Bundles the SDK (and ot-text-unicode, its one dependency) into one ES module for browsers:
// public/vendor/sidechain-realtime.js, used by the demo page. Generated, not committed.
// Usage: node client/build-browser.mjs [outfile]
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = new URL("..", import.meta.url);
export async function buildBrowserBundle(outfile = fileURLToPath(new URL("public/vendor/sidechain-realtime.js", root))) {
  await build({
    entryPoints: [fileURLToPath(new URL("client/src/index.js", root))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outfile,
    legalComments: "inline",
    logLevel: "warning",
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`wrote ${await buildBrowserBundle(process.argv[2])}`);
}
