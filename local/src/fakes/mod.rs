//! Contract fakes of the cloud text-to-speech services (Azure Speech, ElevenLabs): axum
//! servers on a free loopback port that check every request the way the real service does
//! (`shared/contracts/FACTS.md`, ElevenLabs' OpenAPI spec), answer with real audio spoken by
//! espeak-ng in the requested encoding, and reproduce the services' error shapes. The local
//! stack points our production TTS code at them through its configurable base URLs.
//!
//! Each fake also serves `GET /__fake/stats` and `POST /__fake/fail` (`{"status":429,
//! "count":1}`) for manual use; [`FakeControl`] does the same from Rust.

pub mod azure;
pub mod elevenlabs;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tts::audio::{AudioError, Encoding, Mp3Stream, render};
use tts::local_engine::{EngineError, LocalEngine};
use tts::ssml::Prosody;
use tts::wav::{Pcm, raw_mulaw_8k, resample};

pub use azure::start_azure;
pub use elevenlabs::start_elevenlabs;

/// The key the Azure fake accepts in `Ocp-Apim-Subscription-Key`.
pub const AZURE_FAKE_KEY: &str = "local-azure-speech-key";
/// The key the ElevenLabs fake accepts in `xi-api-key`.
pub const ELEVENLABS_FAKE_KEY: &str = "local-elevenlabs-key";

/// A running fake: its base URL (`http://127.0.0.1:<port>`) and a handle to inspect and
/// steer it.
#[derive(Debug, Clone)]
pub struct RunningFake {
    pub base_url: String,
    pub control: FakeControl,
}

/// A fake's call counters and failure injection; clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct FakeControl {
    inner: Arc<ControlState>,
}

#[derive(Debug, Default)]
struct ControlState {
    synthesis_calls: AtomicUsize,
    voice_list_calls: AtomicUsize,
    /// (status, requests left to fail).
    failing: Mutex<Option<(u16, usize)>>,
}

impl FakeControl {
    /// Synthesis requests received (POST to a text-to-speech route), answered or refused.
    pub fn synthesis_calls(&self) -> usize {
        self.inner.synthesis_calls.load(Ordering::SeqCst)
    }

    /// Voice-list requests received, answered or refused.
    pub fn voice_list_calls(&self) -> usize {
        self.inner.voice_list_calls.load(Ordering::SeqCst)
    }

    /// The next `count` requests of any service route answer with the real service's error
    /// for `status` (401, 429, 500, 503; other statuses get a generic error of that status).
    pub fn fail_next(&self, status: u16, count: usize) {
        let mut failing = self
            .inner
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *failing = (count > 0).then_some((status, count));
    }

    /// Zeroes the counters and cancels pending failures.
    pub fn reset(&self) {
        self.inner.synthesis_calls.store(0, Ordering::SeqCst);
        self.inner.voice_list_calls.store(0, Ordering::SeqCst);
        *self
            .inner
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn count_synthesis(&self) {
        self.inner.synthesis_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_voice_list(&self) {
        self.inner.voice_list_calls.fetch_add(1, Ordering::SeqCst);
    }

    /// The injected failure this request must answer with, if any (consumes one).
    pub(crate) fn take_failure(&self) -> Option<StatusCode> {
        let mut failing = self
            .inner
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (status, left) = (*failing)?;
        *failing = (left > 1).then_some((status, left - 1));
        Some(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

#[derive(Debug, Deserialize)]
struct FailRequest {
    status: u16,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

/// `GET /__fake/stats` and `POST /__fake/fail` over `control`.
fn control_routes(control: FakeControl) -> Router {
    async fn stats(State(control): State<FakeControl>) -> Json<serde_json::Value> {
        Json(json!({
            "synthesis_calls": control.synthesis_calls(),
            "voice_list_calls": control.voice_list_calls(),
        }))
    }
    async fn fail(
        State(control): State<FakeControl>,
        body: Result<Json<FailRequest>, axum::extract::rejection::JsonRejection>,
    ) -> Response {
        match body {
            Ok(Json(request)) if (400..=599).contains(&request.status) => {
                control.fail_next(request.status, request.count);
                StatusCode::NO_CONTENT.into_response()
            }
            Ok(_) => (
                StatusCode::BAD_REQUEST,
                "status must be an HTTP error status (400-599)",
            )
                .into_response(),
            Err(rejection) => (StatusCode::BAD_REQUEST, rejection.body_text()).into_response(),
        }
    }
    Router::new()
        .route("/__fake/stats", get(stats))
        .route("/__fake/fail", post(fail))
        .with_state(control)
}

/// Serves `router` on a free loopback port.
async fn serve(router: Router) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "a TTS contract fake stopped");
        }
    });
    Ok((format!("http://{address}"), handle))
}

/// One thing to say: text in an espeak-ng voice with prosody, or a pause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Speak {
        text: String,
        voice: String,
        prosody: Prosody,
    },
    Pause {
        milliseconds: u32,
    },
}

