//! The names of the Worker's bindings (wrangler.toml), in one place.

/// Durable Object namespaces.
pub const DOCUMENT_ROOM: &str = "DOCUMENT_ROOM";
pub const USER_CHANNEL: &str = "USER_CHANNEL";
pub const INBOX_SHARD: &str = "INBOX_SHARD";
pub const STATS: &str = "STATS";
pub const RATE_LIMITER: &str = "RATE_LIMITER";

/// D1: error reports, and history shard 0.
pub const DB: &str = "DB";
/// The var naming the history shards' D1 bindings, in shard order.
pub const HISTORY_SHARDS: &str = "HISTORY_SHARDS";
/// KV: cached engagement counts.
pub const ENGAGEMENT_CACHE: &str = "ENGAGEMENT_CACHE";
/// The publish API's fan-out queue.
pub const NOTIFY_QUEUE: &str = "NOTIFY_QUEUE";
/// Analytics Engine dataset.
pub const METRICS: &str = "METRICS";

/// Secrets and vars.
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const JWT_ISSUER: &str = "JWT_ISSUER";
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
pub const CORS_ORIGIN: &str = "CORS_ORIGIN";
pub const SOCKET_RATE_PER_SEC: &str = "SOCKET_RATE_PER_SEC";
pub const SOCKET_BURST: &str = "SOCKET_BURST";
/// A Yjs socket's budget (§7; default 60 a second, bursts of 200).
pub const YJS_RATE_PER_SEC: &str = "YJS_RATE_PER_SEC";
pub const YJS_BURST: &str = "YJS_BURST";
/// Tests only: how long after its token's `exp` a socket may stay (ms; default 60 s).
pub const TOKEN_GRACE_MS: &str = "TOKEN_GRACE_MS";
/// Milliseconds after which an unrenewed room report lapses (§5.6: 3 minutes; rooms renew at a
/// third of it). Only tests of the lapse set it.
pub const PRESENCE_LAPSE_MS: &str = "PRESENCE_LAPSE_MS";
/// Tests only: the first delivery to this user id fails.
pub const FAULT_NOTIFY_FAIL_ONCE: &str = "FAULT_NOTIFY_FAIL_ONCE";
/// Test-only: `{user_id}:{seconds}` — that user's inbox shard refuses deliveries for that long.
pub const FAULT_INBOX_DOWN: &str = "FAULT_INBOX_DOWN";
/// Test-only: a user id whose channel sockets the inbox shard never registers (each is closed).
pub const FAULT_ATTACH_DOWN: &str = "FAULT_ATTACH_DOWN";

/// A secret or var as text; empty means unset.
#[cfg(target_arch = "wasm32")]
pub fn string(env: &worker::Env, name: &str) -> Option<String> {
    env.secret(name).ok().map(|s| s.to_string()).or_else(|| env.var(name).ok().map(|v| v.to_string())).filter(|s| !s.is_empty())
}

/// A var that is a whole number (milliseconds, counts), or `default` when unset or not one.
#[cfg(target_arch = "wasm32")]
pub fn number(env: &worker::Env, name: &str, default: u64) -> u64 {
    string(env, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the Worker and the objects check tokens with.
#[cfg(target_arch = "wasm32")]
pub fn auth_config(env: &worker::Env) -> crate::auth::AuthConfig {
    crate::auth::AuthConfig { secret: string(env, JWT_SECRET).unwrap_or_default(), issuer: string(env, JWT_ISSUER), audience: string(env, JWT_AUDIENCE) }
}
