//! Sign-up, sign-in, refresh, sign-out, the profile, passwords, and the public keys.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::extract::JsonBody;
use vocelio_shared::validate::is_email;
use vocelio_shared::{ApiError, ApiResult, AppState, Role, clock};

use crate::Accounts;
use crate::password::{self, check_strength, hash_password, verify_against_dummy, verify_password};
use crate::principal::{ClientInfo, Principal};
use crate::sessions::{self, Issued};
use crate::store::{self, OrgSettings, Organization, TwoFactor, User};
use crate::throttle::{self, Attempt};

/// Subdomains nobody may register.
const RESERVED_SUBDOMAINS: [&str; 16] = [
    "www",
    "api",
    "app",
    "admin",
    "auth",
    "mail",
    "smtp",
    "status",
    "docs",
    "help",
    "support",
    "billing",
    "static",
    "cdn",
    "vocelio",
    "dashboard",
];

/// `GET /.well-known/jwks.json`: the public keys tokens are verified with.
pub async fn jwks(Extension(accounts): Extension<Accounts>) -> Response {
    let mut response = Json(accounts.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The `user` / `user_info` object of sign-in answers (the app reads both).
pub fn user_info(user: &User, org: &Organization) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": format!("{} {}", user.first_name, user.last_name).trim(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "agent_id": user.agent_id,
        "tenant_id": user.tenant_id,
        "organization_id": org.id,
        "organization_name": org.name,
        "subdomain": org.subdomain,
        "subscription_tier": org.subscription_tier,
        "voice_tier": org.voice_tier,
        "two_factor_enabled": user.two_factor.enabled,
        "user_metadata": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "role": user.role,
        },
    })
}

/// The app's `UserProfile` (`GET /auth/me`, `PUT /auth/profile`).
pub fn profile(user: &User, org: &Organization) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": user.phone,
        "organization_id": org.id,
        "organization_name": org.name,
        "subdomain": org.subdomain,
        "tenant_id": user.tenant_id,
        "role": user.role,
        "agent_id": user.agent_id,
        "subscription_tier": org.subscription_tier,
        "created_at": user.created_at,
        "last_login": user.last_login,
        "two_factor_enabled": user.two_factor.enabled,
        "profile_picture": Value::Null,
        "timezone": user.timezone.clone().unwrap_or_else(|| "UTC".into()),
    })
}

fn signed_in(issued: &Issued, user: &User, org: &Organization) -> Value {
    let mut body = issued.json();
    let info = user_info(user, org);
    body["user"] = info.clone();
    body["user_info"] = info;
    body
}

/// Lower-cases and checks an email.
pub fn normalise_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    (email.len() <= 254 && is_email(&email)).then_some(email)
}

fn subdomain_problem(subdomain: &str) -> Option<&'static str> {
    if !(3..=20).contains(&subdomain.len()) {
        return Some("must be 3 to 20 characters");
    }
    if !subdomain
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may hold only a-z, 0-9 and '-'");
    }
    if subdomain.starts_with('-') || subdomain.ends_with('-') {
        return Some("cannot start or end with '-'");
    }
    if RESERVED_SUBDOMAINS.contains(&subdomain) {
        return Some("is reserved");
    }
    None
}

/// `POST /auth/register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    email: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    organization_name: Option<String>,
    subdomain: Option<String>,
    phone: Option<String>,
    /// Sent by an older form of the app; plans are not chosen at sign-up.
    #[serde(default)]
    subscription_tier: Option<String>,
    /// Sent by an older form of the app; ignored like `subscription_tier`.
    #[serde(default)]
    voice_tier: Option<String>,
}

