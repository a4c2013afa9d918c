//! The REST contract: auth, paths, validation, injected failures, the agent stand-in.

use axum::http::Method;
use serde_json::json;
use twilio_sim::{ACCOUNT_SID, AUTH_TOKEN};

use crate::common::*;

const UNKNOWN_CALL: &str = "CA0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn credentials_and_paths_are_checked_like_twilio() {
    let sim = simulator(options()).await;
    let calls = format!("{}/Calls.json", api(&sim));
    let form = "application/x-www-form-urlencoded";

    let (status, body, headers) = raw(Method::GET, &calls, None, form, "").await;
    assert_error(&(status, body.clone()), 401, 20003);
    assert_eq!(body["message"], "Authenticate");
    assert!(headers.contains_key("www-authenticate"));

    let wrong_token = raw(Method::GET, &calls, Some((ACCOUNT_SID, "nope")), form, "").await;
    assert_error(&(wrong_token.0, wrong_token.1), 401, 20003);

    // Valid credentials, but another account's path.
    let other = format!(
        "{}/2010-04-01/Accounts/ACdeadbeefdeadbeefdeadbeefdeadbeef/Calls.json",
        sim.base_url
    );
    assert_error(&get(&other).await, 401, 20003);
    let malformed = format!("{}/2010-04-01/Accounts/ACxyz/Calls.json", sim.base_url);
    assert_error(&get(&malformed).await, 404, 20404);

    assert_error(
        &get(&format!("{}/Calls/CA123.json", api(&sim))).await,
        404,
        20404,
    );
    assert_error(
        &get(&format!("{}/Calls/{UNKNOWN_CALL}.json", api(&sim))).await,
        404,
        20404,
    );
    assert_error(
        &get(&format!("{}/Calls/{UNKNOWN_CALL}", api(&sim))).await,
        404,
        20404,
    );
    assert_error(
        &get(&format!("{}/Conferences/CF0123.json", api(&sim))).await,
        404,
        20404,
    );
    assert_error(
        &get(&format!("{}/Queues.json", api(&sim))).await,
        404,
        20404,
    );
    assert_error(&form_request(Method::PUT, &calls).await, 405, 20004);

    let (status, list) = get(&calls).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["calls"], json!([]));
    assert_eq!(sim.rest_requests(), 11);
}

async fn form_request(method: Method, url: &str) -> (u16, serde_json::Value) {
    form(method, url, &[]).await
}

#[tokio::test]
async fn creates_twilio_would_refuse_are_refused() {
    let sim = simulator(options()).await;
    let calls = format!("{}/Calls.json", api(&sim));
    let twiml = "<Response><Say>Hi</Say></Response>";
    let ok = [
        ("To", "+14155550123"),
        ("From", "+15005550006"),
        ("Twiml", twiml),
    ];
    let without = |name: &str| -> Vec<(&str, &str)> {
        ok.iter().copied().filter(|(k, _)| *k != name).collect()
    };
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        ok.iter().copied().chain(extra.iter().copied()).collect()
    };

    let missing_to = post(&calls, &without("To")).await;
    assert_error(&missing_to, 400, 21201);
    assert_eq!(missing_to.1["message"], "No 'To' number is specified");
    assert!(
        sim.calls().is_empty(),
        "no call exists after a refused create"
    );

    assert_error(&post(&calls, &without("From")).await, 400, 21213);
    let bad_to = post(
        &calls,
        &[
            ("To", "4155550123"),
            ("From", "+15005550006"),
            ("Twiml", twiml),
        ],
    )
    .await;
    assert_error(&bad_to, 400, 21211);
    assert!(
        bad_to.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("4155550123"))
    );
    assert_error(
        &post(
            &calls,
            &[
                ("To", "+14155550123"),
                ("From", "Vocelio"),
                ("Twiml", twiml),
            ],
        )
        .await,
        400,
        21212,
    );

    // A JSON body carries no parameters for Twilio: To is missing.
    let json_body = json!({"To": "+14155550123", "From": "+15005550006", "Twiml": twiml});
    let (status, body, _) = raw(
        Method::POST,
        &calls,
        Some((ACCOUNT_SID, AUTH_TOKEN)),
        "application/json",
        &json_body.to_string(),
    )
    .await;
    assert_error(&(status, body), 400, 21201);

    assert_error(
        &post(&calls, &with(&[("Url", "https://example.com/voice")])).await,
        400,
        21205,
    );
    let none = post(&calls, &without("Twiml")).await;
    assert_error(&none, 400, 21205);
    assert_eq!(none.1["message"], "Url parameter is required.");
    assert_error(
        &post(
            &calls,
            &[
                ("To", "+14155550123"),
                ("From", "+15005550006"),
                ("Url", "notaurl"),
            ],
        )
        .await,
        400,
        21205,
    );
    assert_error(
        &post(&calls, &with(&[("StatusCallback", "notaurl")])).await,
        400,
        21609,
    );
    assert_error(
        &post(&calls, &with(&[("FallbackUrl", "ftp://example.com/x")])).await,
        400,
        21205,
    );
    assert_error(
        &post(
            &calls,
            &with(&[
                ("StatusCallback", "https://example.com/s"),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "hangup"),
            ]),
        )
        .await,
        400,
        20001,
    );
    assert_error(
        &post(&calls, &with(&[("Timeout", "abc")])).await,
        400,
        20001,
    );
    assert_error(
        &post(&calls, &with(&[("Record", "maybe")])).await,
        400,
        20001,
    );
    let long = format!("<Response><Say>{}</Say></Response>", "a".repeat(4000));
    assert_error(
        &post(
            &calls,
            &[
                ("To", "+14155550123"),
                ("From", "+15005550006"),
                ("Twiml", &long),
            ],
        )
        .await,
        400,
        20001,
    );
    assert_error(
        &post(
            &calls,
            &[
                ("To", "+14155550123"),
                ("From", "+15005550006"),
                ("ApplicationSid", "AP0123456789abcdef0123456789abcdef"),
            ],
        )
        .await,
        400,
        21218,
    );
    assert!(sim.calls().is_empty());

    // A client callee is fine, and so is a client caller for it.
    let (status, call) = post(
        &calls,
        &[
            ("To", "client:agent_1"),
            ("From", "client:ivr"),
            ("Twiml", twiml),
        ],
    )
    .await;
    assert_eq!(status, 201, "{call}");
    let sid = call["sid"].as_str().expect("sid").to_owned();
    let call_url = format!("{}/Calls/{sid}.json", api(&sim));
    assert_error(&post(&call_url, &[("Status", "hangup")]).await, 400, 20001);
    assert_error(
        &post(
            &call_url,
            &[("Url", "https://example.com/a"), ("Twiml", twiml)],
        )
        .await,
        400,
        21205,
    );
    let (status, canceled) = post(&call_url, &[("Status", "canceled")]).await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled"))
    );
}

