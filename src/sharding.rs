//! Stable placement of keys on a fixed set of shards. The hash (FNV-1a, 64-bit, over the UTF-8
//! bytes) is written out here rather than taken from `std`, whose hashers may change between
//! releases: a key must land on the same shard forever, or its data is lost to it.

/// FNV-1a 64 of `key`.
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The shard of `key` among `count` (0 when `count` is 0).
pub fn shard_of(key: &str, count: u32) -> u32 {
    if count == 0 {
        return 0;
    }
    (stable_hash(key) % count as u64) as u32
}

/// Inbox shards (`InboxShard` objects `inbox-0` … `inbox-63`): every user's notifications live
/// in the shard of their user id. Fixed: changing it moves users away from their inboxes.
pub const INBOX_SHARDS: u32 = 64;

/// The name of the inbox shard object holding `user_id`'s notifications.
pub fn inbox_shard(user_id: &str) -> String {
    format!("inbox-{}", shard_of(user_id, INBOX_SHARDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_pinned() {
        // FNV-1a 64 reference values; a different function would move every user's inbox.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(inbox_shard("alice"), format!("inbox-{}", stable_hash("alice") % 64));
    }

    #[test]
    fn users_spread_over_every_shard() {
        let mut used = [0u32; INBOX_SHARDS as usize];
        for i in 0..10_000 {
            used[shard_of(&format!("user-{i}"), INBOX_SHARDS) as usize] += 1;
        }
        assert!(used.iter().all(|&n| (100..=220).contains(&n)), "{used:?}");
        assert_eq!(shard_of("x", 0), 0);
    }
}
