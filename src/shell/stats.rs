//! `Stats`: one object for the whole deployment that knows how many sockets each document room
//! holds. Rooms report their absolute count after every connect and close, so a repeated or
//! reordered report settles on the latest truth instead of drifting.

use serde::Deserialize;
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Headers, Method, Request, Response, Result, SqlStorage, State};

use super::internal::call_object;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS live (document_id TEXT PRIMARY KEY, connections INTEGER NOT NULL, at INTEGER NOT NULL);";

#[derive(Deserialize)]
struct Report {
    document_id: String,
    connections: u32,
    at: f64,
}

#[derive(Deserialize)]
struct Totals {
    connections: Option<f64>,
    documents: f64,
}

#[durable_object]
pub struct Stats {
    sql: SqlStorage,
}

impl DurableObject for Stats {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!("stats schema: {e}");
        }
        Stats { sql }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() == Method::Post {
            let text = req.text().await?;
            let r: Report = serde_json::from_str(&text)?;
            if r.connections == 0 {
                self.sql.exec("DELETE FROM live WHERE document_id = ? AND at <= ?", Some(vec![r.document_id.into(), r.at.into()]))?;
            } else {
                // A report older than the one stored (they can cross) does not win.
                self.sql.exec(
                    "INSERT INTO live (document_id, connections, at) VALUES (?, ?, ?) \
                     ON CONFLICT (document_id) DO UPDATE SET connections = excluded.connections, at = excluded.at \
                     WHERE excluded.at >= live.at",
                    Some(vec![r.document_id.into(), (r.connections as i32).into(), r.at.into()]),
                )?;
            }
            return Response::ok("");
        }
        let totals: Vec<Totals> = self.sql.exec("SELECT SUM(connections) AS connections, COUNT(*) AS documents FROM live", None)?.to_array()?;
        let t = totals.first();
        Response::from_json(&json!({
            "connections": t.and_then(|t| t.connections).unwrap_or(0.0) as u64,
            "active_documents": t.map_or(0.0, |t| t.documents) as u64,
        }))
    }
}

/// Tells the stats object how many sockets `document_id` holds now. Best effort: metrics must
/// never fail a connect or a close.
pub async fn report(env: &Env, document_id: &str, connections: usize, at_ms: u64) {
    let body = json!({"document_id": document_id, "connections": connections, "at": at_ms}).to_string();
    let sent = call_object(env, "STATS", "global", Method::Post, "/report", Some(body), Headers::new()).await;
    if let Err(e) = sent {
        worker::console_error!("stats report failed: {e}");
    }
}

/// The live totals.
pub async fn totals(env: &Env) -> Result<serde_json::Value> {
    let stub = env.durable_object("STATS")?.id_from_name("global")?.get_stub()?;
    stub.fetch_with_str("https://stats/totals").await?.json().await
}
