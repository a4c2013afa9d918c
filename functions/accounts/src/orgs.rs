//! Organisations, their users, invitations and roles.
//!
//! Roles: `admin` (everything), `supervisor` (calls, agents, queues), `agent` (their own
//! transfers and status; linked to an agent record, so an agent's token is that agent),
//! `viewer` (reads everything, changes nothing). The app's display names map onto them:
//! Admin → admin, Manager → supervisor, Agent/User → agent, Viewer → viewer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::dynamo::{create_action, s};
use vocelio_shared::extract::JsonBody;
use vocelio_shared::keys::{PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, Role, clock};

use crate::Accounts;
use crate::auth::{normalise_email, take_token};
use crate::password::{check_strength, hash_password, random_token, sha256_hex};
use crate::principal::{ClientInfo, Principal};
use crate::store::{self, Organization, TwoFactor, User};

/// Parses a role, the app's display names included.
pub fn parse_role(raw: &str) -> Option<Role> {
    match raw.trim().to_lowercase().as_str() {
        "admin" => Some(Role::Admin),
        "supervisor" | "manager" => Some(Role::Supervisor),
        "agent" | "user" | "member" => Some(Role::Agent),
        "viewer" => Some(Role::Viewer),
        _ => None,
    }
}

fn org_json(org: &Organization, team_size: usize) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "subdomain": org.subdomain,
        "subscription_tier": org.subscription_tier,
        "voice_tier": org.voice_tier,
        "team_size": team_size,
        "max_team_size": org.max_team_size,
        "created_at": org.created_at,
        "settings": org.settings,
    })
}

/// A user as the team list shows it.
pub fn member_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": format!("{} {}", user.first_name, user.last_name).trim(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "agent_id": user.agent_id,
        "status": user.status,
        "two_factor_enabled": user.two_factor.enabled,
        "created_at": user.created_at,
        "last_login": user.last_login,
    })
}

async fn own_org(state: &AppState, principal: &Principal, org_id: &str) -> ApiResult<Organization> {
    principal.own_org(org_id)?;
    store::organization(state, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// `GET /organizations/{id}`: the caller's organisation.
pub async fn get_organization(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = own_org(&state, &principal, &org_id).await?;
    let team = store::users_of(&state, &org.id).await?.len();
    Ok(Json(org_json(&org, team)))
}

/// `PUT /organizations/{id}/settings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    name: Option<String>,
    default_voice: Option<String>,
    call_recording: Option<bool>,
    data_retention_days: Option<u32>,
    api_access_enabled: Option<bool>,
    webhook_notifications: Option<bool>,
    settings: Option<Box<SettingsBody>>,
}

/// Changes the organisation's name and settings (admins).
pub async fn update_settings(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<SettingsBody>,
) -> ApiResult<Json<Value>> {
    principal.admin()?;
    let mut org = own_org(&state, &principal, &org_id).await?;
    let mut check = vocelio_shared::validate::Violations::new();
    let nested = body.settings.as_deref();
    if let Some(name) = body.name.as_deref() {
        org.name = check.text("name", name, 1, 100);
    }
    let pick = |a: Option<&SettingsBody>, f: fn(&SettingsBody) -> Option<bool>| a.and_then(f);
    if let Some(voice) = body
        .default_voice
        .as_deref()
        .or(nested.and_then(|n| n.default_voice.as_deref()))
    {
        org.settings.default_voice = check.text("default_voice", voice, 1, 100);
    }
    if let Some(v) = body.call_recording.or(pick(nested, |n| n.call_recording)) {
        org.settings.call_recording = v;
    }
    if let Some(days) = body
        .data_retention_days
        .or(nested.and_then(|n| n.data_retention_days))
    {
        check.check(
            (1..=3650).contains(&days),
            "data_retention_days",
            "must be 1 to 3650",
        );
        org.settings.data_retention_days = days;
    }
    if let Some(v) = body
        .api_access_enabled
        .or(pick(nested, |n| n.api_access_enabled))
    {
        org.settings.api_access_enabled = v;
    }
    if let Some(v) = body
        .webhook_notifications
        .or(pick(nested, |n| n.webhook_notifications))
    {
        org.settings.webhook_notifications = v;
    }
    check.finish()?;
    let settings = serde_dynamo::to_attribute_value::<_, aws_sdk_dynamodb::types::AttributeValue>(
        &org.settings,
    )
    .map_err(ApiError::internal)?;
    state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(store::org_pk(&org.id)))
        .key(SK, s("ORG"))
        .update_expression("SET #name = :name, settings = :settings")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", s(org.name.clone()))
        .expression_attribute_values(":settings", settings)
        .send()
        .await
        .map_err(vocelio_shared::dynamo::sdk_error)?;
    let team = store::users_of(&state, &org.id).await?.len();
    Ok(Json(org_json(&org, team)))
}

