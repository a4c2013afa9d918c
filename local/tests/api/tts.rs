//! TTS sessions: tiers and voices, synthesis per provider and format through the real
//! provider code paths (against the Azure and ElevenLabs contract fakes and espeak-ng), the
//! S3 cache (moto), streaming, hostile input, provider failures and usage per call.

use reqwest::Method;
use serde_json::{Value, json};
use tts::audio::{mp3_info, wav_data_len};
use tts::wav::read_pcm16;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// Text no other test (or earlier run) synthesized, so the first request is a miss.
fn fresh(words: &str) -> String {
    format!(
        "{words} Reference {}.",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// Decodes `mp3` completely with a real decoder (symphonia); returns (sample rate, seconds).
fn decode_mp3(mp3: &[u8]) -> (u32, f64) {
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;
    let source = MediaSourceStream::new(
        Box::new(std::io::Cursor::new(mp3.to_vec())),
        Default::default(),
    );
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("an MP3 stream");
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let rate = track.codec_params.sample_rate.expect("a sample rate");
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("an MP3 decoder");
    let mut samples = 0usize;
    loop {
        match format.next_packet() {
            Ok(packet) => samples += decoder.decode(&packet).expect("a decodable frame").frames(),
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("the MP3 does not decode: {e}"),
        }
    }
    (rate, samples as f64 / f64::from(rate))
}

struct Audio {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Audio {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn seconds(&self) -> f64 {
        self.header("x-audio-duration").parse().unwrap_or(-1.0)
    }
}

async fn synthesize(app: &TestApp, body: Value) -> Audio {
    let response = app
        .admin()
        .raw(Method::POST, "/synthesize", Some(body))
        .await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    Audio {
        status,
        headers,
        bytes,
    }
}

#[tokio::test]
async fn the_seeds_example_gives_a_playable_mp3_and_the_repeat_comes_from_s3() {
    let app = spawn_app().await;
    let text = fresh("Hello world");
    let body = json!({"text": text, "voice_id": "en-US-AriaNeural", "provider": "azure"});

    let first = synthesize(&app, body.clone()).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.bytes)
    );
    assert_eq!(first.header("content-type"), "audio/mpeg");
    assert_eq!(first.header("provider"), "azure");
    assert_eq!(first.header("voice-id"), "en-US-AriaNeural");
    assert_eq!(first.header("x-cache"), "miss");
    assert_eq!(
        first.header("x-characters"),
        text.chars().count().to_string()
    );
    assert!(first.header("x-cost").parse::<f64>().expect("cost") > 0.0);
    let info = mp3_info(&first.bytes).expect("an MP3 frame chain");
    assert_eq!(info.sample_rate, 24_000);
    let (rate, decoded_seconds) = decode_mp3(&first.bytes);
    assert_eq!(rate, 24_000);
    assert!(
        (decoded_seconds - info.duration_seconds).abs() < 0.1,
        "decoded {decoded_seconds} s"
    );
    assert!((0.5..20.0).contains(&info.duration_seconds));
    assert!((first.seconds() - info.duration_seconds).abs() < 0.05);
    assert_eq!(app.azure.synthesis_calls(), 1);

    let second = synthesize(&app, body.clone()).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-cache"), "hit");
    assert_eq!(second.header("x-cost"), "0.000000");
    assert_eq!(second.bytes, first.bytes);
    assert_eq!(app.azure.synthesis_calls(), 1, "a hit never calls Azure");

    // Another tenant's cache is its own: nobody learns from X-Cache what another said.
    let other = app
        .user_in("another-tenant", vocelio_shared::Role::Admin, "x")
        .raw(Method::POST, "/synthesize", Some(body.clone()))
        .await;
    assert_eq!(other.headers()["x-cache"], "miss");
    // The language is part of what is said: another one is another clip.
    let mut british = body.clone();
    british["language"] = "en-GB".into();
    assert_eq!(synthesize(&app, british).await.header("x-cache"), "miss");
    assert_eq!(app.azure.synthesis_calls(), 3);

    // A browser on the app's origin may read the headers the app reads.
    let cors = app
        .http()
        .post(format!("{}/synthesize", app.base))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .expect("request");
    let exposed = cors
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("provider") && exposed.contains("voice-id"),
        "{exposed}"
    );
}

