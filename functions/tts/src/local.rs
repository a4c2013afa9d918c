//! The local provider: espeak-ng on the function itself, rendered into every format we
//! serve. Streams sentence by sentence.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, stream};

use crate::audio::{AudioError, Encoding, Mp3Stream, render, streaming_wav_header};
use crate::local_engine::{EngineError, LocalEngine};
use crate::provider::{
    AudioChunks, ProviderError, ProviderKind, SpeechProvider, SynthesisRequest, Voice,
};
use crate::wav::{Pcm, raw_mulaw_8k, resample};

/// espeak-ng as a provider.
#[derive(Debug, Clone, Default)]
pub struct LocalProvider {
    engine: LocalEngine,
}

impl LocalProvider {
    /// The provider over `engine`.
    pub fn new(engine: LocalEngine) -> Self {
        Self { engine }
    }
}

fn engine_error(error: EngineError, voice_id: &str) -> ProviderError {
    match error {
        EngineError::UnknownVoice(_) => ProviderError::UnknownVoice {
            provider: ProviderKind::Local,
            voice_id: voice_id.to_owned(),
        },
        other => ProviderError::Unavailable {
            provider: ProviderKind::Local,
            detail: other.to_string(),
        },
    }
}

fn audio_error(error: AudioError) -> ProviderError {
    ProviderError::BadAudio {
        provider: ProviderKind::Local,
        detail: error.to_string(),
    }
}

/// Splits text after sentence ends (`.`, `!`, `?`, `;` and newlines followed by space), so
/// the first sentence can play while the rest is synthesized.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let boundary = matches!(c, '.' | '!' | '?' | ';' | '\n')
            && bytes.get(end).is_none_or(|b| b.is_ascii_whitespace());
        if boundary && !text[start..end].trim().is_empty() {
            out.push(text[start..end].trim());
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

/// Incremental rendering of PCM pieces into one clip of `encoding` (one MP3 encoder for
/// the whole clip, so sentences join without gaps).
enum Renderer {
    Mp3(Box<Mp3Stream>),
    Pcm16 { sample_rate: u32 },
    Mulaw,
}

impl Renderer {
    fn new(encoding: Encoding) -> Result<(Self, Vec<u8>), AudioError> {
        Ok(match encoding {
            Encoding::Mp3 { sample_rate, kbps } => (
                Renderer::Mp3(Box::new(Mp3Stream::new(sample_rate, kbps)?)),
                Vec::new(),
            ),
            Encoding::Pcm16 { sample_rate, riff } => (
                Renderer::Pcm16 { sample_rate },
                if riff {
                    streaming_wav_header(1, sample_rate, 16)
                } else {
                    Vec::new()
                },
            ),
            Encoding::Mulaw { riff } => (
                Renderer::Mulaw,
                if riff {
                    streaming_wav_header(7, 8000, 8)
                } else {
                    Vec::new()
                },
            ),
        })
    }

    fn push(&mut self, pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
        match self {
            Renderer::Mp3(encoder) => encoder.push(pcm),
            Renderer::Pcm16 { sample_rate } => Ok(resample(pcm, *sample_rate)
                .samples
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect()),
            Renderer::Mulaw => Ok(raw_mulaw_8k(pcm)),
        }
    }

    fn finish(self) -> Result<Vec<u8>, AudioError> {
        match self {
            Renderer::Mp3(encoder) => encoder.finish(),
            _ => Ok(Vec::new()),
        }
    }
}

impl SpeechProvider for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn model(&self) -> &str {
        "espeak-ng"
    }

    fn default_voice(&self, language: Option<&str>) -> String {
        let language = language.unwrap_or("en-US").to_ascii_lowercase();
        match language.as_str() {
            "en-gb" => "en-gb".to_owned(),
            "pt-br" => "pt-br".to_owned(),
            other => match other.split('-').next().unwrap_or("en") {
                code @ ("es" | "fr" | "de" | "it" | "pt" | "nl" | "pl" | "sv") => code.to_owned(),
                _ => "en-us".to_owned(),
            },
        }
    }

    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, ProviderError>> {
        async move {
            let voices = self
                .engine
                .voices()
                .await
                .map_err(|e| engine_error(e, ""))?;
            Ok(voices
                .into_iter()
                .map(|v| Voice {
                    preview_url: Some(format!("/voices/preview/{}", v.id)),
                    language: v.id.clone(),
                    gender: match v.gender.as_str() {
                        "F" => "female",
                        "M" => "male",
                        _ => "neutral",
                    }
                    .to_owned(),
                    id: v.id,
                    name: v.name,
                    provider: ProviderKind::Local,
                    labels: serde_json::Map::from_iter([("engine".to_owned(), "espeak-ng".into())]),
                })
                .collect())
        }
        .boxed()
    }

    fn synthesize<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<Bytes, ProviderError>> {
        async move {
            let pcm = self
                .engine
                .synthesize(&request.text, &request.voice_id, request.prosody)
                .await
                .map_err(|e| engine_error(e, &request.voice_id))?;
            render(&pcm, request.format.encoding())
                .map(Bytes::from)
                .map_err(audio_error)
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        request: &'a SynthesisRequest,
    ) -> BoxFuture<'a, Result<AudioChunks, ProviderError>> {
        async move {
            let (renderer, header) =
                Renderer::new(request.format.encoding()).map_err(audio_error)?;
            let pieces: Vec<String> = sentences(&request.text)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let engine = self.engine.clone();
            let voice = request.voice_id.clone();
            let prosody = request.prosody;
            let state = (Some(renderer), pieces.into_iter(), Some(header));
            let chunks = stream::unfold(state, move |(renderer, mut pieces, header)| {
                let engine = engine.clone();
                let voice = voice.clone();
                async move {
                    if let Some(header) = header.filter(|h| !h.is_empty()) {
                        return Some((Ok(Bytes::from(header)), (renderer, pieces, None)));
                    }
                    let mut renderer = renderer?;
                    match pieces.next() {
                        Some(piece) => {
                            let result = match engine.synthesize(&piece, &voice, prosody).await {
                                Ok(pcm) => renderer.push(&pcm).map_err(audio_error),
                                Err(e) => Err(engine_error(e, &voice)),
                            };
                            let next = if result.is_ok() { Some(renderer) } else { None };
                            Some((result.map(Bytes::from), (next, pieces, None)))
                        }
                        None => {
                            let last = renderer.finish().map_err(audio_error);
                            Some((last.map(Bytes::from), (None, pieces, None)))
                        }
                    }
                }
            })
            .filter(|chunk| {
                let keep = !matches!(chunk, Ok(bytes) if bytes.is_empty());
                async move { keep }
            });
            Ok(chunks.boxed())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_into_sentences_without_losing_words() {
        assert_eq!(
            sentences("Hello there. How are you? I am fine!  Bye"),
            vec!["Hello there.", "How are you?", "I am fine!", "Bye"]
        );
        assert_eq!(
            sentences("Version 1.5 is out."),
            vec!["Version 1.5 is out."]
        );
        assert!(sentences("   ").is_empty());
    }
}
