//! The accounts function's settings, read once at cold start.

use vocelio_shared::config::{ConfigError, Source};

/// Token lifetimes, throttles and links.
#[derive(Debug, Clone)]
pub struct AccountsSettings {
    /// `iss` of issued tokens: `JWT_ISSUER` (default `vocelio`; verifiers expect the same).
    pub issuer: String,
    /// `aud` of issued tokens: `JWT_AUDIENCE` (default `vocelio-api`).
    pub audience: String,
    /// Access-token lifetime: `ACCESS_TOKEN_TTL_SECONDS` (900).
    pub access_ttl_seconds: i64,
    /// A refresh token unused this long stops working: `REFRESH_TOKEN_IDLE_DAYS` (30).
    pub refresh_idle_seconds: i64,
    /// A refresh token presented again within this many seconds of its rotation (two tabs
    /// refreshing at once) is refused without revoking its session; later, the whole
    /// session is revoked as stolen: `REFRESH_REUSE_GRACE_SECONDS` (10; 0 = never).
    pub refresh_reuse_grace_seconds: i64,
    /// A password-reset link works this long: `PASSWORD_RESET_TTL_SECONDS` (3600).
    pub reset_ttl_seconds: i64,
    /// An invitation works this long: `INVITATION_TTL_HOURS` (168).
    pub invitation_ttl_seconds: i64,
    /// Where the app is, for links in emails: `APP_BASE_URL` (`http://localhost:3000`).
    pub app_base_url: String,
    /// Failed sign-ins of one account before it is slowed down: `LOGIN_ACCOUNT_FAILURES` (5).
    pub account_failures: u32,
    /// Failed sign-ins from one client address before it is slowed down:
    /// `LOGIN_ADDRESS_FAILURES` (50).
    pub address_failures: u32,
    /// The longest a throttled account or address waits: `LOGIN_MAX_LOCK_SECONDS` (900).
    pub max_lock_seconds: i64,
    /// Failures older than this are forgotten: `LOGIN_FAILURE_WINDOW_SECONDS` (3600).
    pub failure_window_seconds: i64,
    /// The issuer shown in authenticator apps: `TOTP_ISSUER` (`Vocelio`).
    pub totp_issuer: String,
    /// Seats of a new organisation: `DEFAULT_MAX_TEAM_SIZE` (25).
    pub max_team_size: u32,
    /// Sign-ups, password resets, reset emails and invitation acceptances allowed per client
    /// address and hour, each: `ANONYMOUS_ACTIONS_PER_HOUR` (20).
    pub anonymous_actions_per_hour: u32,
}

impl AccountsSettings {
    /// Reads the settings; a malformed value stops start-up with its name.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let number =
            |name: &'static str, default: i64, range: std::ops::RangeInclusive<i64>| match source
                .get(name)
            {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|v| range.contains(v))
                    .ok_or_else(|| ConfigError {
                        variable: name,
                        problem: format!(
                            "must be a whole number from {} to {}, not {raw:?}",
                            range.start(),
                            range.end()
                        ),
                    }),
            };
        let app_base_url = source
            .get("APP_BASE_URL")
            .unwrap_or_else(|| "http://localhost:3000".into())
            .trim_end_matches('/')
            .to_owned();
        if !(app_base_url.starts_with("https://") || app_base_url.starts_with("http://")) {
            return Err(ConfigError {
                variable: "APP_BASE_URL",
                problem: format!("must be an http(s) URL, not {app_base_url:?}"),
            });
        }
        Ok(Self {
            issuer: source.get("JWT_ISSUER").unwrap_or_else(|| "vocelio".into()),
            audience: source
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "vocelio-api".into()),
            access_ttl_seconds: number("ACCESS_TOKEN_TTL_SECONDS", 900, 60..=86_400)?,
            refresh_idle_seconds: number("REFRESH_TOKEN_IDLE_DAYS", 30, 1..=365)? * 86_400,
            refresh_reuse_grace_seconds: number("REFRESH_REUSE_GRACE_SECONDS", 10, 0..=120)?,
            reset_ttl_seconds: number("PASSWORD_RESET_TTL_SECONDS", 3600, 300..=86_400)?,
            invitation_ttl_seconds: number("INVITATION_TTL_HOURS", 168, 1..=720)? * 3600,
            app_base_url,
            account_failures: number("LOGIN_ACCOUNT_FAILURES", 5, 1..=100)? as u32,
            address_failures: number("LOGIN_ADDRESS_FAILURES", 50, 1..=10_000)? as u32,
            max_lock_seconds: number("LOGIN_MAX_LOCK_SECONDS", 900, 1..=86_400)?,
            failure_window_seconds: number("LOGIN_FAILURE_WINDOW_SECONDS", 3600, 60..=86_400)?,
            totp_issuer: source
                .get("TOTP_ISSUER")
                .unwrap_or_else(|| "Vocelio".into()),
            max_team_size: number("DEFAULT_MAX_TEAM_SIZE", 25, 1..=10_000)? as u32,
            anonymous_actions_per_hour: number("ANONYMOUS_ACTIONS_PER_HOUR", 20, 1..=100_000)?
                as u32,
        })
    }
}
