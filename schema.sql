-- The full current D1 schema (every database: `DB` and each history shard), for reading. The
-- databases are built by applying `migrations/` in order (`wrangler d1 migrations apply`);
-- `tests/d1_schema.rs` fails when that gives anything other than this file.

-- Every acknowledged operation, written in batches by its document object. `incarnation` tells
-- the lives of a document id apart: a deleted id that is reused starts a new life, and a flush of
-- the old life still in flight can never fill or block the new one's versions.
CREATE TABLE operations (
  document_id      TEXT    NOT NULL,
  incarnation      TEXT    NOT NULL DEFAULT '',
  version          INTEGER NOT NULL,
  operation_id     TEXT    NOT NULL,
  client_id        TEXT    NOT NULL,
  user_id          TEXT    NOT NULL,
  seq              INTEGER NOT NULL,
  timestamp        INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  ops              TEXT    NOT NULL,
  PRIMARY KEY (document_id, incarnation, version)
);
-- The retention job deletes by age.
CREATE INDEX operations_by_time ON operations (server_timestamp);

-- Engagement events (who did what to which post, when) for analytics: the post objects' history
-- rows seen through a view.
CREATE VIEW engagement_events AS
  SELECT substr(document_id, 6)               AS post_id,
         incarnation,
         version,
         user_id,
         json_extract(ops, '$[0].action')     AS action,
         json_extract(ops, '$[0].comment_id') AS comment_id,
         server_timestamp                     AS created_at
  FROM operations
  WHERE document_id LIKE 'post:%';

-- Client error reports (POST /api/v1/errors/batch), in `DB`. A report matching (user, source,
-- severity, message) of a row first seen within the last hour increments that row instead.
CREATE TABLE error_logs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id           TEXT    NOT NULL,
  source            TEXT    NOT NULL,
  severity          TEXT    NOT NULL,
  message           TEXT    NOT NULL,
  context           TEXT,
  client_timestamp  INTEGER NOT NULL,
  first_seen        INTEGER NOT NULL,
  last_seen         INTEGER NOT NULL,
  occurrences       INTEGER NOT NULL DEFAULT 1,
  is_resolved       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX error_logs_dedupe ON error_logs (user_id, source, severity, message, first_seen);
CREATE INDEX error_logs_by_user_time ON error_logs (user_id, last_seen);
CREATE INDEX error_logs_by_time ON error_logs (last_seen);
CREATE INDEX error_logs_by_resolved_time ON error_logs (is_resolved, last_seen, id);

CREATE TABLE channel_documents (
  channel_id     TEXT    NOT NULL,
  document_id    TEXT    NOT NULL,
  registered_at  INTEGER NOT NULL,
  PRIMARY KEY (channel_id, document_id)
);
CREATE INDEX channel_documents_by_document ON channel_documents (document_id);

-- The publish API's delivery ledger (§5.4 [1.2]): pending queue messages, dead letters kept for replay.
CREATE TABLE notify_counters (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
);

CREATE TABLE notify_dead_letters (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id  TEXT    NOT NULL UNIQUE,
  event_id    TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  recipients  INTEGER NOT NULL,
  failed_at   INTEGER NOT NULL,
  replayed_at INTEGER
);
CREATE INDEX notify_dead_letters_open ON notify_dead_letters (replayed_at, id);