#[tokio::test]
async fn tiers_and_voices_give_the_app_what_it_reads() {
    let app = spawn_app().await;
    let tiers = app.admin().get("/tiers").await.expect(200);
    assert_eq!(tiers.body["tiers"]["regular"]["tts_provider"], "azure");
    assert_eq!(tiers.body["tiers"]["premium"]["tts_provider"], "elevenlabs");
    assert_eq!(tiers.body["tiers"]["local"]["tts_provider"], "local");
    assert!(tiers.body["tiers"]["premium"]["price_per_minute"].is_f64());
    assert!(tiers.body["tiers"]["regular"]["quality"].is_string());
    assert!(tiers.body["description"].is_string());

    let azure = app.admin().get("/voices/azure").await.expect(200);
    let aria = azure.body["voices"]
        .as_array()
        .expect("voices")
        .iter()
        .find(|v| v["id"] == "en-US-AriaNeural")
        .expect("Aria is listed")
        .clone();
    assert_eq!(aria["language"], "en-US");
    assert_eq!(aria["gender"], "female");
    assert_eq!(aria["provider"], "azure");
    assert!(aria["name"].is_string() && aria["preview_url"].is_string());
    assert!(aria["labels"].is_object());
    app.admin().get("/voices/azure").await.expect(200);
    assert_eq!(app.azure.voice_list_calls(), 1, "the list is cached");

    let eleven = app.admin().get("/voices/elevenlabs").await.expect(200);
    assert!(
        eleven.body["voices"]
            .as_array()
            .expect("voices")
            .iter()
            .any(|v| v["id"] == "21m00Tcm4TlvDq8ikWAM" && v["preview_url"].is_string())
    );
    let local = app.admin().get("/voices/local").await.expect(200);
    assert!(
        local.body["voices"]
            .as_array()
            .expect("voices")
            .iter()
            .any(|v| v["id"] == "en-us")
    );
    let unknown = app.admin().get("/voices/polly").await.expect(404);
    assert_eq!(unknown.code(), "unknown_provider");
    app.anonymous().get("/tiers").await.expect(401);
}

#[tokio::test]
async fn every_provider_renders_every_format_as_real_audio() {
    let app = spawn_app().await;
    for (provider, voice) in [
        ("azure", "en-US-JennyNeural"),
        ("elevenlabs", "21m00Tcm4TlvDq8ikWAM"),
        ("local", "en-us"),
    ] {
        for format in ["mp3", "wav", "mulaw_wav", "mulaw"] {
            let text = fresh("Your appointment is confirmed for Tuesday.");
            let audio = synthesize(
                &app,
                json!({"text": text, "voice_id": voice, "provider": provider, "format": format}),
            )
            .await;
            let what = format!("{provider}/{format}");
            assert_eq!(
                audio.status,
                200,
                "{what}: {}",
                String::from_utf8_lossy(&audio.bytes)
            );
            assert_eq!(audio.header("provider"), provider, "{what}");
            let seconds = match format {
                "mp3" => {
                    assert_eq!(audio.header("content-type"), "audio/mpeg");
                    let info = mp3_info(&audio.bytes).expect(&what);
                    let (_, decoded) = decode_mp3(&audio.bytes);
                    assert!(
                        (decoded - info.duration_seconds).abs() < 0.2,
                        "{what}: decoded {decoded} s"
                    );
                    info.duration_seconds
                }
                "wav" => {
                    let pcm = read_pcm16(&audio.bytes).expect(&what);
                    assert_eq!(pcm.sample_rate, 24_000, "{what}");
                    pcm.duration_seconds()
                }
                "mulaw_wav" => {
                    assert_eq!(&audio.bytes[0..4], b"RIFF");
                    assert_eq!(
                        u16::from_le_bytes([audio.bytes[20], audio.bytes[21]]),
                        7,
                        "{what}: μ-law tag"
                    );
                    assert_eq!(
                        u32::from_le_bytes([
                            audio.bytes[24],
                            audio.bytes[25],
                            audio.bytes[26],
                            audio.bytes[27]
                        ]),
                        8000
                    );
                    wav_data_len(&audio.bytes).expect(&what) as f64 / 8000.0
                }
                _ => {
                    assert_eq!(audio.header("content-type"), "audio/basic");
                    audio.bytes.len() as f64 / 8000.0
                }
            };
            assert!((1.0..20.0).contains(&seconds), "{what}: {seconds} s");
            assert!(
                (audio.seconds() - seconds).abs() < 0.05,
                "{what}: header {}",
                audio.seconds()
            );
        }
    }
    assert_eq!(app.azure.synthesis_calls(), 4);
    assert_eq!(app.elevenlabs.synthesis_calls(), 4);

    // A language tag goes to ElevenLabs only with a model that takes one (the default model,
    // multilingual v2, refuses `language_code`).
    let spanish = synthesize(
        &app,
        json!({"text": fresh("Hola, gracias por llamar."), "voice_id": "21m00Tcm4TlvDq8ikWAM", "provider": "elevenlabs", "language": "es-ES"}),
    )
    .await;
    assert_eq!(
        spanish.status,
        200,
        "{}",
        String::from_utf8_lossy(&spanish.bytes)
    );
}