/// `text` cut after each `.`, `!` or `?` followed by whitespace (the unit the fakes
/// synthesize and stream one at a time); empty pieces are dropped.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            let sentence = current.trim();
            if !sentence.is_empty() {
                out.push(sentence.to_owned());
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// The sample rate espeak-ng speaks at (pauses are made at it too).
const ENGINE_RATE: u32 = 22_050;

/// Why audio could not be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpeakError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("the encoder task failed: {0}")]
    Task(String),
}

/// Encodes PCM piece by piece in a fixed encoding.
enum Encoder {
    Mp3(Box<Mp3Stream>),
    RawPcm(u32),
    RawMulaw,
}

impl Encoder {
    /// `None` for encodings with a container (RIFF), which are rendered whole.
    fn new(encoding: Encoding) -> Result<Option<Self>, AudioError> {
        Ok(match encoding {
            Encoding::Mp3 { sample_rate, kbps } => {
                Some(Encoder::Mp3(Box::new(Mp3Stream::new(sample_rate, kbps)?)))
            }
            Encoding::Pcm16 {
                sample_rate,
                riff: false,
            } => Some(Encoder::RawPcm(sample_rate)),
            Encoding::Mulaw { riff: false } => Some(Encoder::RawMulaw),
            Encoding::Pcm16 { riff: true, .. } | Encoding::Mulaw { riff: true } => None,
        })
    }

    fn push(&mut self, pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
        match self {
            Encoder::Mp3(stream) => stream.push(pcm),
            Encoder::RawPcm(rate) => Ok(resample(pcm, *rate)
                .samples
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect()),
            Encoder::RawMulaw => Ok(raw_mulaw_8k(pcm)),
        }
    }

    fn finish(self) -> Result<Vec<u8>, AudioError> {
        match self {
            Encoder::Mp3(stream) => stream.finish(),
            Encoder::RawPcm(_) | Encoder::RawMulaw => Ok(Vec::new()),
        }
    }
}

/// Checks that `encoding` can be produced (the MP3 encoder accepts its rate and bitrate).
pub(crate) fn can_encode(encoding: Encoding) -> bool {
    match encoding {
        Encoding::Mp3 { sample_rate, kbps } => Mp3Stream::new(sample_rate, kbps).is_ok(),
        _ => true,
    }
}

/// Speaks pieces in order, keeping the total under a limit.
struct Speaker {
    engine: LocalEngine,
    pieces: std::vec::IntoIter<Piece>,
    samples_left: usize,
}

impl Speaker {
    fn new(engine: LocalEngine, pieces: Vec<Piece>, max_seconds: f64) -> Self {
        Self {
            engine,
            pieces: pieces.into_iter(),
            samples_left: (max_seconds * f64::from(ENGINE_RATE)) as usize,
        }
    }

    /// The next piece's audio (at the engine's rate), `None` when all is said or the limit
    /// is reached.
    async fn next(&mut self) -> Option<Result<Pcm, SpeakError>> {
        if self.samples_left == 0 {
            return None;
        }
        let mut pcm = match self.pieces.next()? {
            Piece::Speak {
                text,
                voice,
                prosody,
            } => match self.engine.synthesize(&text, &voice, prosody).await {
                Ok(pcm) => resample(&pcm, ENGINE_RATE),
                Err(error) => return Some(Err(error.into())),
            },
            Piece::Pause { milliseconds } => Pcm {
                sample_rate: ENGINE_RATE,
                samples: vec![
                    0;
                    (u64::from(milliseconds) * u64::from(ENGINE_RATE) / 1000) as usize
                ],
            },
        };
        pcm.samples.truncate(self.samples_left);
        self.samples_left -= pcm.samples.len();
        Some(Ok(pcm))
    }
}

