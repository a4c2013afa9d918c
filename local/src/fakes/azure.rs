//! The Azure Speech fake: `POST /cognitiveservices/v1` (SSML in, audio out) and
//! `GET /cognitiveservices/voices/list`, as `https://{region}.tts.speech.microsoft.com`
//! documents them (`shared/contracts/FACTS.md`, "Azure Speech TTS").
//!
//! Azure documents no error body, so refusals are the status alone; the fake adds a short
//! plain-text reason to its 400s to help whoever reads them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tts::audio::Encoding;
use tts::local_engine::LocalEngine;
use tts::ssml::Prosody;

use super::{AZURE_FAKE_KEY, FakeControl, Piece, RunningFake, can_encode, sentences, speak};

/// Azure's limit on the SSML body.
pub const MAX_SSML_BYTES: usize = 64 * 1024;
/// Azure returns at most 10 minutes of audio per request.
pub const MAX_AUDIO_SECONDS: f64 = 600.0;

const SSML_NAMESPACE: &str = "http://www.w3.org/2001/10/synthesis";
const MSTTS_NAMESPACES: [&str; 2] = [
    "https://www.w3.org/2001/mstts",
    "http://www.w3.org/2001/mstts",
];
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Every `X-Microsoft-OutputFormat` the REST doc lists (streaming and RIFF), plus
/// `riff-16khz-16bit-mono-pcm`, which the SDK has and samples use.
pub const OUTPUT_FORMATS: &[&str] = &[
    "amr-wb-16000hz",
    "audio-16khz-16bit-32kbps-mono-opus",
    "audio-24khz-16bit-24kbps-mono-opus",
    "audio-24khz-16bit-48kbps-mono-opus",
    "audio-16khz-32kbitrate-mono-mp3",
    "audio-16khz-64kbitrate-mono-mp3",
    "audio-16khz-128kbitrate-mono-mp3",
    "audio-24khz-48kbitrate-mono-mp3",
    "audio-24khz-96kbitrate-mono-mp3",
    "audio-24khz-160kbitrate-mono-mp3",
    "audio-48khz-96kbitrate-mono-mp3",
    "audio-48khz-192kbitrate-mono-mp3",
    "g722-16khz-64kbps",
    "ogg-16khz-16bit-mono-opus",
    "ogg-24khz-16bit-mono-opus",
    "ogg-48khz-16bit-mono-opus",
    "raw-8khz-8bit-mono-alaw",
    "raw-8khz-8bit-mono-mulaw",
    "raw-8khz-16bit-mono-pcm",
    "raw-16khz-16bit-mono-pcm",
    "raw-24khz-16bit-mono-pcm",
    "raw-48khz-16bit-mono-pcm",
    "raw-22050hz-16bit-mono-pcm",
    "raw-44100hz-16bit-mono-pcm",
    "raw-16khz-16bit-mono-truesilk",
    "raw-24khz-16bit-mono-truesilk",
    "webm-16khz-16bit-mono-opus",
    "webm-24khz-16bit-24kbps-mono-opus",
    "webm-24khz-16bit-mono-opus",
    "riff-8khz-8bit-mono-alaw",
    "riff-8khz-8bit-mono-mulaw",
    "riff-8khz-16bit-mono-pcm",
    "riff-16khz-16bit-mono-pcm",
    "riff-24khz-16bit-mono-pcm",
    "riff-48khz-16bit-mono-pcm",
    "riff-22050hz-16bit-mono-pcm",
    "riff-44100hz-16bit-mono-pcm",
];

/// A voice of the fake's list; `styles` is its `StyleList`, space-separated.
struct FakeVoice {
    short_name: &'static str,
    display_name: &'static str,
    gender: &'static str,
    locale_name: &'static str,
    styles: &'static str,
}

