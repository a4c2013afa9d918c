//! Twilio's REST error JSON (`{code, message, more_info, status}`) and what it means for us.

use serde::Deserialize;

/// An error answer of Twilio's REST API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TwilioError {
    /// Twilio's error code (21211 = invalid `To`, 20003 = authentication, ...).
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub more_info: Option<String>,
    /// The HTTP status Twilio answered.
    #[serde(default)]
    pub status: u16,
}

/// Whose fault a Twilio error is, and so what we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The caller sent something Twilio refuses (a number, a parameter): our 4xx.
    Caller,
    /// Our credentials or account: 502 with a code.
    Account,
    /// Twilio is rate limiting: 429 with `Retry-After`.
    RateLimited,
    /// Twilio failed: 502 (or 503 when it did not answer at all).
    Twilio,
}

impl TwilioError {
    /// Parses an error body; a body that is not Twilio's JSON keeps only the status.
    pub fn parse(status: u16, body: &str) -> Self {
        serde_json::from_str::<TwilioError>(body)
            .map(|mut e| {
                if e.status == 0 {
                    e.status = status;
                }
                e
            })
            .unwrap_or(TwilioError {
                code: None,
                message: body.chars().take(200).collect(),
                more_info: None,
                status,
            })
    }

    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match (self.status, self.code) {
            (401 | 403, _) | (_, Some(20003 | 20005 | 20006)) => Blame::Account,
            (429, _) | (_, Some(20429)) => Blame::RateLimited,
            (400 | 404 | 409 | 422, _) => Blame::Caller,
            _ => Blame::Twilio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_blamed_by_status_and_code() {
        let bad_to = TwilioError::parse(
            400,
            r#"{"code": 21211, "message": "The 'To' number +1234567890 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        );
        assert_eq!(bad_to.code, Some(21211));
        assert_eq!(bad_to.blame(), Blame::Caller);
        assert_eq!(
            TwilioError::parse(
                401,
                r#"{"code": 20003, "message": "Authenticate", "status": 401}"#
            )
            .blame(),
            Blame::Account
        );
        assert_eq!(TwilioError::parse(429, "").blame(), Blame::RateLimited);
        let gateway = TwilioError::parse(502, "<html>Bad Gateway</html>");
        assert_eq!((gateway.status, gateway.blame()), (502, Blame::Twilio));
    }
}