/// The audio of `pieces` in `encoding` as a response body: whole for RIFF encodings (and
/// when `whole`), otherwise streamed piece by piece as each is synthesized. The first
/// audio is ready before this returns, so an engine failure is an error here, not a
/// broken stream.
pub(crate) async fn speak(
    engine: LocalEngine,
    pieces: Vec<Piece>,
    encoding: Encoding,
    max_seconds: f64,
    whole: bool,
) -> Result<Body, SpeakError> {
    let mut speaker = Speaker::new(engine, pieces, max_seconds);
    let riff = matches!(
        encoding,
        Encoding::Pcm16 { riff: true, .. } | Encoding::Mulaw { riff: true }
    );
    if whole || riff {
        let mut all = Pcm {
            sample_rate: ENGINE_RATE,
            samples: Vec::new(),
        };
        while let Some(pcm) = speaker.next().await {
            all.samples.extend(pcm?.samples);
        }
        let audio = tokio::task::spawn_blocking(move || render(&all, encoding))
            .await
            .map_err(|e| SpeakError::Task(e.to_string()))??;
        return Ok(Body::from(audio));
    }
    // The MP3 encoder is not `Send`: it lives on a blocking thread of its own, fed PCM by
    // the synthesis task.
    let (pcm_sender, pcm_receiver) = tokio::sync::mpsc::channel::<Pcm>(2);
    let (chunk_sender, mut chunks) = tokio::sync::mpsc::channel::<Result<Bytes, SpeakError>>(4);
    let encoded = chunk_sender.clone();
    tokio::task::spawn_blocking(move || encode(encoding, pcm_receiver, &encoded));
    tokio::spawn(async move {
        while let Some(pcm) = speaker.next().await {
            match pcm {
                Ok(pcm) => {
                    if pcm_sender.send(pcm).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = chunk_sender.send(Err(error)).await;
                    return;
                }
            }
        }
    });
    // Wait for the first audio, so a failure before any audio is an error status.
    let first = match chunks.recv().await {
        None => return Ok(Body::empty()),
        Some(first) => first?,
    };
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|item| (item, chunks))
    });
    let all = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    Ok(Body::from_stream(all))
}

/// The encoder thread: encodes PCM as it arrives, sends each non-empty chunk, flushes the
/// encoder when the PCM ends.
fn encode(
    encoding: Encoding,
    mut pcm: tokio::sync::mpsc::Receiver<Pcm>,
    chunks: &tokio::sync::mpsc::Sender<Result<Bytes, SpeakError>>,
) {
    let send = |bytes: Result<Vec<u8>, AudioError>| -> bool {
        match bytes {
            Ok(bytes) if bytes.is_empty() => true,
            Ok(bytes) => chunks.blocking_send(Ok(Bytes::from(bytes))).is_ok(),
            Err(error) => {
                let _ = chunks.blocking_send(Err(error.into()));
                false
            }
        }
    };
    let mut encoder = match Encoder::new(encoding) {
        Ok(Some(encoder)) => encoder,
        Ok(None) => {
            send(Err(AudioError::Malformed("a streamable encoding")));
            return;
        }
        Err(error) => {
            send(Err(error));
            return;
        }
    };
    while let Some(piece) = pcm.blocking_recv() {
        if !send(encoder.push(&piece)) {
            return;
        }
    }
    send(encoder.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_after_terminal_punctuation_followed_by_space() {
        assert_eq!(
            sentences("Hello there. How are you?  Fine! 3.5 apples.Really"),
            vec!["Hello there.", "How are you?", "Fine!", "3.5 apples.Really"]
        );
        assert!(sentences("   ").is_empty());
    }

    #[test]
    fn failures_are_consumed_one_request_at_a_time() {
        let control = FakeControl::default();
        control.fail_next(429, 2);
        assert_eq!(control.take_failure(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(control.take_failure(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(control.take_failure(), None);
        control.fail_next(503, 1);
        control.reset();
        assert_eq!(control.take_failure(), None);
    }
}