/// `GET /organizations/{id}/users` (admins and supervisors).
pub async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.user.require(&[Role::Admin, Role::Supervisor])?;
    own_org(&state, &principal, &org_id).await?;
    let users: Vec<Value> = store::users_of(&state, &org_id)
        .await?
        .iter()
        .map(member_json)
        .collect();
    Ok(Json(json!({ "data": users })))
}

/// `POST /organizations/{id}/users {email, role, agent_id?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: Option<String>,
    role: Option<String>,
    agent_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// A note the invite form lets the admin write (not sent: the email is ours).
    #[serde(default)]
    message: Option<String>,
}

/// Invites a user (admins): an invited user with the role, and a single-use link by email.
pub async fn invite_user(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<InviteBody>,
) -> ApiResult<Response> {
    principal.admin()?;
    let org = own_org(&state, &principal, &org_id).await?;
    let _ = &body.message;
    let mut check = vocelio_shared::validate::Violations::new();
    let email = body.email.as_deref().and_then(normalise_email);
    check.check(email.is_some(), "email", "must be a valid email address");
    let role = parse_role(body.role.as_deref().unwrap_or("agent"));
    check.check(
        role.is_some(),
        "role",
        "must be admin, supervisor (manager), agent (user) or viewer",
    );
    let agent_id = body
        .agent_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if let Some(agent) = agent_id {
        check.check(
            vocelio_shared::ids::is_key_safe(agent),
            "agent_id",
            "must be 1-128 letters, digits or . _ @ : -",
        );
    }
    let first_name = body
        .first_name
        .as_deref()
        .map(|n| check.text("first_name", n, 0, 100));
    let last_name = body
        .last_name
        .as_deref()
        .map(|n| check.text("last_name", n, 0, 100));
    check.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::field("email", "must be a valid email address"));
    };
    let team = store::users_of(&state, &org.id).await?;
    if team.len() >= org.max_team_size as usize {
        return Err(ApiError::Refused {
            code: "team_full",
            message: format!("the organisation has all its {} seats", org.max_team_size),
        });
    }
    let id = vocelio_shared::ids::new_id("usr");
    let user = User {
        agent_id: (role == Role::Agent).then(|| agent_id.map_or_else(|| id.clone(), str::to_owned)),
        id,
        tenant_id: org.id.clone(),
        email: email.clone(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        phone: None,
        timezone: None,
        role,
        status: "invited".into(),
        password_hash: None,
        two_factor: TwoFactor::default(),
        created_at: clock::rfc3339(clock::now()),
        last_login: None,
        reset_sent_at: None,
        credential_version: 0,
        version: 1,
    };
    let token = random_token("vin_", 32);
    let expires = clock::now().unix_timestamp() + accounts.settings.invitation_ttl_seconds;
    let mut invite = store::reservation_item(
        format!("INVITE#{}", sha256_hex(&token)),
        "INVITE",
        &[("user_id", &user.id), ("tenant_id", &org.id)],
    );
    invite.insert("not_after".into(), vocelio_shared::dynamo::n(expires));
    invite.insert(
        vocelio_shared::keys::EXPIRES_AT.into(),
        vocelio_shared::dynamo::n(expires),
    );
    let table = state.table();
    let actions = vec![
        create_action(
            table,
            store::reservation_item(
                store::email_pk(&email),
                "EMAIL",
                &[("user_id", &user.id), ("tenant_id", &org.id)],
            ),
        )?,
        create_action(table, store::user_item(&user)?)?,
        create_action(table, invite)?,
    ];
    if let Some(cancelled) = vocelio_shared::dynamo::commit(&state.db, actions).await? {
        if cancelled.condition_failed(0) {
            return Err(ApiError::conflict(
                "email_taken",
                "an account with this email already exists",
            ));
        }
        return Err(ApiError::internal("the invitation was cancelled"));
    }
    let link = format!(
        "{}/accept-invite?token={token}",
        accounts.settings.app_base_url
    );
    accounts.mailer.send(
        &email,
        &format!("You are invited to {} on Vocelio", org.name),
        format!(
            "You are invited to join {} on Vocelio as {}.\n\nAccept and choose your password here (the link works once, for {} days):\n{link}\n",
            org.name,
            role,
            accounts.settings.invitation_ttl_seconds / 86_400
        ),
    );
    Ok((StatusCode::CREATED, Json(member_json(&user))).into_response())
}

