//! D1, the deployment's shared databases: operation history (sharded by document, written in
//! batches by the document objects), client error reports, and the scheduled retention.

pub mod channel_documents;
pub mod error_logs;
pub mod history;
pub mod notify_ledger;
pub mod retention;
