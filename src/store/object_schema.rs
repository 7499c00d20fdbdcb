//! `schema::SchemaStore` on an object's SQLite storage: the applied version in `schema_version`,
//! each migration and its version written in one `transactionSync`.

use serde::Deserialize;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, Storage};

use crate::schema::{upgrade, SchemaStore};

struct ObjectSchema<'a>(&'a Storage);

#[derive(Deserialize)]
struct Row {
    version: f64,
}

impl SchemaStore for ObjectSchema<'_> {
    fn version(&self) -> Result<u32, String> {
        let sql = self.0.sql();
        let e = |e: worker::Error| e.to_string();
        sql.exec("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL)", None).map_err(e)?;
        let rows: Vec<Row> = sql.exec("SELECT version FROM schema_version WHERE id = 0", None).map_err(e)?.to_array().map_err(e)?;
        Ok(rows.first().map_or(0, |r| r.version as u32))
    }

    fn apply(&self, migration: &str, version: u32) -> Result<(), String> {
        let sql = self.0.sql();
        let migration = migration.to_string();
        let run = move || -> Result<JsValue, JsValue> {
            let e = |e: worker::Error| JsValue::from_str(&e.to_string());
            sql.exec(&migration, None).map_err(e)?;
            sql.exec("INSERT OR REPLACE INTO schema_version (id, version) VALUES (0, ?)", Some(vec![(version as i64).into()])).map_err(e)?;
            Ok(JsValue::UNDEFINED)
        };
        let raw: &JsValue = self.0.as_raw().as_ref();
        let transaction_sync: js_sys::Function =
            js_sys::Reflect::get(raw, &"transactionSync".into()).and_then(|f| f.dyn_into()).map_err(|e| format!("{e:?}"))?;
        let closure = Closure::once(run);
        transaction_sync.call1(raw, closure.as_ref().unchecked_ref()).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }
}

/// Upgrades the object's storage to the latest of `migrations`; failures are logged (the
/// object then answers with whatever its queries find, and errors say so).
pub fn ensure(storage: &Storage, object: &str, migrations: &[&str]) {
    if let Err(e) = upgrade(&ObjectSchema(storage), migrations) {
        crate::shell::log::error("schema", e, &[("object", object.into())]);
    }
}