#[tokio::test]
async fn json_answers_carry_a_presigned_url_to_the_private_object() {
    let app = spawn_app().await;
    let body = json!({"text": fresh("Please hold."), "voice_id": "en-us", "provider": "local"});
    let reply = app
        .admin()
        .header("accept", "application/json")
        .post("/synthesize", body.clone())
        .await
        .expect(200);
    assert_eq!(reply.body["cached"], false);
    assert_eq!(reply.body["format"], "mp3");
    let url = reply.body["url"].as_str().expect("url");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let fetched = app.http().get(url).send().await.expect("presigned GET");
    assert_eq!(fetched.status(), 200);
    let bytes = fetched.bytes().await.expect("bytes");
    assert_eq!(
        bytes.len() as u64,
        reply.body["bytes"].as_u64().expect("bytes")
    );
    assert!(mp3_info(&bytes).is_some());
    let again = app
        .admin()
        .header("accept", "application/json")
        .post("/synthesize", body)
        .await
        .expect(200);
    assert_eq!(again.body["cached"], true);
    assert_eq!(again.body["key"], reply.body["key"]);
}

#[tokio::test]
async fn hostile_text_is_spoken_as_text_or_refused_with_a_422() {
    let app = spawn_app().await;
    // Markup and SSML injection stay text: the Azure fake refuses any SSML that is not
    // well-formed or names another voice, so a 200 proves the escaping.
    for text in [
        "Tom & Jerry <b>bold</b> \"quoted\" 'single' > less",
        "</voice><voice name='en-US-GuyNeural'>injected</voice><voice name='en-US-AriaNeural'>",
        "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
        "Thanks 😀 for calling 📞, goodbye 👋",
    ] {
        let audio = synthesize(
            &app,
            json!({"text": format!("{text} {}", fresh("")), "voice_id": "en-US-AriaNeural", "provider": "azure"}),
        )
        .await;
        assert_eq!(
            audio.status,
            200,
            "{text}: {}",
            String::from_utf8_lossy(&audio.bytes)
        );
        assert!(mp3_info(&audio.bytes).is_some());
    }
    let calls = app.azure.synthesis_calls();
    for (body, field) in [
        (
            json!({"text": "a".repeat(10_000), "voice_id": "en-US-AriaNeural"}),
            "text",
        ),
        (
            json!({"text": "   ", "voice_id": "en-US-AriaNeural"}),
            "text",
        ),
        (json!({"voice_id": "en-US-AriaNeural"}), "text"),
        (
            json!({"text": "bell \u{7} here", "voice_id": "en-US-AriaNeural"}),
            "text",
        ),
        (json!({"text": "hi", "speed": 3.5}), "speed"),
        (json!({"text": "hi", "pitch": 80}), "pitch"),
        (json!({"text": "hi", "volume": -150}), "volume"),
        (json!({"text": "hi", "format": "flac"}), "format"),
        (json!({"text": "hi", "provider": "polly"}), "provider"),
        (json!({"text": "hi", "tier": "gold"}), "tier"),
        (
            json!({"text": "hi", "voice_id": "<voice name='x'/>"}),
            "voice_id",
        ),
        (
            json!({"text": "hi", "voice_id": "21m00Tcm4TlvDq8ikWAM", "provider": "azure"}),
            "voice_id",
        ),
        (
            json!({"text": "hi", "provider": "elevenlabs", "speed": 1.8}),
            "speed",
        ),
        (json!({"text": "hi", "language": "en_US'><x"}), "language"),
        (
            json!({"text": "hi", "call_id": "CALL#other-tenant"}),
            "call_id",
        ),
    ] {
        let reply = app.admin().post("/synthesize", body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        assert!(
            reply.fields().contains(&field.to_owned()),
            "{body}: {}",
            reply.body
        );
    }
    // A voice the provider does not have is the caller's mistake, named as such.
    let unknown = app
        .admin()
        .post(
            "/synthesize",
            json!({"text": fresh("Hi"), "voice_id": "en-US-NobodyNeural", "provider": "azure"}),
        )
        .await
        .expect(422);
    assert_eq!(unknown.fields(), vec!["voice_id"]);
    assert_eq!(
        app.azure.synthesis_calls(),
        calls + 1,
        "only the unknown voice reached Azure"
    );
    let not_json = app
        .http()
        .post(format!("{}/synthesize", app.base))
        .bearer_auth(crate::helpers::token_for(&app))
        .body("text=hi")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), 415);
}