/// `POST /auth/register`: a new organisation, its first admin, and a session.
pub async fn register(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    client: ClientInfo,
    JsonBody(body): JsonBody<RegisterBody>,
) -> ApiResult<Response> {
    // Before anything costly (the strength estimate, the hash).
    throttle::allow(
        &state,
        "REGISTER",
        &client.ip,
        accounts.settings.anonymous_actions_per_hour,
    )
    .await?;
    let mut check = vocelio_shared::validate::Violations::new();
    let email = body.email.as_deref().and_then(normalise_email);
    check.check(email.is_some(), "email", "must be a valid email address");
    let first_name = check.text(
        "first_name",
        body.first_name.as_deref().unwrap_or(""),
        1,
        100,
    );
    let last_name = check.text("last_name", body.last_name.as_deref().unwrap_or(""), 1, 100);
    let org_name = check.text(
        "organization_name",
        body.organization_name.as_deref().unwrap_or(""),
        1,
        100,
    );
    let subdomain = body
        .subdomain
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    if let Some(problem) = subdomain_problem(&subdomain) {
        check.add("subdomain", problem);
    }
    let _ = (&body.subscription_tier, &body.voice_tier);
    let phone = body
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    check.check(
        phone.as_ref().is_none_or(|p| p.len() <= 32),
        "phone",
        "must be at most 32 characters",
    );
    let password = body.password.unwrap_or_default();
    let inputs = [
        email.as_deref().unwrap_or(""),
        first_name.as_str(),
        last_name.as_str(),
        org_name.as_str(),
        subdomain.as_str(),
    ];
    if let Err(weak) = check_strength(&password, &inputs) {
        check.add("password", weak.to_string());
    }
    check.finish()?;
    let email = email.ok_or_else(|| ApiError::field("email", "must be a valid email address"))?;
    let hash = hash_password(&password).map_err(ApiError::internal)?;
    let now = clock::rfc3339(clock::now());
    let tenant = vocelio_shared::ids::new_id("org");
    let org = Organization {
        id: tenant.clone(),
        name: org_name,
        subdomain: subdomain.clone(),
        subscription_tier: "starter".into(),
        voice_tier: "basic".into(),
        max_team_size: accounts.settings.max_team_size,
        settings: OrgSettings::default(),
        created_at: now.clone(),
        active_admins: 1,
    };
    let user = User {
        id: vocelio_shared::ids::new_id("usr"),
        tenant_id: tenant.clone(),
        email: email.clone(),
        first_name,
        last_name,
        phone,
        timezone: None,
        role: Role::Admin,
        agent_id: None,
        status: "active".into(),
        password_hash: Some(hash),
        two_factor: TwoFactor::default(),
        created_at: now.clone(),
        last_login: Some(now),
        reset_sent_at: None,
        credential_version: 0,
        version: 1,
    };
    let table = state.table();
    // An invitation nobody accepted in time does not hold its email forever.
    release_expired_invitation(&state, &accounts, &email).await?;
    let actions = vec![
        vocelio_shared::dynamo::create_action(
            table,
            store::reservation_item(
                store::subdomain_pk(&subdomain),
                "SUBDOMAIN",
                &[("tenant_id", &tenant)],
            ),
        )?,
        vocelio_shared::dynamo::create_action(
            table,
            store::reservation_item(
                store::email_pk(&email),
                "EMAIL",
                &[("user_id", &user.id), ("tenant_id", &tenant)],
            ),
        )?,
        vocelio_shared::dynamo::create_action(table, store::org_item(&org)?)?,
        vocelio_shared::dynamo::create_action(table, store::user_item(&user)?)?,
    ];
    if let Some(cancelled) = vocelio_shared::dynamo::commit(&state.db, actions).await? {
        if cancelled.condition_failed(0) {
            return Err(ApiError::conflict(
                "subdomain_taken",
                "this subdomain is already taken; choose another",
            ));
        }
        if cancelled.condition_failed(1) {
            return Err(ApiError::conflict(
                "email_taken",
                "an account with this email already exists; sign in instead",
            ));
        }
        return Err(ApiError::internal("registration was cancelled"));
    }
    tracing::info!(tenant = %tenant, "organisation registered");
    let issued = sessions::start(&state, &accounts, &user, &client).await?;
    Ok((StatusCode::CREATED, Json(signed_in(&issued, &user, &org))).into_response())
}

/// `POST /auth/login` and `POST /auth/login-2fa`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
    two_factor_code: Option<String>,
}

fn wrong_credentials() -> ApiError {
    ApiError::Unauthorized("the email or password is incorrect".into())
}

