//! A local stand-in for Twilio's Voice REST API: our backend (and the frontend) place and
//! watch calls with no Twilio account. Production code reaches it only through its base
//! URL (`TWILIO_API_BASE`); the contract it follows is `shared/contracts/FACTS.md` and
//! Twilio's OpenAPI spec (`shared/contracts/twilio/twilio_api_v2010.json`).
//!
//! # REST API (`/2010-04-01/Accounts/{AccountSid}/…`, `.json` paths, JSON answers)
//! - `POST Calls.json` (201, `queued`), `GET Calls.json` (`To`, `From`, `ParentCallSid`,
//!   `Status` filters, newest first, one page), `GET|POST Calls/{CA}.json`.
//! - `GET Conferences.json?FriendlyName=&Status=`, `GET|POST Conferences/{CF}.json`.
//! - `GET|POST Conferences/{CF}/Participants.json`,
//!   `GET|POST|DELETE Conferences/{CF}/Participants/{CA}.json`. The participant may also be
//!   named by its `Label`; for `POST …/Participants.json` the conference may be a friendly
//!   name (created if needed), as Twilio allows.
//! - Resources have the spec's fields: calls (`sid`, `account_sid`, `to`, `to_formatted`,
//!   `from`, `from_formatted`, `status`, `direction`, `parent_call_sid`, `start_time`,
//!   `end_time`, `duration` (string), `price`, `price_unit`, `answered_by`, `api_version`,
//!   `caller_name`, `date_created`, `date_updated`, `queue_time`, `uri`,
//!   `subresource_uris`, …), conferences and participants likewise. Dates are RFC 2822.
//!
//! # Checks, in order (each answers `{"code","message","more_info","status"}`)
//! 1. Every request under `/2010-04-01` counts in [`Simulator::rest_requests`]; a pending
//!    [`Simulator::fail_next`] answers first.
//! 2. Basic auth must be `account_sid:auth_token` → else 401 **20003** "Authenticate".
//! 3. The path's AccountSid must match `^AC[0-9a-fA-F]{32}$` → else 404 **20404**; and be
//!    the authenticated account → else 401 **20003**.
//! 4. Path SIDs must be `CA…`/`CF…` + 32 hex, and exist → else 404 **20404**; paths
//!    without `.json` or unknown → 404 **20404**; a wrong method → 405 **20004**.
//! 5. Bodies are read only when `Content-Type: application/x-www-form-urlencoded`. Any
//!    other body (JSON included) carries no parameters, as Twilio sees it: a JSON create is
//!    400 **21201** (no `To`).
//! 6. Create: no `To` 400 **21201** "No 'To' number is specified"; no `From` **21213**; `To`
//!    not E.164 (`^\+[1-9]\d{1,14}$`), `client:<id>` or `sip:…` **21211**; `From` not E.164
//!    (a `client:` From is allowed when To is a client/SIP address) **21212**; none of
//!    `Url`/`Twiml`/`ApplicationSid` **21205** "Url parameter is required."; more than one
//!    400 **21205**; `Url`/`FallbackUrl` not an absolute http(s) URL **21205**;
//!    `StatusCallback` likewise **21609**; `ApplicationSid` (the simulator has no
//!    applications) **21218**. Then 400 **20001** (our generic invalid-parameter code) for:
//!    `StatusCallbackEvent` outside initiated/ringing/answered/completed, `Timeout`/`TimeLimit`
//!    not integers, `Twiml` over 4,000 characters, `Record` not a boolean, `*Method` not
//!    GET/POST, `MachineDetection` not Enable/DetectMessageEnd, `Status` outside its enum.
//!    `StatusCallbackEvent` is read from repeated keys, and values may also hold several
//!    events separated by spaces.
//!    `Timeout` is clamped to 1–600 (Participants API: 5–600).
//! 7. Update: `Url` and `Twiml` together 400 **21205**; a redirect of a call that is over
//!    400 **21220** "Call is not in-progress. Cannot redirect."; `Status` wins over
//!    `Url`/`Twiml` in the same request; `StatusCallback` replaces the URL (the subscribed
//!    events stay).
//!
//! # Call lifecycle (simulated seconds; one lasts [`SimOptions::second`])
//! - Outbound (`outbound-api`): `queued` → 0.1 s → `initiated` (the REST status stays
//!   `queued`, which is all the spec's enum has) → 0.2 s → `ringing` → the outcome by the
//!   dialled number's last four digits: **0002** busy after `ring_seconds`, **0003**
//!   no-answer after min(`Timeout`, 2 × `ring_seconds`), **0004** failed after
//!   `ring_seconds`; anything else (and every `client:`/`sip:` address) is answered
//!   (`in-progress`) after `ring_seconds` — or is no-answer at `Timeout` when that is shorter.
//! - On answer the TwiML runs: inline `Twiml`, else `Url` fetched with a signed request
//!   (`Method`, default POST). An update with `Url`/`Twiml` before the answer replaces what
//!   will run.
//! - Final statuses carry `end_time`, `duration` (answered simulated seconds, rounded; "0"
//!   when never answered) and `price`: outbound legs $0.014/min, inbound $0.0085/min, per
//!   started minute, as a negative string with 5 decimals (`"-0.02800"`), `null` when the
//!   duration is 0. `start_time` is the answer time (the end time for unanswered calls).
//!   Dates are wall-clock; durations are simulated, so with a scaled `second` they differ.
//! - Update `Status=completed` hangs up a live call (`completed`); on a call not answered
//!   yet it ends it as `canceled`. `Status=canceled` ends a queued/ringing call as
//!   `canceled` and is ignored once answered. [`Simulator::hangup`]: the remote party hangs
//!   up — a live call completes, a queued/ringing one ends `no-answer`.
//!
//! # Webhooks (signed: `X-Twilio-Signature` = `telephony::signature::sign(auth_token, url,
//! params)` over the URL exactly as configured, query included; for GET the parameters are
//! appended to the query and the whole URL is signed with none)
//! - Status callbacks (kind `status`) go to `StatusCallback` for the events in
//!   `StatusCallbackEvent` (default `completed` only): initiated → `initiated`, ringing →
//!   `ringing`, answered → `in-progress`, completed → the final status (`completed`, `busy`,
//!   `no-answer`, `failed`, `canceled`). Fields: `AccountSid, CallSid, From, To, Caller,
//!   Called, CallStatus, Direction, ApiVersion=2010-04-01, CallbackSource=call-progress-events,
//!   SequenceNumber` (0, 1, 2… per call), `Timestamp` (RFC 2822), `ParentCallSid` on dialled
//!   legs, and on the final one `CallDuration` (seconds) and `Duration` (minutes, rounded
//!   up). They leave in order, one at a time per call; each waits up to 5 s; errors and
//!   non-2xx answers are logged, never retried.
//! - TwiML requests (kind `voice`: the call's `Url`, `<Redirect>`, update `Url`, a
//!   `<Number url>` whisper) carry `AccountSid, CallSid, From, To, Caller, Called,
//!   CallStatus, Direction, ApiVersion` (+ `ParentCallSid`). A `<Dial action>` request (kind
//!   `action`) adds `DialCallStatus`, `DialCallSid` (legs only) and `DialCallDuration`.
//! - A TwiML answer that is not 2xx, not XML or not rooted at `<Response>` is Twilio's
//!   "application error": the call log gets `Error:<reason>` and the call completes.
//!
//! # TwiML (parsed with roxmltree; relative URLs resolve against the document's URL)
//! - `<Say>`: words / 2.5 s (at least 1 s). `<Play>`: the URL is fetched (a failure logs
//!   `Error:play <status>` and the call goes on); its length comes from a WAV header (data
//!   bytes / byte rate), a constant-bitrate MP3's first frame, raw μ-law at 8 kB/s, else
//!   1 s. `loop` is honoured up to 3 (0 means 3) on both. `<Pause length>` (default 1).
//!   `<Hangup/>` completes (answering an inbound call first, as Twilio bills it);
//!   `<Reject/>` on an inbound call before answer ends it `busy` (after answer it hangs up).
//!   `<Redirect method>` (POST default, GET supported) replaces the document. `<Gather>`
//!   runs its Say/Play/Pause then waits its `timeout` (default 5): no input is simulated.
//!   `<Enqueue>` and `<Connect>` hold the call until it is redirected or hung up. Other
//!   verbs are logged as `Unsupported:<Name>` and skipped.
//! - `<Dial>` (`action`, `method`, `timeout` default 30, `callerId`; the first noun only):
//!   `<Number>`/`<Client>`/`<Sip>`/bare text place a child leg (`outbound-dial`,
//!   `parent_call_sid`, From = `callerId` or the parent's From) that rings out by the same
//!   digit rule with the Dial's `timeout` (a `<Number>` that is not E.164 fails at once),
//!   with its own status callbacks (`statusCallback`,
//!   space-separated `statusCallbackEvent`, `statusCallbackMethod`). Answered, it runs its
//!   `url` whisper, then is bridged and hangs up after `talk_seconds` (or
//!   [`Simulator::hangup`]). When it ends, `action` (if set) is requested and its TwiML
//!   runs; else the parent continues after `<Dial>`. The parent hanging up ends the leg
//!   (`completed`, or `canceled` while it rings) and still requests `action` (its TwiML is
//!   ignored). Redirecting either end breaks the bridge.
//! - `<Conference>` (friendly name; `startConferenceOnEnter` default true,
//!   `endConferenceOnExit`, `muted`, `beep`, `waitUrl` recorded not fetched,
//!   `participantLabel`, `coach`, `statusCallback`, `statusCallbackEvent` from start end join
//!   leave mute hold — default `start end` —, `statusCallbackMethod`): the first join
//!   creates `CF…` (`init`); it is `in-progress` once a participant with
//!   startConferenceOnEnter joins. The conference's callback settings come from the first
//!   participant that brings some. Conference callbacks (kind `conference`): `AccountSid,
//!   ConferenceSid, FriendlyName, StatusCallbackEvent` (conference-start, conference-end,
//!   participant-join, -leave, -mute, -unmute, -hold, -unhold), `SequenceNumber` (per
//!   conference), `Timestamp`; participant events add `CallSid, Muted, Hold, Coaching,
//!   EndConferenceOnExit, StartConferenceOnEnter` (and `ParticipantLabel`);
//!   `participant-join` comes before `conference-start`; `conference-end` carries
//!   `ReasonConferenceEnded` and, when a call ended it, `CallSidEndingConference`.
//! - A participant stays until it hangs up, is redirected (it leaves, then runs the new
//!   TwiML), is removed (DELETE; its TwiML continues after `<Dial>`, via `action`), or the
//!   conference ends (likewise). The conference ends when a participant with
//!   endConferenceOnExit leaves (`participant-with-end-conference-on-exit-left`, or
//!   `…-kicked` when removed), on `Status=completed` (`conference-ended-via-api`), or when
//!   the last participant leaves (`last-participant-left` / `last-participant-kicked`).
//! - Participants API: `POST …/Participants.json` places an `outbound-api` call (`From`,
//!   `To`, `Timeout` 5–600, `StatusCallback*`) that joins with `Muted`,
//!   `StartConferenceOnEnter`, `EndConferenceOnExit`, `Beep`, `WaitUrl`, `Label`,
//!   `ConferenceStatusCallback*` once answered; until then it is listed with status
//!   `queued`/`ringing`. Updates take `Muted`, `Hold` (+`HoldUrl`, `HoldMethod`),
//!   `EndConferenceOnExit`, `Coaching`, `CallSidToCoach` (other documented fields are
//!   checked and ignored) and fire mute/hold events when the value changes.
//! - Who hangs up: a dialled leg `talk_seconds` after it is bridged (that ends the
//!   bridge); the remote party of an `outbound-api` call (Participants API calls included)
//!   `talk_seconds` after it joins a conference; inbound callers stay until
//!   [`Simulator::hangup`] or their TwiML ends.
//!
//! # Inbound calls
//! [`Simulator::inbound`] or `POST /__sim/inbound`: a new `CA…` (`inbound`, `ringing`);
//! the voice URL (the request's `url`, else [`SimOptions::voice_url`]) is requested with
//! `CallStatus=ringing`, and the call turns `in-progress` at its first verb other than
//! `<Reject>`. Status callbacks go to the status callback URL with all four events
//! (Twilio sends no `initiated` for inbound calls: ringing, in-progress, completed). No voice
//! URL → an error.
//!
//! # Simulator endpoints
//! `POST /__sim/inbound` `{from, to, url?}` → 201 `{call_sid}`; `GET /__sim/calls`;
//! `GET /__sim/calls/{CA}`; `POST /__sim/calls/{CA}/hangup`; `GET /__sim/conferences`;
//! `GET /__sim/callbacks`; `POST /__sim/fail` `{status, code, message, count?}` → 204;
//! `GET|POST /__sim/agent?seconds=N` → `<Response><Say>This is the local AI agent
//! stand-in.</Say><Pause length="N"/></Response>` (default 60, at most 3600).
//!
//! # Concurrency
//! State sits behind one `std::sync::Mutex`, never held across an `.await`. Each call runs
//! in its own tokio task, which re-reads its call after every wait and stops when it is
//! over, or switches documents when a redirect bumped its generation. Aborting the handle
//! [`start`] returns stops the server (call tasks stop with the runtime).

