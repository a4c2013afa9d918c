//! Authentication and roles: a bearer access token (an EdDSA JWT from the accounts
//! function, see [`crate::jwt`]) or an API key (`Authorization: Bearer voc_live_…` or
//! `X-API-Key`, see [`crate::apikeys`]).
//!
//! A credential that is missing, expired, tampered, unsigned, signed by an unknown key or
//! revoked is a 401; a valid one used outside its role, scope or tenant is a 403. The
//! access table ([`crate::access`]) is applied by the extractors, so every route of every
//! function enforces the viewer role and API-key scopes the same way.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::extract::MatchedPath;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::access::Scope;

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
    /// Reads everything in the tenant, changes nothing (but their own account).
    Viewer,
}

impl Role {
    /// The role's name as in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
            Self::Viewer => "viewer",
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
            "viewer" => Ok(Self::Viewer),
            other => Err(format!(
                "unknown role {other:?} (admin, supervisor, agent or viewer)"
            )),
        }
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
    /// An API key's scopes; `None` for a signed-in user.
    pub scopes: Option<std::sync::Arc<[Scope]>>,
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
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
        authorize(&parts.headers, &parts.method, &route, state).await
    }
}

/// The caller of `method` `route` named by `headers`, with the access table applied.
pub async fn authorize(
    headers: &http::HeaderMap,
    method: &http::Method,
    route: &str,
    state: &AppState,
) -> Result<AuthUser, ApiError> {
    let user = authenticate(headers, state).await?;
    crate::access::check(&user, method, route)?;
    Ok(user)
}

/// The caller named by `headers`: `Authorization: Bearer <token or API key>` or
/// `X-API-Key`, and an optional `X-Tenant-ID` that must name the same tenant (an empty one
/// counts as absent).
pub async fn authenticate(
    headers: &http::HeaderMap,
    state: &AppState,
) -> Result<AuthUser, ApiError> {
    if headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.to_str().is_err())
    {
        return Err(ApiError::Unauthorized(
            "the Authorization header is malformed".into(),
        ));
    }
    let credential = bearer(headers).map(str::to_owned);
    let api_key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let credential = credential
        .or_else(|| api_key.map(str::to_owned))
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "an Authorization: Bearer token (or an X-API-Key) is required".into(),
            )
        })?;
    let user = verify_credential(state, &credential).await?;
    check_tenant_header(headers, &user.tenant)?;
    tracing::Span::current().record("tenant", user.tenant.as_str());
    Ok(user)
}

/// The credential of `Authorization: Bearer <credential>`, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

/// 403 when an `X-Tenant-ID` header names another tenant than `tenant`; an empty or blank
/// one (some app screens always send `''`) counts as absent.
pub fn check_tenant_header(headers: &http::HeaderMap, tenant: &TenantId) -> Result<(), ApiError> {
    match headers
        .get(TENANT_HEADER)
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|v| !v.is_empty())
    {
        Some(sent) if sent != tenant.as_str().as_bytes() => Err(ApiError::Forbidden(
            "the X-Tenant-ID header does not match the token's tenant".into(),
        )),
        _ => Ok(()),
    }
}

/// The header that carries an API key when `Authorization` does not.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The caller named by a bare credential (an access token or an API key), as streams
/// receive it in `?token=`.
pub async fn verify_credential(state: &AppState, credential: &str) -> Result<AuthUser, ApiError> {
    if crate::apikeys::looks_like_api_key(credential) {
        return crate::apikeys::authenticate_key(state, credential).await;
    }
    let token = state.jwt.verify(credential).await?;
    let tenant = TenantId::parse(&token.tenant_id)
        .map_err(|_| ApiError::Unauthorized("the token's tenant_id is malformed".into()))?;
    if token.subject.is_empty() || token.subject.len() > 128 {
        return Err(ApiError::Unauthorized(
            "the token's sub is malformed".into(),
        ));
    }
    Ok(AuthUser {
        user_id: token.subject,
        tenant,
        role: token.role,
        scopes: None,
    })
}

/// A stream's caller (SSE, WebSocket) from its credential, with the access table applied
/// to the stream's `route` as a read.
pub async fn authorize_stream(
    state: &AppState,
    credential: &str,
    route: &str,
) -> Result<AuthUser, ApiError> {
    let user = verify_credential(state, credential).await?;
    crate::access::check(&user, &http::Method::GET, route)?;
    Ok(user)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_enforced() {
        let user = AuthUser {
            user_id: "a".into(),
            tenant: TenantId::parse("t").unwrap(),
            role: Role::Agent,
            scopes: None,
        };
        assert!(matches!(
            user.require(&[Role::Admin]),
            Err(ApiError::Forbidden(_))
        ));
        assert!(user.require(&[Role::Agent, Role::Admin]).is_ok());
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
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
