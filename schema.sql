-- D1 schema. Applied by `make dev` / `make test` (wrangler d1 execute --local) and by the
-- miniflare tests; apply it to the remote database once before `wrangler deploy`.

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
