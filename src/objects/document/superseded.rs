//! Writes of one group commit that a later write of the same batch replaces (§9). Each of these
//! writes replaces its whole row (or the whole snapshot), so only the last of a key changes what
//! is stored: a batch of 50 likes writes the post's snapshot once instead of 50 times (3
//! statements each), and a client's record once however many of its operations it holds.
//! A client's first record (`last_seq` 1) also evicts the oldest claims (`put_client`, the
//! only bound on that table), and which are oldest depends on every record written before it:
//! a batch holding one keeps all its client records, so it stores exactly what one-by-one would.

use std::collections::HashMap;

use crate::model::Write;

#[derive(Hash, PartialEq, Eq)]
enum Key<'a> {
    Snapshot,
    Client(&'a str),
    Awareness(&'a str),
    Typing(&'a str),
    EngagementUser(&'a str),
}

fn key(w: &Write, clients_evict: bool) -> Option<Key<'_>> {
    Some(match w {
        Write::Snapshot { .. } | Write::SnapshotBytes { .. } => Key::Snapshot,
        Write::PutClient(id, _) if !clients_evict => Key::Client(id),
        Write::PutAwareness(id, _) | Write::DeleteAwareness(id) => Key::Awareness(id),
        Write::PutTyping(id, _) | Write::DeleteTyping(id) => Key::Typing(id),
        Write::PutEngagementUser(id, _) => Key::EngagementUser(id),
        _ => return None,
    })
}

/// The writes that change what is stored, in their order: every write but one a later write of
/// the same key replaces.
pub fn live(writes: &[Write]) -> impl Iterator<Item = &Write> {
    let evicts = writes.iter().any(|w| matches!(w, Write::PutClient(_, r) if r.last_seq == 1));
    let mut last: HashMap<Key, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        if let Some(k) = key(w, evicts) {
            last.insert(k, i);
        }
    }
    writes.iter().enumerate().filter(move |(i, w)| key(w, evicts).is_none_or(|k| last.get(&k) == Some(i))).map(|(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClientRecord;

    #[test]
    fn only_the_last_write_of_a_key_is_kept_and_order_is_unchanged() {
        let snap = |v: u64| Write::Snapshot { version: v, content: format!("s{v}") };
        let client = |id: &str, seq: u64| Write::PutClient(id.into(), ClientRecord { last_seq: seq, ..Default::default() });
        let writes = vec![snap(1), client("a", 3), Write::ClearStrokes, snap(2), client("b", 7), client("a", 4), Write::DeleteAwareness("s".into())];
        let kept: Vec<String> = live(&writes).map(|w| format!("{w:?}")).collect();
        let expected: Vec<String> = [&writes[2], &writes[3], &writes[4], &writes[5], &writes[6]].iter().map(|w| format!("{w:?}")).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn a_batch_with_a_first_claim_keeps_every_client_record() {
        let client = |id: &str, seq: u64| Write::PutClient(id.into(), ClientRecord { last_seq: seq, ..Default::default() });
        let writes = vec![client("b", 7), client("a", 1), client("b", 8), client("a", 2)];
        let kept: Vec<String> = live(&writes).map(|w| format!("{w:?}")).collect();
        let expected: Vec<String> = writes.iter().map(|w| format!("{w:?}")).collect();
        assert_eq!(kept, expected, "the first claim evicts by last_used, which b's first record moved");
    }
}
