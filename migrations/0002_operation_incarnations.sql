-- History rows carry the incarnation of their document: a deleted document id that is reused
-- starts a new life, and a history flush of the old life still in flight when it was deleted
-- can never fill or block the new one's versions. Reads filter by the current incarnation.
-- SQLite cannot change a primary key in place: the table is rebuilt.
DROP VIEW IF EXISTS engagement_events;

CREATE TABLE operations_v2 (
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

INSERT INTO operations_v2 (document_id, incarnation, version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops)
  SELECT document_id, '', version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops FROM operations;

DROP TABLE operations;
ALTER TABLE operations_v2 RENAME TO operations;
CREATE INDEX IF NOT EXISTS operations_by_time ON operations (server_timestamp);

CREATE VIEW IF NOT EXISTS engagement_events AS
  SELECT substr(document_id, 6)               AS post_id,
         incarnation,
         version,
         user_id,
         json_extract(ops, '$[0].action')     AS action,
         json_extract(ops, '$[0].comment_id') AS comment_id,
         server_timestamp                     AS created_at
  FROM operations
  WHERE document_id LIKE 'post:%';
