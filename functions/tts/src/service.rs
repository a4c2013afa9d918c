//! The TTS domain: validates a request, picks provider and voice (falling back for `auto`),
//! serves the clip from the S3 cache or synthesizes, stores and counts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use vocelio_shared::error::{ApiError, ApiResult, FieldError};
use vocelio_shared::ids::is_key_safe;

use crate::audio::{Encoding, duration_seconds};
use crate::azure::AzureSpeech;
use crate::cache::{AudioIdentity, normalize_text, object_key};
use crate::config::TtsConfig;
use crate::elevenlabs::{ElevenLabs, SPEED_RANGE};
use crate::formats::AudioFormat;
use crate::local::LocalProvider;
use crate::local_engine::LocalEngine;
use crate::provider::{
    AudioChunks, ProviderError, ProviderKind, SpeechProvider, SynthesisRequest, Voice,
};
use crate::ssml::Prosody;
use crate::store::{AudioStore, ClipFacts, StoreError};
use crate::wav::{mulaw_header, read_pcm16, write_pcm16};

/// The body of `POST /synthesize` (and of `/stream/synthesize`, and a `/ws/tts` message).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeBody {
    pub text: Option<String>,
    #[serde(alias = "voice")]
    pub voice_id: Option<String>,
    pub provider: Option<String>,
    pub tier: Option<String>,
    pub language: Option<String>,
    pub speed: Option<f64>,
    pub pitch: Option<f64>,
    pub volume: Option<f64>,
    pub format: Option<String>,
    pub customer_id: Option<String>,
    pub call_id: Option<String>,
}

/// Speed multiplier accepted from clients.
pub const SPEED_LIMITS: (f64, f64) = (0.5, 2.0);
/// Pitch change in percent.
pub const PITCH_LIMITS: (f64, f64) = (-50.0, 50.0);
/// Volume change in percent.
pub const VOLUME_LIMITS: (f64, f64) = (-100.0, 100.0);

/// A validated request: what to say, and the providers to try in order with their voice.
#[derive(Debug, Clone)]
pub struct Plan {
    pub text: String,
    pub language: Option<String>,
    pub prosody: Prosody,
    pub format: AudioFormat,
    /// `(provider, voice)` in the order to try; more than one only for `auto`.
    pub candidates: Vec<(ProviderKind, String)>,
    pub customer_id: Option<String>,
    pub call_id: Option<String>,
    /// Whose cache the clip lives in: the caller's tenant (set by the handler), or
    /// `shared` for fixed texts.
    pub cache_scope: String,
}

/// A clip as delivered.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The audio, unless only its URL was asked for.
    pub audio: Option<Bytes>,
    pub key: String,
    pub facts: ClipFacts,
    pub cached: bool,
    /// What this request cost (0 on a cache hit).
    pub cost: f64,
}

/// Audio on its way, with what is known before the end.
pub struct ClipStream {
    pub provider: ProviderKind,
    pub voice_id: String,
    pub format: AudioFormat,
    pub cached: bool,
    /// Known up front on a cache hit only.
    pub duration_seconds: Option<f64>,
    pub chunks: AudioChunks,
}

impl std::fmt::Debug for ClipStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipStream")
            .field("provider", &self.provider)
            .field("voice_id", &self.voice_id)
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

/// A provider's voice list and when it was fetched.
type CachedVoices = (Instant, Arc<Vec<Voice>>);

struct Inner {
    config: TtsConfig,
    store: AudioStore,
    providers: Vec<Arc<dyn SpeechProvider>>,
    voices: Mutex<HashMap<ProviderKind, CachedVoices>>,
    /// One synthesis per key at a time in this process: the second waits and hits the cache.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The TTS service; cheap to clone.
#[derive(Clone)]
pub struct Tts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("providers", &self.configured())
            .finish_non_exhaustive()
    }
}

