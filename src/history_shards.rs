//! Where a document's operation history lives: one of several D1 databases, chosen by a stable
//! hash of the document id, so history is not capped by one database's size and query rate.
//!
//! The hash is `sharding::stable_hash` (FNV-1a 64): a document's shard must never move unless
//! the shard list itself changes, which is a planned migration (README, "Deploy").

use crate::sharding::shard_of;

/// The binding used when `HISTORY_SHARDS` is unset or empty: the one database of old deployments.
pub const DEFAULT_SHARD: &str = "DB";

/// The shard index of `document_id` among `count` shards (0 when there are none).
pub fn shard_index(document_id: &str, count: usize) -> usize {
    shard_of(document_id, u32::try_from(count).unwrap_or(u32::MAX)) as usize
}

/// The ordered list of D1 bindings that hold history. Order matters: index i is shard i.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryShards {
    names: Vec<String>,
}

impl HistoryShards {
    /// Parses `HISTORY_SHARDS` ("DB,HISTORY_1"): binding names, comma-separated, spaces ignored.
    /// Unset or blank means the single `DB`. Empty entries, duplicates and names that cannot be
    /// bindings are refused, so a typo fails loudly instead of moving documents.
    pub fn parse(spec: Option<&str>) -> Result<Self, String> {
        let spec = spec.map(str::trim).unwrap_or_default();
        if spec.is_empty() {
            return Ok(HistoryShards { names: vec![DEFAULT_SHARD.to_string()] });
        }
        let mut names: Vec<String> = Vec::new();
        for (i, raw) in spec.split(',').enumerate() {
            let name = raw.trim();
            if name.is_empty() {
                return Err(format!("HISTORY_SHARDS entry {} is empty (expected binding names separated by commas)", i + 1));
            }
            if !valid_binding(name) {
                return Err(format!("HISTORY_SHARDS entry {name:?} is not a binding name (letters, digits and _, not starting with a digit)"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("HISTORY_SHARDS lists {name:?} twice"));
            }
            names.push(name.to_string());
        }
        Ok(HistoryShards { names })
    }

    /// Every shard's binding name, in shard order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The binding that holds `document_id`'s history.
    pub fn for_document(&self, document_id: &str) -> &str {
        // `parse` never builds an empty list; the fallback only keeps this total.
        self.names.get(shard_index(document_id, self.names.len())).map_or(DEFAULT_SHARD, String::as_str)
    }
}

fn valid_binding(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How many of the next operations (their sizes in order, up to `limit + 1` of them) one history
/// page takes: at most `limit`, and at most `max_bytes` of them though always at least one
/// (§5.1 [1.2]); and whether more follow.
pub fn page_cut(sizes: &[usize], limit: usize, max_bytes: usize) -> (usize, bool) {
    let mut total = 0usize;
    let mut taken = 0;
    for &size in sizes.iter().take(limit) {
        total = total.saturating_add(size);
        if taken > 0 && total > max_bytes {
            return (taken, true);
        }
        taken += 1;
    }
    (taken, sizes.len() > taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharding::stable_hash;

    #[test]
    fn document_ids_hash_to_pinned_values_and_shards() {
        // Pinned: documents already written live where these say. Do not update them; a change
        // of the function or of the byte encoding is a migration, not a fix.
        // (miniflare-tests/history-shards.test.mjs pins the same values in JavaScript.)
        let pinned = [
            ("channel:abc123:description", 0x36fe_a401_fa13_848a_u64, 0),
            ("post:42", 0xd96d_f78c_9dd9_1e41, 1),
            ("canvas:é🎧", 0x85b7_8dba_78e5_7b8f, 1),
        ];
        for (id, hash, shard) in pinned {
            assert_eq!(stable_hash(id), hash, "hash of {id}");
            assert_eq!(shard_index(id, 2), shard, "shard of {id}");
        }
    }

    #[test]
    fn both_shards_get_documents_in_even_measure() {
        let shards = HistoryShards::parse(Some("DB,HISTORY_1")).unwrap();
        let mut counts = [0usize; 2];
        for i in 0..10_000 {
            let name = shards.for_document(&format!("channel:{i}:description"));
            counts[usize::from(name == "HISTORY_1")] += 1;
        }
        assert!(counts.iter().all(|&n| (4_500..=5_500).contains(&n)), "{counts:?}");
    }

    #[test]
    fn the_choice_is_the_hash_modulo_the_shard_count() {
        let shards = HistoryShards::parse(Some("DB, HISTORY_1 ,HISTORY_2")).unwrap();
        assert_eq!(shards.names(), ["DB", "HISTORY_1", "HISTORY_2"]);
        for id in ["a", "post:42", "channel:x:description", ""] {
            let i = (stable_hash(id) % 3) as usize;
            assert_eq!(shards.for_document(id), shards.names()[i]);
        }
        assert_eq!(shard_index("anything", 1), 0);
        assert_eq!(shard_index("anything", 0), 0);
    }

    #[test]
    fn unset_or_blank_means_the_single_db() {
        for spec in [None, Some(""), Some("  ")] {
            let shards = HistoryShards::parse(spec).unwrap();
            assert_eq!(shards.names(), ["DB"]);
            assert_eq!(shards.for_document("post:42"), "DB");
        }
    }

    #[test]
    fn malformed_lists_are_refused_with_the_reason() {
        let err = |spec: &str| HistoryShards::parse(Some(spec)).unwrap_err();
        assert!(err("DB,,HISTORY_1").contains("entry 2 is empty"));
        assert!(err("DB,").contains("entry 2 is empty"));
        assert!(err("DB,DB").contains("twice"));
        assert!(err("DB,history-1").contains("not a binding name"));
        assert!(err("1DB").contains("not a binding name"));
    }
}
