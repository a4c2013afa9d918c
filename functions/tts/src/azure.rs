//! Azure Speech over REST: SSML in, audio out (`X-Microsoft-OutputFormat`), keyed by
//! `Ocp-Apim-Subscription-Key` at the region's endpoint (or a configured base URL).

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::config::Secret;
use crate::provider::{
    AudioChunks, ProviderError, ProviderKind, SpeechProvider, SynthesisRequest, Voice,
    classify_status, transport_error,
};
use crate::ssml::{azure_ssml, is_azure_voice_name, locale_of};

/// The `User-Agent` Azure requires (under 255 characters).
const USER_AGENT: &str = concat!("vocelio-tts/", env!("CARGO_PKG_VERSION"));

/// Azure Speech, at `base_url` (`https://{region}.tts.speech.microsoft.com`).
#[derive(Debug, Clone)]
pub struct AzureSpeech {
    http: reqwest::Client,
    base_url: String,
    key: Secret,
    /// Whole-clip request timeout.
    timeout: std::time::Duration,
}

/// One entry of Azure's `voices/list` (PascalCase, as documented).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AzureVoice {
    short_name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    local_name: Option<String>,
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    locale_name: Option<String>,
    #[serde(default)]
    voice_type: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    style_list: Option<Vec<String>>,
}

impl AzureSpeech {
    /// A client for `base_url` with `key`; whole clips must arrive within `timeout`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        key: Secret,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
            timeout,
        }
    }

    async fn send(
        &self,
        request: &SynthesisRequest,
        streaming: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        if !is_azure_voice_name(&request.voice_id) {
            return Err(ProviderError::UnknownVoice {
                provider: ProviderKind::Azure,
                voice_id: request.voice_id.clone(),
            });
        }
        let language = request
            .language
            .clone()
            .or_else(|| locale_of(&request.voice_id))
            .unwrap_or_else(|| "en-US".to_owned());
        let ssml = azure_ssml(&request.text, &request.voice_id, &language, request.prosody);
        let response = self
            .http
            .post(format!("{}/cognitiveservices/v1", self.base_url))
            .header("Ocp-Apim-Subscription-Key", self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/ssml+xml")
            .header(
                "X-Microsoft-OutputFormat",
                if streaming {
                    request.format.azure_stream_output_format()
                } else {
                    request.format.azure_output_format()
                },
            )
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .timeout(if streaming {
                crate::provider::STREAM_TIMEOUT
            } else {
                self.timeout
            })
            .body(ssml)
            .send()
            .await
            .map_err(|e| transport_error(ProviderKind::Azure, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(azure_error(response, &request.voice_id).await)
    }
}

/// Azure documents no error body: branch on the status (a 400 naming a voice we asked for
/// is an unknown voice).
async fn azure_error(response: reqwest::Response, voice_id: &str) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    // Azure documents no error body: our SSML is built and checked here, so a 400 for a
    // well-formed voice name means Azure has no such voice.
    if status == 400 && !voice_id.is_empty() {
        return ProviderError::UnknownVoice {
            provider: ProviderKind::Azure,
            voice_id: voice_id.to_owned(),
        };
    }
    let message: String = body.chars().take(300).collect();
    classify_status(
        ProviderKind::Azure,
        status,
        retry_after.as_deref(),
        format!("http_{status}"),
        if message.is_empty() {
            format!("Azure Speech answered HTTP {status}")
        } else {
            message
        },
    )
}

impl SpeechProvider for AzureSpeech {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    fn model(&self) -> &str {
        "neural"
    }

    fn default_voice(&self, language: Option<&str>) -> String {
        let language = language.unwrap_or("en-US").to_ascii_lowercase();
        match language.split('-').next().unwrap_or("en") {
            "es" => "es-ES-ElviraNeural",
            "fr" => "fr-FR-DeniseNeural",
            "de" => "de-DE-KatjaNeural",
            "it" => "it-IT-ElsaNeural",
            "pt" => "pt-BR-FranciscaNeural",
            _ => "en-US-AriaNeural",
        }
        .to_owned()
    }

    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, ProviderError>> {
        async move {
            let response = self
                .http
                .get(format!("{}/cognitiveservices/voices/list", self.base_url))
                .timeout(self.timeout)
                .header("Ocp-Apim-Subscription-Key", self.key.expose())
                .header(reqwest::header::USER_AGENT, USER_AGENT)
                .send()
                .await
                .map_err(|e| transport_error(ProviderKind::Azure, &e))?;
            if !response.status().is_success() {
                return Err(azure_error(response, "").await);
            }
            let voices: Vec<AzureVoice> =
                response
                    .json()
                    .await
                    .map_err(|e| ProviderError::Unavailable {
                        provider: ProviderKind::Azure,
                        detail: format!("unreadable voice list: {e}"),
                    })?;
            Ok(voices.into_iter().map(into_voice).collect())
        }
        .boxed()
    }

    fn synthesize<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<Bytes, ProviderError>> {
        async move {
            // The service measures (and so checks) the audio once it has it.
            let response = self.send(request, false).await?;
            response
                .bytes()
                .await
                .map_err(|e| transport_error(ProviderKind::Azure, &e))
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<AudioChunks, ProviderError>> {
        async move {
            let response = self.send(request, true).await?;
            let body = response
                .bytes_stream()
                .map_err(|e| transport_error(ProviderKind::Azure, &e));
            let chunks: AudioChunks = match request.format.streaming_wav_header() {
                Some(header) => futures_util::stream::once(async move { Ok(Bytes::from(header)) })
                    .chain(body)
                    .boxed(),
                None => body.boxed(),
            };
            Ok(chunks)
        }
        .boxed()
    }
}

fn into_voice(voice: AzureVoice) -> Voice {
    let mut labels = serde_json::Map::new();
    for (key, value) in [
        ("display_name", voice.display_name.clone()),
        ("local_name", voice.local_name),
        ("locale_name", voice.locale_name),
        ("voice_type", voice.voice_type),
        ("status", voice.status),
    ] {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value.into());
        }
    }
    if let Some(styles) = voice.style_list {
        labels.insert("styles".to_owned(), styles.into());
    }
    let language = voice
        .locale
        .or_else(|| locale_of(&voice.short_name))
        .unwrap_or_default();
    Voice {
        name: voice
            .display_name
            .unwrap_or_else(|| voice.short_name.clone()),
        preview_url: Some(format!("/voices/preview/{}", voice.short_name)),
        id: voice.short_name,
        language,
        gender: voice
            .gender
            .map(|g| g.to_ascii_lowercase())
            .unwrap_or_else(|| "neutral".to_owned()),
        provider: ProviderKind::Azure,
        labels,
    }
}