/// `POST /auth/invitations/accept {token, password, first_name?, last_name?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    token: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// Takes an invitation once, sets the password, and signs the new user in.
pub async fn accept_invitation(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    client: ClientInfo,
    JsonBody(body): JsonBody<AcceptBody>,
) -> ApiResult<Response> {
    let token = body.token.unwrap_or_default();
    let password = body.password.unwrap_or_default();
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this invitation is not valid, used or expired; ask for a new one",
        )
    };
    if !token.starts_with("vin_") || token.len() > 100 {
        return Err(invalid());
    }
    crate::throttle::allow(
        &state,
        "ACCEPT",
        &client.ip,
        accounts.settings.anonymous_actions_per_hour,
    )
    .await?;
    let pk = format!("INVITE#{}", sha256_hex(&token));
    let Some(item) = store::get(&state, pk.clone(), "INVITE").await? else {
        return Err(invalid());
    };
    let Some(aws_sdk_dynamodb::types::AttributeValue::S(user_id)) = item.get("user_id") else {
        return Err(invalid());
    };
    let user = store::user(&state, user_id)
        .await?
        .filter(|u| u.status == "invited")
        .ok_or_else(invalid)?;
    let org = store::organization(&state, &user.tenant_id)
        .await?
        .ok_or_else(invalid)?;
    let mut check = vocelio_shared::validate::Violations::new();
    let first = body
        .first_name
        .as_deref()
        .map(|n| check.text("first_name", n, 1, 100));
    let last = body
        .last_name
        .as_deref()
        .map(|n| check.text("last_name", n, 1, 100));
    if let Err(weak) = check_strength(
        &password,
        &[
            &user.email,
            &org.name,
            &org.subdomain,
            first.as_deref().unwrap_or(""),
            last.as_deref().unwrap_or(""),
        ],
    ) {
        check.add("password", weak.to_string());
    }
    check.finish()?;
    // Checked before the token is spent, so a weak password does not burn the invitation.
    if take_token(&state, pk, "INVITE").await?.as_deref() != Some(user.id.as_str()) {
        return Err(invalid());
    }
    let mut next = store::bumped(user);
    next.status = "active".into();
    next.password_hash = Some(hash_password(&password).map_err(ApiError::internal)?);
    if let Some(first) = first {
        next.first_name = first;
    }
    if let Some(last) = last {
        next.last_name = last;
    }
    next.last_login = Some(clock::rfc3339(clock::now()));
    if next.role == Role::Admin {
        let table = state.table();
        let actions = vec![
            vocelio_shared::dynamo::replace_action(
                table,
                store::user_item(&next)?,
                next.version - 1,
            )?,
            store::admins_action(table, &next.tenant_id, 1)?,
        ];
        if vocelio_shared::dynamo::commit(&state.db, actions)
            .await?
            .is_some()
        {
            return Err(ApiError::conflict(
                "concurrent_update",
                "the user changed meanwhile; retry",
            ));
        }
    } else {
        store::save_user(&state, &next).await?;
    }
    let issued = crate::sessions::start(&state, &accounts, &next, &client).await?;
    let mut answer = issued.json();
    let info = crate::auth::user_info(&next, &org);
    answer["user"] = info.clone();
    answer["user_info"] = info;
    Ok(Json(answer).into_response())
}

