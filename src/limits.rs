//! Every size and count limit of the protocol, in one place.

/// Largest WebSocket frame a client may send (§3.4).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Largest text one insert may carry, in UTF-8 bytes.
pub const MAX_INSERT_BYTES: usize = 64 * 1024;
/// Largest text document, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Largest awareness state, as serialised JSON.
pub const MAX_AWARENESS_BYTES: usize = 2 * 1024;
/// Largest HTTP request body (§4.6).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Client-chosen message ids and client ids.
pub const MAX_MESSAGE_ID_CHARS: usize = 64;
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Primitives in one atomic operation.
pub const MAX_PRIMITIVES_PER_OP: usize = 1000;

/// Operations each room keeps for transforms and `since` replays, by count and by bytes of
/// applied JSON, whichever binds first. An op based on an older version gets `version_too_old`.
pub const LOG_RETAINED_OPS: u64 = 1000;
pub const LOG_RETAINED_BYTES: usize = 4 * 1024 * 1024;
/// A text snapshot is written every this many versions or log bytes, so waking re-applies at
/// most that much whatever the history length. Below the log budget, so the retained tail
/// always covers every version after the snapshot.
pub const SNAPSHOT_EVERY_OPS: u64 = 100;
pub const SNAPSHOT_EVERY_BYTES: usize = 1024 * 1024;

/// Entries of the room's caches of stored rows (clients; a post's users and comments). Storage
/// is the truth; a full cache is emptied and refilled from it.
pub const CACHED_CLIENTS: usize = 4096;
pub const CACHED_USERS: usize = 4096;
/// Comments carry up to 2,000 characters of text each.
pub const CACHED_COMMENTS: usize = 256;

/// A `typing` not refreshed within this many ms is followed by `stopped_typing`.
pub const TYPING_TIMEOUT_MS: u64 = 5_000;
/// Delay between an acked op and its batch write to D1; a document with a backlog of a batch or
/// more (a hot one) flushes 4× as often, so each flush copies a quarter as much: no flush holds
/// the object long enough to show in its acks (at 5,000 ops/s a 1 s flush of ~25 batches put
/// ~150 ms on every socket's ack once a second; `bench/hot-documents.mjs`).
pub const HISTORY_FLUSH_DELAY_MS: u64 = 1_000;
pub const HISTORY_FLUSH_DELAY_HOT_MS: u64 = 250;

pub fn history_flush_delay_ms(unflushed_ops: u64) -> u64 {
    if unflushed_ops >= HISTORY_BATCH_OPS as u64 {
        HISTORY_FLUSH_DELAY_HOT_MS
    } else {
        HISTORY_FLUSH_DELAY_MS
    }
}
/// Operations per D1 batch, and about this many bytes of them.
pub const HISTORY_BATCH_OPS: usize = 200;
pub const HISTORY_BATCH_BYTES: usize = 1024 * 1024;

/// History page size (§4.1).
pub const HISTORY_DEFAULT_LIMIT: u64 = 100;
pub const HISTORY_MAX_LIMIT: u64 = 1000;

/// Retention of D1 rows, enforced by the scheduled job.
pub const HISTORY_RETENTION_DAYS: u64 = 30;
pub const ERROR_RETENTION_DAYS: u64 = 90;
/// Rows one retention query deletes, and queries one run makes per table.
pub const RETENTION_BATCH_ROWS: u32 = 1000;
pub const RETENTION_MAX_BATCHES: u32 = 50;

/// Canvas limits (§8 [1.2], raising §3.4's 10,000 strokes / 16 MiB): strokes per canvas and
/// bytes of stroke data, kept in storage; a row holds one stroke, so rows stay far below
/// SQLite's 2 MB. The room holds only the index (about 200 bytes a stroke natively).
pub const MAX_STROKES: usize = 100_000;
pub const MAX_STROKE_BYTES: usize = 32 * 1024;
pub const MAX_CANVAS_BYTES: usize = 64 * 1024 * 1024;
/// Stroke data a socket is sent in one frame (`initial_state`, then `strokes_in_view` pages):
/// the most stroke data the room holds at once. Every canvas of up to 8 MiB still arrives
/// whole in `initial_state`.
pub const STROKE_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Ids in one stroke read (SQLite in a Durable Object binds at most 100 parameters a query).
pub const STROKE_READ_IDS: usize = 100;

/// Coalesced awareness (§8): at most one relay per socket per this many ms, the latest state
/// winning; changed states are written to storage at most once per checkpoint interval.
pub const AWARENESS_RELAY_MS: u64 = 50;
pub const AWARENESS_CHECKPOINT_MS: u64 = 1_000;
/// A socket that skipped operations outside its viewport hears the version at most this often.
pub const VERSION_ANNOUNCE_MS: u64 = 1_000;

