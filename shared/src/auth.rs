//! Bearer-token authentication (HS256 JWT) and roles.
//!
//! Claims: `sub` (the user; for agents, their `agent_id`), `tenant_id`, `role`
//! (`admin` | `supervisor` | `agent`), `exp`. A token that is missing, expired, tampered
//! or unsigned (`alg: none`) is a 401; a valid token used outside its role or tenant is a 403.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::TenantId;
use crate::state::AppState;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages departments and everything else in the tenant.
    Admin,
    /// Watches and steers calls, agents and queues.
    Supervisor,
    /// Takes transferred calls; may change only their own status.
    Agent,
}

impl Role {
    /// The role's name as in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "supervisor" => Ok(Self::Supervisor),
            "agent" => Ok(Self::Agent),
            other => Err(format!(
                "unknown role {other:?} (admin, supervisor or agent)"
            )),
        }
    }
}

/// The claims we issue and accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's organisation.
    pub tenant_id: String,
    /// The user's role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// Signs and verifies tokens with the configured HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(HS256)")
    }
}

impl JwtKeys {
    /// Keys for `secret`; only HS256 is accepted, `exp` is required, 30 s of clock skew.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Verifies a token and returns the user it names.
    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        "the token's signature is invalid"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        "the token must be signed with HS256"
                    }
                    _ => "the token is malformed",
                };
                ApiError::Unauthorized(why.to_owned())
            })?;
        let claims = data.claims;
        let tenant = TenantId::parse(&claims.tenant_id)
            .map_err(|_| ApiError::Unauthorized("the token's tenant_id is malformed".into()))?;
        if claims.sub.is_empty() || claims.sub.len() > 128 {
            return Err(ApiError::Unauthorized(
                "the token's sub is malformed".into(),
            ));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            tenant,
            role: claims.role,
        })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's tenant: every read and write is scoped to it.
    pub tenant: TenantId,
    /// The token's role.
    pub role: Role,
}

impl AuthUser {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "this action needs the role {}; your role is {}",
                names.join(" or "),
                self.role
            )))
        }
    }
}

/// The header that, when sent, must name the token's tenant.
pub const TENANT_HEADER: &str = "x-tenant-id";

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, state)
    }
}

/// The caller named by `headers` (`Authorization: Bearer`, optional matching `X-Tenant-ID`).
pub fn authenticate(headers: &http::HeaderMap, state: &AppState) -> Result<AuthUser, ApiError> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("an Authorization: Bearer token is required".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is malformed".into()))?;
    let token = match header.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => {
            return Err(ApiError::Unauthorized(
                "an Authorization: Bearer token is required".into(),
            ));
        }
    };
    let user = state.jwt.verify(token)?;
    if let Some(sent) = headers.get(TENANT_HEADER)
        && sent.as_bytes() != user.tenant.as_str().as_bytes()
    {
        return Err(ApiError::Forbidden(
            "the X-Tenant-ID header does not match the token's tenant".into(),
        ));
    }
    tracing::Span::current().record("tenant", user.tenant.as_str());
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(exp_offset: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            tenant_id: "acme".into(),
            role: Role::Admin,
            exp: time::OffsetDateTime::now_utc().unix_timestamp() + exp_offset,
            iat: None,
        }
    }

    #[test]
    fn a_signed_token_round_trips() {
        let keys = JwtKeys::new(SECRET);
        let user = keys.verify(&keys.issue(&claims(600)).unwrap()).unwrap();
        assert_eq!(user.tenant.as_str(), "acme");
        assert_eq!(user.role, Role::Admin);
    }

    #[test]
    fn expired_tampered_foreign_and_unsigned_tokens_are_refused() {
        let keys = JwtKeys::new(SECRET);
        let expired = keys.issue(&claims(-3600)).unwrap();
        assert!(
            matches!(keys.verify(&expired), Err(ApiError::Unauthorized(m)) if m.contains("expired"))
        );

        let token = keys.issue(&claims(600)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = serde_json::json!({"sub":"u1","tenant_id":"other","role":"admin","exp":parts.len() as i64 + 4_000_000_000i64});
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(keys.verify(&parts.join(".")).is_err());

        let other = JwtKeys::new(b"another-secret-another-secret-000");
        assert!(keys.verify(&other.issue(&claims(600)).unwrap()).is_err());

        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"sub":"u1","tenant_id":"acme","role":"admin","exp":4_000_000_000i64}).to_string(),
        );
        assert!(keys.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn roles_are_enforced() {
        let user = AuthUser {
            user_id: "a".into(),
            tenant: TenantId::parse("t").unwrap(),
            role: Role::Agent,
        };
        assert!(matches!(
            user.require(&[Role::Admin]),
            Err(ApiError::Forbidden(_))
        ));
        assert!(user.require(&[Role::Agent, Role::Admin]).is_ok());
    }
}

/// A set of roles allowed by an [`Authorized`] extractor.
pub trait RoleSet: Send + Sync {
    /// The allowed roles.
    const ROLES: &'static [Role];
}

/// Only admins.
#[derive(Debug)]
pub struct Admins;
impl RoleSet for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admins and supervisors.
#[derive(Debug)]
pub struct Managers;
impl RoleSet for Managers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Supervisor];
}

/// An authenticated caller whose role is in `R`; checked before the body is read, so a
/// caller without the role gets 403 whatever they sent.
#[derive(Debug)]
pub struct Authorized<R: RoleSet>(pub AuthUser, pub std::marker::PhantomData<R>);

impl<R: RoleSet> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(R::ROLES)?;
        Ok(Self(user, std::marker::PhantomData))
    }
}
