//! Deleting a channel as a whole (§6.4 [1.2]): which channels a document belongs to, by id.

use crate::protocol::valid_document_id;

/// Every channel id whose `channel:{id}:` prefix `document_id` starts with (ids may hold `:`,
/// so `channel:a:b:c` belongs to `a` and `a:b`). Empty for documents outside channels.
pub fn channel_ids_of(document_id: &str) -> Vec<&str> {
    let Some(rest) = document_id.strip_prefix("channel:") else { return Vec::new() };
    rest.match_indices(':').map(|(i, _)| &rest[..i]).filter(|id| !id.is_empty()).collect()
}

/// A channel id as the delete route takes it: one that a document id can hold.
pub fn valid_channel_id(id: &str) -> bool {
    !id.is_empty() && valid_document_id(&format!("channel:{id}:x"))
}