#[tokio::test]
async fn provider_failures_map_to_clear_errors_and_leave_nothing_cached() {
    let app = spawn_app().await;
    let text = fresh("We are experiencing high call volumes.");
    let body = json!({"text": text, "voice_id": "en-US-GuyNeural", "provider": "azure"});

    app.azure.fail_next(401, 1);
    let reply = app
        .admin()
        .post("/synthesize", body.clone())
        .await
        .expect(502);
    assert_eq!(reply.code(), "provider_auth_failed");

    app.azure.fail_next(429, 1);
    let reply = app
        .admin()
        .post("/synthesize", body.clone())
        .await
        .expect(429);
    assert_eq!(reply.code(), "provider_rate_limited");
    assert!(reply.headers.get("retry-after").is_some());

    app.azure.fail_next(503, 1);
    let reply = app
        .admin()
        .post("/synthesize", body.clone())
        .await
        .expect(503);
    assert_eq!(reply.code(), "provider_unavailable");

    app.elevenlabs.fail_next(401, 1);
    let reply = app
        .admin()
        .post(
            "/synthesize",
            json!({"text": text, "voice_id": "21m00Tcm4TlvDq8ikWAM", "provider": "elevenlabs"}),
        )
        .await
        .expect(502);
    assert_eq!(reply.code(), "provider_auth_failed");
    app.elevenlabs.fail_next(429, 1);
    app.admin()
        .post(
            "/synthesize",
            json!({"text": text, "voice_id": "21m00Tcm4TlvDq8ikWAM", "provider": "elevenlabs"}),
        )
        .await
        .expect(429);

    // None of the failures left an object behind: the next request is a miss that succeeds.
    let ok = synthesize(&app, body).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-cache"), "miss");

    // `auto` falls back to the next configured provider, and says which voice it used.
    app.azure.fail_next(503, 1);
    let fallback = synthesize(
        &app,
        json!({"text": fresh("Fallback please."), "provider": "auto"}),
    )
    .await;
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.header("provider"), "elevenlabs");
    assert_eq!(fallback.header("voice-id"), "21m00Tcm4TlvDq8ikWAM");
}

#[tokio::test]
async fn a_provider_that_is_not_configured_says_so() {
    let app = spawn_app_with(&[("LOCAL_TTS_ENABLED", "false")]).await;
    let reply = app
        .admin()
        .post(
            "/synthesize",
            json!({"text": fresh("Hi"), "provider": "local"}),
        )
        .await
        .expect(503);
    assert_eq!(reply.code(), "provider_not_configured");
    app.admin().get("/voices/local").await.expect(503);
    let tiers = app.admin().get("/tiers").await.expect(200);
    assert_eq!(tiers.body["tiers"]["local"]["available"], false);
    assert_eq!(tiers.body["tiers"]["regular"]["available"], true);
}

