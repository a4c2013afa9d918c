//! The Azure Speech and ElevenLabs contract fakes on their own (no DynamoDB, no S3): real
//! audio from espeak-ng in the requested encoding, and every refusal in the real service's
//! shape.

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tts::audio::{mp3_info, wav_data_len};
use tts::local_engine::LocalEngine;
use vocelio_local::fakes::{
    AZURE_FAKE_KEY, ELEVENLABS_FAKE_KEY, RunningFake, start_azure, start_elevenlabs,
};

const RACHEL: &str = "21m00Tcm4TlvDq8ikWAM";

async fn azure() -> RunningFake {
    start_azure(LocalEngine::default()).await.unwrap().0
}

async fn elevenlabs() -> RunningFake {
    start_elevenlabs(LocalEngine::default()).await.unwrap().0
}

fn ssml(voice: &str, text: &str) -> String {
    format!(
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'><voice name='{voice}'>{text}</voice></speak>"
    )
}

const MP3: &str = "audio-24khz-48kbitrate-mono-mp3";

/// A request as our Azure client sends it, in `format`.
fn azure_request(fake: &RunningFake, format: &str, body: String) -> RequestBuilder {
    azure_with(fake, &[("X-Microsoft-OutputFormat", Some(format))], body)
}

/// A request as our Azure client sends it, with some headers replaced (`Some`) or left
/// out (`None`).
fn azure_with(
    fake: &RunningFake,
    overrides: &[(&str, Option<&str>)],
    body: String,
) -> RequestBuilder {
    let mut headers: Vec<(&str, Option<&str>)> = vec![
        ("Ocp-Apim-Subscription-Key", Some(AZURE_FAKE_KEY)),
        ("Content-Type", Some("application/ssml+xml")),
        ("X-Microsoft-OutputFormat", Some(MP3)),
        ("User-Agent", Some("vocelio-tests")),
    ];
    for &(name, value) in overrides {
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => headers.push((name, value)),
        }
    }
    let mut request = reqwest::Client::new()
        .post(format!("{}/cognitiveservices/v1", fake.base_url))
        .body(body);
    for (name, value) in headers {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    request
}

/// The body and the number of chunks it arrived in.
async fn chunks(mut response: Response) -> (Vec<u8>, usize) {
    let (mut body, mut count) = (Vec::new(), 0);
    while let Some(chunk) = response.chunk().await.unwrap() {
        if !chunk.is_empty() {
            count += 1;
            body.extend_from_slice(&chunk);
        }
    }
    (body, count)
}