mod callbacks;
mod conference;
mod control;
mod engine;
mod errors;
mod media;
mod rest;
mod runner;
mod state;
mod twiml;
mod util;

use std::sync::Arc;
use std::time::Duration;

use state::{Direction, Shared, Source, StatusHook};

/// The account SID the simulator accepts by default.
pub const ACCOUNT_SID: &str = "ACc0ffee00000000000000000000000000";
/// The auth token the simulator accepts (and signs webhooks with) by default.
pub const AUTH_TOKEN: &str = "local-twilio-auth-token";

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The account the REST API accepts (Basic-auth user and path AccountSid).
    pub account_sid: String,
    /// The Basic-auth password, and the key webhooks are signed with.
    pub auth_token: String,
    /// Real duration of one simulated second (default 1 s; tests use ~20 ms).
    pub second: Duration,
    /// Simulated seconds a call rings before it is answered (default 2.0).
    pub ring_seconds: f64,
    /// Simulated seconds a party reached by `<Dial><Number>`/`<Client>` (or an
    /// `outbound-api` callee placed in a `<Dial><Conference>` bridge) stays before hanging
    /// up (default 30.0).
    pub talk_seconds: f64,
    /// Voice webhook for simulated inbound calls.
    pub voice_url: Option<String>,
    /// Status callback of simulated inbound calls (all four events, like our number config).
    pub status_callback_url: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            account_sid: ACCOUNT_SID.to_owned(),
            auth_token: AUTH_TOKEN.to_owned(),
            second: Duration::from_secs(1),
            ring_seconds: 2.0,
            talk_seconds: 30.0,
            voice_url: None,
            status_callback_url: None,
        }
    }
}

