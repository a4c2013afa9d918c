//! The accounts records in the core table and their keys.
//!
//! - `ORG#<tenant>` / `ORG`: the organisation.
//! - `SUBDOMAIN#<subdomain>` / `SUBDOMAIN` and `EMAIL#<email>` / `EMAIL`: uniqueness
//!   reservations (created in the same transaction as what they reserve).
//! - `USER#<user>` / `USER`: a user; listed per tenant on GSI1 (`TENANT#<t>#USERS`, email).
//! - `SESSION#<sid>` / `SESSION`: a sign-in session (one refresh-token family); listed per
//!   user on GSI1 (`USER#<user>#SESSIONS`, created time).
//! - `RESET#<digest>` and `INVITE#<digest>`: single-use tokens, stored by digest.
//! - `THROTTLE#…`: failed sign-in counters.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use vocelio_shared::dynamo::{from_record, record_item, s, sdk_error};
use vocelio_shared::keys::{GSI1, GSI1PK, GSI1SK, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, Role};

/// The organisation (= tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    /// The tenant id (`org_…`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// `<subdomain>.vocelio.com`.
    pub subdomain: String,
    /// `starter`, `professional` or `enterprise`.
    pub subscription_tier: String,
    /// `basic` or `premium`.
    pub voice_tier: String,
    /// Seats.
    pub max_team_size: u32,
    /// Organisation settings.
    pub settings: OrgSettings,
    /// When it was created.
    pub created_at: String,
    /// Active admins: changed only in the transaction that changes one, under the condition
    /// that one stays.
    #[serde(default)]
    pub active_admins: u32,
}

/// The settings the app shows for an organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSettings {
    /// The voice used when none is chosen.
    pub default_voice: String,
    /// Whether calls are recorded.
    pub call_recording: bool,
    /// How long call data is kept.
    pub data_retention_days: u32,
    /// Whether API keys may be used.
    pub api_access_enabled: bool,
    /// Whether webhooks are sent.
    pub webhook_notifications: bool,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            default_voice: "en-US-AriaNeural".into(),
            call_recording: false,
            data_retention_days: 90,
            api_access_enabled: true,
            webhook_notifications: false,
        }
    }
}

/// A user's two-factor state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TwoFactor {
    /// Whether sign-in asks for a code.
    #[serde(default)]
    pub enabled: bool,
    /// The TOTP secret (base32) once enabled.
    #[serde(default)]
    pub secret: Option<String>,
    /// A secret set up but not yet confirmed.
    #[serde(default)]
    pub pending_secret: Option<String>,
    /// Digests of the unused backup codes (pending ones until confirmed).
    #[serde(default)]
    pub backup_codes: Vec<String>,
    /// Digests of backup codes made with the pending secret.
    #[serde(default)]
    pub pending_backup_codes: Vec<String>,
    /// The last TOTP step accepted: a code is accepted once.
    #[serde(default)]
    pub last_step: Option<u64>,
}

/// A user of an organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// The user's organisation.
    pub tenant_id: String,
    /// Lower-cased email.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Phone number as typed.
    #[serde(default)]
    pub phone: Option<String>,
    /// IANA time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Role in the organisation.
    pub role: Role,
    /// For role `agent`: the agent record this user is.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// `active` or `invited`.
    pub status: String,
    /// Argon2id PHC string; absent until an invitation is accepted.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Two-factor state.
    #[serde(default)]
    pub two_factor: TwoFactor,
    /// When the user was created.
    pub created_at: String,
    /// Last successful sign-in.
    #[serde(default)]
    pub last_login: Option<String>,
    /// Last time a reset email was sent (at most one a minute).
    #[serde(default)]
    pub reset_sent_at: Option<i64>,
    /// Raised when the password changes: sessions and reset links made before stop working.
    #[serde(default)]
    pub credential_version: u64,
    /// Optimistic-lock version.
    pub version: u64,
}

impl User {
    /// The `sub` of this user's tokens: the linked agent for agents, else the user.
    pub fn subject(&self) -> &str {
        match (self.role, self.agent_id.as_deref()) {
            (Role::Agent, Some(agent)) => agent,
            _ => &self.id,
        }
    }
}

/// A sign-in session: one family of rotating refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// `ses_…`.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The user's tenant.
    pub tenant_id: String,
    /// Digest of the refresh token that works now.
    pub current_hash: String,
    /// Digests of rotated-away tokens with their rotation time (epoch s), newest last.
    #[serde(default)]
    pub previous: Vec<(String, i64)>,
    /// When the session started.
    pub created_at: String,
    /// Last refresh.
    pub last_used_at: String,
    /// The session ends if unused until then (epoch s; also the TTL).
    pub expires_at: i64,
    /// Set when revoked (logout, reuse detected, password change, removal); absent until
    /// then (conditions test its absence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// The browser or client that signed in.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The client address that signed in.
    #[serde(default)]
    pub ip: Option<String>,
    /// The user's credential version when the session started (or last re-stamped).
    #[serde(default)]
    pub credential_version: u64,
}

/// The partition of an organisation.
pub fn org_pk(tenant: &str) -> String {
    format!("ORG#{tenant}")
}
/// The partition reserving a subdomain.
pub fn subdomain_pk(subdomain: &str) -> String {
    format!("SUBDOMAIN#{subdomain}")
}
/// The partition reserving an email.
pub fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}
/// The partition of a user.
pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}
/// GSI1 partition of a tenant's users.
pub fn users_gsi(tenant: &str) -> String {
    format!("TENANT#{tenant}#USERS")
}
/// The partition of a session.
pub fn session_pk(session_id: &str) -> String {
    format!("SESSION#{session_id}")
}
/// GSI1 partition of a user's sessions.
pub fn sessions_gsi(user_id: &str) -> String {
    format!("USER#{user_id}#SESSIONS")
}

