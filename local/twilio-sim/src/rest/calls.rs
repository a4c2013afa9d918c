//! `Calls.json` (create, list) and `Calls/{CA}.json` (fetch, update).

use axum::http::StatusCode;
use telephony::callback::CallStatus;

use super::params::invalid;
use super::{Params, Reply, Request, render};
use crate::engine::{self, NewCall, Redirect};
use crate::errors::{
    ApiError, CALLER_ID_NOT_VERIFIED, INVALID_APPLICATION, INVALID_FROM, INVALID_PARAMETER,
    INVALID_STATUS_CALLBACK, INVALID_TO, INVALID_URL, MISSING_FROM, MISSING_TO, NOT_IN_PROGRESS,
};
use crate::state::{Call, Direction, Source, State, StatusHook};
use crate::util::{is_client, is_e164, is_sid, is_sip};

/// Twilio's `Twiml` limit.
pub(crate) const MAX_TWIML_CHARS: usize = 4000;
/// Call progress events a `StatusCallbackEvent` may name.
pub(crate) const CALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// `To` and `From` checks shared with the Participants API: 21201, 21213, 21211, 21212.
pub(crate) fn endpoints(params: &Params) -> Result<(String, String), ApiError> {
    let to = params
        .get("To")
        .ok_or_else(|| ApiError::bad_request(MISSING_TO, "No 'To' number is specified"))?;
    let from = params
        .get("From")
        .ok_or_else(|| ApiError::bad_request(MISSING_FROM, "No 'From' number is specified"))?;
    let to_address = is_client(to) || is_sip(to);
    if !(is_e164(to) || to_address) {
        return Err(ApiError::bad_request(
            INVALID_TO,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    // A client or SIP callee may be called from a client identity; a number needs a number.
    if !(is_e164(from) || (to_address && is_client(from))) {
        return Err(ApiError::bad_request(
            INVALID_FROM,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        ));
    }
    Ok((to.to_owned(), from.to_owned()))
}

/// 400 21210 unless `account` may call from `from`: a number it bought
/// (IncomingPhoneNumbers) or holds as a caller ID. `client:` callers are not checked.
pub(crate) fn check_caller_id(state: &State, account: &str, from: &str) -> Result<(), ApiError> {
    if !is_e164(from) || state.owns(account, from) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        CALLER_ID_NOT_VERIFIED,
        format!(
            "The source phone number provided, {from}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio."
        ),
    ))
}

/// The account's call `sid`; another account's call is not found.
fn owned<'s>(state: &'s State, request: &Request<'_>, sid: &str) -> Result<&'s Call, ApiError> {
    state
        .call(sid)
        .filter(|c| c.account_sid == request.account)
        .ok_or_else(|| ApiError::not_found(request.path))
}

/// `StatusCallback` (21609), `StatusCallbackMethod`, `StatusCallbackEvent` (default
/// `completed`).
pub(crate) fn status_hook(params: &Params) -> Result<Option<StatusHook>, ApiError> {
    let url = params.url("StatusCallback", INVALID_STATUS_CALLBACK)?;
    let method = params.method("StatusCallbackMethod")?;
    let events = params
        .events("StatusCallbackEvent", &CALL_EVENTS)?
        .unwrap_or_else(|| vec!["completed".to_owned()]);
    Ok(url.map(|url| StatusHook {
        url,
        method,
        events,
    }))
}

/// `Twiml`: at most 4,000 characters (400, code 20001).
fn twiml(params: &Params) -> Result<Option<String>, ApiError> {
    match params.get("Twiml") {
        Some(t) if t.chars().count() > MAX_TWIML_CHARS => Err(ApiError::bad_request(
            INVALID_PARAMETER,
            format!(
                "Twiml is {} characters long; the limit is {MAX_TWIML_CHARS}",
                t.chars().count()
            ),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Exactly one of `Url`, `Twiml`, `ApplicationSid`.
fn instructions(params: &Params) -> Result<Source, ApiError> {
    let given: Vec<&str> = ["Url", "Twiml", "ApplicationSid"]
        .into_iter()
        .filter(|name| params.get(name).is_some())
        .collect();
    if given.is_empty() {
        return Err(ApiError::bad_request(
            INVALID_URL,
            "Url parameter is required.",
        ));
    }
    if given.len() > 1 {
        return Err(ApiError::bad_request(
            INVALID_URL,
            format!(
                "Give only one of Url, Twiml and ApplicationSid (got {})",
                given.join(", ")
            ),
        ));
    }
    let method = params.method("Method")?;
    if let Some(url) = params.url("Url", INVALID_URL)? {
        return Ok(Source::Url { url, method });
    }
    if let Some(twiml) = twiml(params)? {
        return Ok(Source::Twiml(twiml));
    }
    let application = params.get("ApplicationSid").unwrap_or_default();
    let message = if is_sid("AP", application) {
        format!(
            "ApplicationSid {application} was not found: the simulator has no TwiML applications; give Url or Twiml"
        )
    } else {
        format!("Invalid ApplicationSid: {application}")
    };
    Err(ApiError::bad_request(INVALID_APPLICATION, message))
}

/// `POST Calls.json`: 201 with the call `queued`.
pub(crate) fn create(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let (to, from) = endpoints(params)?;
    let source = instructions(params)?;
    params.url("FallbackUrl", INVALID_URL)?;
    params.method("FallbackMethod")?;
    let hook = status_hook(params)?;
    let timeout = params.int("Timeout")?.unwrap_or(60).clamp(1, 600);
    params.int("TimeLimit")?;
    params.bool("Record")?;
    params.one_of("MachineDetection", &["Enable", "DetectMessageEnd"])?;
    let sim = request.sim;
    let mut state = sim.lock();
    check_caller_id(&state, &request.account, &from)?;
    let sid = engine::create_call(
        sim,
        &mut state,
        NewCall {
            account_sid: request.account.clone(),
            phone_number_sid: None,
            direction: Direction::OutboundApi,
            from,
            to,
            parent: None,
            source: Some(source),
            whisper: None,
            hook,
            timeout: timeout as f64,
        },
    );
    let call = state.call(&sid).map(render::call).unwrap_or_default();
    Ok(Reply::Json(StatusCode::CREATED, call))
}

/// `GET Calls.json` (`To`, `From`, `ParentCallSid`, `Status` filters): the account's
/// calls (a parent's list holds only its own), newest first.
pub(crate) fn list(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let status = params.one_of(
        "Status",
        &[
            "queued",
            "ringing",
            "in-progress",
            "completed",
            "busy",
            "failed",
            "no-answer",
            "canceled",
        ],
    )?;
    let state = request.sim.lock();
    let calls = state
        .calls
        .iter()
        .rev()
        .filter(|c| c.account_sid == request.account)
        .filter(|c| params.get("To").is_none_or(|to| c.to == to))
        .filter(|c| params.get("From").is_none_or(|from| c.from == from))
        .filter(|c| {
            params
                .get("ParentCallSid")
                .is_none_or(|p| c.parent.as_deref() == Some(p))
        })
        .filter(|c| status.as_deref().is_none_or(|s| c.rest_status() == s))
        .map(render::call)
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::page(request.path, "calls", calls),
    ))
}

/// `GET Calls/{CA}.json`.
pub(crate) fn fetch(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let state = request.sim.lock();
    let call = owned(&state, request, sid)?;
    Ok(Reply::Json(StatusCode::OK, render::call(call)))
}

/// `POST Calls/{CA}.json`: `Status` (`completed` hangs up — a call not answered yet ends
/// `canceled`; `canceled` ends a queued/ringing call and is ignored once answered), `Url`
/// or `Twiml` (redirect; 21220 once the call is over), `StatusCallback` (replaces it).
pub(crate) fn update(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let params = &request.params;
    let status = params.one_of("Status", &["canceled", "completed"])?;
    if params.get("Url").is_some() && params.get("Twiml").is_some() {
        return Err(ApiError::bad_request(
            INVALID_URL,
            "Twiml and Url are mutually exclusive",
        ));
    }
    let method = params.method("Method")?;
    let source = match (params.url("Url", INVALID_URL)?, twiml(params)?) {
        (Some(url), _) => Some(Source::Url { url, method }),
        (None, Some(twiml)) => Some(Source::Twiml(twiml)),
        (None, None) => None,
    };
    params.url("FallbackUrl", INVALID_URL)?;
    params.method("FallbackMethod")?;
    let callback = params.url("StatusCallback", INVALID_STATUS_CALLBACK)?;
    let callback_method = params.method("StatusCallbackMethod")?;
    if let Some(limit) = params.get("TimeLimit")
        && limit.parse::<u64>().is_err()
    {
        return Err(invalid("TimeLimit", limit));
    }
    let sim = request.sim;
    let mut state = sim.lock();
    owned(&state, request, sid)?;
    let call = state
        .call_mut(sid)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    if let Some(url) = callback {
        let events = call
            .hook
            .as_ref()
            .map(|h| h.events.clone())
            .unwrap_or_else(|| vec!["completed".to_owned()]);
        call.hook = Some(StatusHook {
            url,
            method: callback_method,
            events,
        });
    }
    let current = call.status;
    match (status.as_deref(), source) {
        (Some("completed"), _) => {
            let end = if current == CallStatus::InProgress {
                CallStatus::Completed
            } else {
                CallStatus::Canceled
            };
            engine::end_call(sim, &mut state, sid, end);
        }
        (Some(_canceled), _) => {
            if matches!(
                current,
                CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing
            ) {
                engine::end_call(sim, &mut state, sid, CallStatus::Canceled);
            }
        }
        (None, Some(source)) => {
            if engine::redirect(sim, &mut state, sid, source) == Redirect::Over {
                return Err(ApiError::bad_request(
                    NOT_IN_PROGRESS,
                    "Call is not in-progress. Cannot redirect.",
                ));
            }
        }
        (None, None) => {}
    }
    let call = state
        .call(sid)
        .map(render::call)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    Ok(Reply::Json(StatusCode::OK, call))
}
