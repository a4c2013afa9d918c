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
    /// `TWILIO_SUBACCOUNTS` (default `true`): one Twilio subaccount per tenant, created by
    /// our (parent) account on first use. `false`: a deployment for one organisation uses
    /// its own account directly.
    pub subaccounts: bool,
    /// `TELEPHONY_SECRETS_KEY` (base64 of 32 random bytes; required with credentials): the
    /// master key of [`crate::seal::Keys`].
    pub keys: Option<crate::seal::Keys>,
    /// The platform's dialling rules and quotas (see [`DialLimits`]).
    pub limits: DialLimits,
    /// `LEG_CHECK_SECONDS` (default 60): how often the reconciler re-reads a live agent
    /// leg from Twilio in case its reports were lost.
    pub leg_check_seconds: u64,
}

/// The operator's rules for every tenant's outbound calls (a tenant may narrow them).
#[derive(Debug, Clone, PartialEq)]
pub struct DialLimits {
    /// `DIAL_ALLOWED_COUNTRIES` (comma-separated ISO 3166 codes, e.g. `US,CA,GB`; default:
    /// `DEFAULT_PHONE_REGION`): the only countries any tenant may dial. Countries, not
    /// calling codes: `+1` alone is some twenty-five countries (Jamaica's `+1 876` among
    /// them).
    pub allowed_countries: Vec<String>,
    /// `DIAL_DENY_PREFIXES` (comma-separated E.164 prefixes; default [`DEFAULT_DENY_PREFIXES`]):
    /// never dialled, whatever a tenant allows.
    pub deny_prefixes: Vec<String>,
    /// `CALLS_PER_MINUTE` (default 20): calls a tenant may start per minute.
    pub calls_per_minute: u32,
    /// `MAX_CONCURRENT_CALLS` (default 10): a tenant's outbound calls live at once.
    pub concurrent_calls: u32,
    /// `CALL_MINUTES_PER_DAY` (default 600): outbound minutes a tenant may use per UTC day.
    pub minutes_per_day: u32,
    /// `MAX_NUMBERS_PER_TENANT` (default 100): numbers a tenant may own (each one is a
    /// monthly charge at Twilio).
    pub numbers_per_tenant: u32,
    /// `MAX_CALL_SECONDS` (default 3,600): the longest an outbound call may last (Twilio's
    /// `TimeLimit`); that much of the day's minutes is reserved when the call starts and
    /// what it did not use is given back when it ends.
    pub max_call_seconds: u32,
}

/// Prefixes refused by default: the North American premium area code 900 and the ranges
/// most abused for international revenue share fraud (satellite and "international
/// networks" codes). (The 976 premium exchange of every area code is refused by its
/// pattern, see [`crate::policy`].)
pub const DEFAULT_DENY_PREFIXES: &[&str] =
    &["+1900", "+881", "+882", "+883", "+870", "+979", "+808"];

fn list<T>(
    source: &dyn Source,
    name: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(raw) = source.get(name) else {
        return Ok(None);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse(s).ok_or_else(|| bad(name, &format!("{s:?} is not valid"))))
        .collect::<Result<Vec<T>, _>>()
        .map(Some)
}