/// Our answer to a provider failure.
pub fn provider_error(error: ProviderError) -> ApiError {
    let upstream = |status, code, message: String, retry| ApiError::Upstream {
        status,
        code,
        message,
        retry_after_seconds: retry,
    };
    match error {
        ProviderError::NotConfigured(provider) => upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_not_configured",
            format!(
                "the {} provider is not configured on this deployment",
                provider.as_str()
            ),
            None,
        ),
        ProviderError::BadCredentials(provider) => upstream(
            StatusCode::BAD_GATEWAY,
            "provider_auth_failed",
            format!(
                "{} refused this deployment's credentials (or its quota is exhausted); an administrator must fix the key",
                provider.as_str()
            ),
            None,
        ),
        ProviderError::RateLimited {
            provider,
            retry_after_seconds,
        } => upstream(
            StatusCode::TOO_MANY_REQUESTS,
            "provider_rate_limited",
            format!(
                "{} is rate limiting requests; retry after {retry_after_seconds} s",
                provider.as_str()
            ),
            Some(retry_after_seconds),
        ),
        ProviderError::Unavailable { provider, detail } => {
            tracing::warn!(provider = provider.as_str(), %detail, "provider unavailable");
            upstream(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                format!("{} is unavailable; retry shortly", provider.as_str()),
                Some(2),
            )
        }
        ProviderError::UnknownVoice { provider, voice_id } => ApiError::field(
            "voice_id",
            format!(
                "{} has no voice {voice_id:?}; GET /voices/{} lists its voices",
                provider.as_str(),
                provider.as_str()
            ),
        ),
        ProviderError::Rejected {
            provider,
            code,
            message,
        } => upstream(
            StatusCode::BAD_GATEWAY,
            "provider_rejected",
            format!(
                "{} refused the request ({code}): {message}",
                provider.as_str()
            ),
            None,
        ),
        ProviderError::BadAudio { provider, detail } => upstream(
            StatusCode::BAD_GATEWAY,
            "provider_bad_audio",
            format!("{} returned unusable audio: {detail}", provider.as_str()),
            None,
        ),
    }
}

fn store_unavailable(error: StoreError) -> ApiError {
    ApiError::Unavailable(error.to_string())
}

/// Whether `auto` may try the next provider after this failure.
fn can_fall_back(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::NotConfigured(_)
            | ProviderError::Unavailable { .. }
            | ProviderError::RateLimited { .. }
            | ProviderError::BadCredentials(_)
    )
}

/// The first character XML 1.0 (and so SSML) cannot carry, with its position.
fn unsupported_character(text: &str) -> Option<(usize, char)> {
    text.chars().enumerate().find(|(_, c)| {
        let code = u32::from(*c);
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || (0xFDD0..=0xFDEF).contains(&code)
            || (code & 0xFFFE) == 0xFFFE
    })
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    first_ok
        && tag.len() <= 35
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn in_range(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<f64>,
    (low, high): (f64, f64),
    default: f64,
) -> f64 {
    match value {
        None => default,
        Some(v) if v.is_finite() && (low..=high).contains(&v) => v,
        Some(_) => {
            errors.push(FieldError::new(
                field,
                format!("must be a number between {low} and {high}"),
            ));
            default
        }
    }
}

fn optional_id(errors: &mut Vec<FieldError>, field: &str, value: Option<String>) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())?;
    if value.len() > 128 || !is_key_safe(&value) {
        errors.push(FieldError::new(
            field,
            "must be at most 128 characters of letters, digits and . _ @ : -",
        ));
        return None;
    }
    Some(value)
}