/// Sign-in: 200 with tokens; 202 when the account has two-factor and no code came; 401 for
/// an unknown email or a wrong password alike; 429 while throttled.
pub async fn login(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    client: ClientInfo,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let email = body
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    let password = body.password.unwrap_or_default();
    if email.is_empty() || email.len() > 254 || password.is_empty() || password.len() > 512 {
        return Err(ApiError::fields(vec![vocelio_shared::FieldError::new(
            "email",
            "email and password are required",
        )]));
    }
    let attempt = Attempt::new(&email, &client.ip);
    attempt.begin(&state, &accounts.settings).await?;
    let found = store::user_by_email(&state, &email).await?;
    let user = match found {
        Some(user) if user.status == "active" => match user.password_hash.as_deref() {
            Some(hash) if verify_password(&password, hash) => Some(user),
            Some(_) => None,
            None => {
                verify_against_dummy(&password);
                None
            }
        },
        _ => {
            verify_against_dummy(&password);
            None
        }
    };
    let Some(mut user) = user else {
        return Err(wrong_credentials());
    };
    if user.two_factor.enabled {
        let code = body
            .two_factor_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let Some(code) = code else {
            attempt.succeeded(&state).await?;
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "two_factor_required": true,
                    "message": "enter the code from your authenticator app (or a backup code)",
                })),
            )
                .into_response());
        };
        match crate::twofactor::consume_code(&state, &user, code).await? {
            Some(updated) => user = updated,
            None => {
                return Err(ApiError::Unauthorized(
                    "the two-factor code is incorrect".into(),
                ));
            }
        }
    }
    // The rest is independent writes and a read: one round trip instead of four.
    let now = clock::rfc3339(clock::now());
    let (given_back, org, recorded, issued) = tokio::join!(
        attempt.succeeded(&state),
        store::organization(&state, &user.tenant_id),
        record_login(&state, &user.id, &now),
        sessions::start(&state, &accounts, &user, &client),
    );
    given_back?;
    recorded?;
    let org = org?.ok_or_else(|| ApiError::internal("a user's organisation is missing"))?;
    let issued = issued?;
    user.last_login = Some(now);
    Ok(Json(signed_in(&issued, &user, &org)).into_response())
}

async fn record_login(state: &AppState, user_id: &str, at: &str) -> ApiResult<()> {
    state
        .db
        .update_item()
        .table_name(state.table())
        .key(
            vocelio_shared::keys::PK,
            vocelio_shared::dynamo::s(store::user_pk(user_id)),
        )
        .key(vocelio_shared::keys::SK, vocelio_shared::dynamo::s("USER"))
        .update_expression("SET last_login = :at")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":at", vocelio_shared::dynamo::s(at))
        .send()
        .await
        .map_err(vocelio_shared::dynamo::sdk_error)?;
    Ok(())
}

/// `POST /auth/refresh {refresh_token}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

/// Exchanges a refresh token for a new access token and a new refresh token.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> ApiResult<Json<Value>> {
    let token = body
        .refresh_token
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or_else(|| ApiError::Unauthorized("a refresh_token is required".into()))?;
    let issued = sessions::refresh(&state, &accounts, &token).await?;
    Ok(Json(issued.json()))
}

/// `POST /auth/logout {refresh_token?}`: ends the session of the access token or of the
/// refresh token sent.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    refresh_token: Option<String>,
}

/// Ends a session: with an access token, its session; with a refresh token, that one's.
pub async fn logout(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: LogoutBody = if body.is_empty() {
        LogoutBody::default()
    } else {
        vocelio_shared::extract::parse_json(&body)?
    };
    let mut ended = false;
    if let Some(token) = body.refresh_token.as_deref()
        && let Some(session) = sessions::session_of_token(&state, token).await?
    {
        sessions::revoke(&state, &session.id, "logout").await?;
        ended = true;
    }
    if crate::principal::bearer(&parts.headers).is_some() {
        let mut parts = parts;
        let principal =
            <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, &state,
            )
            .await?;
        if let Some(session) = principal.session_id.as_deref() {
            sessions::revoke(&state, session, "logout").await?;
            ended = true;
        }
    }
    if !ended {
        return Err(ApiError::Unauthorized(
            "send the access token or the refresh token of the session to end".into(),
        ));
    }
    Ok(Json(json!({ "message": "signed out" })))
}

async fn me_and_org(state: &AppState, principal: &Principal) -> ApiResult<(User, Organization)> {
    let user = principal.account.clone();
    let org = store::organization(state, &user.tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("a user's organisation is missing"))?;
    Ok((user, org))
}

/// `GET /auth/me`: the caller's profile.
pub async fn me(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let (user, org) = me_and_org(&state, &principal).await?;
    Ok(Json(profile(&user, &org)))
}

/// `PUT /auth/profile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    timezone: Option<String>,
    /// The app sends a browser `blob:` URL: accepted and not stored.
    #[serde(default)]
    profile_picture: Option<Value>,
    /// Needed to change the email (a stolen access token must not move the account).
    current_password: Option<String>,
}

