-- D1 schema, first version. Migrations are applied in order by `wrangler d1 migrations apply`
-- (`make dev` / `make test` locally, `--remote` before a deploy) and by the miniflare tests.

-- Every acknowledged operation, written in batches by its document object.
CREATE TABLE IF NOT EXISTS operations (
  document_id      TEXT    NOT NULL,
  version          INTEGER NOT NULL,
  operation_id     TEXT    NOT NULL,
  client_id        TEXT    NOT NULL,
  user_id          TEXT    NOT NULL,
  seq              INTEGER NOT NULL,
  timestamp        INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  ops              TEXT    NOT NULL,
  PRIMARY KEY (document_id, version)
);
-- The retention job deletes by age.
CREATE INDEX IF NOT EXISTS operations_by_time ON operations (server_timestamp);

-- Client error reports (POST /api/v1/errors/batch). A report matching (user, source, severity,
-- message) of a row first seen within the last hour increments that row instead.
CREATE TABLE IF NOT EXISTS error_logs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id           TEXT    NOT NULL,
  source            TEXT    NOT NULL,
  severity          TEXT    NOT NULL,
  message           TEXT    NOT NULL,
  context           TEXT,
  client_timestamp  INTEGER NOT NULL,
  first_seen        INTEGER NOT NULL,
  last_seen         INTEGER NOT NULL,
  occurrences       INTEGER NOT NULL DEFAULT 1
);
-- The dedupe lookup.
CREATE INDEX IF NOT EXISTS error_logs_dedupe ON error_logs (user_id, source, severity, message, first_seen);
-- Stats for one user, and for everyone (service tokens); retention by age.
CREATE INDEX IF NOT EXISTS error_logs_by_user_time ON error_logs (user_id, last_seen);
CREATE INDEX IF NOT EXISTS error_logs_by_time ON error_logs (last_seen);

-- Engagement events (who did what to which post, when) for analytics: the post objects' history
-- rows, batched into `operations` like every other document's, seen through a view.
CREATE VIEW IF NOT EXISTS engagement_events AS
  SELECT substr(document_id, 6)               AS post_id,
         version,
         user_id,
         json_extract(ops, '$[0].action')     AS action,
         json_extract(ops, '$[0].comment_id') AS comment_id,
         server_timestamp                     AS created_at
  FROM operations
  WHERE document_id LIKE 'post:%';
