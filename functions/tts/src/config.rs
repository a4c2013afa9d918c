//! The TTS function's own settings: the bucket, provider credentials and base URLs, tiers
//! and their prices, limits. Read once at cold start, like the shared configuration.

use vocelio_shared::config::{ConfigError, Env, Source};

pub use vocelio_shared::config::Secret;

use crate::provider::ProviderKind;

/// Azure Speech credentials and where to reach it.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// `AZURE_SPEECH_KEY`.
    pub key: Secret,
    /// `AZURE_SPEECH_ENDPOINT`, else `https://{AZURE_SPEECH_REGION}.tts.speech.microsoft.com`.
    pub base_url: String,
}

/// ElevenLabs credentials and where to reach it.
#[derive(Debug, Clone)]
pub struct ElevenLabsSettings {
    /// `ELEVENLABS_API_KEY`.
    pub key: Secret,
    /// `ELEVENLABS_BASE_URL` (default `https://api.elevenlabs.io`).
    pub base_url: String,
    /// `ELEVENLABS_MODEL_ID` (default `eleven_multilingual_v2`).
    pub model_id: String,
}

/// One voice tier as `/tiers` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub provider: ProviderKind,
    /// Price of a minute of synthesized audio, in the account currency.
    pub price_per_minute: f64,
    pub quality: String,
}

/// Everything the TTS function reads from its environment.
#[derive(Debug, Clone)]
pub struct TtsConfig {
    /// `AUDIO_BUCKET`: where synthesized audio is cached.
    pub audio_bucket: String,
    /// Set when `AZURE_SPEECH_KEY` is.
    pub azure: Option<AzureSettings>,
    /// Set when `ELEVENLABS_API_KEY` is.
    pub elevenlabs: Option<ElevenLabsSettings>,
    /// `LOCAL_TTS_ENABLED` (default true): serve the espeak-ng provider.
    pub local_enabled: bool,
    /// `ESPEAK_NG_PATH` (default `espeak-ng` on the PATH).
    pub espeak_path: String,
    /// `regular` (Azure), `premium` (ElevenLabs), `local` (espeak-ng), with
    /// `TTS_PRICE_<TIER>_PER_MINUTE` and `TTS_QUALITY_<TIER>`.
    pub tiers: Vec<(String, Tier)>,
    /// `TTS_DEFAULT_TIER` (default `regular`): the tier of `provider: "auto"` without `tier`.
    pub default_tier: String,
    /// `TTS_MAX_CHARACTERS` (default 5000): the longest text one request may synthesize.
    pub max_characters: usize,
    /// `TTS_URL_SECONDS` (default 3600): lifetime of presigned audio URLs.
    pub url_seconds: u64,
    /// `TTS_VOICES_CACHE_SECONDS` (default 3600): how long a provider's voice list is reused.
    pub voices_cache_seconds: u64,
    /// `TTS_PROVIDER_TIMEOUT_SECONDS` (default 20): one provider request, end to end.
    pub provider_timeout_seconds: u64,
}

fn bad(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_owned(),
    }
}

fn number<T: std::str::FromStr>(
    source: &dyn Source,
    name: &'static str,
    default: T,
    valid: impl Fn(&T) -> bool,
    rule: &str,
) -> Result<T, ConfigError> {
    match source.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .ok()
            .filter(|v| valid(v))
            .ok_or_else(|| bad(name, rule)),
    }
}

fn url(source: &dyn Source, name: &'static str) -> Result<Option<String>, ConfigError> {
    match source.get(name) {
        None => Ok(None),
        Some(raw) => {
            let raw = raw.trim().trim_end_matches('/').to_owned();
            if raw.starts_with("https://") || raw.starts_with("http://") {
                Ok(Some(raw))
            } else {
                Err(bad(name, "must be an http(s) URL"))
            }
        }
    }
}