const VOICES: &[FakeVoice] = &[
    FakeVoice {
        short_name: "en-US-AriaNeural",
        display_name: "Aria",
        gender: "Female",
        locale_name: "English (United States)",
        styles: "chat customerservice narration-professional newscast-casual newscast-formal cheerful empathetic angry sad excited friendly terrified shouting unfriendly whispering hopeful",
    },
    FakeVoice {
        short_name: "en-US-JennyNeural",
        display_name: "Jenny",
        gender: "Female",
        locale_name: "English (United States)",
        styles: "assistant chat customerservice newscast angry cheerful sad excited friendly terrified shouting unfriendly whispering hopeful",
    },
    FakeVoice {
        short_name: "en-US-GuyNeural",
        display_name: "Guy",
        gender: "Male",
        locale_name: "English (United States)",
        styles: "newscast angry cheerful sad excited friendly terrified shouting unfriendly whispering hopeful",
    },
    FakeVoice {
        short_name: "en-US-DavisNeural",
        display_name: "Davis",
        gender: "Male",
        locale_name: "English (United States)",
        styles: "chat angry cheerful excited friendly hopeful sad shouting terrified unfriendly whispering",
    },
    FakeVoice {
        short_name: "en-GB-SoniaNeural",
        display_name: "Sonia",
        gender: "Female",
        locale_name: "English (United Kingdom)",
        styles: "cheerful sad",
    },
    FakeVoice {
        short_name: "en-GB-RyanNeural",
        display_name: "Ryan",
        gender: "Male",
        locale_name: "English (United Kingdom)",
        styles: "cheerful chat whispering sad",
    },
    FakeVoice {
        short_name: "es-ES-ElviraNeural",
        display_name: "Elvira",
        gender: "Female",
        locale_name: "Spanish (Spain)",
        styles: "",
    },
    FakeVoice {
        short_name: "es-MX-JorgeNeural",
        display_name: "Jorge",
        gender: "Male",
        locale_name: "Spanish (Mexico)",
        styles: "chat cheerful",
    },
    FakeVoice {
        short_name: "fr-FR-DeniseNeural",
        display_name: "Denise",
        gender: "Female",
        locale_name: "French (France)",
        styles: "cheerful sad",
    },
    FakeVoice {
        short_name: "de-DE-KatjaNeural",
        display_name: "Katja",
        gender: "Female",
        locale_name: "German (Germany)",
        styles: "",
    },
    FakeVoice {
        short_name: "it-IT-ElsaNeural",
        display_name: "Elsa",
        gender: "Female",
        locale_name: "Italian (Italy)",
        styles: "",
    },
    FakeVoice {
        short_name: "pt-BR-FranciscaNeural",
        display_name: "Francisca",
        gender: "Female",
        locale_name: "Portuguese (Brazil)",
        styles: "calm",
    },
];

impl FakeVoice {
    fn locale(&self) -> &'static str {
        let mut dashes = self.short_name.match_indices('-').map(|(i, _)| i);
        let end = dashes.nth(1).unwrap_or(self.short_name.len());
        &self.short_name[..end]
    }

    fn to_json(&self) -> Value {
        let locale = self.locale();
        let name = self
            .short_name
            .trim_start_matches(locale)
            .trim_start_matches('-');
        let mut voice = json!({
            "Name": format!("Microsoft Server Speech Text to Speech Voice ({locale}, {name})"),
            "DisplayName": self.display_name,
            "LocalName": self.display_name,
            "ShortName": self.short_name,
            "Gender": self.gender,
            "Locale": locale,
            "LocaleName": self.locale_name,
            "SampleRateHertz": "24000",
            "VoiceType": "Neural",
            "Status": "GA",
            "WordsPerMinute": "150",
        });
        if !self.styles.is_empty() {
            voice["StyleList"] = json!(self.styles.split(' ').collect::<Vec<_>>());
        }
        voice
    }
}

fn find_voice(name: &str) -> Option<&'static FakeVoice> {
    VOICES
        .iter()
        .find(|v| v.short_name.eq_ignore_ascii_case(name))
}

