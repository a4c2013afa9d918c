//! Access tokens: EdDSA (Ed25519) JWTs signed only by the accounts function and verified
//! everywhere else with its public keys.
//!
//! Header `{"alg":"EdDSA","typ":"JWT","kid":...}`; claims `iss`, `aud`, `sub`, `tenant_id`,
//! `role`, `exp`, `iat`, `jti` (+ `sid`, the session that issued it). Only EdDSA is accepted:
//! an HS256 token signed with the old shared secret, an unsigned one or one signed by an
//! unknown key is a 401. A token older than the configured maximum lifetime is refused
//! whatever its `exp`. Keys rotate by `kid`: a new key signs while the old one still
//! verifies until it leaves the key set.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Role;
use crate::error::ApiError;

/// The prefix of key ids made for a developer's machine; refused on Lambda.
pub const LOCAL_KID_PREFIX: &str = "local-";

/// Whether this process runs on AWS Lambda.
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the accounts function's configured name.
    pub iss: String,
    /// Audience: the API.
    pub aud: String,
    /// The principal: a user id (for role `agent`, the agent's id).
    pub sub: String,
    /// The principal's organisation.
    pub tenant_id: String,
    /// The principal's role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// This token's unique id.
    pub jti: String,
    /// The sign-in session (refresh-token family) that issued the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user account, when `sub` names the agent record the user is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`.
    pub subject: String,
    /// `tenant_id`.
    pub tenant_id: String,
    /// `role`.
    pub role: Role,
    /// `sid`, when the token came from a sign-in session.
    pub session_id: Option<String>,
    /// The user account: `uid`, else `sub`.
    pub account_id: String,
}

/// Why a key set cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The private signing keys (only the accounts function and the local stack hold them):
/// JSON `{"active": kid, "keys": [{"kid", "pkcs8": base64 DER}]}`.
#[derive(Clone)]
pub struct SigningKeys {
    active: String,
    keys: Vec<SigningKey>,
}

#[derive(Clone)]
struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        write!(f, "SigningKeys(active {}, kids {kids:?})", self.active)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    active: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    pkcs8: String,
}

impl SigningKeys {
    /// A new key set with one fresh Ed25519 key named `kid`.
    pub fn generate(kid: &str) -> Result<Self, KeyError> {
        let key = SigningKey::generate(kid)?;
        Ok(Self {
            active: kid.to_owned(),
            keys: vec![key],
        })
    }

    /// Reads the JSON form.
    pub fn from_json(raw: &str) -> Result<Self, KeyError> {
        let stored: StoredKeys = serde_json::from_str(raw)
            .map_err(|e| KeyError(format!("the signing key set is not valid JSON: {e}")))?;
        let mut keys = Vec::with_capacity(stored.keys.len());
        for key in stored.keys {
            let der = STANDARD
                .decode(key.pkcs8.trim())
                .map_err(|_| KeyError(format!("key {} is not base64", key.kid)))?;
            keys.push(SigningKey::from_pkcs8(&key.kid, der)?);
        }
        if !keys.iter().any(|k| k.kid == stored.active) {
            return Err(KeyError(format!(
                "the active key {} is not in the key set",
                stored.active
            )));
        }
        Ok(Self {
            active: stored.active,
            keys,
        })
    }

    /// The JSON form (private: write it only where secrets live).
    pub fn to_json(&self) -> String {
        let stored = StoredKeys {
            active: self.active.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| StoredKey {
                    kid: k.kid.clone(),
                    pkcs8: STANDARD.encode(&k.pkcs8),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&stored).unwrap_or_default()
    }

    /// Adds a fresh key and makes it the signing one; the others keep verifying.
    pub fn rotate(&mut self, kid: &str) -> Result<(), KeyError> {
        self.keys.push(SigningKey::generate(kid)?);
        self.active = kid.to_owned();
        Ok(())
    }

    /// Removes a retired key: tokens it signed stop verifying once verifiers refresh.
    pub fn retire(&mut self, kid: &str) -> Result<(), KeyError> {
        if kid == self.active {
            return Err(KeyError("the active key cannot be retired".into()));
        }
        self.keys.retain(|k| k.kid != kid);
        Ok(())
    }

    /// The id of the signing key.
    pub fn active_kid(&self) -> &str {
        &self.active
    }

    /// Whether any key is a developer's local key (refused on Lambda).
    pub fn has_local_keys(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.kid.starts_with(LOCAL_KID_PREFIX))
    }

