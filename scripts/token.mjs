// Signs HS256 development tokens. CLI: node scripts/token.mjs USER [DOCS_JSON] [--service] [--secret S]
// With no --secret it reads JWT_SECRET from .dev.vars.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** Signs `claims` (exp defaults to one hour from now) with `secret`. */
export function signToken(claims, secret, header = { alg: "HS256", typ: "JWT" }) {
  const body = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const unsigned = `${b64url(header)}.${b64url(body)}`;
  const sig = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${sig}`;
}

export function devSecret(path = ".dev.vars") {
  const line = readFileSync(path, "utf8").split("\n").find((l) => l.startsWith("JWT_SECRET="));
  if (!line) throw new Error(`${path} has no JWT_SECRET`);
  return line.slice("JWT_SECRET=".length).trim().replace(/^"|"$/g, "");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const service = args.includes("--service");
  const rest = args.filter((a) => a !== "--service");
  const secret = flag("--secret") ?? devSecret();
  const [user = "alice", docs] = rest.filter((a) => !a.startsWith("--"));
  const claims = { sub: user, name: user, docs: docs ? JSON.parse(docs) : { "*": "write" } };
  if (service) claims.role = "service";
  console.log(signToken(claims, secret));
}