impl DialLimits {
    fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let home = source
            .get("DEFAULT_PHONE_REGION")
            .and_then(|r| r.trim().to_ascii_uppercase().parse().ok())
            .unwrap_or(vocelio_shared::phone::Region::US);
        let allowed_countries = list(source, "DIAL_ALLOWED_COUNTRIES", |s| {
            let code = s.to_ascii_uppercase();
            code.parse::<vocelio_shared::phone::Region>()
                .ok()
                .map(|_| code)
        })?
        .unwrap_or_else(|| vec![home.as_ref().to_owned()]);
        let deny_prefixes = list(source, "DIAL_DENY_PREFIXES", |s| {
            (s.starts_with('+') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.to_owned())
        })?
        .unwrap_or_else(|| {
            DEFAULT_DENY_PREFIXES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        Ok(Self {
            allowed_countries,
            deny_prefixes,
            calls_per_minute: number(source, "CALLS_PER_MINUTE", 20, (1, 100_000))?,
            concurrent_calls: number(source, "MAX_CONCURRENT_CALLS", 10, (1, 100_000))?,
            minutes_per_day: number(source, "CALL_MINUTES_PER_DAY", 600, (1, 10_000_000))?,
            max_call_seconds: number(source, "MAX_CALL_SECONDS", 3_600, (60, 86_400))?,
            numbers_per_tenant: number(source, "MAX_NUMBERS_PER_TENANT", 100, (1, 100_000))?,
        })
    }
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
            .unwrap_or_else(|| "client:{identity}".to_owned());
        if !agent_dial_target.contains("{identity}")
            && !agent_dial_target.contains("{agent_id}")
            && !agent_dial_target.starts_with('+')
        {
            return Err(bad(
                "AGENT_DIAL_TARGET",
                "must contain {identity} (e.g. client:{identity}) or {agent_id}, or be a number",
            ));
        }
        let keys = match source.get("TELEPHONY_SECRETS_KEY") {
            Some(raw) => Some(
                crate::seal::Keys::from_base64(&raw)
                    .map_err(|e| bad("TELEPHONY_SECRETS_KEY", &e))?,
            ),
            None if credentials.is_some() => {
                return Err(bad(
                    "TELEPHONY_SECRETS_KEY",
                    "is required with Twilio credentials (base64 of 32 random bytes)",
                ));
            }
            None => None,
        };
        let subaccounts = match source.get("TWILIO_SUBACCOUNTS").as_deref().map(str::trim) {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(bad("TWILIO_SUBACCOUNTS", "must be true or false")),
        };
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
            subaccounts,
            keys,
            limits: DialLimits::from_source(source)?,
            leg_check_seconds: number(source, "LEG_CHECK_SECONDS", 60, (1, 3600))?,
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
        assert_eq!(none.agent_dial_target, "client:{identity}");
        assert!(none.subaccounts);
        assert_eq!(none.limits.allowed_countries, vec!["US".to_owned()]);
        assert!(none.limits.deny_prefixes.contains(&"+1900".to_owned()));
        let narrowed = read(&[
            ("DIAL_ALLOWED_COUNTRIES", "us, GB"),
            ("DIAL_DENY_PREFIXES", "+4470"),
            ("CALLS_PER_MINUTE", "3"),
        ])
        .expect("valid");
        assert_eq!(
            narrowed.limits.allowed_countries,
            vec!["US".to_owned(), "GB".to_owned()]
        );
        assert!(read(&[("DIAL_ALLOWED_COUNTRIES", "USA")]).is_err());
        assert_eq!(narrowed.limits.deny_prefixes, vec!["+4470".to_owned()]);
        assert_eq!(narrowed.limits.calls_per_minute, 3);
        assert!(read(&[("DIAL_DENY_PREFIXES", "4470")]).is_err());
        assert!(read(&[("TWILIO_SUBACCOUNTS", "maybe")]).is_err());
        assert!(read(&[("TWILIO_ACCOUNT_SID", "ACc0ffee00000000000000000000000000")]).is_err());
        assert!(read(&[("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_AUTH_TOKEN", "t")]).is_err());
        // Credentials without the master key of our own secrets: refused at start-up.
        assert!(
            read(&[
                ("TWILIO_ACCOUNT_SID", "ACc0ffee00000000000000000000000000"),
                ("TWILIO_AUTH_TOKEN", "secret"),
            ])
            .is_err()
        );
        assert!(read(&[("TWILIO_WEBHOOK_BASE_URL", "hooks.example.com")]).is_err());
        let full = read(&[
            ("TWILIO_ACCOUNT_SID", "ACc0ffee00000000000000000000000000"),
            ("TWILIO_AUTH_TOKEN", "secret"),
            ("TWILIO_PHONE_NUMBER", "+1 (415) 555-0100"),
            ("TWILIO_WEBHOOK_BASE_URL", "https://hooks.example.com/"),
            (
                "TELEPHONY_SECRETS_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ])
        .expect("valid");
        assert!(full.keys.is_some());
        assert_eq!(full.phone_number.as_deref(), Some("+14155550100"));
        assert_eq!(
            full.webhook_base_url.as_deref(),
            Some("https://hooks.example.com")
        );
    }
}