    /// The public JWKS (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(&k.public),
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == self.active)
            .ok_or_else(|| ApiError::internal("the active signing key is missing"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(ApiError::internal)
    }
}

impl SigningKey {
    fn generate(kid: &str) -> Result<Self, KeyError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| KeyError("could not generate an Ed25519 key".into()))?;
        Self::from_pkcs8(kid, document.as_ref().to_vec())
    }

    fn from_pkcs8(kid: &str, pkcs8: Vec<u8>) -> Result<Self, KeyError> {
        if kid.is_empty() || kid.len() > 64 {
            return Err(KeyError("a key id must be 1-64 characters".into()));
        }
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| KeyError(format!("key {kid} is not an Ed25519 PKCS#8 key")))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(&pkcs8),
            pkcs8,
            public,
        })
    }
}

/// Verifies access tokens with the accounts function's public keys: those configured
/// (`JWT_PUBLIC_KEYS`, a JWKS) and, when `JWKS_URL` is set, those it publishes — fetched
/// when a token names an unknown key (at most once per `refetch_floor`) and refreshed
/// after `cache_for`, so a retired key stops verifying.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    max_lifetime_seconds: i64,
    configured: HashMap<String, DecodingKey>,
    jwks_url: Option<String>,
    fetched: RwLock<Fetched>,
    cache_for: Duration,
    refetch_floor: Duration,
    http: Option<reqwest::Client>,
    fetch_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Fetched {
    keys: HashMap<String, DecodingKey>,
    /// The last successful fetch.
    at: Option<Instant>,
    /// The last attempt, successful or not.
    tried: Option<Instant>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "configured_kids",
                &self.configured.keys().collect::<Vec<_>>(),
            )
            .field("jwks_url", &self.jwks_url)
            .finish()
    }
}

/// What a verifier checks and where it finds keys.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// A token older than this (by `iat`) is refused whatever its `exp`.
    pub max_lifetime_seconds: i64,
    /// A JWKS document of trusted public keys.
    pub public_keys: Option<String>,
    /// Where to fetch the JWKS.
    pub jwks_url: Option<String>,
    /// How long fetched keys are trusted before a refetch.
    pub cache_for: Duration,
}

