//! JWT authentication and document grants (§2). Pure: the caller passes the secret and the clock.

mod hmac;

pub use hmac::install as install_crypto;

use std::collections::BTreeMap;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::protocol::DocKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// What the server needs to know to check tokens.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub secret: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: serde_json::Value,
    exp: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    docs: Option<BTreeMap<String, String>>,
}

/// The caller, once the token checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub name: String,
    pub is_service: bool,
    /// The token's `exp` (seconds since the epoch): a socket lives no longer (§5.5 [1.2]).
    pub exp: u64,
    grants: Vec<(String, Access)>,
}

impl Identity {
    /// The access this identity has to a document: `post:` documents are open to every
    /// authenticated user, a service token may do everything, the rest need a grant.
    pub fn access(&self, document_id: &str) -> Option<Access> {
        if self.is_service || DocKind::of(document_id) == DocKind::Engagement {
            return Some(Access::Write);
        }
        self.granted(document_id)
    }

    /// What the token's own grants say of a document (service tokens: everything), ignoring
    /// that posts are open to all: registering as a post's owner needs this to be `write`.
    pub fn granted(&self, document_id: &str) -> Option<Access> {
        if self.is_service {
            return Some(Access::Write);
        }
        // The most specific pattern wins: an exact id beats any prefix, a longer prefix a shorter.
        let mut best: Option<(usize, bool, Access)> = None;
        for (pattern, access) in &self.grants {
            let candidate = match pattern.strip_suffix('*') {
                Some(prefix) if document_id.starts_with(prefix) => (prefix.len(), false, *access),
                None if pattern == document_id => (pattern.len(), true, *access),
                _ => continue,
            };
            let better = match best {
                None => true,
                Some((len, exact, _)) => (candidate.1, candidate.0) > (exact, len),
            };
            if better {
                best = Some(candidate);
            }
        }
        best.map(|(_, _, a)| a)
    }
}

/// Why a token was refused; every variant maps to HTTP 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError(pub String);

/// Verifies an HS256 token at time `now_secs`.
pub fn verify(token: &str, config: &AuthConfig, now_secs: u64) -> Result<Identity, AuthError> {
    if config.secret.is_empty() {
        return Err(AuthError("the server has no JWT secret configured".into()));
    }
    hmac::install();
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's clock, so it is testable and exact.
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &config.issuer {
        Some(iss) => {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        None => validation.iss = None,
    }
    match &config.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    let data = decode::<Claims>(token, &DecodingKey::from_secret(config.secret.as_bytes()), &validation)
        .map_err(|e| AuthError(format!("invalid token: {e}")))?;
    let claims = data.claims;
    if claims.exp <= now_secs {
        return Err(AuthError("token has expired".into()));
    }
    let user_id = match claims.sub {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 256 => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(AuthError("claim sub must be a non-empty string".into())),
    };
    let mut grants = Vec::new();
    for (pattern, access) in claims.docs.unwrap_or_default() {
        let access = match access.as_str() {
            "write" => Access::Write,
            "read" => Access::Read,
            other => return Err(AuthError(format!("grant {pattern:?} has unknown access {other:?}"))),
        };
        grants.push((pattern, access));
    }
    Ok(Identity {
        name: claims.name.unwrap_or_else(|| user_id.clone()),
        user_id,
        is_service: claims.role.as_deref() == Some("service"),
        exp: claims.exp,
        grants,
    })
}

/// The bearer token of a request: the `Authorization` header, else the `token` query parameter.
pub fn bearer_token<'a>(authorization: Option<&'a str>, query_token: Option<&'a str>) -> Option<&'a str> {
    if let Some(h) = authorization {
        // Byte-wise, so a multi-byte character anywhere cannot split a slice.
        let h = h.trim();
        if let (Some(scheme), Some(rest)) = (h.get(..7), h.get(7..)) {
            if scheme.eq_ignore_ascii_case("bearer ") && !rest.trim().is_empty() {
                return Some(rest.trim());
            }
        }
    }
    query_token.filter(|t| !t.is_empty())
}
