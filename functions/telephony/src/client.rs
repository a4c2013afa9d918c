//! Twilio's REST API (2010-04-01) as we use it: create, fetch and update calls, update
//! conference participants. Form-encoded bodies, Basic auth, `.json` paths; requests Twilio
//! would refuse are refused here before they leave.

use std::time::Duration;

use serde::Deserialize;

use crate::callback::is_sid;
use crate::twilio_error::TwilioError;

/// Twilio credentials and where its API is (`TWILIO_API_BASE`, the simulator locally).
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
    /// The account whose resources the paths name (`/Accounts/{account_sid}/…`).
    account_sid: String,
    /// The account that authenticates (the parent acting on a subaccount, or the same).
    auth_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

/// A call as Twilio returns it (the fields we read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TwilioCall {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds, as a string.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub parent_call_sid: Option<String>,
}

/// An account as Twilio returns it (the fields we read). `auth_token` is a secret: it is
/// sealed before it is stored and never logged (this type's `Debug` hides it).
#[derive(Clone, PartialEq, Deserialize)]
pub struct TwilioAccount {
    pub sid: String,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl std::fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("sid", &self.sid)
            .field("friendly_name", &self.friendly_name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A number an account owns (`IncomingPhoneNumber`, the fields we read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub capabilities: Option<serde_json::Value>,
    #[serde(default)]
    pub voice_url: Option<String>,
}

/// `POST IncomingPhoneNumbers.json`: the number and where Twilio sends its calls.
#[derive(Debug, Clone, PartialEq)]
pub struct BuyNumber {
    pub phone_number: String,
    pub friendly_name: Option<String>,
    pub voice_url: String,
    pub status_callback: String,
}

impl BuyNumber {
    fn form(&self) -> Result<Vec<(String, String)>, TwilioFailure> {
        if !is_uri(&self.voice_url) || !is_uri(&self.status_callback) {
            return Err(TwilioFailure::Invalid {
                code: Some(21502),
                message: "VoiceUrl and StatusCallback must be absolute http(s) URLs".into(),
            });
        }
        let mut form = vec![
            ("PhoneNumber".to_owned(), self.phone_number.clone()),
            ("VoiceUrl".to_owned(), self.voice_url.clone()),
            ("VoiceMethod".to_owned(), "POST".to_owned()),
            ("StatusCallback".to_owned(), self.status_callback.clone()),
            ("StatusCallbackMethod".to_owned(), "POST".to_owned()),
        ];
        if let Some(name) = &self.friendly_name {
            form.push(("FriendlyName".to_owned(), name.chars().take(64).collect()));
        }
        Ok(form)
    }
}

/// What the call runs when answered: exactly one, as Twilio requires.
#[derive(Debug, Clone, PartialEq)]
pub enum Instructions {
    /// A TwiML document inline (`Twiml`, at most 4,000 characters).
    Twiml(String),
    /// A URL Twilio fetches TwiML from (`Url`).
    Url(String),
}

/// `POST /Calls.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    pub to: String,
    pub from: String,
    pub instructions: Instructions,
    pub status_callback: Option<String>,
    /// Ring time in seconds (Twilio's default 60).
    pub timeout_seconds: Option<u32>,
    /// The longest the call may last once answered, seconds (`TimeLimit`).
    pub time_limit_seconds: Option<u32>,
}

/// How a request to Twilio failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TwilioFailure {
    /// Refused here: Twilio would refuse it too (its code when it has one).
    #[error("{message}")]
    Invalid { code: Option<u32>, message: String },
    /// Twilio answered with an error.
    #[error("Twilio answered {}: {}", .0.status, .0.message)]
    Twilio(TwilioError),
    /// Twilio did not answer (connect, timeout).
    #[error("Twilio is unreachable: {0}")]
    Unreachable(String),
}

/// Twilio's `Twiml` limit.
pub const MAX_TWIML_CHARS: usize = 4000;