impl TokenVerifier {
    /// A verifier from its settings; fails when the JWKS is malformed, names no usable key
    /// while no URL is set, or holds a local key on Lambda.
    pub fn new(settings: VerifierSettings) -> Result<Self, KeyError> {
        let configured = match &settings.public_keys {
            Some(raw) => parse_jwks(raw)?,
            None => HashMap::new(),
        };
        if configured.is_empty() && settings.jwks_url.is_none() {
            return Err(KeyError(
                "no public key to verify tokens with (set JWT_PUBLIC_KEYS or JWKS_URL)".into(),
            ));
        }
        if on_lambda() && configured.keys().any(|k| k.starts_with(LOCAL_KID_PREFIX)) {
            return Err(KeyError(
                "a local development key cannot verify tokens on Lambda".into(),
            ));
        }
        let http = settings.jwks_url.as_ref().map(|_| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default()
        });
        Ok(Self {
            issuer: settings.issuer,
            audience: settings.audience,
            max_lifetime_seconds: settings.max_lifetime_seconds,
            configured,
            jwks_url: settings.jwks_url,
            fetched: RwLock::new(Fetched::default()),
            cache_for: settings.cache_for,
            refetch_floor: Duration::from_secs(10).min(settings.cache_for),
            http,
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The expected audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a token: EdDSA by a known key, `iss`, `aud`, `exp` (30 s leeway), `iat` not in
    /// the future and within the maximum lifetime.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthorized("the token is malformed".into()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(ApiError::Unauthorized(
                "the token must be signed with EdDSA by the accounts service".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| ApiError::Unauthorized("the token names no signing key".into()))?;
        let key = self.key(&kid).await.ok_or_else(|| {
            ApiError::Unauthorized("the token is signed by an unknown key".into())
        })?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "the token's signature is invalid",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token is not meant for this API",
                _ => "the token is malformed",
            };
            ApiError::Unauthorized(why.to_owned())
        })?;
        let claims = data.claims;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if claims.iat > now + 30 {
            return Err(ApiError::Unauthorized(
                "the token is issued in the future".into(),
            ));
        }
        if now - claims.iat > self.max_lifetime_seconds
            || claims.exp - claims.iat > self.max_lifetime_seconds
        {
            return Err(ApiError::Unauthorized(
                "the token is older than the longest lifetime a token may have".into(),
            ));
        }
        Ok(VerifiedToken {
            account_id: claims.uid.unwrap_or_else(|| claims.sub.clone()),
            subject: claims.sub,
            tenant_id: claims.tenant_id,
            role: claims.role,
            session_id: claims.sid,
        })
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.configured.get(kid) {
            return Some(key.clone());
        }
        let url = self.jwks_url.as_ref()?;
        let (cached, fresh) = {
            let fetched = self.fetched.read().ok()?;
            (
                fetched.keys.get(kid).cloned(),
                fetched.at.is_some_and(|at| at.elapsed() < self.cache_for),
            )
        };
        if let Some(key) = cached
            && fresh
        {
            return Some(key);
        }
        {
            let _one_fetcher = self.fetch_lock.lock().await;
            // Another request may have fetched (or tried) while this one waited; failures
            // are retried at most every `refetch_floor`.
            let due = self
                .fetched
                .read()
                .ok()
                .is_some_and(|f| f.tried.is_none_or(|t| t.elapsed() >= self.refetch_floor));
            if due {
                self.refetch(url).await;
            }
        }
        let fetched = self.fetched.read().ok()?;
        // While the JWKS cannot be fetched, keys fetched before keep verifying only as long
        // as a token may live, so a retired key does not verify forever.
        let hard_limit = Duration::from_secs(self.max_lifetime_seconds.max(0) as u64);
        if fetched
            .at
            .is_none_or(|at| at.elapsed() >= hard_limit.max(self.cache_for))
        {
            return None;
        }
        fetched.keys.get(kid).cloned()
    }

    async fn refetch(&self, url: &str) {
        let Some(http) = &self.http else { return };
        let body = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            Ok(response) => {
                tracing::warn!(status = %response.status(), "the JWKS could not be fetched");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "the JWKS could not be fetched");
                None
            }
        };
        let parsed = body.as_deref().map(parse_jwks);
        if let Ok(mut fetched) = self.fetched.write() {
            fetched.tried = Some(Instant::now());
            match parsed {
                Some(Ok(keys)) => {
                    if on_lambda() && keys.keys().any(|k| k.starts_with(LOCAL_KID_PREFIX)) {
                        tracing::error!("the JWKS names a local development key; ignored");
                        fetched.keys = HashMap::new();
                    } else {
                        fetched.keys = keys;
                    }
                    fetched.at = Some(Instant::now());
                }
                Some(Err(err)) => tracing::warn!(error = %err, "the JWKS is malformed"),
                None => {}
            }
        }
    }
}