/// Starts the simulator on `127.0.0.1` and a free port. The handle is the server task:
/// aborting it stops the server.
pub async fn start(
    options: SimOptions,
) -> std::io::Result<(Simulator, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let base_url = format!("http://{address}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared::new(
        &options,
        base_url.clone(),
        http,
        tokio::runtime::Handle::current(),
    ));
    let router = control::routes()
        .fallback(rest::handle)
        .with_state(Arc::clone(&shared));
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "the Twilio simulator stopped");
        }
    });
    Ok((Simulator { base_url, shared }, handle))
}

/// A running simulator: its base URL and a handle to drive and inspect it. Clones share
/// the same state.
#[derive(Debug, Clone)]
pub struct Simulator {
    /// `http://127.0.0.1:<port>`: the Twilio API base URL to give our client.
    pub base_url: String,
    shared: Arc<Shared>,
}

/// A call as the simulator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallSnapshot {
    pub sid: String,
    pub parent_call_sid: Option<String>,
    /// `inbound`, `outbound-api` or `outbound-dial`.
    pub direction: String,
    pub from: String,
    pub to: String,
    /// Twilio's call status, as the REST API shows it.
    pub status: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub duration: Option<u64>,
    pub price: Option<String>,
    /// `CallStatus` values sent in status callbacks, in send order.
    pub events: Vec<String>,
    /// Executed TwiML verbs: `Say:Hello there`, `Play:http://…`, `Pause:2`,
    /// `Dial:+14155550123`, `Dial:client:agent_1`, `Conference:room-1`, `Redirect:http://…`,
    /// `Hangup`, `Reject`, `Gather`, `Error:<reason>`, `Unsupported:<Verb>`.
    pub verbs: Vec<String>,
    /// The conference's friendly name while the call is in one.
    pub conference: Option<String>,
    pub muted: bool,
    pub hold: bool,
}