fn is_uri(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

impl NewCall {
    /// The form Twilio takes, after the checks Twilio would make (To 21201, Url 21205, ...).
    pub fn form(&self) -> Result<Vec<(String, String)>, TwilioFailure> {
        let invalid = |code: Option<u32>, message: &str| TwilioFailure::Invalid {
            code,
            message: message.to_owned(),
        };
        if self.to.trim().is_empty() {
            return Err(invalid(Some(21201), "No 'To' number is specified"));
        }
        if self.from.trim().is_empty() {
            return Err(invalid(Some(21213), "No 'From' number is specified"));
        }
        let mut form = vec![
            ("To".to_owned(), self.to.clone()),
            ("From".to_owned(), self.from.clone()),
        ];
        match &self.instructions {
            Instructions::Twiml(twiml) if twiml.chars().count() > MAX_TWIML_CHARS => {
                return Err(invalid(None, "the TwiML is longer than 4,000 characters"));
            }
            Instructions::Twiml(twiml) => form.push(("Twiml".to_owned(), twiml.clone())),
            Instructions::Url(url) if !is_uri(url) => {
                return Err(invalid(Some(21205), "Url is not a valid URL"));
            }
            Instructions::Url(url) => form.push(("Url".to_owned(), url.clone())),
        }
        if let Some(callback) = &self.status_callback {
            if !is_uri(callback) {
                return Err(invalid(Some(21609), "StatusCallback is not a valid URL"));
            }
            form.push(("StatusCallback".to_owned(), callback.clone()));
            form.push(("StatusCallbackMethod".to_owned(), "POST".to_owned()));
            // Repeated keys, as Twilio's own clients send the array.
            for event in ["initiated", "ringing", "answered", "completed"] {
                form.push(("StatusCallbackEvent".to_owned(), event.to_owned()));
            }
        }
        if let Some(timeout) = self.timeout_seconds {
            form.push(("Timeout".to_owned(), timeout.clamp(5, 600).to_string()));
        }
        if let Some(limit) = self.time_limit_seconds {
            form.push(("TimeLimit".to_owned(), limit.clamp(1, 86_400).to_string()));
        }
        Ok(form)
    }
}

/// A change to a live call: redirect it, or end it.
#[derive(Debug, Clone, PartialEq)]
pub enum CallUpdate {
    /// New instructions (a cold transfer is a `<Dial>` here).
    Redirect(Instructions),
    /// `Status=completed`: hang up a call in progress.
    Complete,
    /// `Status=canceled`: drop a call still queued or ringing.
    Cancel,
}

impl CallUpdate {
    fn form(&self) -> Vec<(String, String)> {
        match self {
            CallUpdate::Redirect(Instructions::Twiml(t)) => vec![("Twiml".into(), t.clone())],
            CallUpdate::Redirect(Instructions::Url(u)) => vec![("Url".into(), u.clone())],
            CallUpdate::Complete => vec![("Status".into(), "completed".into())],
            CallUpdate::Cancel => vec![("Status".into(), "canceled".into())],
        }
    }
}

/// A change to a conference participant.
#[derive(Debug, Clone, PartialEq)]
pub enum ParticipantUpdate {
    /// `Muted`.
    Mute(bool),
    /// `Hold`; while held the participant hears `hold_url`.
    Hold { hold: bool, hold_url: String },
}

impl ParticipantUpdate {
    fn form(&self) -> Vec<(String, String)> {
        match self {
            ParticipantUpdate::Mute(muted) => vec![("Muted".into(), muted.to_string())],
            ParticipantUpdate::Hold {
                hold: true,
                hold_url,
            } => vec![
                ("Hold".into(), "true".into()),
                ("HoldUrl".into(), hold_url.clone()),
                ("HoldMethod".into(), "GET".into()),
            ],
            ParticipantUpdate::Hold { hold: false, .. } => vec![("Hold".into(), "false".into())],
        }
    }
}

impl TwilioClient {
    /// A client for `account_sid` at `base_url` (`https://api.twilio.com`).
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        timeout: Duration,
    ) -> Result<Self, TwilioFailure> {
        if !is_sid("AC", account_sid) {
            return Err(TwilioFailure::Invalid {
                code: None,
                message: "TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| TwilioFailure::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        })
    }

    /// The same credentials acting on `account_sid`'s resources (a parent account acts on
    /// its subaccounts this way, as Twilio documents).
    pub fn for_account(&self, account_sid: &str) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            ..self.clone()
        }
    }

    /// The account whose resources this client names.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Creates a subaccount of the authenticating account (`POST /Accounts.json`).
    pub async fn create_subaccount(
        &self,
        friendly_name: &str,
    ) -> Result<TwilioAccount, TwilioFailure> {
        self.send(
            self.http
                .post(format!("{}/2010-04-01/Accounts.json", self.base_url))
                .form(&[("FriendlyName", friendly_name)]),
        )
        .await
    }

    /// The subaccounts called `friendly_name` (`GET /Accounts.json?FriendlyName=`).
    pub async fn find_subaccounts(
        &self,
        friendly_name: &str,
    ) -> Result<Vec<TwilioAccount>, TwilioFailure> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            accounts: Vec<TwilioAccount>,
        }
        let page: Page = self
            .send(
                self.http
                    .get(format!("{}/2010-04-01/Accounts.json", self.base_url))
                    .query(&[("FriendlyName", friendly_name), ("Status", "active")]),
            )
            .await?;
        Ok(page.accounts)
    }

    /// Numbers for sale in `country` (ISO 3166 alpha-2) of `kind` (`Local`, `TollFree`).
    pub async fn available_numbers(
        &self,
        country: &str,
        kind: &str,
        area_code: Option<&str>,
        contains: Option<&str>,
        page_size: u32,
    ) -> Result<Vec<serde_json::Value>, TwilioFailure> {
        let mut query = vec![("PageSize", page_size.to_string())];
        if let Some(a) = area_code {
            query.push(("AreaCode", a.to_owned()));
        }
        if let Some(c) = contains {
            query.push(("Contains", c.to_owned()));
        }
        let page: serde_json::Value = self
            .send(
                self.http
                    .get(self.url(&format!("/AvailablePhoneNumbers/{country}/{kind}.json")))
                    .query(&query),
            )
            .await?;
        Ok(page["available_phone_numbers"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Buys `number` for this account with our webhooks (`POST IncomingPhoneNumbers.json`).
    pub async fn buy_number(&self, number: &BuyNumber) -> Result<IncomingNumber, TwilioFailure> {
        let form = number.form()?;
        self.send(
            self.http
                .post(self.url("/IncomingPhoneNumbers.json"))
                .form(&form),
        )
        .await
    }

    /// This account's numbers equal to `phone_number` (`GET IncomingPhoneNumbers.json`).
    pub async fn find_numbers(
        &self,
        phone_number: &str,
    ) -> Result<Vec<IncomingNumber>, TwilioFailure> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            incoming_phone_numbers: Vec<IncomingNumber>,
        }
        let page: Page = self
            .send(
                self.http
                    .get(self.url("/IncomingPhoneNumbers.json"))
                    .query(&[("PhoneNumber", phone_number)]),
            )
            .await?;
        Ok(page.incoming_phone_numbers)
    }

    /// Releases number `sid` (`DELETE IncomingPhoneNumbers/{PN}.json`; gone already is done).
    pub async fn release_number(&self, sid: &str) -> Result<(), TwilioFailure> {
        if !is_sid("PN", sid) {
            return Err(TwilioFailure::Invalid {
                code: Some(20404),
                message: "not a Twilio number SID (PN followed by 32 hex digits)".into(),
            });
        }
        let response = self
            .http
            .delete(self.url(&format!("/IncomingPhoneNumbers/{sid}.json")))
            .basic_auth(&self.auth_sid, Some(&self.auth_token))
            .send()
            .await
            .map_err(|e| TwilioFailure::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) || status == 404 {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(TwilioFailure::Twilio(TwilioError::parse(status, &body)))
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}{path}",
            self.base_url, self.account_sid
        )
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, TwilioFailure> {
        let response = request
            .basic_auth(&self.auth_sid, Some(&self.auth_token))
            .send()
            .await
            .map_err(|e| TwilioFailure::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| TwilioFailure::Unreachable(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(TwilioFailure::Twilio(TwilioError::parse(status, &body)));
        }
        serde_json::from_str(&body).map_err(|e| {
            TwilioFailure::Twilio(TwilioError {
                code: None,
                message: format!("unreadable answer: {e}"),
                more_info: None,
                status: 502,
            })
        })
    }

    /// Places a call.
    pub async fn create_call(&self, call: &NewCall) -> Result<TwilioCall, TwilioFailure> {
        let form = call.form()?;
        self.send(self.http.post(self.url("/Calls.json")).form(&form))
            .await
    }

    /// Fetches a call's current state.
    pub async fn fetch_call(&self, call_sid: &str) -> Result<TwilioCall, TwilioFailure> {
        self.check_call_sid(call_sid)?;
        self.send(self.http.get(self.url(&format!("/Calls/{call_sid}.json"))))
            .await
    }

    /// Redirects, completes or cancels a live call.
    pub async fn update_call(
        &self,
        call_sid: &str,
        update: &CallUpdate,
    ) -> Result<TwilioCall, TwilioFailure> {
        self.check_call_sid(call_sid)?;
        self.send(
            self.http
                .post(self.url(&format!("/Calls/{call_sid}.json")))
                .form(&update.form()),
        )
        .await
    }

    /// Mutes / holds a conference participant (`Muted`, `Hold` + `HoldUrl` + `HoldMethod`).
    pub async fn update_participant(
        &self,
        conference_sid: &str,
        call_sid: &str,
        change: &ParticipantUpdate,
    ) -> Result<serde_json::Value, TwilioFailure> {
        self.check_call_sid(call_sid)?;
        if !is_sid("CF", conference_sid) {
            return Err(TwilioFailure::Invalid {
                code: Some(20404),
                message: "not a Twilio conference SID (CF followed by 32 hex digits)".into(),
            });
        }
        self.send(
            self.http
                .post(self.url(&format!(
                    "/Conferences/{conference_sid}/Participants/{call_sid}.json"
                )))
                .form(&change.form()),
        )
        .await
    }

    /// The SIDs of the conferences called `friendly_name` that have not ended, newest first
    /// (`GET Conferences.json?FriendlyName=`, which Twilio lists newest first).
    pub async fn live_conferences(
        &self,
        friendly_name: &str,
    ) -> Result<Vec<String>, TwilioFailure> {
        let page: serde_json::Value = self
            .send(
                self.http
                    .get(self.url("/Conferences.json"))
                    .query(&[("FriendlyName", friendly_name), ("PageSize", "20")]),
            )
            .await?;
        Ok(page["conferences"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|c| c["status"].as_str() != Some("completed"))
                    .filter_map(|c| c["sid"].as_str())
                    .filter(|sid| is_sid("CF", sid))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn check_call_sid(&self, call_sid: &str) -> Result<(), TwilioFailure> {
        if is_sid("CA", call_sid) {
            Ok(())
        } else {
            Err(TwilioFailure::Invalid {
                code: Some(20404),
                message: "not a Twilio call SID (CA followed by 32 hex digits)".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> NewCall {
        NewCall {
            to: "+14155550100".into(),
            from: "+14155550199".into(),
            instructions: Instructions::Twiml("<Response><Say>Hi</Say></Response>".into()),
            status_callback: Some("https://hooks.example.com/twilio/status".into()),
            timeout_seconds: Some(30),
            time_limit_seconds: Some(600),
        }
    }

    #[test]
    fn the_create_form_is_what_twilio_takes() {
        let form = call().form().expect("valid");
        let events: Vec<&str> = form
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
        assert!(
            form.iter()
                .any(|(k, v)| k == "Twiml" && v.contains("<Say>"))
        );
        assert!(!form.iter().any(|(k, _)| k == "Url"));
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        assert!(encoded.contains("StatusCallbackEvent=initiated&StatusCallbackEvent=ringing"));
        assert!(encoded.starts_with("To=%2B14155550100&From=%2B14155550199"));
    }

    #[test]
    fn what_twilio_refuses_never_leaves() {
        let mut missing_to = call();
        missing_to.to = " ".into();
        assert!(matches!(
            missing_to.form(),
            Err(TwilioFailure::Invalid {
                code: Some(21201),
                ..
            })
        ));
        let mut bad_url = call();
        bad_url.instructions = Instructions::Url("notaurl".into());
        assert!(matches!(
            bad_url.form(),
            Err(TwilioFailure::Invalid {
                code: Some(21205),
                ..
            })
        ));
        let mut long = call();
        long.instructions = Instructions::Twiml("x".repeat(4001));
        assert!(long.form().is_err());
        assert!(
            TwilioClient::new(
                "https://api.twilio.com",
                "ACxxx",
                "t",
                Duration::from_secs(5)
            )
            .is_err()
        );
        let client = TwilioClient::new(
            "https://api.twilio.com",
            "AC0123456789abcdef0123456789abcdef",
            "t",
            Duration::from_secs(5),
        )
        .expect("client");
        assert!(client.check_call_sid("CA123").is_err());
        assert_eq!(
            client.url("/Calls.json"),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json"
        );
    }
}