#[tokio::test]
async fn failures_can_be_injected() {
    let sim = simulator(options()).await;
    let calls = format!("{}/Calls.json", api(&sim));
    sim.fail_next(429, 20429, "Too Many Requests", 2);
    for _ in 0..2 {
        let refused = get(&calls).await;
        assert_error(&refused, 429, 20429);
        assert_eq!(refused.1["message"], "Too Many Requests");
    }
    assert_eq!(get(&calls).await.0, 200);

    let control = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = control
        .post(format!("{}/__sim/fail", sim.base_url))
        .json(&json!({"status": 503, "code": 20503, "message": "Service unavailable"}))
        .send()
        .await
        .expect("fail request");
    assert_eq!(response.status().as_u16(), 204);
    assert_error(&get(&calls).await, 503, 20503);
    assert_eq!(get(&calls).await.0, 200);
    assert_eq!(sim.rest_requests(), 5);
}

#[tokio::test]
async fn the_agent_stand_in_keeps_a_call_live() {
    let sim = simulator(options()).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/__sim/agent?seconds=5", sim.base_url))
        .send()
        .await
        .expect("agent");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/xml"))
    );
    let twiml = response.text().await.expect("body");
    assert!(
        twiml.ends_with("<Response><Say>This is the local AI agent stand-in.</Say><Pause length=\"5\"/></Response>"),
        "{twiml}"
    );
    let capped = client
        .get(format!("{}/__sim/agent?seconds=999999", sim.base_url))
        .send()
        .await
        .expect("agent")
        .text()
        .await
        .expect("body");
    assert!(capped.contains("<Pause length=\"3600\"/>"), "{capped}");
    let default = client
        .get(format!("{}/__sim/agent", sim.base_url))
        .send()
        .await
        .expect("agent")
        .text()
        .await
        .expect("body");
    assert!(default.contains("<Pause length=\"60\"/>"), "{default}");
    let bad = client
        .get(format!("{}/__sim/agent?seconds=soon", sim.base_url))
        .send()
        .await
        .expect("agent");
    assert_eq!(bad.status().as_u16(), 400);

    // A call running it is live for those seconds.
    let calls = format!("{}/Calls.json", api(&sim));
    let agent_url = format!("{}/__sim/agent?seconds=3", sim.base_url);
    let (status, call) = post(
        &calls,
        &[
            ("To", "+14155550123"),
            ("From", "+15005550006"),
            ("Url", &agent_url),
        ],
    )
    .await;
    assert_eq!(status, 201, "{call}");
    let sid = call["sid"].as_str().expect("sid");
    let done = wait_over(&sim, sid).await;
    assert_eq!(done.status, "completed");
    assert_eq!(
        done.verbs,
        ["Say:This is the local AI agent stand-in.", "Pause:3"]
    );
    let duration = done.duration.expect("duration");
    assert!((5..=30).contains(&duration), "{duration}");
    assert_eq!(sim.rest_requests(), 1);
}
