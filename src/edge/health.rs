//! `GET /health`: alive; with a service token, whether D1 (`DB` and every history shard) and KV answer (503 when one does not).

use serde_json::{json, Value};
use worker::Env;

use crate::d1::history;
use crate::runtime::bindings;
use crate::runtime::http::{json_response, ApiResult};

async fn ask_d1(env: &Env, name: &str) -> String {
    let db = if name == bindings::DB { env.d1(name) } else { history::open(env, name) };
    match db {
        Ok(db) => match db.prepare("SELECT 1 AS ok").all().await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

async fn ask_kv(env: &Env) -> String {
    match env.kv(bindings::ENGAGEMENT_CACHE) {
        Ok(kv) => match kv.get("health").text().await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// Without a service token only `{"status","version"}`, and nothing is asked of D1 or KV.
pub async fn health(env: &Env, service: bool) -> ApiResult {
    if !service {
        return Ok(json_response(200, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))?);
    }
    let mut names = vec![bindings::DB.to_string()];
    let mut config_error = None;
    match history::list(env) {
        Ok(list) => names.extend(list.names().iter().filter(|n| *n != bindings::DB).cloned()),
        Err(e) => config_error = Some(e.to_string()),
    }
    let answers = futures_util::future::join_all(names.iter().map(|n| ask_d1(env, n))).await;
    // `d1` is "ok" or the first problem, named; `d1_databases` has every database's answer.
    let d1 = config_error
        .or_else(|| names.iter().zip(&answers).find(|(_, a)| *a != "ok").map(|(n, a)| format!("{n}: {a}")))
        .unwrap_or_else(|| "ok".to_string());
    let databases: serde_json::Map<String, Value> = names.into_iter().zip(answers).map(|(n, a)| (n, Value::String(a))).collect();
    let kv = ask_kv(env).await;
    let ok = d1 == "ok" && kv == "ok";
    let body = json!({"status": if ok { "ok" } else { "degraded" }, "version": env!("CARGO_PKG_VERSION"), "d1": d1, "d1_databases": databases, "kv": kv});
    Ok(json_response(if ok { 200 } else { 503 }, &body)?)
}
