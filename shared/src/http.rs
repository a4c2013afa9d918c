//! Router plumbing shared by every function: JSON 404/405, CORS, request ids, tracing,
//! body limits, panic guard, and the health routes.

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderName, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers browsers may send cross-origin. The app's clients also send `X-Client-Version`,
/// `X-Service`, `X-Request-ID`, `X-Team-ID`, `X-User-ID` and browser-side Twilio
/// credentials: allowed in preflight so its requests go out, and never read.
pub const CORS_ALLOWED_HEADERS: [HeaderName; 14] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("x-tenant-id"),
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("x-client-version"),
    HeaderName::from_static("x-service"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("x-team-id"),
    HeaderName::from_static("x-user-id"),
    HeaderName::from_static("x-twilio-account-sid"),
    HeaderName::from_static("x-twilio-auth-token"),
];

/// Response headers browsers may read cross-origin.
pub const CORS_EXPOSED_HEADERS: [HeaderName; 12] = [
    HeaderName::from_static("x-dynamodb-capacity-units"),
    HeaderName::from_static("provider"),
    HeaderName::from_static("voice-id"),
    HeaderName::from_static("x-audio-duration"),
    HeaderName::from_static("x-characters"),
    HeaderName::from_static("x-cost"),
    HeaderName::from_static("x-cache"),
    HeaderName::from_static("x-total-count"),
    HeaderName::from_static("x-next-cursor"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("idempotent-replayed"),
    header::RETRY_AFTER,
];

/// Turns a function's routes into the finished service: unknown paths answer a JSON 404
/// before any authentication, known paths with the wrong method a JSON 405; CORS for the
/// configured origins (preflight needs no token); request ids; one tracing span per request
/// with method, route, request id and tenant.
pub fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(state.config.cors_allowed_origins.clone()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(CORS_ALLOWED_HEADERS)
        .expose_headers(CORS_EXPOSED_HEADERS)
        .max_age(Duration::from_secs(600));
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            tenant = tracing::field::Empty,
        )
    });
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(report_capacity))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(cors)
        .with_state(state)
}

/// Serves the request inside a capacity meter and reports the DynamoDB capacity units it
/// consumed (`x-dynamodb-capacity-units`, and in the request's log line).
async fn report_capacity(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut response, units) = crate::capacity::meter(next.run(request)).await;
    if units > 0.0 {
        tracing::info!(capacity_units = units, "dynamodb capacity");
        if let Ok(value) = http::HeaderValue::from_str(&format!("{units}")) {
            response
                .headers_mut()
                .insert("x-dynamodb-capacity-units", value);
        }
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "route_not_found",
        message: "no such route".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Gives every refusal the API's JSON error form, including those the router and axum's
/// own extractors write as text (a path segment that is not UTF-8 after percent-decoding,
/// a path parameter of the wrong type, ...). JSON error bodies pass through untouched; a
/// 5xx text body is replaced by the opaque internal error (its text is logged).
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound {
            code: "not_found",
            message: if text.is_empty() {
                "not found".into()
            } else {
                text
            },
        },
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::field("request", text),
        s if s.is_server_error() => ApiError::internal(text),
        _ => ApiError::bad_request(
            "invalid_request",
            if text.is_empty() {
                "the request is malformed".to_owned()
            } else {
                text
            },
        ),
    };
    let mut rewritten = error.into_response();
    if rewritten.status() != status && !status.is_server_error() {
        *rewritten.status_mut() = status;
    }
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in rewritten.headers() {
        headers.insert(name.clone(), value.clone());
    }
    *rewritten.headers_mut() = headers;
    rewritten
}

/// `GET /health` and `GET /health/{service}` for one function: its version and whether its
/// table answers. No authentication and no tenant data.
pub fn health_routes(service: &'static str, version: &'static str) -> Router<AppState> {
    health_routes_for("/health", &[(service, version)])
}

/// Health routes for several services behind one router (the local stack): `root` answers
/// for all of them, `/health/{service}` for each.
pub fn health_routes_for(
    root: &str,
    services: &[(&'static str, &'static str)],
) -> Router<AppState> {
    let names: Vec<&'static str> = services.iter().map(|(name, _)| *name).collect();
    let all = names.join(",");
    let version = services.first().map_or("unknown", |(_, v)| *v);
    let mut router = Router::new().route(
        root,
        get(move |State(state): State<AppState>| {
            let all = all.clone();
            async move { health(&state, &all, version).await }
        }),
    );
    for &(service, version) in services {
        router = router.route(
            &format!("/health/{service}"),
            get(move |State(state): State<AppState>| async move {
                health(&state, service, version).await
            }),
        );
    }
    router
}

/// The health answer for `service`: 200 when the table answers, 503 when not.
pub async fn health(state: &AppState, service: &str, version: &str) -> Response {
    let (ok, table) = table_health(state).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "service": service,
        "version": version,
        "checks": { "table": table },
    });
    (status, Json(body)).into_response()
}

/// Whether the core table answers `DescribeTable`, and how fast.
pub async fn table_health(state: &AppState) -> (bool, serde_json::Value) {
    let started = Instant::now();
    let result = state
        .db
        .describe_table()
        .table_name(state.table())
        .send()
        .await;
    let latency_ms = started.elapsed().as_millis();
    match result {
        Ok(out) => {
            let table_status = out
                .table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "UNKNOWN".into());
            (
                table_status == "ACTIVE",
                json!({ "status": table_status, "latency_ms": latency_ms }),
            )
        }
        Err(err) => {
            tracing::warn!(error = ?err, "health: table does not answer");
            (
                false,
                json!({ "status": "UNREACHABLE", "latency_ms": latency_ms }),
            )
        }
    }
}