/// The espeak-ng voice that speaks `locale` (`en-US` → `en-us`; English otherwise).
pub fn espeak_voice(locale: &str) -> &'static str {
    let locale = locale.to_ascii_lowercase();
    let (language, region) = locale.split_once('-').unwrap_or((locale.as_str(), ""));
    match (language, region) {
        ("en", "gb" | "ie") => "en-gb",
        ("en", _) => "en-us",
        ("es", "mx" | "us" | "ar" | "co" | "cl" | "pe") => "es-419",
        ("es", _) => "es",
        ("fr", _) => "fr",
        ("de", _) => "de",
        ("it", _) => "it",
        ("pt", "br") => "pt-br",
        ("pt", _) => "pt",
        _ => "en-us",
    }
}

#[derive(Clone)]
struct AzureState {
    engine: LocalEngine,
    control: FakeControl,
}

/// Starts the Azure Speech fake on a free loopback port; its base URL stands for
/// `https://{region}.tts.speech.microsoft.com`.
pub async fn start_azure(
    engine: LocalEngine,
) -> std::io::Result<(RunningFake, tokio::task::JoinHandle<()>)> {
    let control = FakeControl::default();
    let state = AzureState {
        engine,
        control: control.clone(),
    };
    let router = Router::new()
        .route("/cognitiveservices/v1", post(synthesize))
        .route("/cognitiveservices/voices/list", get(voices))
        // Bodies over Azure's 64 KB are a 400 from the handler, not axum's 413.
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state)
        .merge(super::control_routes(control.clone()))
        .fallback(|| async { StatusCode::NOT_FOUND });
    let (base_url, handle) = super::serve(router).await?;
    Ok((RunningFake { base_url, control }, handle))
}

/// Azure's answer for an error status: the status alone (429 adds `Retry-After`).
fn error(status: StatusCode) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return (status, [(header::RETRY_AFTER, "1")]).into_response();
    }
    status.into_response()
}

/// Why a request was refused: a bare status, as Azure sends it, or a 400 with a short
/// plain-text reason.
enum Refusal {
    Status(StatusCode),
    BadRequest(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Status(status) => error(status),
            Refusal::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                reason,
            )
                .into_response(),
        }
    }
}

fn bad_request(reason: impl Into<String>) -> Refusal {
    Refusal::BadRequest(reason.into())
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("ocp-apim-subscription-key")
        .is_some_and(|key| key.as_bytes() == AZURE_FAKE_KEY.as_bytes())
}

async fn voices(State(state): State<AzureState>, headers: HeaderMap) -> Response {
    state.control.count_voice_list();
    if let Some(status) = state.control.take_failure() {
        return error(status);
    }
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED);
    }
    let list: Vec<Value> = VOICES.iter().map(FakeVoice::to_json).collect();
    axum::Json(list).into_response()
}