/// Reads a JWKS document into decoding keys by `kid` (Ed25519 keys only).
pub fn parse_jwks(raw: &str) -> Result<HashMap<String, DecodingKey>, KeyError> {
    let doc: Value =
        serde_json::from_str(raw).map_err(|e| KeyError(format!("the JWKS is not JSON: {e}")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError("the JWKS has no keys array".into()))?;
    let mut out = HashMap::new();
    for key in keys {
        let (Some(kid), Some("OKP"), Some("Ed25519"), Some(x)) = (
            key.get("kid").and_then(Value::as_str),
            key.get("kty").and_then(Value::as_str),
            key.get("crv").and_then(Value::as_str),
            key.get("x").and_then(Value::as_str),
        ) else {
            continue;
        };
        let decoding = DecodingKey::from_ed_components(x)
            .map_err(|_| KeyError(format!("key {kid} has a malformed x")))?;
        out.insert(kid.to_owned(), decoding);
    }
    Ok(out)
}

/// A signer and a verifier that trust each other: the local stack and tests.
pub fn pair_for_local(
    keys: &SigningKeys,
    issuer: &str,
    audience: &str,
    max_lifetime_seconds: i64,
) -> Result<Arc<TokenVerifier>, KeyError> {
    TokenVerifier::new(VerifierSettings {
        issuer: issuer.to_owned(),
        audience: audience.to_owned(),
        max_lifetime_seconds,
        public_keys: Some(keys.jwks().to_string()),
        jwks_url: None,
        cache_for: Duration::from_secs(300),
    })
    .map(Arc::new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims(iat_offset: i64, ttl: i64) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            iss: "vocelio".into(),
            aud: "vocelio-api".into(),
            sub: "usr_1".into(),
            tenant_id: "acme".into(),
            role: Role::Admin,
            iat: now + iat_offset,
            exp: now + iat_offset + ttl,
            jti: "j1".into(),
            sid: None,
            uid: None,
        }
    }

    fn verifier(keys: &SigningKeys) -> TokenVerifier {
        TokenVerifier::new(VerifierSettings {
            issuer: "vocelio".into(),
            audience: "vocelio-api".into(),
            max_lifetime_seconds: 86_400,
            public_keys: Some(keys.jwks().to_string()),
            jwks_url: None,
            cache_for: Duration::from_secs(60),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn signed_tokens_verify_and_foreign_ones_do_not() {
        let keys = SigningKeys::generate("k1").unwrap();
        let v = verifier(&keys);
        let ok = v
            .verify(&keys.sign(&claims(0, 900)).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.tenant_id, "acme");
        let other = SigningKeys::generate("k1").unwrap();
        assert!(
            v.verify(&other.sign(&claims(0, 900)).unwrap())
                .await
                .is_err()
        );
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(0, 900),
            &EncodingKey::from_secret(b"vocelio-local-dev-secret-change-me-0123456789"),
        )
        .unwrap();
        assert!(v.verify(&hs).await.is_err());
        let mut wrong_aud = claims(0, 900);
        wrong_aud.aud = "someone-else".into();
        assert!(v.verify(&keys.sign(&wrong_aud).unwrap()).await.is_err());
        // Issued two days ago with an expiry far away: older than the longest lifetime.
        assert!(
            v.verify(&keys.sign(&claims(-172_800, 400_000)).unwrap())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_rotated_key_set_verifies_old_and_new_until_retired() {
        let mut keys = SigningKeys::generate("k1").unwrap();
        let old = keys.sign(&claims(0, 900)).unwrap();
        keys.rotate("k2").unwrap();
        let new = keys.sign(&claims(0, 900)).unwrap();
        let round_trip = SigningKeys::from_json(&keys.to_json()).unwrap();
        assert_eq!(round_trip.active_kid(), "k2");
        let v = verifier(&round_trip);
        assert!(v.verify(&old).await.is_ok());
        assert!(v.verify(&new).await.is_ok());
        keys.retire("k1").unwrap();
        let v = verifier(&keys);
        assert!(v.verify(&old).await.is_err());
        assert!(v.verify(&new).await.is_ok());
    }
}
