//! The Twilio REST API under `/2010-04-01/`: routing, Basic auth per account, path SID
//! checks and injected failures; the resources live in [`accounts`], [`calls`],
//! [`conferences`] and [`phone_numbers`]. Every check answers Twilio's error JSON
//! ([`crate::errors`]).

mod accounts;
mod calls;
mod conferences;
mod params;
mod phone_numbers;
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
use crate::numbers::NumberKind;
use crate::state::Shared;
use crate::util::is_sid;

pub(crate) use params::Params;
pub(crate) use phone_numbers::{available_number, new_number};

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
    pub path: &'a str,
    pub params: Params,
    /// The authenticated account (the Basic-auth user).
    pub user: String,
    /// The account in the path (`/Accounts/{AccountSid}/…`); the user for `/Accounts.json`.
    pub account: String,
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
    if let Some(error) = take_account_failure(&sim, path) {
        return error.into_response();
    }
    let params = if method == Method::GET {
        Params::from_query(uri.query())
    } else {
        Params::from_body(&headers, &body)
    };
    match route(&sim, &method, path, params, &headers) {
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

/// The injected failure of the account whose path this is, if any (consumes one).
fn take_account_failure(sim: &Shared, path: &str) -> Option<ApiError> {
    let account = path
        .strip_prefix("/2010-04-01/Accounts/")?
        .split('/')
        .next()?
        .trim_end_matches(".json");
    let mut state = sim.lock();
    let (status, code, message, left) = state.failing_for.remove(account)?;
    if left > 1 {
        state.failing_for.insert(
            account.to_owned(),
            (status, code, message.clone(), left - 1),
        );
    }
    Some(ApiError::new(status, code, message))
}

/// The Basic-auth user, when the credentials are those of an active account (a suspended
/// or closed account's credentials no longer authenticate: 401 20003).
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
    let state = sim.lock();
    match state.account(user) {
        Some(account) if account.auth_token == password && account.is_active() => {
            Ok(user.to_owned())
        }
        _ => Err(ApiError::authenticate()),
    }
}

/// Whether `user` may act on `account`'s resources: its own, or (for a parent) its
/// subaccounts'.
pub(crate) fn may_act_on(sim: &Shared, user: &str, account: &str) -> bool {
    user == account
        || sim
            .lock()
            .account(account)
            .is_some_and(|a| a.owner == user && !a.is_main())
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

fn route(
    sim: &Arc<Shared>,
    method: &Method,
    path: &str,
    params: Params,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let user = authorize(sim, headers)?;
    let rest = path.strip_prefix("/2010-04-01/").unwrap_or("");
    let segments: Vec<&str> = rest.split('/').collect();
    let mut request = Request {
        sim,
        path,
        params,
        account: user.clone(),
        user,
    };
    let get = method == Method::GET;
    let post = method == Method::POST;
    let tail = match segments.as_slice() {
        ["Accounts.json"] if get => return accounts::list(&request),
        ["Accounts.json"] if post => return accounts::create(&request),
        ["Accounts.json"] => return Err(ApiError::method_not_allowed()),
        ["Accounts", file] if file.ends_with(".json") => {
            let account = sid(json_name(file, path)?, "AC", path)?;
            if !may_act_on(sim, &request.user, account) {
                return Err(ApiError::authenticate());
            }
            return match method {
                _ if get => accounts::fetch(&request, account),
                _ if post => accounts::update(&request, account),
                _ => Err(ApiError::method_not_allowed()),
            };
        }
        ["Accounts", account, tail @ ..] => {
            if !is_sid("AC", account) {
                return Err(ApiError::not_found(path));
            }
            if !may_act_on(sim, &request.user, account) {
                return Err(ApiError::authenticate());
            }
            // A suspended or closed subaccount cannot be used, even by its parent.
            if !sim.lock().account(account).is_some_and(|a| a.is_active()) {
                return Err(ApiError::authenticate());
            }
            request.account = (*account).to_owned();
            tail
        }
        _ => return Err(ApiError::not_found(path)),
    };
    let request = &request;
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
        ["AvailablePhoneNumbers.json"] if get => phone_numbers::countries(request),
        ["AvailablePhoneNumbers", file] if get => {
            phone_numbers::country(request, json_name(file, path)?)
        }
        ["AvailablePhoneNumbers", country, "Local.json"] if get => {
            phone_numbers::search(request, country, NumberKind::Local)
        }
        ["AvailablePhoneNumbers", country, "TollFree.json"] if get => {
            phone_numbers::search(request, country, NumberKind::TollFree)
        }
        ["AvailablePhoneNumbers", ..] => match method {
            _ if get => Err(ApiError::not_found(path)),
            _ => Err(ApiError::method_not_allowed()),
        },
        ["IncomingPhoneNumbers.json"] if get => phone_numbers::list(request),
        ["IncomingPhoneNumbers.json"] if post => phone_numbers::buy(request),
        ["IncomingPhoneNumbers.json"] => Err(ApiError::method_not_allowed()),
        ["IncomingPhoneNumbers", file] => {
            let number = sid(json_name(file, path)?, "PN", path)?;
            match method {
                _ if get => phone_numbers::fetch(request, number),
                _ if post => phone_numbers::update(request, number),
                _ if delete => phone_numbers::release(request, number),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        _ => Err(ApiError::not_found(path)),
    }
}