impl Tts {
    /// The service with the providers `config` enables, over `s3`.
    pub fn new(config: TtsConfig, s3: aws_sdk_s3::Client) -> Result<Self, String> {
        let timeout = Duration::from_secs(config.provider_timeout_seconds);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut providers: Vec<Arc<dyn SpeechProvider>> = Vec::new();
        if let Some(azure) = &config.azure {
            providers.push(Arc::new(AzureSpeech::new(
                http.clone(),
                &azure.base_url,
                azure.key.clone(),
                timeout,
            )));
        }
        if let Some(eleven) = &config.elevenlabs {
            providers.push(Arc::new(ElevenLabs::new(
                http.clone(),
                &eleven.base_url,
                eleven.key.clone(),
                &eleven.model_id,
                timeout,
            )));
        }
        if config.local_enabled {
            providers.push(Arc::new(LocalProvider::new(LocalEngine::new(
                &config.espeak_path,
            ))));
        }
        let store = AudioStore::new(
            s3,
            &config.audio_bucket,
            Duration::from_secs(config.url_seconds),
        );
        Ok(Self::with_providers(config, store, providers))
    }

    /// The service over explicit providers (tests).
    pub fn with_providers(
        config: TtsConfig,
        store: AudioStore,
        providers: Vec<Arc<dyn SpeechProvider>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                providers,
                voices: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TtsConfig {
        &self.inner.config
    }

    /// The audio store.
    pub fn store(&self) -> &AudioStore {
        &self.inner.store
    }

    /// The providers configured here.
    pub fn configured(&self) -> Vec<ProviderKind> {
        self.inner.providers.iter().map(|p| p.kind()).collect()
    }

    /// The provider `kind`, if configured.
    pub fn provider(&self, kind: ProviderKind) -> Result<&Arc<dyn SpeechProvider>, ProviderError> {
        self.inner
            .providers
            .iter()
            .find(|p| p.kind() == kind)
            .ok_or(ProviderError::NotConfigured(kind))
    }

    /// `kind`'s voices, from the provider at most once per cache period.
    pub async fn voices(&self, kind: ProviderKind) -> Result<Arc<Vec<Voice>>, ProviderError> {
        let ttl = Duration::from_secs(self.inner.config.voices_cache_seconds);
        if let Ok(cache) = self.inner.voices.lock()
            && let Some((at, voices)) = cache.get(&kind)
            && at.elapsed() < ttl
        {
            return Ok(voices.clone());
        }
        let voices = Arc::new(self.provider(kind)?.voices().await?);
        if let Ok(mut cache) = self.inner.voices.lock() {
            cache.insert(kind, (Instant::now(), voices.clone()));
        }
        Ok(voices)
    }

    /// Validates `body` and decides which providers and voices to use.
    pub fn plan(&self, body: SynthesizeBody) -> ApiResult<Plan> {
        let config = &self.inner.config;
        let mut errors = Vec::new();
        let raw = body.text.unwrap_or_default();
        let text = normalize_text(&raw);
        let length = raw.chars().count();
        if text.is_empty() {
            errors.push(FieldError::new("text", "must not be empty"));
        } else if length > config.max_characters {
            errors.push(FieldError::new(
                "text",
                format!(
                    "is {length} characters long; at most {} are allowed per request (split it)",
                    config.max_characters
                ),
            ));
        } else if let Some((at, c)) = unsupported_character(&raw) {
            errors.push(FieldError::new(
                "text",
                format!(
                    "contains an unsupported character U+{:04X} at position {at}",
                    u32::from(c)
                ),
            ));
        }
        let speed = in_range(&mut errors, "speed", body.speed, SPEED_LIMITS, 1.0);
        let pitch = in_range(&mut errors, "pitch", body.pitch, PITCH_LIMITS, 0.0);
        let volume = in_range(&mut errors, "volume", body.volume, VOLUME_LIMITS, 0.0);
        let language = body
            .language
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
        if let Some(tag) = &language
            && !is_language_tag(tag)
        {
            errors.push(FieldError::new(
                "language",
                "must be a language tag like en-US",
            ));
        }
        let format = match body.format.as_deref() {
            None => AudioFormat::Mp3,
            Some(name) => AudioFormat::parse(name).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "format",
                    "must be one of mp3, wav, mulaw_wav, mulaw",
                ));
                AudioFormat::Mp3
            }),
        };
        let customer_id = optional_id(&mut errors, "customer_id", body.customer_id);
        let call_id = optional_id(&mut errors, "call_id", body.call_id);
        let tier_name = body
            .tier
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty());
        let tier = match tier_name.as_deref() {
            None => config.tier(&config.default_tier),
            Some(name) => {
                let tier = config.tier(name);
                if tier.is_none() {
                    errors.push(FieldError::new("tier", "must be regular, premium or local"));
                }
                tier
            }
        };
        let voice = body
            .voice_id
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let requested = match body.provider.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => None,
            Some(name) => match ProviderKind::parse(name) {
                Some(kind) => Some(kind),
                None => {
                    errors.push(FieldError::new(
                        "provider",
                        "must be auto, azure, elevenlabs or local",
                    ));
                    None
                }
            },
        };
        let owner = voice.as_deref().and_then(ProviderKind::owning_voice);
        if let Some(voice) = &voice
            && owner.is_none()
        {
            errors.push(FieldError::new(
                "voice_id",
                format!(
                    "{:?} is not a voice id of any provider (GET /voices/{{provider}} lists them)",
                    voice.chars().take(80).collect::<String>()
                ),
            ));
        }
        if let (Some(kind), Some(owner), Some(voice)) = (requested, owner, &voice)
            && kind != owner
        {
            errors.push(FieldError::new(
                "voice_id",
                format!(
                    "{voice:?} is a {} voice, not a {} one",
                    owner.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let elevenlabs_first = requested == Some(ProviderKind::ElevenLabs)
            || (requested.is_none()
                && (owner == Some(ProviderKind::ElevenLabs)
                    || (owner.is_none()
                        && tier.is_some_and(|t| t.provider == ProviderKind::ElevenLabs))));
        if elevenlabs_first && !SPEED_RANGE.contains(&speed) {
            errors.push(FieldError::new(
                "speed",
                "must be between 0.7 and 1.2 for ElevenLabs voices",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let language_ref = language.as_deref();
        let voice_for = |kind: ProviderKind| -> Option<String> {
            let provider = self.provider(kind).ok()?;
            Some(match (&voice, owner) {
                (Some(voice), Some(owner)) if owner == kind => voice.clone(),
                _ => provider.default_voice(language_ref),
            })
        };
        let candidates: Vec<(ProviderKind, String)> = match requested {
            Some(kind) => {
                let voice = voice_for(kind)
                    .ok_or_else(|| provider_error(ProviderError::NotConfigured(kind)))?;
                vec![(kind, voice)]
            }
            None => {
                let first = owner
                    .or(tier.map(|t| t.provider))
                    .unwrap_or(ProviderKind::Azure);
                std::iter::once(first)
                    .chain(ProviderKind::ALL.into_iter().filter(|k| *k != first))
                    .filter_map(|kind| voice_for(kind).map(|voice| (kind, voice)))
                    .collect()
            }
        };
        if candidates.is_empty() {
            return Err(ApiError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "no_provider_configured",
                message: "no speech provider is configured on this deployment".into(),
                retry_after_seconds: None,
            });
        }
        Ok(Plan {
            text,
            language,
            prosody: Prosody {
                speed,
                pitch_percent: pitch,
                volume_percent: volume,
            },
            format,
            candidates,
            customer_id,
            call_id,
            cache_scope: "shared".to_owned(),
        })
    }

    fn key_of(&self, plan: &Plan, provider: &dyn SpeechProvider, voice: &str) -> String {
        // The settings as the provider applies them: ElevenLabs ignores pitch and volume and
        // clamps speed, so requests it renders the same share one object.
        let prosody = Self::prosody_for(provider.kind(), plan.prosody);
        let language = plan.language.as_deref().unwrap_or("").to_ascii_lowercase();
        object_key(&AudioIdentity {
            scope: &plan.cache_scope,
            provider: provider.kind().as_str(),
            voice_id: voice,
            model: provider.model(),
            format: plan.format,
            speed: prosody.speed,
            pitch_percent: prosody.pitch_percent,
            volume_percent: prosody.volume_percent,
            language: &language,
            text: &plan.text,
        })
    }

    fn prosody_for(kind: ProviderKind, prosody: Prosody) -> Prosody {
        match kind {
            ProviderKind::ElevenLabs => Prosody {
                speed: prosody
                    .speed
                    .clamp(*SPEED_RANGE.start(), *SPEED_RANGE.end()),
                pitch_percent: 0.0,
                volume_percent: 0.0,
            },
            _ => prosody,
        }
    }

    fn request_of(plan: &Plan, voice: &str) -> SynthesisRequest {
        SynthesisRequest {
            text: plan.text.clone(),
            voice_id: voice.to_owned(),
            language: plan.language.clone(),
            prosody: plan.prosody,
            format: plan.format,
        }
    }

    fn cost_of(&self, provider: ProviderKind, seconds: f64) -> f64 {
        let price = self
            .inner
            .config
            .tier_of(provider)
            .map_or(0.0, |(_, tier)| tier.price_per_minute);
        (seconds / 60.0 * price * 1_000_000.0).round() / 1_000_000.0
    }

    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.inner.in_flight.lock() {
            Ok(mut map) => {
                map.retain(|_, lock| Arc::strong_count(lock) > 1);
                map.entry(key.to_owned()).or_default().clone()
            }
            Err(_) => Arc::default(),
        }
    }

    async fn cached(
        &self,
        key: &str,
        want_audio: bool,
    ) -> ApiResult<Option<(Option<Bytes>, ClipFacts)>> {
        let store = &self.inner.store;
        if want_audio {
            Ok(store
                .get(key)
                .await
                .map_err(store_unavailable)?
                .map(|(bytes, facts)| (Some(bytes), facts)))
        } else {
            Ok(store
                .head(key)
                .await
                .map_err(store_unavailable)?
                .map(|facts| (None, facts)))
        }
    }

    /// The clip of `plan`: from the cache, else from the first provider that delivers
    /// (stored before it is returned). `want_audio: false` skips reading a cached clip's bytes.
    pub async fn synthesize(&self, plan: &Plan, want_audio: bool) -> ApiResult<Clip> {
        let mut last_error = None;
        for (kind, voice) in &plan.candidates {
            let provider = match self.provider(*kind) {
                Ok(provider) => provider.clone(),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let key = self.key_of(plan, provider.as_ref(), voice);
            if let Some((audio, facts)) = self.cached(&key, want_audio).await? {
                return Ok(Clip {
                    audio,
                    key,
                    facts,
                    cached: true,
                    cost: 0.0,
                });
            }
            let lock = self.key_lock(&key);
            let _guard = lock.lock().await;
            if let Some((audio, facts)) = self.cached(&key, want_audio).await? {
                return Ok(Clip {
                    audio,
                    key,
                    facts,
                    cached: true,
                    cost: 0.0,
                });
            }
            match provider.synthesize(&Self::request_of(plan, voice)).await {
                Ok(audio) => {
                    let seconds =
                        duration_seconds(&audio, plan.format.encoding()).map_err(|e| {
                            provider_error(ProviderError::BadAudio {
                                provider: *kind,
                                detail: e.to_string(),
                            })
                        })?;
                    let facts = ClipFacts {
                        provider: *kind,
                        voice_id: voice.clone(),
                        format: plan.format,
                        duration_seconds: seconds,
                        characters: plan.text.chars().count(),
                        bytes: audio.len(),
                    };
                    self.inner
                        .store
                        .put(&key, audio.clone(), &facts)
                        .await
                        .map_err(store_unavailable)?;
                    return Ok(Clip {
                        audio: Some(audio),
                        key,
                        cost: self.cost_of(*kind, seconds),
                        facts,
                        cached: false,
                    });
                }
                Err(e) if plan.candidates.len() > 1 && can_fall_back(&e) => {
                    tracing::warn!(provider = kind.as_str(), error = %e, "falling back to the next provider");
                    last_error = Some(e);
                }
                Err(e) => return Err(provider_error(e)),
            }
        }
        Err(provider_error(last_error.unwrap_or(
            ProviderError::NotConfigured(ProviderKind::Azure),
        )))
    }

    /// The clip of `plan` as it is produced: a cached clip in pieces, else the provider's
    /// stream, stored in the cache once it has arrived whole.
    pub async fn stream(&self, plan: &Plan) -> ApiResult<ClipStream> {
        let mut last_error = None;
        for (kind, voice) in &plan.candidates {
            let provider = match self.provider(*kind) {
                Ok(provider) => provider.clone(),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let key = self.key_of(plan, provider.as_ref(), voice);
            // One synthesis per key at a time here too: a second identical stream waits for
            // the first to be stored, then streams the stored clip.
            let guard = self.key_lock(&key).lock_owned().await;
            if let Some((Some(audio), facts)) = self.cached(&key, true).await? {
                drop(guard);
                let pieces: Vec<Result<Bytes, ProviderError>> = (0..audio.len())
                    .step_by(16 * 1024)
                    .map(|at| Ok(audio.slice(at..(at + 16 * 1024).min(audio.len()))))
                    .collect();
                return Ok(ClipStream {
                    provider: *kind,
                    voice_id: voice.clone(),
                    format: plan.format,
                    cached: true,
                    duration_seconds: Some(facts.duration_seconds),
                    chunks: stream::iter(pieces).boxed(),
                });
            }
            match provider.stream(&Self::request_of(plan, voice)).await {
                Ok(chunks) => {
                    let facts = ClipFacts {
                        provider: *kind,
                        voice_id: voice.clone(),
                        format: plan.format,
                        duration_seconds: 0.0,
                        characters: plan.text.chars().count(),
                        bytes: 0,
                    };
                    return Ok(ClipStream {
                        provider: *kind,
                        voice_id: voice.clone(),
                        format: plan.format,
                        cached: false,
                        duration_seconds: None,
                        chunks: store_when_complete(
                            chunks,
                            self.inner.store.clone(),
                            key,
                            facts,
                            guard,
                        ),
                    });
                }
                Err(e) if plan.candidates.len() > 1 && can_fall_back(&e) => last_error = Some(e),
                Err(e) => return Err(provider_error(e)),
            }
        }
        Err(provider_error(last_error.unwrap_or(
            ProviderError::NotConfigured(ProviderKind::Azure),
        )))
    }

    /// The cost of a streamed clip once it is complete (for usage records).
    pub fn streamed_cost(&self, provider: ProviderKind, seconds: f64) -> f64 {
        self.cost_of(provider, seconds)
    }
}

/// The cold-start path of both TTS functions: shared state, TTS settings, S3 client.
pub async fn from_env()
-> Result<(vocelio_shared::AppState, Tts), Box<dyn std::error::Error + Send + Sync>> {
    let config = vocelio_shared::config::Config::from_env()?;
    let tts_config = TtsConfig::from_env()?;
    let sdk = vocelio_shared::state::load_sdk_config().await;
    let state = vocelio_shared::AppState::new(config, &sdk);
    // Path-style addressing for S3-compatible stores (MinIO, moto): AWS_S3_FORCE_PATH_STYLE.
    let path_style = std::env::var("AWS_S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build(),
    );
    let tts = Tts::new(tts_config, s3)?;
    Ok((state, tts))
}

/// The largest clip a stream buffers to cache (10 minutes of 16-bit 24 kHz PCM is 28 MB).
const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;

/// A streamed WAV has placeholder sizes; the stored copy gets exact ones.
pub fn finalize(format: AudioFormat, audio: Vec<u8>) -> Vec<u8> {
    match format.encoding() {
        Encoding::Pcm16 { riff: true, .. } => match read_pcm16(&audio) {
            Ok(pcm) => write_pcm16(&pcm),
            Err(_) => audio,
        },
        Encoding::Mulaw { riff: true } => {
            let Some(data_at) = audio.windows(4).position(|w| w == b"data").map(|at| at + 8) else {
                return audio;
            };
            let body = audio.get(data_at..).unwrap_or_default();
            let mut out = mulaw_header(body.len());
            out.extend_from_slice(body);
            out
        }
        _ => audio,
    }
}

/// Passes `chunks` through and, once they all arrived without error, stores the whole clip
/// (before the stream ends, so a Lambda cannot freeze before the write).
fn store_when_complete(
    chunks: AudioChunks,
    store: AudioStore,
    key: String,
    facts: ClipFacts,
    key_guard: tokio::sync::OwnedMutexGuard<()>,
) -> AudioChunks {
    struct State {
        chunks: AudioChunks,
        buffer: Vec<u8>,
        failed: bool,
        done: bool,
        /// Held until the clip is stored (or abandoned), released with the stream.
        _key_guard: tokio::sync::OwnedMutexGuard<()>,
    }
    let state = State {
        chunks,
        buffer: Vec::new(),
        failed: false,
        done: false,
        _key_guard: key_guard,
    };
    stream::unfold(
        (state, store, key, facts),
        |(mut state, store, key, mut facts)| async move {
            if state.done {
                return None;
            }
            match state.chunks.next().await {
                Some(Ok(bytes)) => {
                    if state.buffer.len() + bytes.len() > MAX_CACHED_BYTES {
                        // Too long to keep: streamed, not cached.
                        state.failed = true;
                        state.buffer = Vec::new();
                    } else if !state.failed {
                        state.buffer.extend_from_slice(&bytes);
                    }
                    Some((Ok(bytes), (state, store, key, facts)))
                }
                Some(Err(e)) => {
                    state.failed = true;
                    state.done = true;
                    Some((Err(e), (state, store, key, facts)))
                }
                None => {
                    state.done = true;
                    if !state.failed && !state.buffer.is_empty() {
                        let audio = finalize(facts.format, std::mem::take(&mut state.buffer));
                        match duration_seconds(&audio, facts.format.encoding()) {
                            Ok(seconds) => {
                                facts.duration_seconds = seconds;
                                facts.bytes = audio.len();
                                if let Err(e) = store.put(&key, Bytes::from(audio), &facts).await {
                                    tracing::warn!(error = %e, "streamed clip not cached");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "streamed clip not cached: unreadable")
                            }
                        }
                    }
                    None
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_illegal_characters_are_found_and_emoji_are_not() {
        assert_eq!(unsupported_character("ok\tfine\n"), None);
        assert_eq!(unsupported_character("hi 😀 there"), None);
        assert_eq!(unsupported_character("bell\u{7}"), Some((4, '\u{7}')));
        assert_eq!(unsupported_character("x\u{FFFE}"), Some((1, '\u{FFFE}')));
        assert!(is_language_tag("en-US") && is_language_tag("zh-Hant-TW"));
        assert!(!is_language_tag("en_US") && !is_language_tag("'><x"));
    }

    #[test]
    fn streamed_wavs_are_stored_with_exact_sizes() {
        let mut streamed = crate::audio::streaming_wav_header(7, 8000, 8);
        streamed.extend(std::iter::repeat_n(0xFFu8, 8000));
        let fixed = finalize(AudioFormat::MulawWav, streamed);
        assert_eq!(crate::audio::wav_data_len(&fixed), Some(8000));
        assert_eq!(
            duration_seconds(&fixed, AudioFormat::MulawWav.encoding()).ok(),
            Some(1.0)
        );
    }
}
