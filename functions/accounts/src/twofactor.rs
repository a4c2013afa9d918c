//! Two-factor sign-in with TOTP (RFC 6238: 30 s steps, ±1 step, each code accepted once)
//! and ten single-use backup codes, stored as digests.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::extract::OptionalJsonBody;
use vocelio_shared::{ApiError, ApiResult, AppState, clock};

use crate::Accounts;
use crate::password::{hash_backup_code, new_backup_codes};
use crate::principal::Principal;
use crate::store::{self, User};
use crate::totp;
use axum::Extension;

/// How long after signing in two-factor may be turned on without the password again.
const FRESH_SIGN_IN_SECONDS: i64 = 15 * 60;

async fn caller(_state: &AppState, principal: &Principal) -> ApiResult<User> {
    Ok(principal.account.clone())
}

/// `POST /auth/two-factor/setup`: a new secret (pending until verified), its QR code and
/// backup codes. 409 when two-factor is already on (disable it first).
pub async fn setup(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
) -> ApiResult<Json<Value>> {
    let user = caller(&state, &principal).await?;
    if user.two_factor.enabled {
        return Err(ApiError::conflict(
            "two_factor_enabled",
            "two-factor sign-in is already on; disable it first to set up a new device",
        ));
    }
    let secret = totp::encode_base32(&totp::new_secret());
    let uri = totp::otpauth_uri(&accounts.settings.totp_issuer, &user.email, &secret);
    let qr_code = totp::qr_data_url(&uri).map_err(ApiError::internal)?;
    let codes = new_backup_codes();
    let mut next = store::bumped(user);
    next.two_factor.pending_secret = Some(secret.clone());
    next.two_factor.pending_backup_codes = codes
        .iter()
        .map(|c| hash_backup_code(&next.id, c))
        .collect();
    store::save_user(&state, &next).await?;
    Ok(Json(json!({
        "qr_code": qr_code,
        "secret": secret,
        "otpauth_url": uri,
        "backup_codes": codes,
    })))
}

/// `POST /auth/two-factor/verify {code}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: Option<String>,
    password: Option<String>,
}

/// Turns two-factor on once a code from the pending secret checks out.
/// A stolen access token alone cannot turn two-factor on (which would lock the owner out):
/// that needs the password, or a sign-in of the last 15 minutes.
pub async fn verify(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
    OptionalJsonBody(body): OptionalJsonBody<CodeBody>,
) -> ApiResult<Json<Value>> {
    let body = body.unwrap_or_default();
    let user = caller(&state, &principal).await?;
    let fresh = clock::now().unix_timestamp() - principal.signed_in_at <= FRESH_SIGN_IN_SECONDS;
    if !fresh || body.password.is_some() {
        crate::auth::verify_current_password(
            &state,
            &accounts.settings,
            &principal,
            body.password.as_deref(),
        )
        .await
        .map_err(|e| match e {
            ApiError::Validation { .. } => ApiError::field(
                "password",
                "is needed (or sign in again) to turn two-factor on",
            ),
            other => other,
        })?;
    }
    let Some(pending) = user.two_factor.pending_secret.clone() else {
        return Err(ApiError::conflict(
            "two_factor_not_set_up",
            "set up two-factor first (POST /auth/two-factor/setup)",
        ));
    };
    let secret =
        totp::decode_base32(&pending).ok_or_else(|| ApiError::internal("bad pending secret"))?;
    let code = body.code.unwrap_or_default();
    let step =
        totp::verify(&secret, &code, clock::now().unix_timestamp(), None).ok_or_else(|| {
            ApiError::field("code", "is not the current code of your authenticator app")
        })?;
    let mut next = store::bumped(user);
    let two = &mut next.two_factor;
    two.enabled = true;
    two.secret = two.pending_secret.take();
    two.backup_codes = std::mem::take(&mut two.pending_backup_codes);
    two.last_step = Some(step);
    store::save_user(&state, &next).await?;
    Ok(Json(
        json!({ "two_factor_enabled": true, "message": "two-factor sign-in is on" }),
    ))
}

/// `POST /auth/two-factor/disable {password, code}`: needs the password and a current code
/// (or a backup code).
pub async fn disable(
    State(state): State<AppState>,
    Extension(accounts): Extension<Accounts>,
    principal: Principal,
    OptionalJsonBody(body): OptionalJsonBody<CodeBody>,
) -> ApiResult<Json<Value>> {
    let body = body.unwrap_or_default();
    let user = caller(&state, &principal).await?;
    if !user.two_factor.enabled {
        return Err(ApiError::conflict(
            "two_factor_disabled",
            "two-factor sign-in is already off",
        ));
    }
    crate::auth::verify_current_password(
        &state,
        &accounts.settings,
        &principal,
        body.password.as_deref(),
    )
    .await
    .map_err(|e| match e {
        ApiError::Validation { .. } => ApiError::field("password", "is incorrect"),
        other => other,
    })?;
    let code = body.code.unwrap_or_default();
    let Some(user) = consume_code(&state, &user, &code).await? else {
        return Err(ApiError::field("code", "is not a current or backup code"));
    };
    let mut next = store::bumped(user);
    next.two_factor = Default::default();
    store::save_user(&state, &next).await?;
    Ok(Json(
        json!({ "two_factor_enabled": false, "message": "two-factor sign-in is off" }),
    ))
}

/// Uses a TOTP code (once per step) or a backup code (once) of `user`; the user as saved,
/// or `None` when the code is wrong or already used. The use is a conditional write, so a
/// code replayed concurrently works only once.
pub async fn consume_code(state: &AppState, user: &User, code: &str) -> ApiResult<Option<User>> {
    let two = &user.two_factor;
    let Some(secret) = two.secret.as_deref().and_then(totp::decode_base32) else {
        return Ok(None);
    };
    let mut next = store::bumped(user.clone());
    if let Some(step) = totp::verify(&secret, code, clock::now().unix_timestamp(), two.last_step) {
        next.two_factor.last_step = Some(step);
    } else {
        let digest = hash_backup_code(&user.id, code);
        let before = next.two_factor.backup_codes.len();
        next.two_factor.backup_codes.retain(|d| *d != digest);
        if next.two_factor.backup_codes.len() == before {
            return Ok(None);
        }
    }
    match store::save_user(state, &next).await {
        Ok(()) => Ok(Some(next)),
        Err(ApiError::Conflict { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}