/// The item of an organisation.
pub fn org_item(org: &Organization) -> ApiResult<vocelio_shared::dynamo::Item> {
    record_item(
        org,
        vec![
            (PK, org_pk(&org.id)),
            (SK, "ORG".into()),
            ("entity", "organization".into()),
        ],
    )
}

/// The item of a user.
pub fn user_item(user: &User) -> ApiResult<vocelio_shared::dynamo::Item> {
    record_item(
        user,
        vec![
            (PK, user_pk(&user.id)),
            (SK, "USER".into()),
            (GSI1PK, users_gsi(&user.tenant_id)),
            (GSI1SK, user.email.clone()),
            ("entity", "user".into()),
        ],
    )
}

/// The item of a session.
pub fn session_item(session: &Session) -> ApiResult<vocelio_shared::dynamo::Item> {
    record_item(
        session,
        vec![
            (PK, session_pk(&session.id)),
            (SK, "SESSION".into()),
            (GSI1PK, sessions_gsi(&session.user_id)),
            (GSI1SK, session.created_at.clone()),
            ("entity", "session".into()),
        ],
    )
}

/// A reservation item (subdomain, email) pointing at its owner.
pub fn reservation_item(
    pk: String,
    sk: &str,
    fields: &[(&str, &str)],
) -> vocelio_shared::dynamo::Item {
    let mut item = vocelio_shared::dynamo::Item::new();
    item.insert(PK.into(), s(pk));
    item.insert(SK.into(), s(sk));
    for (name, value) in fields {
        item.insert((*name).into(), s(*value));
    }
    item
}

/// Reads one item by key (strongly consistent).
pub async fn get(
    state: &AppState,
    pk: String,
    sk: &str,
) -> ApiResult<Option<vocelio_shared::dynamo::Item>> {
    Ok(state
        .db
        .get_item()
        .table_name(state.table())
        .key(PK, s(pk))
        .key(SK, s(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?
        .item)
}

/// Reads a user.
pub async fn user(state: &AppState, user_id: &str) -> ApiResult<Option<User>> {
    match get(state, user_pk(user_id), "USER").await? {
        Some(item) => Ok(Some(from_record(item)?)),
        None => Ok(None),
    }
}

/// Reads a user of `tenant`, 404 when absent or in another tenant.
pub async fn user_in(state: &AppState, tenant: &str, user_id: &str) -> ApiResult<User> {
    if !vocelio_shared::ids::is_id("usr", user_id) {
        return Err(ApiError::not_found("user"));
    }
    match user(state, user_id).await? {
        Some(user) if user.tenant_id == tenant => Ok(user),
        _ => Err(ApiError::not_found("user")),
    }
}

/// The user an email belongs to.
pub async fn user_by_email(state: &AppState, email: &str) -> ApiResult<Option<User>> {
    let Some(reservation) = get(state, email_pk(email), "EMAIL").await? else {
        // As many reads as for a known email: the time does not tell.
        get(
            state,
            user_pk("usr_00000000000000000000000000000000"),
            "USER",
        )
        .await?;
        return Ok(None);
    };
    let Some(AttributeValue::S(user_id)) = reservation.get("user_id") else {
        return Ok(None);
    };
    user(state, user_id).await
}

/// Reads an organisation.
pub async fn organization(state: &AppState, tenant: &str) -> ApiResult<Option<Organization>> {
    match get(state, org_pk(tenant), "ORG").await? {
        Some(item) => Ok(Some(from_record(item)?)),
        None => Ok(None),
    }
}

/// Every user of a tenant (organisations are small: at most their seats plus invitations).
pub async fn users_of(state: &AppState, tenant: &str) -> ApiResult<Vec<User>> {
    let query = state
        .db
        .query()
        .table_name(state.table())
        .index_name(GSI1)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", GSI1PK)
        .expression_attribute_values(":pk", s(users_gsi(tenant)));
    vocelio_shared::dynamo::query_all(query)
        .await?
        .into_iter()
        .map(from_record::<User>)
        .collect()
}

/// Writes a user read at `user.version - 1` (optimistic lock): 409 when it changed since.
pub async fn save_user(state: &AppState, user: &User) -> ApiResult<()> {
    let result = state
        .db
        .put_item()
        .table_name(state.table())
        .set_item(Some(user_item(user)?))
        .condition_expression("version = :seen")
        .expression_attribute_values(":seen", vocelio_shared::dynamo::n(user.version - 1))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => Err(ApiError::conflict(
            "concurrent_update",
            "the user changed meanwhile; retry",
        )),
        Err(err) => Err(sdk_error(err)),
    }
}

/// The next version of `user` to save.
pub fn bumped(mut user: User) -> User {
    user.version += 1;
    user
}

/// The transaction action that adds `delta` to an organisation's active admins; a decrease
/// is conditioned on one admin staying.
pub fn admins_action(
    table: &str,
    tenant: &str,
    delta: i64,
) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key(PK, s(org_pk(tenant)))
        .key(SK, s("ORG"))
        .update_expression("ADD active_admins :delta")
        .expression_attribute_values(":delta", vocelio_shared::dynamo::n(delta));
    if delta < 0 {
        update = update
            .condition_expression("active_admins > :one")
            .expression_attribute_values(":one", vocelio_shared::dynamo::n(1));
    } else {
        update = update.condition_expression("attribute_exists(PK)");
    }
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .update(update.build().map_err(ApiError::internal)?)
        .build())
}
