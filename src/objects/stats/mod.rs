//! `Stats`: one of 16 objects (`stats-0` … `stats-15`, by a stable hash of the document id) that
//! aggregate the live socket counts and the tallies of their documents' rooms. Rooms report
//! after their response and from their alarm, never on the request path; the metrics endpoint
//! asks every shard and merges. Production dashboards read the same figures from Analytics
//! Engine (README, "Metrics").

pub mod client;
pub mod storage;

#[cfg(target_arch = "wasm32")]
pub use object::Stats;

#[cfg(target_arch = "wasm32")]
mod object {
    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

    use super::client::{Record, Snapshot};
    use super::storage::StatsStore;
    use crate::runtime::clock::now_ms;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::log;
    use crate::runtime::rpc::{read, reply, Call, Done, Incoming};
    use crate::runtime::sql_worker::ObjectSql;

    #[durable_object]
    pub struct Stats {
        store: StatsStore<ObjectSql>,
    }

    impl DurableObject for Stats {
        fn new(state: State, env: Env) -> Self {
            let lapse = crate::runtime::bindings::number(&env, crate::runtime::bindings::PRESENCE_LAPSE_MS, crate::presence::REPORT_LAPSE_MS);
            let store = StatsStore::new(ObjectSql::new(state.storage())).with_lapse(lapse);
            if let Err(e) = store.ensure_schema() {
                log::error("schema", e, &[("object", "stats".into())]);
            }
            Stats { store }
        }

        async fn fetch(&self, req: Request) -> Result<Response> {
            self.route(req).await.or_else(ApiError::into_response)
        }
    }

    impl Stats {
        async fn route(&self, mut req: Request) -> ApiResult {
            match Incoming::of(&req)?.path.as_str() {
                Record::PATH => {
                    self.store.record(&read::<Record>(&mut req).await?.report)?;
                    reply(&Done {})
                }
                Snapshot::PATH => reply(&self.store.snapshot(now_ms())?),
                _ => Err(ApiError::not_found("no such stats call")),
            }
        }
    }
}
