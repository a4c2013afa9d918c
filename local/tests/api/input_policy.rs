//! One input policy on every route: the findings of hostile-input testing, each a
//! regression test.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, token_for};

/// Sends raw bytes as a JSON body with the app's admin token; the status and the body.
async fn raw_json(
    app: &crate::helpers::TestApp,
    method: reqwest::Method,
    path: &str,
    body: &'static str,
) -> (u16, Value, String) {
    let response = app
        .http()
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token_for(app))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, value, content_type)
}

#[tokio::test]
async fn a_body_that_names_a_field_twice_is_refused_on_every_kind_of_route() {
    let app = spawn_app().await;
    for (path, body) in [
        (
            "/api/departments",
            r#"{"name": "Sales", "name": "Billing", "phone_number": "+15551230003"}"#,
        ),
        (
            "/api/calls/make",
            r#"{"to": "+14155550123", "to": "+19005550123"}"#,
        ),
        (
            "/synthesize",
            r#"{"text": "hi", "voice_id": "en-US-AriaNeural", "voice_id": "x"}"#,
        ),
        (
            "/auth/login",
            r#"{"email": "a@example.com", "password": "x", "password": "y"}"#,
        ),
    ] {
        let (status, body, _) = raw_json(&app, reqwest::Method::POST, path, body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "duplicate_key", "{path}: {body}");
    }
    // The contact guide's routes answer in the guide's form.
    let (status, body, _) = raw_json(
        &app,
        reqwest::Method::POST,
        "/v1/contact-lists",
        r#"{"name": "A", "name": "B"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "duplicate_key");
}

#[tokio::test]
async fn unknown_fields_are_refused_on_calls_and_synthesis_too() {
    let app = spawn_app().await;
    let admin = app.admin();
    let reply = admin
        .post(
            "/api/calls/make",
            json!({"to": "+14155550123", "callback_url": "https://evil.example"}),
        )
        .await
        .expect(422);
    assert_eq!(reply.fields(), vec!["callback_url".to_owned()]);
    let reply = admin
        .post(
            "/synthesize",
            json!({"text": "hi", "voice_id": "en-US-AriaNeural", "provider": "azure", "bitrate": 320}),
        )
        .await
        .expect(422);
    assert_eq!(reply.fields(), vec!["bitrate".to_owned()]);
    let reply = admin
        .post(
            "/stream/synthesize",
            json!({"text": "hi", "voice_id": "en-US-AriaNeural", "sample_rate": 8000}),
        )
        .await
        .expect(422);
    assert_eq!(reply.fields(), vec!["sample_rate".to_owned()]);
}

#[tokio::test]
async fn router_refusals_answer_in_the_routes_json_form() {
    let app = spawn_app().await;
    // `%FF` is not UTF-8 once decoded.
    let response = app
        .http()
        .get(format!("{}/api/departments/%FF%FE", app.base))
        .bearer_auth(token_for(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_request");
    assert!(body["message"].is_string());
    // On the contact guide's routes, in the guide's form.
    let response = app
        .http()
        .get(format!("{}/v1/contacts/%FF%FE", app.base))
        .bearer_auth(token_for(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn the_do_not_call_lists_page_like_every_other_list() {
    let app = spawn_app().await;
    let admin = app.admin();
    for query in [
        "limit=-5",
        "limit=abc",
        "page=0",
        "page=x",
        "cursor=garbage",
        "sort=name",
    ] {
        let reply = admin.get(&format!("/v1/dnc-lists?{query}")).await;
        assert!(
            matches!(reply.status, 400 | 422),
            "{query}: {} {}",
            reply.status,
            reply.body
        );
    }
    for name in ["A", "B", "C"] {
        admin
            .post("/v1/dnc-lists", json!({"name": format!("List {name}")}))
            .await
            .expect(201);
    }
    let page = admin.get("/v1/dnc-lists?page=2&limit=2").await.expect(200);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["pagination"]["total"], 3);
}