/// `PATCH /organizations/{id}/users/{user_id} {role, agent_id?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: Option<String>,
    agent_id: Option<String>,
}

fn last_admin() -> ApiError {
    ApiError::conflict(
        "last_admin",
        "the organisation needs at least one admin; make someone else admin first",
    )
}

/// Changes a user's role (admins); it applies from the user's next token.
pub async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, user_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleBody>,
) -> ApiResult<Json<Value>> {
    principal.admin()?;
    own_org(&state, &principal, &org_id).await?;
    let role = body
        .role
        .as_deref()
        .and_then(parse_role)
        .ok_or_else(|| ApiError::field("role", "must be admin, supervisor, agent or viewer"))?;
    let user = store::user_in(&state, &org_id, &user_id).await?;
    let agent_id = body
        .agent_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if let Some(agent) = agent_id
        && !vocelio_shared::ids::is_key_safe(agent)
    {
        return Err(ApiError::field(
            "agent_id",
            "must be 1-128 letters, digits or . _ @ : -",
        ));
    }
    let mut next = store::bumped(user.clone());
    next.agent_id = match role {
        Role::Agent => Some(
            agent_id
                .map(str::to_owned)
                .or(next.agent_id.clone())
                .unwrap_or_else(|| next.id.clone()),
        ),
        _ => None,
    };
    let was_admin = user_is_active_admin(&user);
    next.role = role;
    let delta = i64::from(user_is_active_admin(&next)) - i64::from(was_admin);
    if delta == 0 {
        store::save_user(&state, &next).await?;
    } else {
        let table = state.table();
        let actions = vec![
            vocelio_shared::dynamo::replace_action(table, store::user_item(&next)?, user.version)?,
            store::admins_action(table, &org_id, delta)?,
        ];
        match vocelio_shared::dynamo::commit(&state.db, actions).await? {
            None => {}
            Some(c) if c.condition_failed(1) => return Err(last_admin()),
            Some(_) => {
                return Err(ApiError::conflict(
                    "concurrent_update",
                    "the user changed meanwhile; retry",
                ));
            }
        }
    }
    Ok(Json(member_json(&next)))
}

/// Removes a user (admins): their email is freed, their sessions end and the API keys they
/// made are revoked.
pub async fn remove_user(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.admin()?;
    own_org(&state, &principal, &org_id).await?;
    let user = store::user_in(&state, &org_id, &user_id).await?;
    let table = state.table();
    use vocelio_shared::dynamo::delete_action;
    let mut actions = vec![
        delete_action(table, store::user_pk(&user.id), "USER", Some(user.version))?,
        delete_action(table, store::email_pk(&user.email), "EMAIL", None)?,
    ];
    if user_is_active_admin(&user) {
        actions.push(store::admins_action(table, &org_id, -1)?);
    }
    match vocelio_shared::dynamo::commit(&state.db, actions).await? {
        None => {}
        Some(c) if c.condition_failed(2) => return Err(last_admin()),
        Some(_) => {
            return Err(ApiError::conflict(
                "concurrent_update",
                "the user changed meanwhile; retry",
            ));
        }
    }
    let sessions = crate::sessions::revoke_all(&state, &user.id, None, "user_removed").await?;
    let keys = crate::apikeys::revoke_made_by(&state, &principal.user.tenant, &user.id).await?;
    Ok(Json(json!({
        "message": "user removed",
        "id": user.id,
        "sessions_ended": sessions,
        "api_keys_revoked": keys,
    })))
}

fn user_is_active_admin(user: &User) -> bool {
    user.role == Role::Admin && user.status == "active"
}