impl TtsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads any source (tests and the local stack pass closures).
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let audio_bucket = source
            .get("AUDIO_BUCKET")
            .ok_or_else(|| bad("AUDIO_BUCKET", "is required (the S3 bucket for audio)"))?;
        let azure = match source.get("AZURE_SPEECH_KEY") {
            None => None,
            Some(key) => {
                let region = source
                    .get("AZURE_SPEECH_REGION")
                    .unwrap_or_else(|| "eastus".to_owned());
                if !region.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(bad(
                        "AZURE_SPEECH_REGION",
                        "must be a region name like eastus",
                    ));
                }
                let base_url = url(source, "AZURE_SPEECH_ENDPOINT")?
                    .unwrap_or_else(|| format!("https://{region}.tts.speech.microsoft.com"));
                Some(AzureSettings {
                    key: Secret::new(key.trim()),
                    base_url,
                })
            }
        };
        let elevenlabs = match source.get("ELEVENLABS_API_KEY") {
            None => None,
            Some(key) => Some(ElevenLabsSettings {
                key: Secret::new(key.trim()),
                base_url: url(source, "ELEVENLABS_BASE_URL")?
                    .unwrap_or_else(|| "https://api.elevenlabs.io".to_owned()),
                model_id: source
                    .get("ELEVENLABS_MODEL_ID")
                    .unwrap_or_else(|| "eleven_multilingual_v2".to_owned()),
            }),
        };
        let local_enabled = match source.get("LOCAL_TTS_ENABLED").as_deref() {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(_) => return Err(bad("LOCAL_TTS_ENABLED", "must be true or false")),
        };
        let price = |name: &'static str, default: f64| {
            number(
                source,
                name,
                default,
                |p: &f64| p.is_finite() && (0.0..=100.0).contains(p),
                "must be a price per minute between 0 and 100",
            )
        };
        let tiers = vec![
            (
                "regular".to_owned(),
                Tier {
                    provider: ProviderKind::Azure,
                    price_per_minute: price("TTS_PRICE_REGULAR_PER_MINUTE", 0.016)?,
                    quality: source
                        .get("TTS_QUALITY_REGULAR")
                        .unwrap_or_else(|| "standard".to_owned()),
                },
            ),
            (
                "premium".to_owned(),
                Tier {
                    provider: ProviderKind::ElevenLabs,
                    price_per_minute: price("TTS_PRICE_PREMIUM_PER_MINUTE", 0.24)?,
                    quality: source
                        .get("TTS_QUALITY_PREMIUM")
                        .unwrap_or_else(|| "premium".to_owned()),
                },
            ),
            (
                "local".to_owned(),
                Tier {
                    provider: ProviderKind::Local,
                    price_per_minute: price("TTS_PRICE_LOCAL_PER_MINUTE", 0.0)?,
                    quality: source
                        .get("TTS_QUALITY_LOCAL")
                        .unwrap_or_else(|| "basic".to_owned()),
                },
            ),
        ];
        let default_tier = source
            .get("TTS_DEFAULT_TIER")
            .unwrap_or_else(|| "regular".to_owned());
        if !tiers.iter().any(|(name, _)| *name == default_tier) {
            return Err(bad("TTS_DEFAULT_TIER", "must be regular, premium or local"));
        }
        Ok(Self {
            audio_bucket,
            azure,
            elevenlabs,
            local_enabled,
            espeak_path: source
                .get("ESPEAK_NG_PATH")
                .unwrap_or_else(|| "espeak-ng".to_owned()),
            tiers,
            default_tier,
            max_characters: number(
                source,
                "TTS_MAX_CHARACTERS",
                5000,
                |n: &usize| (1..=100_000).contains(n),
                "must be between 1 and 100000",
            )?,
            url_seconds: number(
                source,
                "TTS_URL_SECONDS",
                3600,
                |n: &u64| (60..=604_800).contains(n),
                "must be between 60 and 604800 (7 days, S3's limit)",
            )?,
            voices_cache_seconds: number(
                source,
                "TTS_VOICES_CACHE_SECONDS",
                3600,
                |n: &u64| *n <= 86_400,
                "must be at most 86400",
            )?,
            provider_timeout_seconds: number(
                source,
                "TTS_PROVIDER_TIMEOUT_SECONDS",
                20,
                |n: &u64| (1..=300).contains(n),
                "must be between 1 and 300",
            )?,
        })
    }

    /// The tier called `name`.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|(tier, _)| tier == name)
            .map(|(_, tier)| tier)
    }

    /// The tier a provider belongs to (its price).
    pub fn tier_of(&self, provider: ProviderKind) -> Option<(&str, &Tier)> {
        self.tiers
            .iter()
            .find(|(_, tier)| tier.provider == provider)
            .map(|(name, tier)| (name.as_str(), tier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &'static [(&'static str, &'static str)]) -> Result<TtsConfig, ConfigError> {
        TtsConfig::from_source(&move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn providers_are_configured_by_their_keys_only() {
        let config = from(&[("AUDIO_BUCKET", "b")]).expect("valid");
        assert!(config.azure.is_none() && config.elevenlabs.is_none());
        assert!(config.local_enabled);
        let config = from(&[
            ("AUDIO_BUCKET", "b"),
            ("AZURE_SPEECH_KEY", "k"),
            ("AZURE_SPEECH_REGION", "westeurope"),
        ])
        .expect("valid");
        assert_eq!(
            config.azure.expect("azure").base_url,
            "https://westeurope.tts.speech.microsoft.com"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(from(&[]).err().map(|e| e.variable), Some("AUDIO_BUCKET"));
        let err = from(&[
            ("AUDIO_BUCKET", "b"),
            ("TTS_PRICE_PREMIUM_PER_MINUTE", "-1"),
        ]);
        assert_eq!(
            err.err().map(|e| e.variable),
            Some("TTS_PRICE_PREMIUM_PER_MINUTE")
        );
        let err = from(&[
            ("AUDIO_BUCKET", "b"),
            ("AZURE_SPEECH_KEY", "k"),
            ("AZURE_SPEECH_REGION", "evil.com/x"),
        ]);
        assert_eq!(err.err().map(|e| e.variable), Some("AZURE_SPEECH_REGION"));
    }
}
