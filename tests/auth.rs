//! Token verification and grant resolution (§2).

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sidechain_edge::auth::{bearer_token, verify, Access, AuthConfig};

const NOW: u64 = 1_800_000_000;

fn config() -> AuthConfig {
    AuthConfig { secret: "s3cret".into(), issuer: None, audience: None }
}

fn sign(claims: Value, secret: &str) -> String {
    sidechain_edge::auth::install_crypto();
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// A correctly signed HS512 token, made by hand: the service links HS256 only.
fn hs512(claims: Value, secret: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let signing_input = format!("{}.{}", b64(json!({"alg": "HS512", "typ": "JWT"}).to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

#[test]
fn a_valid_token_gives_the_identity() {
    let t = sign(json!({"sub": "alice", "exp": NOW + 60, "name": "Alice"}), "s3cret");
    let id = verify(&t, &config(), NOW).unwrap();
    assert_eq!((id.user_id.as_str(), id.name.as_str(), id.is_service), ("alice", "Alice", false));
}

#[test]
fn bad_tokens_are_refused() {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let cases = [
        ("expired", sign(json!({"sub": "a", "exp": NOW}), "s3cret")),
        ("wrong secret", sign(json!({"sub": "a", "exp": NOW + 60}), "other")),
        ("no exp", sign(json!({"sub": "a"}), "s3cret")),
        ("no sub", sign(json!({"exp": NOW + 60}), "s3cret")),
        ("empty sub", sign(json!({"sub": "", "exp": NOW + 60}), "s3cret")),
        ("alg none", format!("{}.{}.", b64(json!({"alg": "none", "typ": "JWT"})), b64(json!({"sub": "a", "exp": NOW + 60})))),
        ("HS512", hs512(json!({"sub": "a", "exp": NOW + 60}), "s3cret")),
        ("bad grant", sign(json!({"sub": "a", "exp": NOW + 60, "docs": {"x": "admin"}}), "s3cret")),
        ("garbage", "a.b.c".into()),
    ];
    for (name, t) in cases {
        assert!(verify(&t, &config(), NOW).is_err(), "{name} was accepted");
    }
    let no_secret = AuthConfig { secret: String::new(), ..config() };
    assert!(verify(&sign(json!({"sub": "a", "exp": NOW + 60}), ""), &no_secret, NOW).is_err());
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let cfg = AuthConfig { issuer: Some("sidechain".into()), audience: Some("edge".into()), ..config() };
    let good = sign(json!({"sub": "a", "exp": NOW + 60, "iss": "sidechain", "aud": "edge"}), "s3cret");
    assert!(verify(&good, &cfg, NOW).is_ok());
    for claims in [json!({"sub": "a", "exp": NOW + 60, "iss": "evil", "aud": "edge"}), json!({"sub": "a", "exp": NOW + 60})] {
        assert!(verify(&sign(claims, "s3cret"), &cfg, NOW).is_err());
    }
}

#[test]
fn the_most_specific_grant_wins() {
    let t = sign(
        json!({"sub": "a", "exp": NOW + 60, "docs": {"channel:*": "read", "channel:abc:*": "write", "channel:abc:locked": "read"}}),
        "s3cret",
    );
    let id = verify(&t, &config(), NOW).unwrap();
    assert_eq!(id.access("channel:xyz:description"), Some(Access::Read));
    assert_eq!(id.access("channel:abc:description"), Some(Access::Write));
    assert_eq!(id.access("channel:abc:locked"), Some(Access::Read));
    assert_eq!(id.access("canvas:1"), None);
    assert_eq!(id.access("post:1"), Some(Access::Write), "posts need no grant");
    let svc = verify(&sign(json!({"sub": "svc", "exp": NOW + 60, "role": "service"}), "s3cret"), &config(), NOW).unwrap();
    assert_eq!(svc.access("canvas:1"), Some(Access::Write));
}

#[test]
fn bearer_header_beats_query_token() {
    assert_eq!(bearer_token(Some("Bearer abc"), Some("q")), Some("abc"));
    assert_eq!(bearer_token(Some("bearer  abc "), None), Some("abc"));
    assert_eq!(bearer_token(Some("Basic xyz"), Some("q")), Some("q"));
    assert_eq!(bearer_token(None, Some("")), None);
}
