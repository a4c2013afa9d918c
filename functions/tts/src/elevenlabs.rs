//! ElevenLabs over REST: `POST /v1/text-to-speech/{voice_id}[/stream]?output_format=` with
//! `xi-api-key`, JSON `{text, model_id, voice_settings, language_code}`.
//!
//! We ask for MP3, headerless PCM or μ-law and wrap the headerless ones in WAV ourselves.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audio::Encoding;
use crate::config::Secret;
use crate::formats::AudioFormat;
use crate::provider::{
    AudioChunks, ProviderError, ProviderKind, SpeechProvider, SynthesisRequest, Voice,
    classify_status, is_elevenlabs_voice_id, transport_error,
};
use crate::wav::{Pcm, write_pcm16};

/// ElevenLabs at `base_url` (`https://api.elevenlabs.io`).
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    http: reqwest::Client,
    base_url: String,
    key: Secret,
    /// Whole-clip request timeout.
    timeout: std::time::Duration,
    model_id: String,
}

#[derive(Debug, Deserialize)]
struct VoiceList {
    voices: Vec<ElevenVoice>,
}

#[derive(Debug, Deserialize)]
struct ElevenVoice {
    voice_id: String,
    name: Option<String>,
    #[serde(default)]
    labels: serde_json::Map<String, Value>,
    category: Option<String>,
    description: Option<String>,
    preview_url: Option<String>,
}

/// ElevenLabs' speed range (`voice_settings.speed`).
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.7..=1.2;

impl ElevenLabs {
    /// A client for `base_url` with `key`, synthesizing with `model_id`; whole clips must
    /// arrive within `timeout`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        key: Secret,
        model_id: &str,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
            timeout,
            model_id: model_id.to_owned(),
        }
    }

    /// The request body: text, model, speed (ElevenLabs' own range), language.
    fn body(&self, request: &SynthesisRequest) -> Value {
        let mut body = json!({
            "text": request.text,
            "model_id": self.model_id,
        });
        if request.prosody.speed != 1.0 {
            body["voice_settings"] = json!({
                "speed": request.prosody.speed.clamp(*SPEED_RANGE.start(), *SPEED_RANGE.end()),
            });
        }
        // The spec: only the v2.5 turbo and flash models take `language_code`; the others
        // detect the language from the text and refuse the field.
        if supports_language_code(&self.model_id)
            && let Some(language) = &request.language
            && let Some(code) = language.split('-').next()
            && code.len() == 2
        {
            body["language_code"] = code.to_ascii_lowercase().into();
        }
        body
    }

    async fn send(
        &self,
        request: &SynthesisRequest,
        streaming: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        if !is_elevenlabs_voice_id(&request.voice_id) {
            return Err(ProviderError::UnknownVoice {
                provider: ProviderKind::ElevenLabs,
                voice_id: request.voice_id.clone(),
            });
        }
        let suffix = if streaming { "/stream" } else { "" };
        let response = self
            .http
            .post(format!(
                "{}/v1/text-to-speech/{}{suffix}",
                self.base_url, request.voice_id
            ))
            .query(&[("output_format", request.format.elevenlabs_output_format())])
            .header("xi-api-key", self.key.expose())
            .timeout(if streaming {
                crate::provider::STREAM_TIMEOUT
            } else {
                self.timeout
            })
            .json(&self.body(request))
            .send()
            .await
            .map_err(|e| transport_error(ProviderKind::ElevenLabs, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(elevenlabs_error(response, &request.voice_id).await)
    }
}

/// Whether `model_id` accepts `language_code` (per the saved OpenAPI spec).
pub fn supports_language_code(model_id: &str) -> bool {
    matches!(model_id, "eleven_turbo_v2_5" | "eleven_flash_v2_5")
}

/// Reads `{"detail": ...}` leniently: an array (422), an object with `status` and
/// `message`, or a string.
pub fn parse_detail(body: &str) -> (String, String) {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").cloned());
    match detail {
        Some(Value::Array(items)) => {
            let message = items
                .iter()
                .filter_map(|item| {
                    let msg = item.get("msg")?.as_str()?;
                    let loc = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    Some(format!("{loc}: {msg}"))
                })
                .collect::<Vec<_>>()
                .join("; ");
            ("validation_error".to_owned(), message)
        }
        Some(Value::Object(map)) => (
            map.get("status")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned(),
            map.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        Some(Value::String(message)) => ("error".to_owned(), message),
        _ => ("error".to_owned(), body.chars().take(300).collect()),
    }
}

async fn elevenlabs_error(response: reqwest::Response, voice_id: &str) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    let (code, message) = parse_detail(&body);
    match code.as_str() {
        "voice_not_found" => ProviderError::UnknownVoice {
            provider: ProviderKind::ElevenLabs,
            voice_id: voice_id.to_owned(),
        },
        "invalid_api_key" => ProviderError::BadCredentials(ProviderKind::ElevenLabs),
        "too_many_concurrent_requests" | "system_busy" => ProviderError::RateLimited {
            provider: ProviderKind::ElevenLabs,
            retry_after_seconds: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 300),
        },
        // An exhausted quota is not fixed by retrying: our key's problem, not the caller's.
        "quota_exceeded" => ProviderError::BadCredentials(ProviderKind::ElevenLabs),
        _ => classify_status(
            ProviderKind::ElevenLabs,
            status,
            retry_after.as_deref(),
            code,
            message,
        ),
    }
}