#[tokio::test]
async fn azure_streams_mp3_sentence_by_sentence() {
    let fake = azure().await;
    let response = azure_request(
        &fake,
        "audio-24khz-48kbitrate-mono-mp3",
        ssml(
            "en-US-AriaNeural",
            "Thanks for calling. Please hold on! An agent will be with you shortly.",
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    let (body, count) = chunks(response).await;
    assert!(count > 1, "one chunk per sentence, got {count}");
    let info = mp3_info(&body).expect("a chain of MP3 frames");
    assert_eq!(info.sample_rate, 24_000);
    assert!(
        (2.0..15.0).contains(&info.duration_seconds),
        "{} s",
        info.duration_seconds
    );
    assert_eq!(fake.control.synthesis_calls(), 1);
}

#[tokio::test]
async fn azure_riff_mulaw_is_an_8khz_mulaw_wav_and_raw_mulaw_is_headerless() {
    let fake = azure().await;
    let response = azure_request(
        &fake,
        "riff-8khz-8bit-mono-mulaw",
        ssml("en-GB-RyanNeural", "Hello."),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/x-wav");
    let wav = response.bytes().await.unwrap();
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    assert_eq!(
        u16::from_le_bytes([wav[20], wav[21]]),
        7,
        "μ-law format tag"
    );
    assert_eq!(
        u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
        8000
    );
    assert_eq!(u16::from_le_bytes([wav[34], wav[35]]), 8, "8 bits");
    let data = wav_data_len(&wav).expect("a data chunk");
    assert!((2000..80_000).contains(&data), "{data} bytes of μ-law");

    let raw = azure_request(
        &fake,
        "raw-8khz-8bit-mono-mulaw",
        ssml("en-US-GuyNeural", "Hello."),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-type"], "audio/basic");
    let raw = raw.bytes().await.unwrap();
    assert_ne!(&raw[0..4], b"RIFF");
    assert!((2000..80_000).contains(&raw.len()));
}

#[tokio::test]
async fn azure_refuses_what_azure_refuses_with_its_statuses() {
    let fake = azure().await;
    let good = || ssml("en-US-JennyNeural", "Hi there.");
    let status = |overrides: Vec<(&'static str, Option<&'static str>)>| {
        let request = azure_with(&fake, &overrides, good());
        async move { request.send().await.unwrap() }
    };

    // No key, wrong key: 401 with no body.
    let anonymous = status(vec![("Ocp-Apim-Subscription-Key", None)]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.bytes().await.unwrap().is_empty());
    let wrong_key = status(vec![("Ocp-Apim-Subscription-Key", Some("nope"))]).await;
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);

    // Wrong or missing content type: 415; a charset parameter is fine.
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let response = status(vec![("Content-Type", content_type)]).await;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
    }
    let with_charset = status(vec![
        ("Content-Type", Some("application/ssml+xml; charset=utf-8")),
        ("X-Microsoft-OutputFormat", Some("raw-16khz-16bit-mono-pcm")),
    ])
    .await;
    assert_eq!(with_charset.status(), StatusCode::OK);
    assert_eq!(with_charset.headers()["content-type"], "audio/pcm");

    // Output formats: unknown, documented but not producible here, missing.
    let unknown = status(vec![(
        "X-Microsoft-OutputFormat",
        Some("audio-99khz-mono-mp3"),
    )])
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let opus = status(vec![(
        "X-Microsoft-OutputFormat",
        Some("ogg-24khz-16bit-mono-opus"),
    )])
    .await;
    assert_eq!(opus.status(), StatusCode::BAD_REQUEST);
    assert!(opus.text().await.unwrap().contains("cannot produce"));
    let no_format = status(vec![("X-Microsoft-OutputFormat", None)]).await;
    assert_eq!(no_format.status(), StatusCode::BAD_REQUEST);

    // User-Agent: required, under 255 characters.
    let no_agent = status(vec![("User-Agent", None)]).await;
    assert_eq!(no_agent.status(), StatusCode::BAD_REQUEST);
    let long = "x".repeat(300);
    let long_agent = azure_with(&fake, &[("User-Agent", Some(long.as_str()))], good())
        .send()
        .await
        .unwrap();
    assert_eq!(long_agent.status(), StatusCode::BAD_REQUEST);

    // The SSML itself.
    for (body, what) in [
        (
            "<speak version='1.0' xml:lang='en-US'><voice name='en-US-JennyNeural'>Hi</speak>"
                .to_owned(),
            "malformed XML",
        ),
        (
            "<speak version='1.0' xml:lang='en-US'>Hi</speak>".to_owned(),
            "text outside a voice",
        ),
        (
            "<speak xml:lang='en-US'><voice name='en-US-JennyNeural'>Hi</voice></speak>".to_owned(),
            "no version",
        ),
        (
            ssml("en-US-JennyNeural", "<audio src='https://x'/>Hi"),
            "an element Azure does not take",
        ),
        (ssml("en-US-JennyNeural", "   "), "empty text"),
        (
            ssml(
                "en-US-JennyNeural",
                &"Hello world. ".repeat(MAX_SSML_REPEATS),
            ),
            "over 64 KB",
        ),
    ] {
        let response = azure_request(&fake, MP3, body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    }
    let unknown_voice = azure_request(
        &fake,
        "audio-24khz-48kbitrate-mono-mp3",
        ssml("en-US-NobodyNeural", "Hi"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(unknown_voice.status(), StatusCode::BAD_REQUEST);
    assert!(unknown_voice.text().await.unwrap().contains("voice"));
}

/// Repeats of a 13-byte sentence that take the SSML over 64 KB.
const MAX_SSML_REPEATS: usize = 64 * 1024 / 13 + 1;

#[tokio::test]
async fn azure_voice_list_is_pascal_case_and_keyed() {
    let fake = azure().await;
    let http = reqwest::Client::new();
    let url = format!("{}/cognitiveservices/voices/list", fake.base_url);
    let voices: Vec<Value> = http
        .get(&url)
        .header("Ocp-Apim-Subscription-Key", AZURE_FAKE_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(voices.len() >= 12);
    let aria = voices
        .iter()
        .find(|v| v["ShortName"] == "en-US-AriaNeural")
        .expect("Aria");
    assert_eq!(
        aria["Name"],
        "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)"
    );
    assert_eq!(aria["Gender"], "Female");
    assert_eq!(aria["Locale"], "en-US");
    assert_eq!(aria["SampleRateHertz"], "24000");
    assert_eq!(aria["WordsPerMinute"], "150");
    assert_eq!(aria["VoiceType"], "Neural");
    assert!(aria["StyleList"].is_array());
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fake.control.voice_list_calls(), 2);
    assert_eq!(fake.control.synthesis_calls(), 0);
}

#[tokio::test]
async fn azure_injected_failures_look_like_azures_and_run_out() {
    let fake = azure().await;
    fake.control.fail_next(429, 1);
    let throttled = azure_request(
        &fake,
        "audio-24khz-48kbitrate-mono-mp3",
        ssml("en-US-AriaNeural", "Hi."),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "1");
    assert!(throttled.bytes().await.unwrap().is_empty());

    // Over HTTP too: two 503s, then audio again.
    let http = reqwest::Client::new();
    let armed = http
        .post(format!("{}/__fake/fail", fake.base_url))
        .json(&json!({"status": 503, "count": 2}))
        .send()
        .await
        .unwrap();
    assert!(armed.status().is_success());
    for expected in [503, 503, 200] {
        let response = azure_request(
            &fake,
            "audio-16khz-32kbitrate-mono-mp3",
            ssml("en-US-AriaNeural", "Hi."),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    let stats: Value = http
        .get(format!("{}/__fake/stats", fake.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({"synthesis_calls": 4, "voice_list_calls": 0}));
    fake.control.reset();
    assert_eq!(fake.control.synthesis_calls(), 0);
}

/// A text-to-speech request as our ElevenLabs client sends it.
fn eleven_request(fake: &RunningFake, path: &str, body: &Value) -> RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url))
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .json(body)
}

#[tokio::test]
async fn elevenlabs_speaks_mp3_by_default_and_ulaw_for_telephony() {
    let fake = elevenlabs().await;
    let path = format!("/v1/text-to-speech/{RACHEL}");
    let body = json!({
        "text": "Hello from the fake.",
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"stability": 0.5, "similarity_boost": 0.75, "speed": 1.1},
    });
    let mp3 = eleven_request(&fake, &path, &body).send().await.unwrap();
    assert_eq!(mp3.status(), StatusCode::OK);
    assert_eq!(mp3.headers()["content-type"], "audio/mpeg");
    let request_id = mp3.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    let info = mp3_info(&mp3.bytes().await.unwrap()).expect("MP3 frames");
    assert_eq!(info.sample_rate, 44_100);
    assert!((0.5..10.0).contains(&info.duration_seconds));

    let ulaw = eleven_request(&fake, &format!("{path}?output_format=ulaw_8000"), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(ulaw.status(), StatusCode::OK);
    assert_eq!(ulaw.headers()["content-type"], "audio/mpeg");
    let ulaw = ulaw.bytes().await.unwrap();
    assert_ne!(&ulaw[0..4], b"RIFF", "headerless");
    assert!((4000..80_000).contains(&ulaw.len()), "{} bytes", ulaw.len());

    let pcm = eleven_request(&fake, &format!("{path}?output_format=pcm_16000"), &body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(pcm.len() % 2, 0);
    assert!(pcm.len() > 16_000, "over half a second of 16-bit PCM");
    assert_eq!(fake.control.synthesis_calls(), 3);
}

#[tokio::test]
async fn elevenlabs_stream_delivers_audio_as_each_sentence_is_spoken() {
    let fake = elevenlabs().await;
    let response = eleven_request(
        &fake,
        &format!("/v1/text-to-speech/{RACHEL}/stream?output_format=mp3_22050_32"),
        &json!({"text": "First sentence. Second sentence! Third one?", "model_id": "eleven_flash_v2_5"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (body, count) = chunks(response).await;
    assert!(count > 1, "streamed in {count} chunk(s)");
    let info = mp3_info(&body).expect("MP3 frames");
    assert_eq!(info.sample_rate, 22_050);
}

#[tokio::test]
async fn elevenlabs_spec_violations_are_422_detail_arrays() {
    let fake = elevenlabs().await;
    let path = format!("/v1/text-to-speech/{RACHEL}");
    let detail = |response: Value| response["detail"].as_array().cloned().unwrap();

    let missing = eleven_request(&fake, &path, &json!({"model_id": "eleven_multilingual_v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = detail(missing.json().await.unwrap());
    assert_eq!(missing[0]["loc"], json!(["body", "text"]));
    assert_eq!(missing[0]["msg"], "Field required");
    assert_eq!(missing[0]["type"], "missing");

    let form = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url))
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("text=Hello")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(form.json().await.unwrap())[0]["loc"],
        json!(["body"])
    );

    let not_json = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url))
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .header("Content-Type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(not_json.json().await.unwrap())[0]["type"],
        "json_invalid"
    );

    let bad_format = eleven_request(
        &fake,
        &format!("{path}?output_format=wav_44100"),
        &json!({"text": "Hi"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bad_format.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(bad_format.json().await.unwrap())[0]["loc"],
        json!(["query", "output_format"])
    );

    let wrong_types = eleven_request(
        &fake,
        &path,
        &json!({"text": 42, "voice_settings": {"stability": "steady", "use_speaker_boost": "perhaps"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(wrong_types.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = detail(wrong_types.json().await.unwrap())
        .iter()
        .map(|p| p["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "text"]),
            json!(["body", "voice_settings", "stability"]),
            json!(["body", "voice_settings", "use_speaker_boost"]),
        ]
    );
    assert_eq!(fake.control.synthesis_calls(), 5);
}

#[tokio::test]
async fn elevenlabs_refusals_are_detail_objects() {
    let fake = elevenlabs().await;
    let path = format!("/v1/text-to-speech/{RACHEL}");
    let refused = |response: Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (
            status,
            body["detail"]["status"].as_str().unwrap().to_owned(),
        )
    };

    let anonymous = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url))
        .json(&json!({"text": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})
    );
    let wrong_key = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url))
        .header("xi-api-key", "sk_wrong")
        .json(&json!({"text": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);

    let unknown_voice = eleven_request(
        &fake,
        "/v1/text-to-speech/NoSuchVoice000000000",
        &json!({"text": "Hi"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        refused(unknown_voice).await,
        (400, "voice_not_found".to_owned())
    );

    for (path_and_query, body, expected) in [
        (
            path.clone(),
            json!({"text": "Hi", "model_id": "eleven_nonexistent"}),
            "model_not_found",
        ),
        (
            format!("{path}?output_format=alaw_8000"),
            json!({"text": "Hi"}),
            "unsupported_output_format",
        ),
        (
            format!("{path}?output_format=opus_48000_64"),
            json!({"text": "Hi"}),
            "unsupported_output_format",
        ),
        (
            path.clone(),
            json!({"text": "a".repeat(10_001)}),
            "max_character_limit_exceeded",
        ),
        (path.clone(), json!({"text": "  "}), "invalid_text"),
        (
            path.clone(),
            json!({"text": "Hi", "voice_settings": {"speed": 2.0}}),
            "invalid_voice_settings",
        ),
        (
            path.clone(),
            json!({"text": "Hola", "model_id": "eleven_multilingual_v2", "language_code": "es"}),
            "unsupported_language",
        ),
    ] {
        let response = eleven_request(&fake, &path_and_query, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused(response).await,
            (400, expected.to_owned()),
            "{path_and_query} {body}"
        );
    }
    // The longer limit of the v2.5 models, and language enforcement where it exists.
    let flash = eleven_request(
        &fake,
        &format!("{path}?output_format=ulaw_8000"),
        &json!({"text": "Hola, buenos días.", "model_id": "eleven_flash_v2_5", "language_code": "es"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(flash.status(), StatusCode::OK);
}

#[tokio::test]
async fn elevenlabs_counts_calls_and_fails_on_demand() {
    let fake = elevenlabs().await;
    let http = reqwest::Client::new();
    let voices = format!("{}/v1/voices", fake.base_url);
    let list: Value = http
        .get(&voices)
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rachel = list["voices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["voice_id"] == RACHEL)
        .expect("Rachel");
    assert_eq!(rachel["name"], "Rachel");
    assert_eq!(rachel["category"], "premade");
    assert_eq!(rachel["labels"]["gender"], "female");
    assert!(
        rachel["preview_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(rachel["settings"].is_null());
    assert_eq!(list["voices"].as_array().unwrap().len(), 11);

    fake.control.fail_next(429, 1);
    let busy = eleven_request(
        &fake,
        &format!("/v1/text-to-speech/{RACHEL}"),
        &json!({"text": "Hi"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        busy.json::<Value>().await.unwrap()["detail"]["status"],
        "too_many_concurrent_requests"
    );
    fake.control.fail_next(401, 1);
    let revoked = http
        .get(&voices)
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoked.json::<Value>().await.unwrap()["detail"]["status"],
        "invalid_api_key"
    );
    fake.control.fail_next(503, 1);
    let down = http
        .get(&voices)
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ok = http
        .get(&voices)
        .header("xi-api-key", ELEVENLABS_FAKE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(fake.control.voice_list_calls(), 4);
    assert_eq!(fake.control.synthesis_calls(), 1);
    fake.control.reset();
    assert_eq!(fake.control.voice_list_calls(), 0);

    // Unknown routes and methods answer like FastAPI.
    let missing = http
        .get(format!("{}/v1/nowhere", fake.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
}