/// Saves the caller's profile and answers it whole.
pub async fn update_profile(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
    JsonBody(body): JsonBody<ProfileBody>,
) -> ApiResult<Json<Value>> {
    let (user, org) = me_and_org(&state, &principal).await?;
    let _ = body.profile_picture;
    let mut check = vocelio_shared::validate::Violations::new();
    let mut next = store::bumped(user.clone());
    if let Some(first) = body.first_name.as_deref() {
        next.first_name = check.text("first_name", first, 1, 100);
    }
    if let Some(last) = body.last_name.as_deref() {
        next.last_name = check.text("last_name", last, 1, 100);
    }
    if let Some(phone) = body.phone.as_deref() {
        let phone = phone.trim();
        check.check(phone.len() <= 32, "phone", "must be at most 32 characters");
        next.phone = (!phone.is_empty()).then(|| phone.to_owned());
    }
    if let Some(zone) = body.timezone.as_deref() {
        let zone = zone.trim();
        check.check(
            zone.len() <= 64
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+')),
            "timezone",
            "must be an IANA time zone such as Europe/Paris",
        );
        next.timezone = (!zone.is_empty()).then(|| zone.to_owned());
    }
    let new_email = match body.email.as_deref() {
        Some(raw) if raw.trim().to_lowercase() != user.email => {
            let email = normalise_email(raw);
            check.check(email.is_some(), "email", "must be a valid email address");
            email
        }
        _ => None,
    };
    check.finish()?;
    if new_email.is_some() {
        verify_current_password(
            &state,
            &accounts.settings,
            &principal,
            body.current_password.as_deref(),
        )
        .await?;
    }
    match new_email {
        None => store::save_user(&state, &next).await?,
        Some(email) => {
            next.email = email.clone();
            change_email(&state, &user, &next).await?;
        }
    }
    Ok(Json(profile(&next, &org)))
}

/// Moves a user to a new email: the new reservation, the old one's release and the user in
/// one transaction.
async fn change_email(state: &AppState, before: &User, after: &User) -> ApiResult<()> {
    use vocelio_shared::dynamo::{create_action, delete_action, replace_action};
    let table = state.table();
    let actions = vec![
        create_action(
            table,
            store::reservation_item(
                store::email_pk(&after.email),
                "EMAIL",
                &[("user_id", &after.id), ("tenant_id", &after.tenant_id)],
            ),
        )?,
        delete_action(table, store::email_pk(&before.email), "EMAIL", None)?,
        replace_action(table, store::user_item(after)?, before.version)?,
    ];
    match vocelio_shared::dynamo::commit(&state.db, actions).await? {
        None => Ok(()),
        Some(c) if c.condition_failed(0) => Err(ApiError::conflict(
            "email_taken",
            "an account with this email already exists",
        )),
        Some(_) => Err(ApiError::conflict(
            "concurrent_update",
            "the user changed meanwhile; retry",
        )),
    }
}

/// `POST /auth/password-reset {current_password, new_password}` (a change).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Changes the caller's password and ends their other sessions.
pub async fn change_password(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
    JsonBody(body): JsonBody<ChangePasswordBody>,
) -> ApiResult<Json<Value>> {
    let (user, org) = me_and_org(&state, &principal).await?;
    verify_current_password(
        &state,
        &accounts.settings,
        &principal,
        body.current_password.as_deref(),
    )
    .await?;
    let new_password = body.new_password.unwrap_or_default();
    check_strength(
        &new_password,
        &[
            &user.email,
            &user.first_name,
            &user.last_name,
            &org.name,
            &org.subdomain,
        ],
    )
    .map_err(|weak| ApiError::field("new_password", weak.to_string()))?;
    let mut next = store::bumped(user);
    next.password_hash = Some(hash_password(&new_password).map_err(ApiError::internal)?);
    next.credential_version += 1;
    store::save_user(&state, &next).await?;
    if let Some(session) = principal.session_id.as_deref() {
        sessions::restamp(&state, session, next.credential_version).await?;
    }
    let ended = sessions::revoke_all(
        &state,
        &next.id,
        principal.session_id.as_deref(),
        "password_changed",
    )
    .await?;
    Ok(Json(
        json!({ "message": "password changed", "other_sessions_ended": ended }),
    ))
}

/// `POST /auth/forgot-password {email}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    email: Option<String>,
}