/// Wraps a whole headerless clip in a proper WAV container.
fn wrap_whole(format: AudioFormat, raw: Bytes) -> Bytes {
    match format.encoding() {
        Encoding::Pcm16 {
            sample_rate,
            riff: true,
        } => {
            let samples = raw
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            Bytes::from(write_pcm16(&Pcm {
                sample_rate,
                samples,
            }))
        }
        Encoding::Mulaw { riff: true } => {
            let mut out = crate::wav::mulaw_header(raw.len());
            out.extend_from_slice(&raw);
            Bytes::from(out)
        }
        _ => raw,
    }
}

impl SpeechProvider for ElevenLabs {
    fn kind(&self) -> ProviderKind {
        ProviderKind::ElevenLabs
    }

    fn model(&self) -> &str {
        &self.model_id
    }

    fn default_voice(&self, _language: Option<&str>) -> String {
        // Rachel: premade, multilingual with the default model.
        "21m00Tcm4TlvDq8ikWAM".to_owned()
    }

    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, ProviderError>> {
        async move {
            let response = self
                .http
                .get(format!("{}/v1/voices", self.base_url))
                .timeout(self.timeout)
                .header("xi-api-key", self.key.expose())
                .send()
                .await
                .map_err(|e| transport_error(ProviderKind::ElevenLabs, &e))?;
            if !response.status().is_success() {
                return Err(elevenlabs_error(response, "").await);
            }
            let list: VoiceList =
                response
                    .json()
                    .await
                    .map_err(|e| ProviderError::Unavailable {
                        provider: ProviderKind::ElevenLabs,
                        detail: format!("unreadable voice list: {e}"),
                    })?;
            Ok(list.voices.into_iter().map(into_voice).collect())
        }
        .boxed()
    }

    fn synthesize<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<Bytes, ProviderError>> {
        async move {
            let response = self.send(request, false).await?;
            let raw = response
                .bytes()
                .await
                .map_err(|e| transport_error(ProviderKind::ElevenLabs, &e))?;
            // The service measures (and so checks) the audio once it has it.
            Ok(wrap_whole(request.format, raw))
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
                .map_err(|e| transport_error(ProviderKind::ElevenLabs, &e));
            let chunks: AudioChunks = match request.format.streaming_wav_header() {
                Some(header) => stream::once(async move { Ok(Bytes::from(header)) })
                    .chain(body)
                    .boxed(),
                None => body.boxed(),
            };
            Ok(chunks)
        }
        .boxed()
    }
}

fn into_voice(voice: ElevenVoice) -> Voice {
    let mut labels = voice.labels;
    let gender = labels
        .get("gender")
        .and_then(Value::as_str)
        .unwrap_or("neutral")
        .to_ascii_lowercase();
    let accent = labels
        .get("accent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let language = match accent.as_str() {
        "british" | "english" => "en-GB",
        "australian" => "en-AU",
        _ => "en-US",
    };
    if let Some(category) = voice.category {
        labels.insert("category".to_owned(), category.into());
    }
    if let Some(description) = voice.description {
        labels
            .entry("description".to_owned())
            .or_insert(description.into());
    }
    Voice {
        name: voice.name.unwrap_or_else(|| voice.voice_id.clone()),
        id: voice.voice_id,
        language: language.to_owned(),
        gender,
        provider: ProviderKind::ElevenLabs,
        preview_url: voice.preview_url,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_parse_in_all_three_shapes() {
        let array =
            r#"{"detail":[{"loc":["body","text"],"msg":"Field required","type":"missing"}]}"#;
        assert_eq!(
            parse_detail(array),
            (
                "validation_error".to_owned(),
                "body.text: Field required".to_owned()
            )
        );
        let object = r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(parse_detail(object).0, "invalid_api_key");
        assert_eq!(
            parse_detail(r#"{"detail":"Not Found"}"#).1,
            "Not Found".to_owned()
        );
        assert_eq!(parse_detail("<html>").0, "error");
    }
}
