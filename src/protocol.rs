//! Wire types of PROTOCOL.md: the frame envelope, error codes and outgoing frames.
//! Parsing is by hand over `serde_json::Value` so that every bad field gets a precise message.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::geom::Reach;
use crate::limits;

/// Error codes of §3.4, shared by the WebSocket and HTTP paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    UnknownType,
    InvalidOperation,
    VersionAhead,
    VersionTooOld,
    SeqGap,
    ClientIdTaken,
    Forbidden,
    TooLarge,
    RateLimited,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::UnknownType => "unknown_type",
            Code::InvalidOperation => "invalid_operation",
            Code::VersionAhead => "version_ahead",
            Code::VersionTooOld => "version_too_old",
            Code::SeqGap => "seq_gap",
            Code::ClientIdTaken => "client_id_taken",
            Code::Forbidden => "forbidden",
            Code::TooLarge => "too_large",
            Code::RateLimited => "rate_limited",
            Code::Internal => "internal",
        }
    }

    /// HTTP status used when this code is returned by the REST API.
    pub fn http_status(self) -> u16 {
        match self {
            Code::BadRequest => 400,
            Code::UnknownType | Code::InvalidOperation => 422,
            Code::VersionAhead | Code::VersionTooOld | Code::SeqGap | Code::ClientIdTaken => 409,
            Code::Forbidden => 403,
            Code::TooLarge => 413,
            Code::RateLimited => 429,
            Code::Internal => 500,
        }
    }
}

/// A protocol-level failure: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Failure::new(Code::BadRequest, message)
    }
}

/// One message the server sends: its `type`, the id it answers and its payload, serialised once
/// when the message is made. The payload goes first in the frame (`{"payload":…,"type":…}`), so
/// the frame is the payload's buffer with the envelope appended: a large `initial_state` is never
/// copied into a second string.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub kind: &'static str,
    pub reply_to: Option<String>,
    /// `{"payload":` followed by the payload's JSON.
    head: String,
    /// Which sockets it is for, by viewport (§8): a canvas operation reaches the sockets whose
    /// view its strokes touch; everything else reaches all.
    pub reach: Reach,
}

const HEAD: &str = "{\"payload\":";
/// Room left after a payload for the envelope fields `into_frame` appends.
const ENVELOPE_RESERVE: usize = 160;

impl Outgoing {
    pub fn new(kind: &'static str, payload: impl Serialize) -> Self {
        Outgoing::reply(kind, None, payload)
    }

    pub fn reply(kind: &'static str, reply_to: Option<String>, payload: impl Serialize) -> Self {
        let mut buf = Vec::with_capacity(384);
        buf.extend_from_slice(HEAD.as_bytes());
        if serde_json::to_writer(&mut buf, &payload).is_err() {
            // Only maps with non-string keys fail; none of ours have them.
            buf.truncate(HEAD.len());
            buf.extend_from_slice(b"null");
        }
        let head = String::from_utf8(buf).unwrap_or_else(|_| format!("{HEAD}null"));
        Outgoing { kind, reply_to, head, reach: Reach::All }
    }

    /// A message whose payload JSON `write` appends to the frame's own buffer, made with room
    /// for `payload_bytes`: a page of stroke data is written once, never copied (`R` is what
    /// the writer returns, e.g. a failure that makes the caller drop the message).
    pub fn with_payload<R>(kind: &'static str, reply_to: Option<String>, payload_bytes: usize, write: impl FnOnce(&mut String) -> R) -> (Self, R) {
        let mut head = String::with_capacity(HEAD.len() + payload_bytes + ENVELOPE_RESERVE);
        head.push_str(HEAD);
        let r = write(&mut head);
        (Outgoing { kind, reply_to, head, reach: Reach::All }, r)
    }