const FORGOT_ANSWER: &str =
    "if an account uses this email, a link to choose a new password is on its way";

/// Sends a single-use reset link when the email has an account; answers the same either way.
pub async fn forgot_password(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    client: ClientInfo,
    JsonBody(body): JsonBody<ForgotBody>,
) -> ApiResult<Response> {
    let email = body
        .email
        .as_deref()
        .and_then(normalise_email)
        .ok_or_else(|| ApiError::field("email", "must be a valid email address"))?;
    throttle::allow(
        &state,
        "FORGOT",
        &client.ip,
        accounts.settings.anonymous_actions_per_hour,
    )
    .await?;
    let answer = (
        StatusCode::ACCEPTED,
        Json(json!({ "message": FORGOT_ANSWER })),
    );
    let Some(user) = store::user_by_email(&state, &email).await? else {
        return Ok(answer.into_response());
    };
    let now = clock::now().unix_timestamp();
    if user.status != "active" || user.reset_sent_at.is_some_and(|at| now - at < 60) {
        return Ok(answer.into_response());
    }
    let token = password::random_token("vpr_", 32);
    let expires = now + accounts.settings.reset_ttl_seconds;
    let mut item = store::reservation_item(
        format!("RESET#{}", password::sha256_hex(&token)),
        "RESET",
        &[("user_id", &user.id), ("email", &user.email)],
    );
    item.insert("not_after".into(), vocelio_shared::dynamo::n(expires));
    item.insert(
        "credential_version".into(),
        vocelio_shared::dynamo::n(user.credential_version),
    );
    item.insert(
        vocelio_shared::keys::EXPIRES_AT.into(),
        vocelio_shared::dynamo::n(expires),
    );
    state
        .db
        .put_item()
        .table_name(state.table())
        .set_item(Some(item))
        .send()
        .await
        .map_err(vocelio_shared::dynamo::sdk_error)?;
    let mut next = store::bumped(user);
    next.reset_sent_at = Some(now);
    store::save_user(&state, &next).await?;
    let link = format!(
        "{}/reset-password?token={token}",
        accounts.settings.app_base_url
    );
    accounts.mailer.send(
        &next.email,
        "Choose a new Vocelio password",
        format!(
            "Someone asked to reset the password of your Vocelio account.\n\nChoose a new one here (the link works once, for {} minutes):\n{link}\n\nIf it was not you, ignore this email.",
            accounts.settings.reset_ttl_seconds / 60
        ),
    );
    Ok(answer.into_response())
}

/// `POST /auth/reset-password {token, new_password}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: Option<String>,
    new_password: Option<String>,
}

/// Takes a reset token once, sets the new password and ends every session.
pub async fn reset_password(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    client: ClientInfo,
    JsonBody(body): JsonBody<ResetBody>,
) -> ApiResult<Json<Value>> {
    throttle::allow(
        &state,
        "RESET",
        &client.ip,
        accounts.settings.anonymous_actions_per_hour,
    )
    .await?;
    let token = body.token.unwrap_or_default();
    let new_password = body.new_password.unwrap_or_default();
    if !token.starts_with("vpr_") || token.len() > 100 {
        return Err(ApiError::bad_request(
            "invalid_token",
            "this reset link is not valid; ask for a new one",
        ));
    }
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "this reset link is not valid, used or expired; ask for a new one",
        )
    };
    let pk = format!("RESET#{}", password::sha256_hex(&token));
    let item = store::get(&state, pk.clone(), "RESET")
        .await?
        .ok_or_else(invalid)?;
    let text = |name: &str| match item.get(name) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    let issued_version = match item.get("credential_version") {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => v.parse::<u64>().ok(),
        _ => None,
    };
    let user = store::user(&state, &text("user_id").ok_or_else(invalid)?)
        .await?
        .ok_or_else(invalid)?;
    // A link stops working once the password or the email changed after it was sent.
    if issued_version != Some(user.credential_version)
        || text("email").as_deref() != Some(&user.email)
    {
        return Err(invalid());
    }
    let org = store::organization(&state, &user.tenant_id).await?;
    let org_inputs = org
        .as_ref()
        .map(|o| (o.name.clone(), o.subdomain.clone()))
        .unwrap_or_default();
    // Checked before the link is spent, so a weak password does not burn it.
    check_strength(
        &new_password,
        &[
            &user.email,
            &user.first_name,
            &user.last_name,
            &org_inputs.0,
            &org_inputs.1,
        ],
    )
    .map_err(|weak| ApiError::field("new_password", weak.to_string()))?;
    if take_token(&state, pk, "RESET").await?.as_deref() != Some(user.id.as_str()) {
        return Err(invalid());
    }
    let mut next = store::bumped(user);
    next.password_hash = Some(hash_password(&new_password).map_err(ApiError::internal)?);
    next.credential_version += 1;
    store::save_user(&state, &next).await?;
    sessions::revoke_all(&state, &next.id, None, "password_reset").await?;
    Ok(Json(
        json!({ "message": "password changed; sign in with the new one" }),
    ))
}