#[tokio::test]
async fn streaming_delivers_audio_in_pieces_before_the_end_and_caches_the_whole() {
    let app = spawn_app().await;
    for (provider, voice) in [
        ("local", "en-us"),
        ("azure", "en-US-AriaNeural"),
        ("elevenlabs", "21m00Tcm4TlvDq8ikWAM"),
    ] {
        let text = fresh(
            "Thank you for calling. Your call is important to us. An agent will be with you shortly. Please stay on the line.",
        );
        let body = json!({"text": text, "voice_id": voice, "provider": provider});
        let mut response = app
            .admin()
            .raw(Method::POST, "/stream/synthesize", Some(body.clone()))
            .await;
        assert_eq!(response.status(), 200, "{provider}");
        assert_eq!(response.headers()["x-cache"], "miss");
        assert_eq!(response.headers()["provider"], provider);
        let mut chunks = 0;
        let mut audio = Vec::new();
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            chunks += 1;
            audio.extend_from_slice(&chunk);
        }
        assert!(chunks >= 2, "{provider}: {chunks} chunk(s)");
        let info = mp3_info(&audio).expect("the pieces form one MP3 stream");
        let (_, decoded_seconds) = decode_mp3(&audio);
        assert!(
            (decoded_seconds - info.duration_seconds).abs() < 0.2,
            "{provider}: decoded {decoded_seconds} s"
        );
        assert!(
            info.duration_seconds > 3.0,
            "{provider}: {} s",
            info.duration_seconds
        );

        // Stored whole once streamed: the same words are now a hit, also for /synthesize.
        let again = synthesize(&app, body).await;
        assert_eq!(again.header("x-cache"), "hit", "{provider}");
        assert!(mp3_info(&again.bytes).is_some());
    }
    assert_eq!(app.azure.synthesis_calls(), 1);
    assert_eq!(app.elevenlabs.synthesis_calls(), 1);

    // WAV formats stream as raw samples behind our header (Azure streams no riff-* formats),
    // and are stored with exact sizes.
    for (provider, voice) in [
        ("azure", "en-US-AriaNeural"),
        ("elevenlabs", "21m00Tcm4TlvDq8ikWAM"),
    ] {
        for format in ["wav", "mulaw_wav"] {
            let body = json!({"text": fresh("One moment. I am checking that for you."), "voice_id": voice, "provider": provider, "format": format});
            let streamed = app
                .admin()
                .raw(Method::POST, "/stream/synthesize", Some(body.clone()))
                .await;
            assert_eq!(streamed.status(), 200);
            let streamed = streamed.bytes().await.expect("audio");
            assert_eq!(&streamed[0..4], b"RIFF", "{provider}/{format}");
            let stored = synthesize(&app, body).await;
            assert_eq!(stored.header("x-cache"), "hit", "{provider}/{format}");
            let seconds = if format == "wav" {
                read_pcm16(&stored.bytes)
                    .expect("16-bit WAV")
                    .duration_seconds()
            } else {
                wav_data_len(&stored.bytes).expect("μ-law WAV") as f64 / 8000.0
            };
            // The reference suffix is random hex, read out digit by digit: lengths vary.
            assert!(
                (1.0..20.0).contains(&seconds),
                "{provider}/{format}: {seconds} s"
            );
            assert!((stored.seconds() - seconds).abs() < 0.05);
        }
    }
}

#[tokio::test]
async fn usage_adds_up_per_call_and_customer_and_stays_in_its_tenant() {
    let app = spawn_app().await;
    let call = format!("call-{}", uuid::Uuid::now_v7().simple());
    let greeting = fresh("Good morning, how can I help?");
    let mut expected_chars = 0;
    let mut expected_seconds = 0.0;
    let mut expected_cost = 0.0;
    for text in [greeting.clone(), fresh("One moment please."), greeting] {
        let audio = synthesize(
            &app,
            json!({"text": text, "voice_id": "en-US-AriaNeural", "provider": "azure", "call_id": call, "customer_id": "cust-42"}),
        )
        .await;
        assert_eq!(audio.status, 200);
        expected_chars += text.chars().count();
        expected_seconds += audio.seconds();
        expected_cost += audio.header("x-cost").parse::<f64>().expect("cost");
    }
    let usage = app
        .admin()
        .get(&format!("/usage/calls/{call}"))
        .await
        .expect(200);
    let totals = &usage.body["usage"];
    assert_eq!(totals["requests"], 3);
    assert_eq!(totals["cache_hits"], 1);
    assert_eq!(totals["characters"], expected_chars);
    assert!((totals["audio_seconds"].as_f64().expect("seconds") - expected_seconds).abs() < 0.01);
    assert!((totals["cost"].as_f64().expect("cost") - expected_cost).abs() < 1e-5);
    assert!(expected_cost > 0.0);
    let customer = app
        .admin()
        .get("/usage/customers/cust-42")
        .await
        .expect(200);
    assert_eq!(customer.body["usage"]["requests"], 3);

    let other = app
        .user_in("another-tenant", vocelio_shared::Role::Admin, "x")
        .get(&format!("/usage/calls/{call}"))
        .await
        .expect(200);
    assert_eq!(other.body["usage"]["requests"], 0);
    app.admin().get("/usage/planets/mars").await.expect(404);
}

