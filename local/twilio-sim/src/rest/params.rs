//! Request parameters as Twilio reads them: a form body (only with
//! `Content-Type: application/x-www-form-urlencoded`; any other body, JSON included, carries
//! no parameters) or the query string of a GET. Repeated keys are kept, so arrays such as
//! `StatusCallbackEvent=initiated&StatusCallbackEvent=ringing` read as lists.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use crate::errors::{ApiError, INVALID_PARAMETER};
use crate::twiml::HttpMethod;
use crate::util;

/// Decoded parameters, repeated names kept in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The form body; empty unless the body is form-encoded.
    pub(crate) fn from_body(headers: &HeaderMap, body: &[u8]) -> Self {
        let form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Self::default();
        }
        Self {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The query string.
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        Self {
            pairs: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        }
    }

    /// The first non-empty value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Whether `name` was sent at all, even empty (an empty value clears a setting).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// A URL setting of an update: `None` when not sent, `Some(None)` when sent empty (it
    /// clears the setting), `Some(Some(url))` for an absolute http(s) URL; `code` otherwise.
    pub(crate) fn url_setting(
        &self,
        name: &str,
        code: u32,
    ) -> Result<Option<Option<String>>, ApiError> {
        if !self.has(name) {
            return Ok(None);
        }
        self.url(name, code).map(Some)
    }

    /// `GET` or `POST` when sent, 400 otherwise.
    pub(crate) fn method_setting(&self, name: &str) -> Result<Option<HttpMethod>, ApiError> {
        self.get(name)
            .map(|v| HttpMethod::parse(v).ok_or_else(|| invalid(name, v)))
            .transpose()
    }

    /// A boolean (`true`/`false`), 400 otherwise.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| util::parse_bool(v).ok_or_else(|| invalid(name, v)))
            .transpose()
    }

    /// An integer, 400 otherwise.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| invalid(name, v)))
            .transpose()
    }

    /// `GET` or `POST` (default `POST`), 400 otherwise.
    pub(crate) fn method(&self, name: &str) -> Result<HttpMethod, ApiError> {
        match self.get(name) {
            None => Ok(HttpMethod::Post),
            Some(v) => HttpMethod::parse(v).ok_or_else(|| invalid(name, v)),
        }
    }

    /// An absolute http(s) URL; `code` (21205, 21609, ...) otherwise.
    pub(crate) fn url(&self, name: &str, code: u32) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if util::is_http_url(v) => Ok(Some(v.to_owned())),
            Some(v) => Err(ApiError::bad_request(
                code,
                format!("{name} is not a valid URL: {v}"),
            )),
        }
    }

    /// One of `allowed`, 400 otherwise.
    pub(crate) fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(v) => Err(ApiError::bad_request(
                INVALID_PARAMETER,
                format!("{name} '{v}' is not one of {}", allowed.join(", ")),
            )),
        }
    }

    /// An event list: repeated keys, each value possibly holding several events separated
    /// by spaces; every event must be in `allowed`. `None` when absent.
    pub(crate) fn events(
        &self,
        name: &str,
        allowed: &[&str],
    ) -> Result<Option<Vec<String>>, ApiError> {
        let mut events: Vec<String> = Vec::new();
        let mut present = false;
        for (_, value) in self.pairs.iter().filter(|(k, _)| k == name) {
            present = true;
            for event in value.split([' ', ',']).filter(|e| !e.is_empty()) {
                if !allowed.contains(&event) {
                    return Err(ApiError::bad_request(
                        INVALID_PARAMETER,
                        format!("{name} '{event}' is not one of {}", allowed.join(", ")),
                    ));
                }
                if !events.iter().any(|e| e == event) {
                    events.push(event.to_owned());
                }
            }
        }
        Ok(present.then_some(events).filter(|e| !e.is_empty()))
    }
}

/// 400 20001 for a malformed value.
pub(crate) fn invalid(name: &str, value: &str) -> ApiError {
    ApiError::bad_request(INVALID_PARAMETER, format!("Invalid {name}: {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn form(body: &str) -> Params {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        Params::from_body(&headers, body.as_bytes())
    }

    #[test]
    fn forms_keep_repeated_keys_and_refuse_bad_values() {
        let params = form(
            "To=%2B14155550123&StatusCallbackEvent=initiated&StatusCallbackEvent=ringing+answered&Timeout=abc&Record=maybe",
        );
        assert_eq!(params.get("To"), Some("+14155550123"));
        assert_eq!(
            params
                .events(
                    "StatusCallbackEvent",
                    &["initiated", "ringing", "answered", "completed"]
                )
                .expect("valid"),
            Some(vec![
                "initiated".into(),
                "ringing".into(),
                "answered".into()
            ])
        );
        assert_eq!(params.int("Timeout").map_err(|e| e.status), Err(400));
        assert_eq!(params.bool("Record").map_err(|e| e.status), Err(400));
        assert!(
            params
                .events("StatusCallbackEvent", &["completed"])
                .is_err()
        );
        let json = Params::from_body(&HeaderMap::new(), br#"{"To":"+14155550123"}"#);
        assert_eq!(json.get("To"), None);
    }
}
