//! Typed configuration, read once at cold start.
//!
//! A missing or malformed variable stops start-up with a sentence that names it.

use std::fmt;

use axum::http::HeaderValue;

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    /// The raw value of `name`, if set and not empty.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name).filter(|v| !v.trim().is_empty())
    }
}

/// Start-up failed because of one variable; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong, as the end of a sentence.
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The settings every function shares.
#[derive(Debug, Clone)]
pub struct Config {
    /// The core table (departments, agents, calls, transfers, event log): `TABLE_NAME`.
    pub table_name: String,
    /// Verifies access tokens: `JWT_ISSUER` (default `vocelio`), `JWT_AUDIENCE` (default
    /// `vocelio-api`), `JWT_PUBLIC_KEYS` (a JWKS of the accounts function's public keys)
    /// and/or `JWKS_URL` (where it publishes them), `JWT_MAX_LIFETIME_SECONDS` (default one
    /// day: older tokens are refused whatever their `exp`), `JWKS_CACHE_SECONDS` (300).
    pub tokens: std::sync::Arc<crate::jwt::TokenVerifier>,
    /// Browser origins allowed by CORS: `CORS_ALLOWED_ORIGINS` (comma-separated).
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Region used for phone numbers typed without a country code: `DEFAULT_PHONE_REGION`.
    pub default_phone_region: phonenumber::country::Id,
    /// How long domain events stay in the event log: `EVENT_TTL_HOURS`.
    pub event_ttl_hours: u32,
    /// How long an `Idempotency-Key` is remembered: `IDEMPOTENCY_TTL_HOURS`.
    pub idempotency_ttl_hours: u32,
    /// Seconds an agent has to accept an offered transfer: `OFFER_TIMEOUT_SECONDS`.
    pub offer_timeout_seconds: u32,
    /// Seconds of wrap-up after a completed transfer (0: straight to available):
    /// `WRAP_UP_SECONDS`.
    pub wrap_up_seconds: u32,
    /// Handle time assumed for wait estimates before a department has history:
    /// `DEFAULT_HANDLE_SECONDS`.
    pub default_handle_seconds: u32,
    /// Price of an AI-handled minute: `AI_PRICE_PER_MINUTE`.
    pub ai_price_per_minute: f64,
    /// Price of a human-handled minute: `HUMAN_PRICE_PER_MINUTE`.
    pub human_price_per_minute: f64,
    /// How often an SSE stream reads the event log, in milliseconds: `SSE_POLL_MILLIS`.
    pub sse_poll_millis: u32,
    /// How long one SSE response lasts before the browser reconnects: `SSE_MAX_SECONDS`
    /// (below the function's timeout on AWS).
    pub sse_max_seconds: u32,
    /// The WebSocket connections table: `CONNECTIONS_TABLE` (the realtime function only).
    pub connections_table: Option<String>,
    /// Where the API Gateway management API (`@connections`) is reached:
    /// `WEBSOCKET_CALLBACK_URL`. Unset on AWS: each connection's `https://{domainName}/{stage}`
    /// is taken from its `$connect` event. Set for custom domains and the local stack.
    pub websocket_callback_url: Option<String>,
    /// How many `PostToConnection` calls one fan-out runs at once: `WEBSOCKET_FANOUT_CONCURRENCY`.
    pub websocket_fanout_concurrency: u32,
}

/// The Vite dev and preview servers, allowed when `CORS_ALLOWED_ORIGINS` is unset.
pub const DEFAULT_CORS_ORIGINS: &str = "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173,http://localhost:4173,http://127.0.0.1:4173";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads the configuration from any source (tests pass a closure).
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let table_name = required(source, "TABLE_NAME")?;
        if !(3..=255).contains(&table_name.len())
            || !table_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(ConfigError::new(
                "TABLE_NAME",
                "must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)",
            ));
        }
        let tokens = token_verifier(source)?;
        let origins = source
            .get("CORS_ALLOWED_ORIGINS")
            .unwrap_or_else(|| DEFAULT_CORS_ORIGINS.to_owned());
        let cors_allowed_origins = parse_origins(&origins)?;
        let region = source
            .get("DEFAULT_PHONE_REGION")
            .unwrap_or_else(|| "US".to_owned());
        let default_phone_region = region.trim().to_ascii_uppercase().parse().map_err(|_| {
            ConfigError::new(
                "DEFAULT_PHONE_REGION",
                format!("must be an ISO 3166 region code such as US or GB, not {region:?}"),
            )
        })?;
        Ok(Self {
            table_name,
            tokens,
            cors_allowed_origins,
            default_phone_region,
            event_ttl_hours: number(source, "EVENT_TTL_HOURS", 72, 1..=24 * 365)?,
            idempotency_ttl_hours: number(source, "IDEMPOTENCY_TTL_HOURS", 24, 1..=24 * 30)?,
            offer_timeout_seconds: number(source, "OFFER_TIMEOUT_SECONDS", 30, 5..=3600)?,
            wrap_up_seconds: number(source, "WRAP_UP_SECONDS", 0, 0..=3600)?,
            default_handle_seconds: number(source, "DEFAULT_HANDLE_SECONDS", 180, 1..=7200)?,
            ai_price_per_minute: price(source, "AI_PRICE_PER_MINUTE", 0.05)?,
            human_price_per_minute: price(source, "HUMAN_PRICE_PER_MINUTE", 0.50)?,
            sse_poll_millis: number(source, "SSE_POLL_MILLIS", 500, 100..=10_000)?,
            sse_max_seconds: number(source, "SSE_MAX_SECONDS", 870, 5..=86_400)?,
            connections_table: source.get("CONNECTIONS_TABLE"),
            websocket_callback_url: callback_url(source)?,
            websocket_fanout_concurrency: number(
                source,
                "WEBSOCKET_FANOUT_CONCURRENCY",
                64,
                1..=1024,
            )?,
        })
    }
}

