//! The fast read of a text `operation` frame: the common shape (`ops: [...]` with the socket's
//! client_id) deserialised straight into typed fields, borrowing the frame's text. Anything
//! unusual (the flat form, integer ids, a field of the wrong type, a limit exceeded) returns
//! `None` and goes to the general parser, which decides and words the error, so both paths
//! accept exactly the same operations.

use std::borrow::Cow;

use serde::Deserialize;

use crate::limits;
use crate::ot::text::TextPrimitive;
use crate::model::OpRequest;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Payload<'a>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(default, borrow)]
    document_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client_id: Option<Cow<'a, str>>,
    /// camelCase fields (§4.7) are the general parser's to normalise.
    #[serde(default, rename = "clientId")]
    client_id_camel: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "documentId")]
    document_id_camel: Option<serde::de::IgnoredAny>,
    seq: u64,
    version: u64,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(borrow)]
    ops: Vec<Prim<'a>>,
}

#[derive(Deserialize)]
struct Prim<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    position: u64,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    length: Option<u64>,
}

fn primitive(p: Prim) -> Option<TextPrimitive> {
    let position = usize::try_from(p.position).ok()?;
    match (p.kind.as_ref(), p.content, p.length) {
        ("insert", Some(content), _) if content.len() <= limits::MAX_INSERT_BYTES => {
            Some(TextPrimitive::Insert { position, content: content.into_owned() })
        }
        ("delete", _, Some(length)) => Some(TextPrimitive::Delete { position, length: usize::try_from(length).ok()? }),
        ("delete", Some(content), None) => Some(TextPrimitive::Delete { position, length: content.chars().count() }),
        _ => None,
    }
}

/// The message id and the request, when the frame has the common shape.
pub fn text_operation(text: &str, socket_client_id: &str) -> Option<(Option<String>, OpRequest<Vec<TextPrimitive>>)> {
    if text.len() > limits::MAX_FRAME_BYTES {
        return None;
    }
    let f: Frame = serde_json::from_str(text).ok()?;
    let p = f.payload;
    let id_ok = f.id.as_ref().is_none_or(|id| id.chars().count() <= limits::MAX_MESSAGE_ID_CHARS);
    let client_ok = p.client_id.as_deref().is_none_or(|c| c == socket_client_id);
    let camel = p.client_id_camel.is_some() || p.document_id_camel.is_some();
    if f.kind != "operation" || camel || !id_ok || !client_ok || p.seq == 0 || p.ops.len() > limits::MAX_PRIMITIVES_PER_OP {
        return None;
    }
    let body = p.ops.into_iter().map(primitive).collect::<Option<Vec<_>>>()?;
    let req = OpRequest {
        document_id: p.document_id.map(Cow::into_owned),
        client_id: socket_client_id.to_string(),
        seq: Some(p.seq),
        version: Some(p.version),
        timestamp: p.timestamp,
        body,
    };
    Some((f.id.map(Cow::into_owned), req))
}