/// A conference as the simulator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConferenceSnapshot {
    pub sid: String,
    pub friendly_name: String,
    /// `init`, `in-progress` or `completed`.
    pub status: String,
    /// CallSids currently in it.
    pub participants: Vec<String>,
}

/// One webhook request the simulator made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallbackRecord {
    /// The URL requested (for GET, with the parameters in its query).
    pub url: String,
    pub params: Vec<(String, String)>,
    /// The answer's status; `None` while pending or when there was no answer.
    pub response_status: Option<u16>,
    /// `status`, `voice`, `action` or `conference`.
    pub kind: String,
}

impl Simulator {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self {
            base_url: shared.base_url.clone(),
            shared,
        }
    }

    /// Sets the voice URL and status callback of simulated inbound calls.
    pub fn set_inbound_webhooks(&self, voice_url: &str, status_callback_url: Option<&str>) {
        let mut state = self.shared.lock();
        state.voice_url = Some(voice_url.to_owned());
        state.status_callback_url = status_callback_url.map(str::to_owned);
    }

    /// Simulates a call from `from` to our number `to`; returns its CallSid.
    pub async fn inbound(&self, from: &str, to: &str) -> Result<String, String> {
        self.start_inbound(from, to, None)
    }

    pub(crate) fn start_inbound(
        &self,
        from: &str,
        to: &str,
        url: Option<&str>,
    ) -> Result<String, String> {
        if !(util::is_e164(from) || util::is_client(from)) {
            return Err(format!(
                "from must be an E.164 number or client:<id>, not '{from}'"
            ));
        }
        if !util::is_e164(to) {
            return Err(format!("to must be our E.164 number, not '{to}'"));
        }
        let mut state = self.shared.lock();
        let voice = url
            .map(str::to_owned)
            .or_else(|| state.voice_url.clone())
            .ok_or(
                "no voice URL: set SimOptions::voice_url, call set_inbound_webhooks or pass url",
            )?;
        if !util::is_http_url(&voice) {
            return Err(format!("the voice URL '{voice}' is not an http(s) URL"));
        }
        let hook = state.status_callback_url.clone().map(|url| StatusHook {
            url,
            method: twiml::HttpMethod::Post,
            events: ["initiated", "ringing", "answered", "completed"]
                .map(str::to_owned)
                .to_vec(),
        });
        Ok(engine::create_call(
            &self.shared,
            &mut state,
            engine::NewCall {
                direction: Direction::Inbound,
                from: from.to_owned(),
                to: to.to_owned(),
                parent: None,
                source: Some(Source::Url {
                    url: voice,
                    method: twiml::HttpMethod::Post,
                }),
                whisper: None,
                hook,
                timeout: 60.0,
            },
        ))
    }

    /// The call `sid`, if the simulator knows it.
    pub fn call(&self, sid: &str) -> Option<CallSnapshot> {
        let state = self.shared.lock();
        state.call(sid).map(|c| state.snapshot(c))
    }

    /// Every call, in creation order.
    pub fn calls(&self) -> Vec<CallSnapshot> {
        let state = self.shared.lock();
        state.calls.iter().map(|c| state.snapshot(c)).collect()
    }

    /// Every conference, in creation order.
    pub fn conferences(&self) -> Vec<ConferenceSnapshot> {
        let state = self.shared.lock();
        state
            .conferences
            .iter()
            .map(state::State::conference_snapshot)
            .collect()
    }

    /// The remote party of `sid` hangs up now: a live call completes; a queued or ringing
    /// one ends as `no-answer`. False if the call is unknown or already over.
    pub fn hangup(&self, sid: &str) -> bool {
        let mut state = self.shared.lock();
        engine::remote_hangup(&self.shared, &mut state, sid)
    }

    /// The next `count` REST requests answer Twilio's error JSON with this status, code and
    /// message (0 cancels a pending failure).
    pub fn fail_next(&self, status: u16, code: u32, message: &str, count: usize) {
        let mut state = self.shared.lock();
        state.failing = (count > 0).then(|| (status, code, message.to_owned(), count));
    }

    /// REST API requests received (all, including refused ones).
    pub fn rest_requests(&self) -> usize {
        self.shared
            .rest_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every webhook request the simulator made, in order.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.shared.lock().callbacks.clone()
    }
}
