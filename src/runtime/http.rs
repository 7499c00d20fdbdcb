//! HTTP plumbing shared by the Worker's routes and the Durable Objects: the §4 error shape and
//! JSON responses.

use serde_json::{json, Value};
use worker::{Headers, Response, Result};

use crate::protocol::Failure;

/// An API error: status, machine code, message and optional details.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, code: code.to_string(), message: message.into(), details: None }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(401, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "forbidden", message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "not_found", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "internal", message)
    }

    /// The error an object answered with (`{"error":{code,message,details}}` and its status).
    pub fn from_answer(status: u16, text: &str) -> Self {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let e = &body["error"];
        match (e["code"].as_str(), e["message"].as_str()) {
            (Some(code), Some(message)) => {
                let err = ApiError::new(status, code, message);
                if e["details"].is_null() { err } else { err.with_details(e["details"].clone()) }
            }
            _ => ApiError::new(if status >= 400 { status } else { 500 }, "internal", format!("unexpected answer {status}: {text}")),
        }
    }

    pub fn body(&self) -> Value {
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.details {
            err["details"] = d.clone();
        }
        json!({ "error": err })
    }

    pub fn into_response(self) -> Result<Response> {
        json_response(self.status, &self.body())
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        ApiError::new(f.code.http_status(), f.code.as_str(), f.message)
    }
}

impl From<crate::runtime::sql::SqlError> for ApiError {
    fn from(e: crate::runtime::sql::SqlError) -> Self {
        ApiError::internal(format!("storage: {e}"))
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}


/// A JSON response from JSON text serialised earlier.
pub fn json_text_response(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}

pub fn json_response(status: u16, body: &Value) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body.to_string())?.with_status(status).with_headers(headers))
}

pub type ApiResult = std::result::Result<Response, ApiError>;