async fn synthesize(State(state): State<AzureState>, headers: HeaderMap, body: Bytes) -> Response {
    state.control.count_synthesis();
    if let Some(status) = state.control.take_failure() {
        return error(status);
    }
    let request = match check_request(&headers, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    match speak(
        state.engine.clone(),
        request.pieces,
        request.encoding,
        MAX_AUDIO_SECONDS,
        false,
    )
    .await
    {
        Ok(audio) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, request.content_type)],
            audio,
        )
            .into_response(),
        Err(failure) => {
            tracing::warn!(%failure, "the Azure fake could not speak");
            error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// A synthesis request that passed every check.
struct Checked {
    encoding: Encoding,
    content_type: HeaderValue,
    pieces: Vec<Piece>,
}

/// Every check Azure makes, in its order: key, content type, output format, user agent,
/// then the SSML.
fn check_request(headers: &HeaderMap, body: &[u8]) -> Result<Checked, Refusal> {
    if !authorized(headers) {
        return Err(Refusal::Status(StatusCode::UNAUTHORIZED));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !content_type.is_some_and(|t| t.eq_ignore_ascii_case("application/ssml+xml")) {
        return Err(Refusal::Status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let (encoding, mime) = output_format(headers)?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| v.as_bytes().len())
        .unwrap_or(0);
    if user_agent == 0 {
        return Err(bad_request("The User-Agent header is required."));
    }
    if user_agent >= 255 {
        return Err(bad_request(
            "The User-Agent header must be under 255 characters.",
        ));
    }
    if body.len() > MAX_SSML_BYTES {
        return Err(bad_request(format!(
            "The SSML body is {} bytes; the limit is {MAX_SSML_BYTES}.",
            body.len()
        )));
    }
    let ssml =
        std::str::from_utf8(body).map_err(|_| bad_request("The SSML body is not valid UTF-8."))?;
    let pieces = parse_ssml(ssml).map_err(bad_request)?;
    Ok(Checked {
        encoding,
        content_type: mime,
        pieces,
    })
}

/// The encoding `X-Microsoft-OutputFormat` names, and the reply's content type.
fn output_format(headers: &HeaderMap) -> Result<(Encoding, HeaderValue), Refusal> {
    let Some(name) = headers
        .get("x-microsoft-outputformat")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return Err(bad_request(
            "The X-Microsoft-OutputFormat header is required.",
        ));
    };
    if !OUTPUT_FORMATS.contains(&name.as_str()) {
        return Err(bad_request(format!(
            "Unsupported output format {name:?} (X-Microsoft-OutputFormat)."
        )));
    }
    let Some(encoding) = Encoding::from_azure_output_format(&name).filter(|e| can_encode(*e))
    else {
        return Err(bad_request(format!(
            "The local fake cannot produce the output format {name:?}; ask for MP3, PCM or mu-law."
        )));
    };
    let mime = match encoding {
        Encoding::Mp3 { .. } => HeaderValue::from_static("audio/mpeg"),
        Encoding::Pcm16 { riff: true, .. } | Encoding::Mulaw { riff: true } => {
            HeaderValue::from_static("audio/x-wav")
        }
        Encoding::Mulaw { riff: false } => HeaderValue::from_static("audio/basic"),
        Encoding::Pcm16 { riff: false, .. } => HeaderValue::from_static("audio/pcm"),
    };
    Ok((encoding, mime))
}

/// Where the walk over the SSML is: the language and prosody in force.
#[derive(Clone)]
struct Context {
    locale: String,
    prosody: Prosody,
}

/// Text runs and pauses, in document order, before sentence splitting.
enum Run {
    Text { text: String, context: Context },
    Pause(u32),
    Boundary,
}

/// Checks the SSML as Azure does and turns it into pieces to speak (one per sentence).
pub(crate) fn parse_ssml(ssml: &str) -> Result<Vec<Piece>, String> {
    let document = roxmltree::Document::parse(ssml)
        .map_err(|e| format!("The SSML is not well-formed XML: {e}"))?;
    let speak = document.root_element();
    if !is_ssml(speak, "speak") {
        return Err("The root element must be <speak>.".into());
    }
    if speak.attribute("version") != Some("1.0") {
        return Err("<speak> must have version=\"1.0\".".into());
    }
    let Some(language) = speak.attribute((XML_NAMESPACE, "lang")) else {
        return Err("<speak> must have xml:lang.".into());
    };
    let mut runs = Vec::new();
    let mut voices = 0;
    for child in speak.children() {
        if child.is_text() {
            if child.text().is_some_and(|t| !t.trim().is_empty()) {
                return Err("Text must be inside a <voice> element.".into());
            }
            continue;
        }
        if !child.is_element() {
            continue;
        }
        if !is_ssml(child, "voice") {
            return Err(format!(
                "<{}> is not allowed directly in <speak>.",
                child.tag_name().name()
            ));
        }
        let Some(name) = child.attribute("name") else {
            return Err("<voice> must have a name attribute.".into());
        };
        let Some(voice) = find_voice(name) else {
            return Err(format!("Unsupported voice {name}."));
        };
        voices += 1;
        let context = Context {
            locale: voice.locale().to_owned(),
            prosody: Prosody::default(),
        };
        walk(child, &context, &mut runs)?;
        runs.push(Run::Boundary);
    }
    if voices == 0 {
        return Err(format!(
            "<speak xml:lang=\"{language}\"> has no <voice> element."
        ));
    }
    let pieces = pieces(runs);
    if !pieces.iter().any(|p| matches!(p, Piece::Speak { .. })) {
        return Err("The SSML has no text to speak.".into());
    }
    Ok(pieces)
}

fn is_ssml(node: roxmltree::Node<'_, '_>, name: &str) -> bool {
    node.tag_name().name() == name
        && node
            .tag_name()
            .namespace()
            .is_none_or(|ns| ns == SSML_NAMESPACE)
}

fn is_mstts(node: roxmltree::Node<'_, '_>, name: &str) -> bool {
    node.tag_name().name() == name
        && node
            .tag_name()
            .namespace()
            .is_some_and(|ns| MSTTS_NAMESPACES.contains(&ns))
}

/// Collects the text under `element` (a `<voice>` or one of the elements allowed in it).
fn walk(
    element: roxmltree::Node<'_, '_>,
    context: &Context,
    runs: &mut Vec<Run>,
) -> Result<(), String> {
    for node in element.children() {
        if node.is_text() {
            if let Some(text) = node.text() {
                runs.push(Run::Text {
                    text: text.to_owned(),
                    context: context.clone(),
                });
            }
            continue;
        }
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name().name();
        if is_ssml(node, "prosody") {
            let mut inner = context.clone();
            inner.prosody = prosody(node, context.prosody)?;
            walk(node, &inner, runs)?;
        } else if is_ssml(node, "break") {
            runs.push(Run::Pause(break_milliseconds(node)?));
        } else if is_ssml(node, "s") || is_ssml(node, "p") {
            runs.push(Run::Boundary);
            walk(node, context, runs)?;
            runs.push(Run::Boundary);
        } else if is_ssml(node, "say-as") {
            if node.attribute("interpret-as").is_none() {
                return Err("<say-as> must have interpret-as.".into());
            }
            walk(node, context, runs)?;
        } else if is_ssml(node, "lang") {
            let Some(locale) = node.attribute((XML_NAMESPACE, "lang")) else {
                return Err("<lang> must have xml:lang.".into());
            };
            let inner = Context {
                locale: locale.to_owned(),
                prosody: context.prosody,
            };
            runs.push(Run::Boundary);
            walk(node, &inner, runs)?;
            runs.push(Run::Boundary);
        } else if is_mstts(node, "express-as") {
            if node.attribute("style").is_none() {
                return Err("<mstts:express-as> must have a style attribute.".into());
            }
            walk(node, context, runs)?;
        } else {
            return Err(format!("The element <{name}> is not supported here."));
        }
    }
    Ok(())
}

/// Runs joined into pieces: text of one context cut into sentences, pauses kept.
fn pieces(runs: Vec<Run>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pending: Option<(String, Context)> = None;
    let flush = |pending: &mut Option<(String, Context)>, out: &mut Vec<Piece>| {
        if let Some((text, context)) = pending.take() {
            for sentence in sentences(&text) {
                out.push(Piece::Speak {
                    text: sentence,
                    voice: espeak_voice(&context.locale).to_owned(),
                    prosody: context.prosody,
                });
            }
        }
    };
    for run in runs {
        match run {
            Run::Text { text, context } => match &mut pending {
                Some((buffer, current))
                    if current.locale == context.locale && current.prosody == context.prosody =>
                {
                    buffer.push_str(&text);
                }
                _ => {
                    flush(&mut pending, &mut out);
                    pending = Some((text, context));
                }
            },
            Run::Pause(milliseconds) => {
                flush(&mut pending, &mut out);
                if milliseconds > 0 {
                    out.push(Piece::Pause { milliseconds });
                }
            }
            Run::Boundary => flush(&mut pending, &mut out),
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// A `<prosody>`'s rate, pitch and volume applied on top of `outer`.
fn prosody(node: roxmltree::Node<'_, '_>, outer: Prosody) -> Result<Prosody, String> {
    let mut prosody = outer;
    if let Some(rate) = node.attribute("rate") {
        prosody.speed = (outer.speed * rate_multiplier(rate)?).clamp(0.5, 2.0);
    }
    if let Some(pitch) = node.attribute("pitch") {
        prosody.pitch_percent = outer.pitch_percent + pitch_percent(pitch)?;
    }
    if let Some(volume) = node.attribute("volume") {
        prosody.volume_percent = outer.volume_percent + volume_percent(volume)?;
    }
    Ok(prosody)
}

/// `+10%`, `-20%`, `+5` (a signed number): the relative change.
fn signed(value: &str) -> Option<f64> {
    let value = value.trim();
    let number = value.strip_suffix('%').unwrap_or(value);
    (number.starts_with(['+', '-']) || value.ends_with('%'))
        .then(|| number.parse::<f64>().ok())
        .flatten()
        .filter(|n| n.is_finite())
}

fn rate_multiplier(rate: &str) -> Result<f64, String> {
    let keyword = match rate.trim() {
        "x-slow" => Some(0.5),
        "slow" => Some(0.64),
        "medium" | "default" => Some(1.0),
        "fast" => Some(1.55),
        "x-fast" => Some(2.0),
        _ => None,
    };
    if let Some(multiplier) = keyword {
        return Ok(multiplier);
    }
    let trimmed = rate.trim();
    if trimmed.ends_with('%') {
        if let Some(percent) = signed(trimmed) {
            return Ok(1.0 + percent / 100.0);
        }
    } else if let Ok(multiplier) = trimmed.parse::<f64>()
        && multiplier.is_finite()
        && multiplier > 0.0
    {
        return Ok(multiplier);
    }
    Err(format!("Invalid prosody rate {rate:?}."))
}

fn pitch_percent(pitch: &str) -> Result<f64, String> {
    let trimmed = pitch.trim();
    let keyword = match trimmed {
        "x-low" => Some(-50.0),
        "low" => Some(-25.0),
        "medium" | "default" => Some(0.0),
        "high" => Some(25.0),
        "x-high" => Some(50.0),
        _ => None,
    };
    if let Some(percent) = keyword {
        return Ok(percent);
    }
    if let Some(semitones) = trimmed.strip_suffix("st")
        && let Ok(semitones) = semitones.parse::<f64>()
        && semitones.is_finite()
    {
        return Ok((2f64.powf(semitones / 12.0) - 1.0) * 100.0);
    }
    if let Some(hertz) = trimmed
        .strip_suffix("Hz")
        .or_else(|| trimmed.strip_suffix("hz"))
        && let Ok(value) = hertz.parse::<f64>()
        && value.is_finite()
    {
        // Relative (`+80Hz`) or absolute (`600Hz`), against a 200 Hz voice.
        return Ok(if hertz.starts_with(['+', '-']) {
            value / 2.0
        } else {
            (value - 200.0) / 2.0
        });
    }
    if trimmed.ends_with('%')
        && let Some(percent) = signed(trimmed)
    {
        return Ok(percent);
    }
    Err(format!("Invalid prosody pitch {pitch:?}."))
}

fn volume_percent(volume: &str) -> Result<f64, String> {
    let trimmed = volume.trim();
    let keyword = match trimmed {
        "silent" => Some(-100.0),
        "x-soft" => Some(-80.0),
        "soft" => Some(-50.0),
        "medium" | "default" => Some(0.0),
        "loud" => Some(50.0),
        "x-loud" => Some(100.0),
        _ => None,
    };
    if let Some(percent) = keyword {
        return Ok(percent);
    }
    if let Some(change) = signed(trimmed) {
        return Ok(change);
    }
    if let Ok(absolute) = trimmed.parse::<f64>()
        && (0.0..=100.0).contains(&absolute)
    {
        return Ok(absolute - 100.0);
    }
    Err(format!("Invalid prosody volume {volume:?}."))
}

/// A `<break>`'s length: `time` (`500ms`, `2s`, at most 20 s) or `strength`.
fn break_milliseconds(node: roxmltree::Node<'_, '_>) -> Result<u32, String> {
    if let Some(time) = node.attribute("time") {
        let time = time.trim();
        let milliseconds = if let Some(ms) = time.strip_suffix("ms") {
            ms.trim().parse::<f64>().ok()
        } else if let Some(s) = time.strip_suffix('s') {
            s.trim().parse::<f64>().ok().map(|s| s * 1000.0)
        } else {
            None
        };
        return milliseconds
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| ms.min(20_000.0) as u32)
            .ok_or_else(|| format!("Invalid break time {time:?}."));
    }
    match node.attribute("strength").unwrap_or("medium") {
        "none" => Ok(0),
        "x-weak" => Ok(250),
        "weak" => Ok(500),
        "medium" => Ok(750),
        "strong" => Ok(1000),
        "x-strong" => Ok(1250),
        other => Err(format!("Invalid break strength {other:?}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speak(pieces: &[Piece]) -> Vec<(&str, &str)> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Speak { text, voice, .. } => Some((text.as_str(), voice.as_str())),
                Piece::Pause { .. } => None,
            })
            .collect()
    }

    #[test]
    fn our_own_ssml_parses_to_sentences() {
        let ssml = tts::ssml::azure_ssml(
            "Hello & welcome. How can I help?",
            "en-GB-SoniaNeural",
            "en-GB",
            Prosody {
                speed: 1.25,
                pitch_percent: -10.0,
                volume_percent: 0.0,
            },
        );
        let pieces = parse_ssml(&ssml).expect("valid");
        assert_eq!(
            speak(&pieces),
            vec![("Hello & welcome.", "en-gb"), ("How can I help?", "en-gb")]
        );
        let Piece::Speak { prosody, .. } = &pieces[0] else {
            panic!("speech first")
        };
        assert!((prosody.speed - 1.25).abs() < 1e-9);
        assert!((prosody.pitch_percent + 10.0).abs() < 1e-9);
    }

    #[test]
    fn allowed_markup_is_walked_and_other_markup_refused() {
        let ssml = r#"<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xmlns:mstts="https://www.w3.org/2001/mstts" xml:lang="en-US"><voice name="en-US-JennyNeural"><mstts:express-as style="cheerful"><s>Hi <say-as interpret-as="characters">AB</say-as></s><break time="300ms"/><lang xml:lang="de-DE">Guten Tag</lang><prosody rate="x-slow" volume="soft" pitch="+2st">slow</prosody></mstts:express-as></voice></speak>"#;
        let pieces = parse_ssml(ssml).expect("valid");
        assert_eq!(
            speak(&pieces),
            vec![("Hi AB", "en-us"), ("Guten Tag", "de"), ("slow", "en-us")]
        );
        assert!(pieces.contains(&Piece::Pause { milliseconds: 300 }));
        for bad in [
            r#"<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural"><audio src="x"/>Hi</voice></speak>"#,
            r#"<speak version="1.0" xml:lang="en-US">Hi</speak>"#,
            r#"<speak version="1.0" xml:lang="en-US"><voice name="xx-XX-Nobody">Hi</voice></speak>"#,
            r#"<speak xml:lang="en-US"><voice name="en-US-JennyNeural">Hi</voice></speak>"#,
            r#"<speak version="1.0"><voice name="en-US-JennyNeural">Hi</voice></speak>"#,
            r#"<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">  </voice></speak>"#,
            r#"<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural"><prosody rate="fastish">Hi</prosody></voice></speak>"#,
            r#"<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural"><mstts:express-as style="x">Hi</mstts:express-as></voice></speak>"#,
            r#"<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Hi</voice>"#,
        ] {
            assert!(parse_ssml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prosody_values_parse_in_their_documented_forms() {
        assert_eq!(rate_multiplier("+10%"), Ok(1.1));
        assert_eq!(rate_multiplier("-20%"), Ok(0.8));
        assert_eq!(rate_multiplier("1.2"), Ok(1.2));
        assert_eq!(rate_multiplier("x-slow"), Ok(0.5));
        assert!(rate_multiplier("-").is_err());
        assert_eq!(pitch_percent("-5%"), Ok(-5.0));
        assert_eq!(pitch_percent("+80Hz"), Ok(40.0));
        assert_eq!(volume_percent("+10%"), Ok(10.0));
        assert_eq!(volume_percent("50"), Ok(-50.0));
        assert_eq!(volume_percent("silent"), Ok(-100.0));
        assert_eq!(espeak_voice("pt-BR"), "pt-br");
        assert_eq!(espeak_voice("ja-JP"), "en-us");
    }
}