fn token_verifier(
    source: &dyn Source,
) -> Result<std::sync::Arc<crate::jwt::TokenVerifier>, ConfigError> {
    let jwks_url = match source.get("JWKS_URL") {
        Some(url) if url.starts_with("https://") => Some(url),
        // Plain HTTP only off Lambda (the local stack): on AWS it would let a network
        // attacker hand out keys.
        Some(url) if url.starts_with("http://") && !crate::jwt::on_lambda() => Some(url),
        Some(url) => {
            return Err(ConfigError::new(
                "JWKS_URL",
                format!("must be an https URL, not {url:?}"),
            ));
        }
        None => None,
    };
    let settings = crate::jwt::VerifierSettings {
        issuer: source.get("JWT_ISSUER").unwrap_or_else(|| "vocelio".into()),
        audience: source
            .get("JWT_AUDIENCE")
            .unwrap_or_else(|| "vocelio-api".into()),
        max_lifetime_seconds: i64::from(number(
            source,
            "JWT_MAX_LIFETIME_SECONDS",
            86_400,
            60..=30 * 86_400,
        )?),
        public_keys: source.get("JWT_PUBLIC_KEYS"),
        jwks_url,
        cache_for: std::time::Duration::from_secs(u64::from(number(
            source,
            "JWKS_CACHE_SECONDS",
            300,
            1..=86_400,
        )?)),
    };
    crate::jwt::TokenVerifier::new(settings)
        .map(std::sync::Arc::new)
        .map_err(|e| ConfigError::new("JWT_PUBLIC_KEYS", e.0))
}

fn callback_url(source: &dyn Source) -> Result<Option<String>, ConfigError> {
    let Some(raw) = source.get("WEBSOCKET_CALLBACK_URL") else {
        return Ok(None);
    };
    let url = raw.trim().trim_end_matches('/');
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(Some(url.to_owned()))
    } else {
        Err(ConfigError::new(
            "WEBSOCKET_CALLBACK_URL",
            format!(
                "must be an http(s) URL such as https://abc.execute-api.us-east-1.amazonaws.com/live, not {raw:?}"
            ),
        ))
    }
}

fn required(source: &dyn Source, name: &'static str) -> Result<String, ConfigError> {
    source
        .get(name)
        .ok_or_else(|| ConfigError::new(name, "is not set"))
}

fn number(
    source: &dyn Source,
    name: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(raw) = source.get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            name,
            format!(
                "must be a whole number from {} to {}, not {raw:?}",
                range.start(),
                range.end()
            ),
        )),
    }
}

fn price(source: &dyn Source, name: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(raw) = source.get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(ConfigError::new(
            name,
            format!("must be a price from 0 to 100, not {raw:?}"),
        )),
    }
}

fn parse_origins(raw: &str) -> Result<Vec<HeaderValue>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let well_formed = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/');
            if !well_formed {
                return Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("must list origins like https://app.example.com, not {origin:?}"),
                ));
            }
            HeaderValue::from_str(origin).map_err(|_| {
                ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("has a bad origin {origin:?}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn source(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn jwks() -> &'static str {
        static JWKS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        JWKS.get_or_init(|| {
            crate::jwt::SigningKeys::generate("t1")
                .unwrap()
                .jwks()
                .to_string()
        })
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Config::from_source(&source(&[("JWT_PUBLIC_KEYS", jwks())])).unwrap_err();
        assert_eq!(err.variable, "TABLE_NAME");
        assert!(err.to_string().contains("TABLE_NAME is not set"));
    }

    #[test]
    fn verification_keys_are_required_and_checked() {
        let err = Config::from_source(&source(&[("TABLE_NAME", "core")])).unwrap_err();
        assert_eq!(err.variable, "JWT_PUBLIC_KEYS");
        let err = Config::from_source(&source(&[
            ("TABLE_NAME", "core"),
            ("JWT_PUBLIC_KEYS", "{not json"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "JWT_PUBLIC_KEYS");
    }

    #[test]
    fn defaults_apply_and_malformed_values_are_named() {
        let cfg = Config::from_source(&source(&[
            ("TABLE_NAME", "core"),
            ("JWT_PUBLIC_KEYS", jwks()),
        ]))
        .unwrap();
        assert_eq!(cfg.cors_allowed_origins.len(), 6);
        assert_eq!(cfg.default_phone_region, phonenumber::country::Id::US);
        assert_eq!(cfg.event_ttl_hours, 72);
        assert_eq!(cfg.tokens.issuer(), "vocelio");

        let err = Config::from_source(&source(&[
            ("TABLE_NAME", "core"),
            ("JWT_PUBLIC_KEYS", jwks()),
            ("EVENT_TTL_HOURS", "soon"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "EVENT_TTL_HOURS");
        let err = Config::from_source(&source(&[
            ("TABLE_NAME", "core"),
            ("JWT_PUBLIC_KEYS", jwks()),
            ("DEFAULT_PHONE_REGION", "Narnia"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "DEFAULT_PHONE_REGION");
        let err = Config::from_source(&source(&[
            ("TABLE_NAME", "core"),
            ("JWT_PUBLIC_KEYS", jwks()),
            ("CORS_ALLOWED_ORIGINS", "localhost:5173"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "CORS_ALLOWED_ORIGINS");
    }
}