    /// Like [`Outgoing::reply`] for large payloads (`initial_state`): measures the JSON first and
    /// writes it into a buffer of exactly that size, so a 16 MiB canvas never has a doubling
    /// buffer's old and new halves alive at once.
    pub fn reply_sized(kind: &'static str, reply_to: Option<String>, payload: impl Serialize) -> Self {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        if serde_json::to_writer(&mut count, &payload).is_err() {
            return Outgoing::reply(kind, reply_to, Value::Null);
        }
        let mut buf = Vec::with_capacity(HEAD.len() + count.0 + ENVELOPE_RESERVE);
        buf.extend_from_slice(HEAD.as_bytes());
        if serde_json::to_writer(&mut buf, &payload).is_err() {
            return Outgoing::reply(kind, reply_to, Value::Null);
        }
        let head = String::from_utf8(buf).unwrap_or_else(|_| format!("{HEAD}null"));
        Outgoing { kind, reply_to, head, reach: Reach::All }
    }

    /// A message whose payload is JSON text serialised earlier (an ack kept for the HTTP answer).
    pub fn raw(kind: &'static str, reply_to: Option<String>, payload_json: &str) -> Self {
        let mut head = String::with_capacity(HEAD.len() + payload_json.len() + 96);
        head.push_str(HEAD);
        head.push_str(payload_json);
        Outgoing { kind, reply_to, head, reach: Reach::All }
    }

    pub fn error(f: &Failure, reply_to: Option<String>, operation_id: Option<String>) -> Self {
        Outgoing::error_with(f, reply_to, operation_id, None)
    }

    /// An error carrying `retry_after_ms` (rate limits).
    pub fn error_with(f: &Failure, reply_to: Option<String>, operation_id: Option<String>, retry_after_ms: Option<u64>) -> Self {
        #[derive(Serialize)]
        struct ErrorPayload<'a> {
            code: &'static str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            operation_id: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after_ms: Option<u64>,
        }
        // §5.7: an internal failure's detail (storage text) is for the log, never the client.
        let message = if f.code == Code::Internal { "internal error" } else { &f.message };
        Outgoing::reply("error", reply_to, ErrorPayload { code: f.code.as_str(), message, operation_id, retry_after_ms })
    }

    /// The payload's JSON text.
    pub fn payload_json(&self) -> &str {
        &self.head[HEAD.len()..]
    }

    /// The payload parsed back (tests and the few places that read a field).
    pub fn payload(&self) -> Value {
        serde_json::from_str(self.payload_json()).unwrap_or(Value::Null)
    }

    /// The JSON text of the frame.
    pub fn to_frame(&self, id: &str, timestamp: u64) -> String {
        self.clone().into_frame(id, timestamp)
    }

    /// The JSON text of the frame, reusing the payload's buffer.
    pub fn into_frame(self, id: &str, timestamp: u64) -> String {
        use std::fmt::Write as _;
        let mut s = self.head;
        s.reserve(ENVELOPE_RESERVE + self.reply_to.as_ref().map_or(0, |r| r.len() * 2));
        // Server frame ids are made of safe characters; reply_to is the client's and is escaped.
        let _ = write!(s, ",\"type\":\"{}\",\"id\":\"{id}\",\"reply_to\":", self.kind);
        match &self.reply_to {
            Some(r) => s.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "null".into())),
            None => s.push_str("null"),
        }
        let _ = write!(s, ",\"timestamp\":{timestamp}}}");
        s
    }
}

/// A client frame after envelope validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub kind: String,
    pub id: Option<String>,
    pub payload: Map<String, Value>,
}

/// Parses the envelope of a client frame. On failure returns the error with the frame id when
/// one could be read, so the error can still carry `reply_to`.
pub fn parse_frame(text: &str) -> Result<Frame, (Failure, Option<String>)> {
    if text.len() > limits::MAX_FRAME_BYTES {
        return Err((Failure::new(Code::TooLarge, "frame exceeds 64 KiB"), None));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| (Failure::bad(format!("frame is not JSON: {e}")), None))?;
    let Value::Object(mut obj) = value else {
        return Err((Failure::bad("frame is not a JSON object"), None));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= limits::MAX_MESSAGE_ID_CHARS => Some(s),
        Some(Value::String(_)) => return Err((Failure::bad("id is longer than 64 characters"), None)),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err((Failure::bad("id must be a string"), None)),
    };
    let kind = match obj.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err((Failure::bad("type must be a string"), id)),
        None => return Err((Failure::bad("type is required"), id)),
    };
    let payload = match obj.remove("payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err((Failure::bad("payload must be an object"), id)),
    };
    Ok(Frame { kind, id, payload })
}

/// `client_id`: a string of 1–64 characters, or an integer taken as its decimal string.
pub fn parse_client_id(v: &Value) -> Result<String, Failure> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return Err(Failure::bad("client_id must be a string or an integer")),
    };
    let n = s.chars().count();
    if n == 0 || n > limits::MAX_CLIENT_ID_CHARS {
        return Err(Failure::bad("client_id must have 1 to 64 characters"));
    }
    Ok(s)
}

/// Document ids: `^[A-Za-z0-9_.:@-]{1,256}$`, except `.` and `..` (path segments that URL
/// normalisation would swallow).
pub fn valid_document_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 256
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

/// The kind of a document, from its id prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Text,
    Canvas,
    Engagement,
    /// `ydoc:` documents: one Yjs document spoken in the y-websocket protocol (§7 [1.2]).
    Yjs,
}

impl DocKind {
    pub fn of(document_id: &str) -> DocKind {
        if document_id.starts_with("ydoc:") {
            DocKind::Yjs
        } else if document_id.starts_with("post:") {
            DocKind::Engagement
        } else if document_id.starts_with("canvas:") {
            DocKind::Canvas
        } else {
            DocKind::Text
        }
    }
    /// A `ydoc:` id (its sockets speak binary y-websocket frames).
    pub fn is_yjs(document_id: &str) -> bool {
        DocKind::of(document_id) == DocKind::Yjs
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Text => "text",
            DocKind::Canvas => "canvas",
            DocKind::Engagement => "engagement",
            DocKind::Yjs => "yjs",
        }
    }
}

/// Reads an optional unsigned integer field.
pub fn opt_u64(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, Failure> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Failure::bad(format!("{key} must be a non-negative integer"))),
    }
}

/// Reads an optional string field.
pub fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Failure> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::bad(format!("{key} must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_never_carries_its_detail_to_the_client() {
        let f = Failure::new(Code::Internal, "storage read failed: SQLITE_BUSY in table ops_log");
        let frame = Outgoing::error(&f, Some("m1".into()), None).into_frame("f1", 1);
        assert!(frame.contains("\"internal error\"") && !frame.contains("SQLITE"), "{frame}");
        let bad = Outgoing::error(&Failure::bad("seq must be an integer"), None, None).into_frame("f2", 1);
        assert!(bad.contains("seq must be an integer"), "other codes keep their message: {bad}");
    }
}
