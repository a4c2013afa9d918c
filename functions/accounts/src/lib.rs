//! The accounts function: the backend's identity provider. Sign-up, sign-in with TOTP
//! two-factor, rotating refresh tokens with stolen-token detection, password change and
//! reset, organisations, users and invitations, API keys, and the public keys
//! (`/.well-known/jwks.json`) every other function verifies access tokens with. It is the
//! only function that holds the token signing key.

use std::sync::{Arc, RwLock};

use axum::routing::{delete, get, patch, post, put};
use axum::{Extension, Router};
use vocelio_shared::AppState;
use vocelio_shared::config::ConfigError;
use vocelio_shared::http::{finish, health_routes};
use vocelio_shared::jwt::SigningKeys;

pub mod apikeys;
pub mod auth;
pub mod mail;
pub mod orgs;
pub mod password;
pub mod principal;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod throttle;
pub mod totp;
pub mod twofactor;

pub use mail::{Email, Mailer};
pub use settings::AccountsSettings;

/// The name of this function in health answers.
pub const SERVICE: &str = "accounts";

/// What the accounts routes share: the signing keys, the settings, the mailer.
#[derive(Clone)]
pub struct Accounts {
    /// Settings read at cold start.
    pub settings: Arc<AccountsSettings>,
    /// The signing keys; behind a lock so a rotation takes effect without a restart.
    pub keys: Arc<RwLock<SigningKeys>>,
    /// Where account emails go.
    pub mailer: Mailer,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// The accounts state from its settings, signing keys and mailer; refuses a local
    /// development key on Lambda.
    pub fn new(
        settings: AccountsSettings,
        keys: SigningKeys,
        mailer: Mailer,
    ) -> Result<Self, ConfigError> {
        if vocelio_shared::jwt::on_lambda() && keys.has_local_keys() {
            return Err(ConfigError {
                variable: "JWT_SIGNING_KEYS",
                problem: "holds a local development key, which Lambda refuses".into(),
            });
        }
        Ok(Self {
            settings: Arc::new(settings),
            keys: Arc::new(RwLock::new(keys)),
            mailer,
        })
    }

    /// The public JWKS of the current keys.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys
            .read()
            .map(|k| k.jwks())
            .unwrap_or_else(|_| serde_json::json!({ "keys": [] }))
    }
}

/// Every accounts route, aliases included.
pub fn routes(accounts: Accounts) -> Router<AppState> {
    let keys = Router::new()
        .route("/", get(apikeys::list).post(apikeys::create))
        .route("/{key_id}", delete(apikeys::revoke));
    Router::new()
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/login-2fa", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/profile", put(auth::update_profile))
        .route("/auth/password-reset", post(auth::change_password))
        .route("/auth/forgot-password", post(auth::forgot_password))
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/sessions", get(auth::list_sessions))
        .route("/auth/sessions/{session_id}", delete(auth::revoke_session))
        .route("/auth/two-factor/setup", post(twofactor::setup))
        .route("/auth/two-factor/verify", post(twofactor::verify))
        .route("/auth/two-factor/disable", post(twofactor::disable))
        .route("/auth/invitations/accept", post(orgs::accept_invitation))
        .route("/organizations/{org_id}", get(orgs::get_organization))
        .route(
            "/organizations/{org_id}/settings",
            put(orgs::update_settings),
        )
        .route(
            "/organizations/{org_id}/users",
            get(orgs::list_users).post(orgs::invite_user),
        )
        .route(
            "/organizations/{org_id}/users/{user_id}",
            patch(orgs::change_role).delete(orgs::remove_user),
        )
        .nest("/settings/api-keys", keys.clone())
        .nest("/api-keys", keys)
        .layer(Extension(accounts))
}

/// The finished router, as Lambda runs it.
pub fn router(state: AppState, accounts: Accounts) -> Router {
    finish(
        routes(accounts).merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}

/// The cold-start path on Lambda: the shared state, the settings, and the signing keys
/// from `JWT_SIGNING_KEYS` (or its Secrets Manager secret, `JWT_SIGNING_KEYS_SECRET_ARN`).
pub async fn from_env() -> Result<(AppState, Accounts), Box<dyn std::error::Error + Send + Sync>> {
    let secrets = vocelio_shared::secrets::resolve_from_env(&["JWT_SIGNING_KEYS"]).await?;
    let env = move |name: &str| {
        secrets
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    };
    let state = AppState::from_env().await?;
    let settings = AccountsSettings::from_source(&env)?;
    let raw = env("JWT_SIGNING_KEYS").ok_or(ConfigError {
        variable: "JWT_SIGNING_KEYS",
        problem: "is not set (or JWT_SIGNING_KEYS_SECRET_ARN)".into(),
    })?;
    let keys = SigningKeys::from_json(&raw).map_err(|e| ConfigError {
        variable: "JWT_SIGNING_KEYS",
        problem: e.0,
    })?;
    let accounts = Accounts::new(settings, keys, Mailer::from_source(&env))?;
    Ok((state, accounts))
}
