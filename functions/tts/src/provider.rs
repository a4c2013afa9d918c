//! The one interface every speech provider implements, and what flows through it.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::formats::AudioFormat;
use crate::ssml::Prosody;

/// Which provider produced (or is to produce) audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Azure Speech (the regular tier).
    Azure,
    /// ElevenLabs (the premium tier).
    ElevenLabs,
    /// espeak-ng on the function itself (no cloud keys).
    Local,
}

impl ProviderKind {
    /// Every provider, in fallback order.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Azure,
        ProviderKind::ElevenLabs,
        ProviderKind::Local,
    ];

    /// The name used in paths, bodies and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Azure => "azure",
            ProviderKind::ElevenLabs => "elevenlabs",
            ProviderKind::Local => "local",
        }
    }

    /// Parses a provider name (`azure`, `elevenlabs`, `local`).
    pub fn parse(name: &str) -> Option<ProviderKind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "azure" => Some(ProviderKind::Azure),
            "elevenlabs" | "eleven_labs" | "11labs" => Some(ProviderKind::ElevenLabs),
            "local" | "espeak" | "espeak-ng" => Some(ProviderKind::Local),
            _ => None,
        }
    }

    /// The provider whose voice ids look like `voice_id`, if any does.
    pub fn owning_voice(voice_id: &str) -> Option<ProviderKind> {
        if crate::ssml::is_azure_voice_name(voice_id) && voice_id.ends_with("Neural") {
            Some(ProviderKind::Azure)
        } else if is_elevenlabs_voice_id(voice_id) {
            Some(ProviderKind::ElevenLabs)
        } else if crate::local_engine::is_local_voice_id(voice_id) {
            Some(ProviderKind::Local)
        } else {
            None
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `voice_id` has the shape of an ElevenLabs voice id (20 letters and digits).
pub fn is_elevenlabs_voice_id(voice_id: &str) -> bool {
    (16..=32).contains(&voice_id.len()) && voice_id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A voice as `GET /voices/{provider}` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Voice {
    pub id: String,
    pub name: String,
    /// BCP 47 locale (`en-US`).
    pub language: String,
    /// `female`, `male` or `neutral`.
    pub gender: String,
    pub provider: ProviderKind,
    /// A sample: the provider's own URL, or our `/voices/preview/{id}`.
    pub preview_url: Option<String>,
    /// Free-form descriptors (accent, age, style, use case).
    pub labels: serde_json::Map<String, serde_json::Value>,
}

/// What to say, in which voice and format. The text is plain text: providers escape it for
/// their own wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesisRequest {
    pub text: String,
    pub voice_id: String,
    /// BCP 47 locale for the SSML `xml:lang` / ElevenLabs `language_code`.
    pub language: Option<String>,
    pub prosody: Prosody,
    pub format: AudioFormat,
}

/// Why a provider did not deliver audio.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider has no credentials configured here.
    #[error("{0} is not configured")]
    NotConfigured(ProviderKind),
    /// The provider refused our credentials.
    #[error("{0} refused the configured credentials")]
    BadCredentials(ProviderKind),
    /// The provider is rate limiting us.
    #[error("{provider} is rate limiting requests")]
    RateLimited {
        provider: ProviderKind,
        retry_after_seconds: u64,
    },
    /// The provider is down, overloaded or timed out; safe to retry.
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        provider: ProviderKind,
        detail: String,
    },
    /// The provider does not know the voice.
    #[error("{provider} has no voice {voice_id}")]
    UnknownVoice {
        provider: ProviderKind,
        voice_id: String,
    },
    /// The provider refused the request for another reason (its code and message).
    #[error("{provider} refused the request: {code}: {message}")]
    Rejected {
        provider: ProviderKind,
        code: String,
        message: String,
    },
    /// The provider answered 200 with something that is not audio of the asked format.
    #[error("{provider} returned unusable audio: {detail}")]
    BadAudio {
        provider: ProviderKind,
        detail: String,
    },
}

/// Audio arriving piece by piece.
pub type AudioChunks = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// A speech provider: lists voices, synthesizes whole clips and streams them.
pub trait SpeechProvider: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// The model or engine version that shapes the audio (part of the cache key).
    fn model(&self) -> &str;

    /// The voice used when a request names none of this provider's voices, for `language`.
    fn default_voice(&self, language: Option<&str>) -> String;

    /// The provider's voices.
    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, ProviderError>>;

    /// The whole clip, in `request.format`.
    fn synthesize<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<Bytes, ProviderError>>;

    /// The clip as it is produced, in `request.format` (WAV formats start with a streaming
    /// header).
    fn stream<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<AudioChunks, ProviderError>>;
}

/// Maps an HTTP failure of `provider` to our error: 401/403 → credentials, 429 → rate
/// limited (with the provider's `Retry-After`, else 1 s), 5xx → unavailable.
pub fn classify_status(
    provider: ProviderKind,
    status: u16,
    retry_after: Option<&str>,
    code: String,
    message: String,
) -> ProviderError {
    match status {
        401 | 403 => ProviderError::BadCredentials(provider),
        429 => ProviderError::RateLimited {
            provider,
            retry_after_seconds: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 300),
        },
        500..=599 => ProviderError::Unavailable {
            provider,
            detail: format!("HTTP {status}"),
        },
        _ => ProviderError::Rejected {
            provider,
            code,
            message,
        },
    }
}

/// How long a streamed provider response may take end to end (it is read while it plays);
/// whole clips get the configured `TTS_PROVIDER_TIMEOUT_SECONDS`.
pub const STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Maps a transport failure (connect, timeout, broken body) to "unavailable".
pub fn transport_error(provider: ProviderKind, error: &reqwest::Error) -> ProviderError {
    let detail = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    ProviderError::Unavailable { provider, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_ids_tell_their_provider() {
        assert_eq!(
            ProviderKind::owning_voice("en-US-AriaNeural"),
            Some(ProviderKind::Azure)
        );
        assert_eq!(
            ProviderKind::owning_voice("21m00Tcm4TlvDq8ikWAM"),
            Some(ProviderKind::ElevenLabs)
        );
        assert_eq!(
            ProviderKind::owning_voice("en-us"),
            Some(ProviderKind::Local)
        );
        assert_eq!(ProviderKind::owning_voice("<voice/>"), None);
    }

    #[test]
    fn statuses_map_to_retry_advice() {
        let limited = classify_status(
            ProviderKind::Azure,
            429,
            Some("7"),
            String::new(),
            String::new(),
        );
        assert_eq!(
            limited,
            ProviderError::RateLimited {
                provider: ProviderKind::Azure,
                retry_after_seconds: 7
            }
        );
        assert!(matches!(
            classify_status(
                ProviderKind::ElevenLabs,
                401,
                None,
                String::new(),
                String::new()
            ),
            ProviderError::BadCredentials(ProviderKind::ElevenLabs)
        ));
        assert!(matches!(
            classify_status(ProviderKind::Azure, 503, None, String::new(), String::new()),
            ProviderError::Unavailable { .. }
        ));
    }
}
