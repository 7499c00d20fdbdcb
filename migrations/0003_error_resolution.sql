-- §6.1 [1.2]: error reports can be marked resolved; listing by state, newest last_seen first.
ALTER TABLE error_logs ADD COLUMN is_resolved INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS error_logs_by_resolved_time ON error_logs (is_resolved, last_seen, id);