/// Deletes a single-use token item and returns its `user_id` when it existed and had not
/// expired: the delete is the use, so a token works once even under concurrency.
pub async fn take_token(state: &AppState, pk: String, sk: &str) -> ApiResult<Option<String>> {
    let now = clock::now().unix_timestamp();
    let result = state
        .db
        .delete_item()
        .table_name(state.table())
        .key(vocelio_shared::keys::PK, vocelio_shared::dynamo::s(pk))
        .key(vocelio_shared::keys::SK, vocelio_shared::dynamo::s(sk))
        .condition_expression("attribute_exists(PK) AND not_after > :now")
        .expression_attribute_values(":now", vocelio_shared::dynamo::n(now))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out.attributes.and_then(|item| match item.get("user_id") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) => Some(id.clone()),
            _ => None,
        })),
        Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => Ok(None),
        Err(err) => Err(vocelio_shared::dynamo::sdk_error(err)),
    }
}

/// `GET /auth/sessions`: the caller's sessions that still work.
pub async fn list_sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Value>> {
    let now = clock::now().unix_timestamp();
    let sessions: Vec<Value> = sessions::of_user(&state, &principal.account_id)
        .await?
        .iter()
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .map(|s| sessions::session_json(s, principal.session_id.as_deref()))
        .collect();
    Ok(Json(json!({ "data": sessions })))
}

/// `DELETE /auth/sessions/{id}`: ends one of the caller's sessions.
pub async fn revoke_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(session_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let owned = vocelio_shared::ids::is_id("ses", &session_id)
        && sessions::of_user(&state, &principal.account_id)
            .await?
            .iter()
            .any(|s| s.id == session_id);
    if !owned {
        return Err(ApiError::not_found("session"));
    }
    sessions::revoke(&state, &session_id, "revoked_by_user").await?;
    Ok(Json(
        json!({ "message": "session ended", "id": session_id }),
    ))
}

/// Checks the caller's current password under the same throttle as sign-in (a stolen access
/// token must not become an online password oracle).
pub async fn verify_current_password(
    state: &AppState,
    settings: &crate::settings::AccountsSettings,
    principal: &Principal,
    password: Option<&str>,
) -> ApiResult<()> {
    let password = password.unwrap_or_default();
    if password.is_empty() {
        return Err(ApiError::field(
            "current_password",
            "is required for this change",
        ));
    }
    let attempt = Attempt::new(&principal.account.email, &principal.client_ip);
    attempt.begin(state, settings).await?;
    let ok = principal
        .account
        .password_hash
        .as_deref()
        .is_some_and(|hash| verify_password(password, hash));
    if !ok {
        return Err(ApiError::field("current_password", "is incorrect"));
    }
    attempt.succeeded(state).await
}

/// Frees an email held by an invited user whose invitation expired unaccepted: the user and
/// the reservation go together, only if nothing changed them meanwhile.
async fn release_expired_invitation(
    state: &AppState,
    accounts: &Accounts,
    email: &str,
) -> ApiResult<()> {
    let Some(user) = store::user_by_email(state, email).await? else {
        return Ok(());
    };
    let invited_at = time::OffsetDateTime::parse(
        &user.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_or(0, |t| t.unix_timestamp());
    let expired =
        clock::now().unix_timestamp() - invited_at > accounts.settings.invitation_ttl_seconds;
    if user.status != "invited" || !expired {
        return Ok(());
    }
    use vocelio_shared::dynamo::delete_action as delete;
    let table = state.table();
    let actions = vec![
        delete(table, store::user_pk(&user.id), "USER", Some(user.version))?,
        delete(table, store::email_pk(email), "EMAIL", None)?,
    ];
    vocelio_shared::dynamo::commit(&state.db, actions).await?;
    Ok(())
}
