//! The snapshot in rows of at most [`CHUNK`] bytes: a Yjs document may be 16 MiB encoded (§7),
//! more than one SQLite value of a Durable Object may hold (2 MB). A snapshot that fits one row
//! stays in `meta` as before; a larger one goes to `snapshot_chunks`, in order.

use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// Largest piece of a snapshot in one row (bytes of its text; cut at character boundaries).
pub const CHUNK: usize = 1_000_000;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshot_chunks (n INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_blobs (n INTEGER PRIMARY KEY, data BLOB NOT NULL);
";

/// Writes the snapshot of `version` (inside the caller's transaction).
pub fn write(sql: &dyn Sql, version: u64, content: &str) -> SqlResult<()> {
    sql.run("DELETE FROM snapshot_chunks", vec![])?;
    sql.run("DELETE FROM snapshot_blobs", vec![])?;
    let inline = if content.len() <= CHUNK { content } else { "" };
    sql.run(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('snapshot_version', ?), ('snapshot', ?)",
        vec![version.to_string().into(), inline.into()],
    )?;
    if !inline.is_empty() || content.is_empty() {
        return Ok(());
    }
    let mut rest = content;
    let mut n = 0u64;
    while !rest.is_empty() {
        let mut cut = CHUNK.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        sql.run("INSERT INTO snapshot_chunks (n, data) VALUES (?, ?)", vec![SqlValue::from(n), rest[..cut].into()])?;
        rest = &rest[cut..];
        n += 1;
    }
    Ok(())
}

/// The stored snapshot: the `meta` value, or the chunks joined when it was written in pieces.
pub fn read(sql: &dyn Sql, inline: Option<String>) -> SqlResult<String> {
    match inline {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Ok(sql.texts("SELECT data FROM snapshot_chunks ORDER BY n", vec![])?.concat()),
    }
}

/// Writes a binary snapshot of `version` (a Yjs state) in BLOB rows of at most [`CHUNK`] bytes:
/// no base64 copy of a 16 MiB document is ever made.
pub fn write_bytes(sql: &dyn Sql, version: u64, bytes: &[u8]) -> SqlResult<()> {
    write(sql, version, "")?;
    for (n, piece) in bytes.chunks(CHUNK).enumerate() {
        sql.run("INSERT INTO snapshot_blobs (n, data) VALUES (?, ?)", vec![SqlValue::from(n as u64), SqlValue::Blob(piece.to_vec())])?;
    }
    Ok(())
}

/// The binary snapshot, empty when the last snapshot was text.
pub fn read_bytes(sql: &dyn Sql) -> SqlResult<Vec<u8>> {
    let rows = sql.query("SELECT data FROM snapshot_blobs ORDER BY n", vec![])?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(SqlValue::Blob(b)) = r.into_iter().next() {
            out.extend_from_slice(&b);
        }
    }
    Ok(out)
}
