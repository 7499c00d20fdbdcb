-- PROTOCOL §5.4 [1.2], accepted means delivered: the publish API's fan-out keeps a count of the
-- queue messages accepted and not yet delivered (`notify_pending` in the metrics), and the
-- dead-letter queue's consumer keeps every message that exhausted its retries, for replay
-- (`POST /api/v1/notify/dead-letters/replay`). `message_id` makes a redelivered dead letter
-- count once.
CREATE TABLE IF NOT EXISTS notify_counters (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS notify_dead_letters (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id  TEXT    NOT NULL UNIQUE,
  event_id    TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  recipients  INTEGER NOT NULL,
  failed_at   INTEGER NOT NULL,
  replayed_at INTEGER
);
CREATE INDEX IF NOT EXISTS notify_dead_letters_open ON notify_dead_letters (replayed_at, id);
