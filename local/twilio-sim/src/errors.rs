//! Twilio's REST error JSON: `{"code","message","more_info","status"}`, with the HTTP status
//! equal to `status` (FACTS.md, "Errors").

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `20003`: credentials missing or wrong (401).
pub(crate) const AUTHENTICATE: u32 = 20003;
/// `20404`: no such resource (404).
pub(crate) const NOT_FOUND: u32 = 20404;
/// `20004`: the resource exists but not with this HTTP method (405).
pub(crate) const METHOD_NOT_ALLOWED: u32 = 20004;
/// `20001`: a parameter is malformed or out of its enum; the simulator's generic 400 code.
pub(crate) const INVALID_PARAMETER: u32 = 20001;
/// `21201`: no `To`.
pub(crate) const MISSING_TO: u32 = 21201;
/// `21205`: `Url` missing or not a URL (also used when more than one of Url/Twiml/ApplicationSid).
pub(crate) const INVALID_URL: u32 = 21205;
/// `21211`: `To` is not a number, `client:` or `sip:` address.
pub(crate) const INVALID_TO: u32 = 21211;
/// `21212`: `From` is not a valid caller ID.
pub(crate) const INVALID_FROM: u32 = 21212;
/// `21213`: no `From`.
pub(crate) const MISSING_FROM: u32 = 21213;
/// `21218`: `ApplicationSid` malformed or unknown (the simulator has no applications).
pub(crate) const INVALID_APPLICATION: u32 = 21218;
/// `21220`: the call is over, so it cannot be redirected.
pub(crate) const NOT_IN_PROGRESS: u32 = 21220;
/// `21210`: an outbound call's `From` is not a number of the account (bought or verified).
pub(crate) const CALLER_ID_NOT_VERIFIED: u32 = 21210;
/// `21421`: the `PhoneNumber` to buy is not a valid (E.164) number.
pub(crate) const INVALID_PHONE_NUMBER: u32 = 21421;
/// `21422`: the `PhoneNumber` to buy is not available (not in the pool, or held).
pub(crate) const NUMBER_NOT_AVAILABLE: u32 = 21422;
/// `21451`: `AreaCode` is not a North American area code (or toll-free prefix).
pub(crate) const INVALID_AREA_CODE: u32 = 21451;
/// `21452`: no number left in the `AreaCode` to buy.
pub(crate) const NO_NUMBERS_IN_AREA_CODE: u32 = 21452;
/// `21502`: "Invalid callback url": a URL setting of an IncomingPhoneNumber.
pub(crate) const INVALID_CALLBACK_URL: u32 = 21502;
/// `21609`: `StatusCallback` is not a URL.
pub(crate) const INVALID_STATUS_CALLBACK: u32 = 21609;

/// One Twilio REST error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A 400 with `code`.
    pub(crate) fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 401 20003 "Authenticate", as Twilio answers any credential problem.
    pub(crate) fn authenticate() -> Self {
        Self::new(401, AUTHENTICATE, "Authenticate")
    }

    /// 404 20404 for `path`.
    pub(crate) fn not_found(path: &str) -> Self {
        Self::new(
            404,
            NOT_FOUND,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 405 20004.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(405, METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// The JSON body Twilio sends.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}
