//! Sign-in sessions and the tokens they issue.
//!
//! A session is one family of refresh tokens. A refresh token is `vrt_<session>.<secret>`
//! (the secret is 256 random bits; only its SHA-256 is stored). Refreshing returns a new
//! access token and a new refresh token and retires the old one, in one conditional
//! write, so two refreshes of one token cannot both succeed. A retired token presented
//! again means it was copied: the whole session is revoked (unless it was rotated within
//! the reuse grace, which is two tabs refreshing at once). Sessions end when unused for
//! the idle lifetime.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use vocelio_shared::dynamo::{from_record, n, s, sdk_error};
use vocelio_shared::jwt::Claims;
use vocelio_shared::keys::{GSI1, GSI1PK, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, clock};

use crate::Accounts;
use crate::password::{random_token, sha256_hex};
use crate::principal::ClientInfo;
use crate::store::{self, Session, User, session_item, session_pk};

/// How many retired token digests a session remembers for reuse detection.
const REMEMBERED: usize = 50;

/// Tokens issued at sign-in or refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The access token (EdDSA JWT).
    pub access_token: String,
    /// The refresh token (opaque).
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The session.
    pub session_id: String,
}

impl Issued {
    /// The token part of sign-in answers.
    pub fn json(&self) -> Value {
        json!({
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        })
    }
}

fn refresh_token_for(session_id: &str) -> (String, String) {
    let secret = random_token("", 32);
    let token = format!("vrt_{session_id}.{secret}");
    let digest = sha256_hex(&token);
    (token, digest)
}

/// Signs an access token for `user` in `session_id`.
pub fn access_token(accounts: &Accounts, user: &User, session_id: &str) -> ApiResult<String> {
    let now = clock::now().unix_timestamp();
    let claims = Claims {
        iss: accounts.settings.issuer.clone(),
        aud: accounts.settings.audience.clone(),
        sub: user.subject().to_owned(),
        tenant_id: user.tenant_id.clone(),
        role: user.role,
        exp: now + accounts.settings.access_ttl_seconds,
        iat: now,
        jti: vocelio_shared::ids::new_id("jti"),
        sid: Some(session_id.to_owned()),
        uid: (user.subject() != user.id).then(|| user.id.clone()),
    };
    let keys = accounts
        .keys
        .read()
        .map_err(|_| ApiError::internal("the signing keys lock is poisoned"))?;
    keys.sign(&claims)
}

/// Starts a session for `user` and issues its first tokens.
pub async fn start(
    state: &AppState,
    accounts: &Accounts,
    user: &User,
    client: &ClientInfo,
) -> ApiResult<Issued> {
    let session_id = vocelio_shared::ids::new_id("ses");
    let (refresh_token, digest) = refresh_token_for(&session_id);
    let now = clock::now();
    let session = Session {
        id: session_id.clone(),
        user_id: user.id.clone(),
        tenant_id: user.tenant_id.clone(),
        current_hash: digest,
        previous: Vec::new(),
        created_at: clock::rfc3339(now),
        last_used_at: clock::rfc3339(now),
        expires_at: now.unix_timestamp() + accounts.settings.refresh_idle_seconds,
        revoked_at: None,
        revoked_reason: None,
        user_agent: client.user_agent.clone(),
        ip: Some(client.ip.clone()),
        credential_version: user.credential_version,
    };
    state
        .db
        .put_item()
        .table_name(state.table())
        .set_item(Some(session_item(&session)?))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(Issued {
        access_token: access_token(accounts, user, &session_id)?,
        refresh_token,
        expires_in: accounts.settings.access_ttl_seconds,
        session_id,
    })
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("the refresh token is not valid; sign in again".into())
}

/// The session a refresh token names, if the token has the right shape.
fn session_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("vrt_")?;
    let (session, secret) = rest.split_once('.')?;
    (vocelio_shared::ids::is_id("ses", session) && (20..=100).contains(&secret.len()))
        .then_some(session)
}

