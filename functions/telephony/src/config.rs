//! The telephony adapter's settings: Twilio credentials and where its API is, the public
//! URL of our webhooks, hold music, timeouts. Read once at cold start.

use std::time::Duration;

use vocelio_shared::config::{ConfigError, Env, Secret, Source};

/// Twilio's own hold music (its default `waitUrl` collection).
pub const DEFAULT_HOLD_MUSIC: &str =
    "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3";

/// Twilio credentials.
#[derive(Debug, Clone)]
pub struct TwilioCredentials {
    /// `TWILIO_ACCOUNT_SID` (`AC` + 32 hex).
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`: Basic auth to the API and the key of `X-Twilio-Signature`.
    pub auth_token: Secret,
}

/// Everything the telephony function reads from its environment.
#[derive(Debug, Clone)]
pub struct TelephonyConfig {
    /// Both set, or neither (then every telephony route answers 503).
    pub credentials: Option<TwilioCredentials>,
    /// `TWILIO_API_BASE` (default `https://api.twilio.com`; the simulator locally).
    pub api_base: String,
    /// `TWILIO_PHONE_NUMBER`: the caller ID of outbound calls when the request names none.
    pub phone_number: Option<String>,
    /// `TWILIO_WEBHOOK_BASE_URL`: the public base URL of the webhook function (its function
    /// URL or custom domain); Twilio calls `{base}/twilio/...`.
    pub webhook_base_url: Option<String>,
    /// `HOLD_MUSIC_URL`: what a caller waiting for an agent hears (a conference `waitUrl`).
    pub hold_music_url: String,
    /// `TWILIO_TIMEOUT_SECONDS` (default 10): one request to Twilio.
    pub timeout: Duration,
    /// `TWILIO_STATUS_STALE_SECONDS` (default 30): a live call's status older than this is
    /// re-read from Twilio by `GET /api/calls/{sid}/status`.
    pub stale_after: Duration,
    /// `AGENT_RING_SECONDS` (default 20): how long an agent's leg rings.
    pub agent_ring_seconds: u32,
    /// `AGENT_DIAL_TARGET` (default `client:{agent_id}`, the agent's softphone): what an
    /// agent's leg dials; `{agent_id}` is replaced.
    pub agent_dial_target: String,
    /// `TWILIO_SAY_VOICE` (optional, e.g. `Polly.Joanna`): the `<Say>` voice.
    pub say_voice: Option<String>,
}

fn bad(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_owned(),
    }
}

fn url(source: &dyn Source, name: &'static str) -> Result<Option<String>, ConfigError> {
    match source.get(name) {
        None => Ok(None),
        Some(raw) => {
            let raw = raw.trim().trim_end_matches('/').to_owned();
            match url::Url::parse(&raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Ok(Some(raw))
                }
                _ => Err(bad(name, "must be an http(s) URL")),
            }
        }
    }
}

fn number<T: std::str::FromStr + PartialOrd>(
    source: &dyn Source,
    name: &'static str,
    default: T,
    range: (T, T),
) -> Result<T, ConfigError> {
    match source.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .ok()
            .filter(|v| *v >= range.0 && *v <= range.1)
            .ok_or_else(|| bad(name, "is out of range")),
    }
}

impl TelephonyConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads any source (tests and the local stack pass closures).
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let credentials = match (
            source.get("TWILIO_ACCOUNT_SID"),
            source.get("TWILIO_AUTH_TOKEN"),
        ) {
            (Some(sid), Some(token)) => {
                let sid = sid.trim().to_owned();
                if !crate::callback::is_sid("AC", &sid) {
                    return Err(bad(
                        "TWILIO_ACCOUNT_SID",
                        "must be AC followed by 32 hex digits",
                    ));
                }
                Some(TwilioCredentials {
                    account_sid: sid,
                    auth_token: Secret::new(token.trim()),
                })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "TWILIO_AUTH_TOKEN",
                    "is required with TWILIO_ACCOUNT_SID",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "TWILIO_ACCOUNT_SID",
                    "is required with TWILIO_AUTH_TOKEN",
                ));
            }
        };
        let phone_number = match source.get("TWILIO_PHONE_NUMBER") {
            None => None,
            Some(raw) => Some(
                vocelio_shared::phone::normalize(&raw, vocelio_shared::phone::Region::US)
                    .map_err(|e| bad("TWILIO_PHONE_NUMBER", &e.to_string()))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let agent_dial_target = source
            .get("AGENT_DIAL_TARGET")
            .unwrap_or_else(|| "client:{agent_id}".to_owned());
        if !agent_dial_target.contains("{agent_id}") && !agent_dial_target.starts_with('+') {
            return Err(bad(
                "AGENT_DIAL_TARGET",
                "must contain {agent_id} (e.g. client:{agent_id}) or be a number",
            ));
        }
        Ok(Self {
            credentials,
            api_base: url(source, "TWILIO_API_BASE")?
                .unwrap_or_else(|| "https://api.twilio.com".to_owned()),
            phone_number,
            webhook_base_url: url(source, "TWILIO_WEBHOOK_BASE_URL")?,
            hold_music_url: url(source, "HOLD_MUSIC_URL")?
                .unwrap_or_else(|| DEFAULT_HOLD_MUSIC.to_owned()),
            timeout: Duration::from_secs(number(source, "TWILIO_TIMEOUT_SECONDS", 10, (1, 60))?),
            stale_after: Duration::from_secs(number(
                source,
                "TWILIO_STATUS_STALE_SECONDS",
                30,
                (1, 3600),
            )?),
            agent_ring_seconds: number(source, "AGENT_RING_SECONDS", 20, (5, 120))?,
            agent_dial_target,
            say_voice: source.get("TWILIO_SAY_VOICE").map(|v| v.trim().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<TelephonyConfig, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TelephonyConfig::from_source(&move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn credentials_come_in_pairs_and_urls_are_checked() {
        let none = read(&[]).expect("defaults");
        assert!(none.credentials.is_none());
        assert_eq!(none.api_base, "https://api.twilio.com");
        assert_eq!(none.agent_dial_target, "client:{agent_id}");
        assert!(read(&[("TWILIO_ACCOUNT_SID", "ACc0ffee00000000000000000000000000")]).is_err());
        assert!(read(&[("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_AUTH_TOKEN", "t")]).is_err());
        assert!(read(&[("TWILIO_WEBHOOK_BASE_URL", "hooks.example.com")]).is_err());
        let full = read(&[
            ("TWILIO_ACCOUNT_SID", "ACc0ffee00000000000000000000000000"),
            ("TWILIO_AUTH_TOKEN", "secret"),
            ("TWILIO_PHONE_NUMBER", "+1 (415) 555-0100"),
            ("TWILIO_WEBHOOK_BASE_URL", "https://hooks.example.com/"),
        ])
        .expect("valid");
        assert_eq!(full.phone_number.as_deref(), Some("+14155550100"));
        assert_eq!(
            full.webhook_base_url.as_deref(),
            Some("https://hooks.example.com")
        );
    }
}
