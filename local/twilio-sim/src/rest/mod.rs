//! The Twilio REST API under `/2010-04-01/Accounts/{AccountSid}/`: routing, Basic auth,
//! path SID checks and injected failures; the resources live in [`calls`] and
//! [`conferences`]. Every check answers Twilio's error JSON ([`crate::errors`]).

mod calls;
mod conferences;
mod params;
mod render;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;

use crate::errors::ApiError;
use crate::state::Shared;
use crate::util::is_sid;

pub(crate) use params::Params;

/// A successful answer.
pub(crate) enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, value) => (status, Json(value)).into_response(),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// What a handler gets: the parsed request.
pub(crate) struct Request<'a> {
    pub sim: &'a Arc<Shared>,
    pub method: &'a Method,
    pub path: &'a str,
    pub params: Params,
}

/// The fallback handler of the server: everything under `/2010-04-01` is the REST API.
pub(crate) async fn handle(
    State(sim): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path != "/2010-04-01" && !path.starts_with("/2010-04-01/") {
        return (StatusCode::NOT_FOUND, "not found: the Twilio API is under /2010-04-01, the simulator's own endpoints under /__sim").into_response();
    }
    sim.rest_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(error) = take_failure(&sim) {
        return error.into_response();
    }
    let params = if method == Method::GET {
        Params::from_query(uri.query())
    } else {
        Params::from_body(&headers, &body)
    };
    let request = Request {
        sim: &sim,
        method: &method,
        path,
        params,
    };
    match route(&request, &headers) {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

/// The injected failure this request answers with, if any (consumes one).
fn take_failure(sim: &Shared) -> Option<ApiError> {
    let mut state = sim.lock();
    let (status, code, message, left) = state.failing.take()?;
    if left > 1 {
        state.failing = Some((status, code, message.clone(), left - 1));
    }
    Some(ApiError::new(status, code, message))
}

/// The Basic-auth user, when the credentials are the account's.
fn authorize(sim: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .ok_or_else(ApiError::authenticate)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(ApiError::authenticate)?;
    let (user, password) = decoded.split_once(':').ok_or_else(ApiError::authenticate)?;
    if user != sim.account_sid || password != sim.auth_token {
        return Err(ApiError::authenticate());
    }
    Ok(user.to_owned())
}

/// `name.json` → `name`; 404 without the suffix.
fn json_name<'p>(segment: &'p str, path: &str) -> Result<&'p str, ApiError> {
    segment
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(path))
}

/// A path SID: `prefix` + 32 hex, 404 otherwise.
fn sid<'p>(segment: &'p str, prefix: &str, path: &str) -> Result<&'p str, ApiError> {
    if is_sid(prefix, segment) {
        Ok(segment)
    } else {
        Err(ApiError::not_found(path))
    }
}

fn route(request: &Request<'_>, headers: &HeaderMap) -> Result<Reply, ApiError> {
    let user = authorize(request.sim, headers)?;
    let path = request.path;
    let rest = path.strip_prefix("/2010-04-01/").unwrap_or("");
    let segments: Vec<&str> = rest.split('/').collect();
    let ["Accounts", account, tail @ ..] = segments.as_slice() else {
        return Err(ApiError::not_found(path));
    };
    let account = account.strip_suffix(".json").unwrap_or(account);
    if !is_sid("AC", account) {
        return Err(ApiError::not_found(path));
    }
    if account != user {
        return Err(ApiError::authenticate());
    }
    let method = request.method;
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    match tail {
        ["Calls.json"] if get => calls::list(request),
        ["Calls.json"] if post => calls::create(request),
        ["Calls.json"] => Err(ApiError::method_not_allowed()),
        ["Calls", file] => {
            let call = sid(json_name(file, path)?, "CA", path)?;
            match method {
                _ if get => calls::fetch(request, call),
                _ if post => calls::update(request, call),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        ["Conferences.json"] if get => conferences::list(request),
        ["Conferences.json"] => Err(ApiError::method_not_allowed()),
        ["Conferences", file] => {
            let conference = sid(json_name(file, path)?, "CF", path)?;
            match method {
                _ if get => conferences::fetch(request, conference),
                _ if post => conferences::update(request, conference),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        ["Conferences", conference, "Participants.json"] => {
            if post {
                // Twilio takes a friendly name here too: the conference is created if needed.
                conferences::add_participant(request, &crate::util::percent_decode(conference))
            } else if get {
                let conference = sid(conference, "CF", path)?;
                conferences::participants(request, conference)
            } else {
                Err(ApiError::method_not_allowed())
            }
        }
        ["Conferences", conference, "Participants", file] => {
            let conference = sid(conference, "CF", path)?;
            let participant = crate::util::percent_decode(json_name(file, path)?);
            match method {
                _ if get => conferences::participant(request, conference, &participant),
                _ if post => conferences::update_participant(request, conference, &participant),
                _ if delete => conferences::remove_participant(request, conference, &participant),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        _ => Err(ApiError::not_found(path)),
    }
}