/// Exchanges a refresh token for new tokens (see the module's rules).
pub async fn refresh(state: &AppState, accounts: &Accounts, token: &str) -> ApiResult<Issued> {
    let session_id = session_of(token).ok_or_else(invalid)?;
    let item = store::get(state, session_pk(session_id), "SESSION")
        .await?
        .ok_or_else(invalid)?;
    let session: Session = from_record(item)?;
    let now = clock::now();
    if session.revoked_at.is_some() || session.expires_at <= now.unix_timestamp() {
        return Err(invalid());
    }
    let digest = sha256_hex(token);
    if digest != session.current_hash {
        if let Some((_, rotated_at)) = session.previous.iter().find(|(d, _)| *d == digest) {
            if now.unix_timestamp() - rotated_at < accounts.settings.refresh_reuse_grace_seconds {
                return Err(ApiError::Unauthorized(
                    "this refresh token was just exchanged; use the newer one".into(),
                ));
            }
            tracing::warn!(
                session = %session.id,
                user = %session.user_id,
                "a rotated refresh token was presented again; the session is revoked"
            );
            revoke(state, &session.id, "refresh_token_reused").await?;
            return Err(ApiError::Unauthorized(
                "this refresh token was already used; the session is revoked, sign in again".into(),
            ));
        }
        return Err(invalid());
    }
    let user = store::user(state, &session.user_id)
        .await?
        .filter(|u| u.status == "active")
        .ok_or_else(invalid)?;
    if user.credential_version != session.credential_version {
        // The password changed since this session began.
        revoke(state, &session.id, "password_changed").await?;
        return Err(invalid());
    }
    let (next_token, next_digest) = refresh_token_for(&session.id);
    let mut previous = session.previous.clone();
    previous.push((digest.clone(), now.unix_timestamp()));
    if previous.len() > REMEMBERED {
        previous.drain(..previous.len() - REMEMBERED);
    }
    let previous_value = serde_dynamo::to_attribute_value::<_, AttributeValue>(&previous)
        .map_err(ApiError::internal)?;
    let rotated = state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(session_pk(&session.id)))
        .key(SK, s("SESSION"))
        .update_expression(
            "SET current_hash = :next, previous = :previous, last_used_at = :now, expires_at = :expires",
        )
        .condition_expression("current_hash = :seen AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":next", s(next_digest))
        .expression_attribute_values(":previous", previous_value)
        .expression_attribute_values(":now", s(clock::rfc3339(now)))
        .expression_attribute_values(
            ":expires",
            n(now.unix_timestamp() + accounts.settings.refresh_idle_seconds),
        )
        .expression_attribute_values(":seen", s(digest))
        .send()
        .await;
    match rotated {
        Ok(_) => {}
        Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => {
            // Another refresh of the same token won the race.
            return Err(ApiError::Unauthorized(
                "this refresh token was just exchanged; use the newer one".into(),
            ));
        }
        Err(err) => return Err(sdk_error(err)),
    }
    Ok(Issued {
        access_token: access_token(accounts, &user, &session.id)?,
        refresh_token: next_token,
        expires_in: accounts.settings.access_ttl_seconds,
        session_id: session.id,
    })
}

/// The session of a refresh token, when it is one of the caller's (for logout).
pub async fn session_of_token(state: &AppState, token: &str) -> ApiResult<Option<Session>> {
    let Some(session_id) = session_of(token) else {
        return Ok(None);
    };
    let Some(item) = store::get(state, session_pk(session_id), "SESSION").await? else {
        return Ok(None);
    };
    let session: Session = from_record(item)?;
    let digest = sha256_hex(token);
    let known =
        session.current_hash == digest || session.previous.iter().any(|(d, _)| *d == digest);
    Ok(known.then_some(session))
}

/// Revokes a session (idempotent).
pub async fn revoke(state: &AppState, session_id: &str, reason: &str) -> ApiResult<()> {
    let result = state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(session_pk(session_id)))
        .key(SK, s("SESSION"))
        .update_expression("SET revoked_at = :now, revoked_reason = :why")
        .condition_expression("attribute_exists(PK) AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":now", s(clock::rfc3339(clock::now())))
        .expression_attribute_values(":why", s(reason))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => Ok(()),
        Err(err) => Err(sdk_error(err)),
    }
}

/// Every session a user ever started that is still stored, newest first.
pub async fn of_user(state: &AppState, user_id: &str) -> ApiResult<Vec<Session>> {
    let query = state
        .db
        .query()
        .table_name(state.table())
        .index_name(GSI1)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", GSI1PK)
        .expression_attribute_values(":pk", s(store::sessions_gsi(user_id)))
        .scan_index_forward(false);
    vocelio_shared::dynamo::query_all(query)
        .await?
        .into_iter()
        .map(from_record::<Session>)
        .collect()
}

/// Re-stamps a session with the user's new credential version (the session that changed
/// the password stays signed in).
pub async fn restamp(state: &AppState, session_id: &str, version: u64) -> ApiResult<()> {
    state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(session_pk(session_id)))
        .key(SK, s("SESSION"))
        .update_expression("SET credential_version = :v")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":v", n(version))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

/// Revokes every live session of a user but `keep`.
pub async fn revoke_all(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> ApiResult<usize> {
    let now = clock::now().unix_timestamp();
    let mut revoked = 0;
    for session in of_user(state, user_id).await? {
        if session.revoked_at.is_none()
            && session.expires_at > now
            && Some(session.id.as_str()) != keep
        {
            revoke(state, &session.id, reason).await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// A session as `GET /auth/sessions` shows it.
pub fn session_json(session: &Session, current: Option<&str>) -> Value {
    json!({
        "id": session.id,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "expires_at": clock::rfc3339(
            time::OffsetDateTime::from_unix_timestamp(session.expires_at)
                .unwrap_or_else(|_| clock::now())
        ),
        "user_agent": session.user_agent,
        "ip": session.ip,
        "current": Some(session.id.as_str()) == current,
    })
}