#[tokio::test]
async fn a_voice_preview_is_synthesized_once_then_served_from_s3() {
    let app = spawn_app().await;
    let token = crate::helpers::token_for(&app);
    let url = format!(
        "{}/voices/preview/en-GB-SoniaNeural?token={token}",
        app.base
    );
    let first = app.http().get(&url).send().await.expect("preview");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "audio/mpeg");
    let first_cache = first.headers()["x-cache"]
        .to_str()
        .expect("x-cache")
        .to_owned();
    assert!(mp3_info(&first.bytes().await.expect("bytes")).is_some());
    let second = app.http().get(&url).send().await.expect("preview");
    assert_eq!(second.headers()["x-cache"], "hit");
    let calls = app.azure.synthesis_calls();
    assert!(calls <= 1 && (calls == 1) == (first_cache == "miss"));
    let anonymous = app
        .http()
        .get(format!("{}/voices/preview/en-GB-SoniaNeural", app.base))
        .send()
        .await
        .expect("preview");
    assert_eq!(anonymous.status(), 401);
    let unknown = app
        .http()
        .get(format!("{}/voices/preview/nobody?token={token}", app.base))
        .send()
        .await
        .expect("preview");
    assert!(
        matches!(unknown.status().as_u16(), 404 | 422),
        "{}",
        unknown.status()
    );
}

/// Reads frames until `{"type": "final"}` (or an error); returns the decoded audio and
/// the final frame.
async fn until_final(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (Vec<u8>, usize, Value) {
    use base64::Engine as _;
    use futures_util::StreamExt;
    let mut audio = Vec::new();
    let mut frames = 0;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        let tokio_tungstenite::tungstenite::Message::Text(text) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        match frame["type"].as_str() {
            Some("audio") => {
                assert_eq!(frame["seq"], frames);
                let piece = base64::engine::general_purpose::STANDARD
                    .decode(frame["audio"].as_str().expect("audio"))
                    .expect("base64");
                assert!(piece.len() <= 22 * 1024);
                audio.extend(piece);
                frames += 1;
            }
            Some("buffered") => continue,
            _ => return (audio, frames, frame),
        }
    }
}

#[tokio::test]
async fn the_tts_websocket_speaks_sentences_as_they_complete_and_keeps_going_after_errors() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app().await;
    let refused = tokio_tungstenite::connect_async(format!("{}/ws/tts", app.ws_base)).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401)
    );
    let token = crate::helpers::token_for(&app);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws/tts?token={token}", app.ws_base))
            .await
            .expect("connect");
    let call = format!("call-{}", uuid::Uuid::now_v7().simple());
    let tag = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let send = |text: Value| Message::Text(text.to_string().into());

    // The first sentence is spoken at once; the unfinished one waits.
    socket
        .send(send(json!({"text": format!("Hello there {tag}. How are"), "voice_id": "en-US-AriaNeural", "provider": "azure", "call_id": call})))
        .await
        .expect("send");
    let (audio, frames, last) = until_final(&mut socket).await;
    assert_eq!(last["type"], "final", "{last}");
    assert_eq!(last["provider"], "azure");
    assert_eq!(last["chunks"], frames);
    assert!(frames >= 1);
    assert!(mp3_info(&audio).is_some());

    // Settings persist; the rest of the sentence completes the buffered words.
    socket
        .send(send(json!({"text": " you today?"})))
        .await
        .expect("send");
    let (audio, _, last) = until_final(&mut socket).await;
    assert_eq!(last["type"], "final", "{last}");
    assert_eq!(last["characters"], "How are you today?".len());
    assert!(mp3_info(&audio).expect("mp3").duration_seconds > 0.5);

    // A bad frame gets an error frame, and the socket stays usable.
    socket
        .send(Message::Text("{not json".into()))
        .await
        .expect("send");
    let (_, _, error) = until_final(&mut socket).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "invalid_json");
    socket
        .send(send(json!({"text": "x", "speed": 9})))
        .await
        .expect("send");
    socket.send(send(json!({"text": ""}))).await.expect("send");
    let (_, _, error) = until_final(&mut socket).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "validation_failed");

    // `{"text": ""}` flushes what is buffered, telephony format on request.
    socket
        .send(send(
            json!({"text": format!("Goodbye {tag}"), "speed": 1.0, "format": "mulaw"}),
        ))
        .await
        .expect("send");
    socket.send(send(json!({"text": ""}))).await.expect("send");
    let (audio, _, last) = until_final(&mut socket).await;
    assert_eq!(last["type"], "final", "{last}");
    assert_eq!(last["format"], "mulaw");
    assert!(audio.len() > 4000, "{} bytes of μ-law", audio.len());

    let usage = app
        .admin()
        .get(&format!("/usage/calls/{call}"))
        .await
        .expect(200);
    assert_eq!(usage.body["usage"]["requests"], 3);
    socket.close(None).await.expect("close");
}
