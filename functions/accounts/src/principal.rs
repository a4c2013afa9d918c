//! The signed-in user of an accounts route: a user's access token (API keys cannot manage
//! accounts), with the shared access table applied like on every other route. Unlike other
//! functions, the accounts function does not take the token's word for the role: it reads
//! the user (still active, same tenant, its current role) and the session (not ended, not
//! older than the last password change), so a demoted or removed admin, or a signed-out
//! session, cannot manage accounts with a token that has not expired yet.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use vocelio_shared::auth::AuthUser;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, AppState, Role};

/// The caller: who they are as every function sees them, their user account as stored
/// now, and the session their token came from.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller with their current role and tenant.
    pub user: AuthUser,
    /// The user account (`usr_…`).
    pub account_id: String,
    /// The user as stored now.
    pub account: crate::store::User,
    /// The sign-in session of the token.
    pub session_id: Option<String>,
    /// When that session signed in (epoch seconds).
    pub signed_in_at: i64,
    /// The client address of this request.
    pub client_ip: String,
}

impl Principal {
    /// 403 unless the caller is an admin.
    pub fn admin(&self) -> Result<(), ApiError> {
        self.user.require(&[Role::Admin])
    }

    /// The caller's tenant id.
    pub fn tenant(&self) -> &str {
        self.user.tenant.as_str()
    }

    /// 404 unless `org_id` is the caller's organisation (another's is never confirmed).
    pub fn own_org(&self, org_id: &str) -> Result<(), ApiError> {
        if org_id == self.tenant() {
            Ok(())
        } else {
            Err(ApiError::not_found("organization"))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized("an Authorization: Bearer token is required".into())
        })?;
        if vocelio_shared::apikeys::looks_like_api_key(token)
            || parts
                .headers
                .contains_key(vocelio_shared::auth::API_KEY_HEADER)
        {
            return Err(ApiError::Refused {
                code: "insufficient_scope",
                message: "API keys cannot call this route; sign in as a user".into(),
            });
        }
        let verified = state.jwt.verify(token).await?;
        let tenant = TenantId::parse(&verified.tenant_id)
            .map_err(|_| ApiError::Unauthorized("the token's tenant_id is malformed".into()))?;
        vocelio_shared::auth::check_tenant_header(&parts.headers, &tenant)?;
        let gone = || ApiError::Unauthorized("this account or session no longer exists".into());
        let account = crate::store::user(state, &verified.account_id)
            .await?
            .filter(|u| u.tenant_id == tenant.as_str() && u.status == "active")
            .ok_or_else(gone)?;
        let session_id = verified.session_id.ok_or_else(gone)?;
        let session = crate::store::get(state, crate::store::session_pk(&session_id), "SESSION")
            .await?
            .map(vocelio_shared::dynamo::from_record::<crate::store::Session>)
            .transpose()?
            .filter(|s| {
                s.revoked_at.is_none()
                    && s.user_id == account.id
                    && s.credential_version == account.credential_version
            })
            .ok_or_else(gone)?;
        let signed_in_at = time::OffsetDateTime::parse(
            &session.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(0, |t| t.unix_timestamp());
        let user = AuthUser {
            user_id: account.subject().to_owned(),
            tenant,
            role: account.role,
            scopes: None,
        };
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
        vocelio_shared::access::check(&user, &parts.method, &route)?;
        tracing::Span::current().record("tenant", user.tenant.as_str());
        Ok(Self {
            user,
            account_id: account.id.clone(),
            account,
            session_id: Some(session_id),
            signed_in_at,
            client_ip: client_address(parts),
        })
    }
}

pub use vocelio_shared::auth::bearer;

/// The client address: API Gateway's source IP on Lambda, the socket's peer locally.
pub fn client_address(parts: &Parts) -> String {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        parts
            .extensions
            .get::<lambda_http::request::RequestContext>()
        && let Some(ip) = ctx.http.source_ip.as_deref()
    {
        return ip.to_owned();
    }
    if let Some(axum::extract::ConnectInfo(addr)) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return addr.ip().to_string();
    }
    "unknown".to_owned()
}

/// Where a request comes from: its client address and user agent.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Client address.
    pub ip: String,
    /// `User-Agent`, cut to 200 characters.
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            ip: client_address(parts),
            user_agent: parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect()),
        })
    }
}
