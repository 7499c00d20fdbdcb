// Prints demo-page URLs carrying development tokens signed with the local .dev.vars secret
// (make dev runs this). Tokens are minted here, on the developer's machine: the worker itself
// offers no way to mint one. Usage: node client/demo-urls.mjs [http://127.0.0.1:8787] [users…]
import { signToken, devSecret } from "../scripts/token.mjs";

const [base = `http://127.0.0.1:${process.env.DEV_PORT || 8787}`, ...names] = process.argv.slice(2); // make dev passes DEV_PORT on
const users = names.length ? names : ["alice", "bob"];
const secret = devSecret();
console.log("Demo page (open each URL in its own window; the first user owns the demo post):");
for (const [i, u] of users.entries()) {
  const tok = signToken({ sub: u, name: u[0].toUpperCase() + u.slice(1), docs: { "*": "write" }, exp: Math.floor(Date.now() / 1000) + 12 * 3600 }, secret);
  console.log(`  ${u}: ${base}/?user=${encodeURIComponent(u)}${i === 0 ? "&owner=1" : ""}&token=${tok}`);
}