/// Notifications (and activities) kept per user in their inbox; older ones leave a stub.
pub const INBOX_ITEMS_KEPT: usize = 500;

/// §9: at most one `engagement_update` per socket per this many ms, the latest counts winning.
pub const ENGAGEMENT_UPDATE_EVERY_MS: u64 = 100;

/// §5.1 [1.2]: a client_id claim lapses after 30 days without an operation; a document keeps at
/// most this many claims (past that, the one idle longest is dropped).
pub const CLIENT_CLAIM_LAPSE_MS: u64 = 30 * 24 * 3600 * 1000;
pub const MAX_CLIENT_CLAIMS: u64 = 10_000;
/// §5.1 [1.2]: open sockets per user on one document and on the personal channel.
pub const MAX_SOCKETS_PER_USER_DOC: usize = 8;
pub const MAX_SOCKETS_PER_USER_CHANNEL: usize = 16;
/// §5.1 [1.2]: ids in one `notification_read` frame; users in a watch list, changed at most once
/// per interval.
pub const MAX_READ_IDS_PER_FRAME: usize = 100;
pub const MAX_WATCHED_USERS: usize = 100;
pub const WATCH_PRESENCE_EVERY_MS: u64 = 1_000;
/// §5.1 [1.2]: a history page holds at most this many bytes of operations (and 1,000 of them).
pub const HISTORY_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// §5.5 [1.2]: a socket is closed this long after its token's `exp` at the latest, unless
/// refreshed in-band (`TOKEN_GRACE_MS` overrides it, for tests); a revocation lasts this long
/// unless `until` says otherwise.
pub const TOKEN_GRACE_MS: u64 = 60_000;
pub const REVOKE_DEFAULT_MS: u64 = 24 * 3600 * 1000;

/// The longest a document waits for more events before its next group commit (§9).
pub const GATHER_MAX_MS: u64 = 4;

/// How long to gather the next batch, from how many sockets sent the recent events: a lone
/// writer's latency stays one commit; a crowd (each waiting for its own ack) is gathered for up
/// to 4 ms, so one commit and one frame per socket serve many events.
pub fn gather_ms(distinct_recent_senders: usize) -> u64 {
    match distinct_recent_senders {
        0..=4 => 0,
        n => (n as u64 / 8).clamp(1, GATHER_MAX_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::gather_ms;

    #[test]
    fn a_backlog_of_a_batch_is_flushed_sooner() {
        use super::{history_flush_delay_ms, HISTORY_BATCH_OPS, HISTORY_FLUSH_DELAY_HOT_MS, HISTORY_FLUSH_DELAY_MS};
        assert_eq!(history_flush_delay_ms(1), HISTORY_FLUSH_DELAY_MS);
        assert_eq!(history_flush_delay_ms(HISTORY_BATCH_OPS as u64 - 1), HISTORY_FLUSH_DELAY_MS);
        assert_eq!(history_flush_delay_ms(HISTORY_BATCH_OPS as u64), HISTORY_FLUSH_DELAY_HOT_MS);
    }

    #[test]
    fn a_lone_writer_never_waits_and_a_crowd_waits_at_most_4_ms() {
        assert_eq!([gather_ms(0), gather_ms(1), gather_ms(4)], [0, 0, 0]);
        assert_eq!([gather_ms(5), gather_ms(16), gather_ms(64), gather_ms(1000)], [1, 2, 4, 4]);
    }
}

/// Yjs documents (§7 [1.2]): largest binary frame, largest encoded document, and when the
/// update log is merged into one snapshot (whichever comes first).
pub const YJS_MAX_FRAME_BYTES: usize = 1024 * 1024;
pub const YJS_MAX_DOC_BYTES: usize = 16 * 1024 * 1024;
pub const YJS_MERGE_EVERY_UPDATES: u64 = 1000;
pub const YJS_MERGE_EVERY_BYTES: usize = 1024 * 1024;
/// A Yjs socket's message budget: 60 a second, bursts of 200.
pub const YJS_RATE_PER_SEC: f64 = 60.0;
pub const YJS_BURST: f64 = 200.0;
/// Awareness clients one Yjs socket may hold, and the largest state of one (JSON text), so
/// that many sockets' awareness stays within the room's memory budget.
pub const YJS_AWARENESS_CLIENTS_PER_SOCKET: usize = 4;
pub const YJS_MAX_AWARENESS_STATE_BYTES: usize = 2 * 1024;
