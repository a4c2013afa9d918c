//! The contact guide's error form, used on the contacts routes only:
//! `{"error": {"code", "message", "details", "timestamp", "requestId"}}`.
//!
//! Handlers and extractors return the API's usual [`ApiError`](vocelio_shared::ApiError);
//! this layer rewrites its body (`{"error": "<sentence>", "code", "details"?, "current"?}`)
//! on the way out, so every refusal on these routes — 401 from the token check, 415/422
//! from the body extractor, 409 from a transaction — has the guide's shape.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

/// Largest error body rewritten (ours are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Rewrites error bodies into the guide's form (middleware for `axum::middleware::from_fn`).
pub async fn guide_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(old) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let rewritten = to_guide_form(&old, &request_id);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(rewritten.to_string()))
}

/// The guide's form of one of our error bodies (bodies already in that form pass through).
pub fn to_guide_form(old: &Value, request_id: &str) -> Value {
    let Some(message) = old.get("error").and_then(Value::as_str) else {
        return old.clone();
    };
    let mut details = old.get("details").cloned().unwrap_or(Value::Null);
    if let Some(current) = old.get("current") {
        details = json!({ "current": current });
    }
    let timestamp = vocelio_shared::clock::rfc3339(vocelio_shared::clock::now());
    json!({
        "error": {
            "code": old.get("code").cloned().unwrap_or_else(|| json!("error")),
            "message": message,
            "details": details,
            "timestamp": timestamp,
            "requestId": request_id,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_take_the_guide_form() {
        let old = json!({"error": "phone: is required", "code": "validation_failed",
            "details": [{"field": "phone", "message": "is required"}]});
        let new = to_guide_form(&old, "req-1");
        assert_eq!(new["error"]["code"], "validation_failed");
        assert_eq!(new["error"]["message"], "phone: is required");
        assert_eq!(new["error"]["details"][0]["field"], "phone");
        assert_eq!(new["error"]["requestId"], "req-1");
        assert!(new["error"]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(to_guide_form(&new, "x"), new);
    }
}
