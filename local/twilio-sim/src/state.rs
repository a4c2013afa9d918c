//! The simulator's state: calls, conferences and the webhook log behind one
//! `std::sync::Mutex` (never held across an `.await`), plus the settings every task reads.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use telephony::callback::CallStatus;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};

use crate::callbacks::Outgoing;
use crate::twiml::HttpMethod;
use crate::{CallSnapshot, CallbackRecord, ConferenceSnapshot};

/// Settings and state shared by the server, the call tasks and [`crate::Simulator`].
pub(crate) struct Shared {
    pub account_sid: String,
    pub auth_token: String,
    pub second: Duration,
    pub ring_seconds: f64,
    pub talk_seconds: f64,
    pub base_url: String,
    pub http: reqwest::Client,
    pub runtime: tokio::runtime::Handle,
    pub rest_requests: AtomicUsize,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("account_sid", &self.account_sid)
            .field("base_url", &self.base_url)
            .field("second", &self.second)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        options: &crate::SimOptions,
        base_url: String,
        http: reqwest::Client,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            account_sid: options.account_sid.clone(),
            auth_token: options.auth_token.clone(),
            second: options.second,
            ring_seconds: options.ring_seconds.max(0.0),
            talk_seconds: options.talk_seconds.max(0.0),
            base_url,
            http,
            runtime,
            rest_requests: AtomicUsize::new(0),
            state: Mutex::new(State {
                voice_url: options.voice_url.clone(),
                status_callback_url: options.status_callback_url.clone(),
                ..State::default()
            }),
        }
    }

    /// The state; a panic elsewhere never makes it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Real time for `seconds` simulated seconds.
    pub(crate) fn real(&self, seconds: f64) -> Duration {
        self.second.mul_f64(seconds.clamp(0.0, 1.0e7))
    }

    /// Simulated seconds in the real `elapsed`.
    pub(crate) fn simulated(&self, elapsed: Duration) -> f64 {
        let unit = self.second.as_secs_f64();
        if unit > 0.0 {
            elapsed.as_secs_f64() / unit
        } else {
            0.0
        }
    }
}

/// Everything that changes.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub calls: Vec<Call>,
    pub index: HashMap<String, usize>,
    pub conferences: Vec<Conference>,
    pub callbacks: Vec<CallbackRecord>,
    /// `(status, code, message, requests left)`.
    pub failing: Option<(u16, u32, String, usize)>,
    pub voice_url: Option<String>,
    pub status_callback_url: Option<String>,
}

impl State {
    pub(crate) fn call(&self, sid: &str) -> Option<&Call> {
        self.index.get(sid).and_then(|i| self.calls.get(*i))
    }

    pub(crate) fn call_mut(&mut self, sid: &str) -> Option<&mut Call> {
        let i = *self.index.get(sid)?;
        self.calls.get_mut(i)
    }

    pub(crate) fn insert_call(&mut self, call: Call) {
        self.index.insert(call.sid.clone(), self.calls.len());
        self.calls.push(call);
    }

    pub(crate) fn conference(&self, sid: &str) -> Option<&Conference> {
        self.conferences.iter().find(|c| c.sid == sid)
    }

    pub(crate) fn conference_mut(&mut self, sid: &str) -> Option<&mut Conference> {
        self.conferences.iter_mut().find(|c| c.sid == sid)
    }

    /// The live (not completed) conference called `name`.
    pub(crate) fn active_conference(&self, name: &str) -> Option<&Conference> {
        self.conferences
            .iter()
            .find(|c| c.friendly_name == name && c.status != ConferenceStatus::Completed)
    }

    /// The participant entry of `call_sid` in conference `conference_sid`.
    pub(crate) fn participant(&self, conference_sid: &str, call_sid: &str) -> Option<&Participant> {
        self.conference(conference_sid)?
            .participants
            .iter()
            .find(|p| p.call_sid == call_sid || p.label.as_deref() == Some(call_sid))
    }

    pub(crate) fn snapshot(&self, call: &Call) -> CallSnapshot {
        let participant = call
            .conference
            .as_deref()
            .and_then(|cf| self.participant(cf, &call.sid));
        CallSnapshot {
            sid: call.sid.clone(),
            parent_call_sid: call.parent.clone(),
            direction: call.direction.as_str().to_owned(),
            from: call.from.clone(),
            to: call.to.clone(),
            status: call.rest_status().to_owned(),
            start_time: call.start_time.map(crate::util::rfc2822),
            end_time: call.end_time.map(crate::util::rfc2822),
            duration: call.duration,
            price: call.price.clone(),
            events: call.events.clone(),
            verbs: call.verbs.clone(),
            conference: call
                .conference
                .as_deref()
                .and_then(|cf| self.conference(cf))
                .map(|c| c.friendly_name.clone()),
            muted: participant.is_some_and(|p| p.muted),
            hold: participant.is_some_and(|p| p.hold),
        }
    }

    pub(crate) fn conference_snapshot(conference: &Conference) -> ConferenceSnapshot {
        ConferenceSnapshot {
            sid: conference.sid.clone(),
            friendly_name: conference.friendly_name.clone(),
            status: conference.status.as_str().to_owned(),
            participants: conference
                .participants
                .iter()
                .filter(|p| p.joined)
                .map(|p| p.call_sid.clone())
                .collect(),
        }
    }
}

/// `inbound`, `outbound-api`, `outbound-dial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    OutboundApi,
    OutboundDial,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::OutboundApi => "outbound-api",
            Direction::OutboundDial => "outbound-dial",
        }
    }
}

/// Where a call's TwiML comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    Url { url: String, method: HttpMethod },
    Twiml(String),
}

/// A call's `StatusCallback` and the events it subscribed to (`initiated`, `ringing`,
/// `answered`, `completed`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusHook {
    pub url: String,
    pub method: HttpMethod,
    pub events: Vec<String>,
}

/// The leg a call is dialling with `<Dial><Number|Client|Sip>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DialLink {
    pub child: String,
}

/// How a dialled leg ended, for the parent's `action`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DialOutcome {
    pub status: CallStatus,
    pub child: Option<String>,
    pub duration: u64,
}

/// One call leg.
#[derive(Debug)]
pub(crate) struct Call {
    pub sid: String,
    pub account_sid: String,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub parent: Option<String>,
    pub status: CallStatus,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub start_time: Option<OffsetDateTime>,
    pub end_time: Option<OffsetDateTime>,
    pub answered_at: Option<Instant>,
    pub duration: Option<u64>,
    pub price: Option<String>,
    /// `CallStatus` values of the status callbacks sent, in order.
    pub events: Vec<String>,
    /// Executed verbs, for the call log.
    pub verbs: Vec<String>,
    pub hook: Option<StatusHook>,
    /// Next status-callback `SequenceNumber`.
    pub sequence: u32,
    /// Queue of this call's status callbacks (closed once the final one is queued).
    pub callbacks: Option<mpsc::UnboundedSender<Outgoing>>,
    /// What runs on answer (outbound calls) or on arrival (inbound).
    pub source: Option<Source>,
    /// Whisper TwiML of a dialled leg.
    pub whisper: Option<Source>,
    /// Ring timeout, simulated seconds.
    pub timeout: f64,
    /// TwiML is executing (redirects then interrupt it instead of replacing `source`).
    pub running: bool,
    /// Bumped by every redirect; the call task compares it after each wait.
    pub generation: u64,
    pub pending: Option<Source>,
    /// Wakes the call task when something it may be waiting for changed.
    pub wake: Arc<Notify>,
    /// When the remote party hangs up (talk timer).
    pub hangup_at: Option<Instant>,
    pub dial: Option<DialLink>,
    pub dial_outcome: Option<DialOutcome>,
    /// The call whose `<Dial>` placed this leg, while the two are linked.
    pub bridge_parent: Option<String>,
    /// The conference this call is in (or is being dialled into by the Participants API).
    pub conference: Option<String>,
    /// Set when the call left its conference without hanging up or being redirected
    /// (removed, or the conference ended): its TwiML continues after `<Dial>`.
    pub conference_exit: Option<u64>,
}

impl Call {
    /// The status the REST API shows (`initiated` is not one of its values).
    pub(crate) fn rest_status(&self) -> &'static str {
        match self.status {
            CallStatus::Initiated => "queued",
            other => other.as_str(),
        }
    }

    pub(crate) fn is_over(&self) -> bool {
        self.status.is_final()
    }
}

/// `init`, `in-progress`, `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConferenceStatus {
    Init,
    InProgress,
    Completed,
}

impl ConferenceStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConferenceStatus::Init => "init",
            ConferenceStatus::InProgress => "in-progress",
            ConferenceStatus::Completed => "completed",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "init" => ConferenceStatus::Init,
            "in-progress" => ConferenceStatus::InProgress,
            "completed" => ConferenceStatus::Completed,
            _ => return None,
        })
    }
}

/// A conference's status callback: URL, method and the event groups subscribed to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConferenceHook {
    pub url: String,
    pub method: HttpMethod,
    pub events: Vec<String>,
}

/// One conference room.
#[derive(Debug)]
pub(crate) struct Conference {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub status: ConferenceStatus,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// Joined participants and calls being dialled in by the Participants API.
    pub participants: Vec<Participant>,
    pub hook: Option<ConferenceHook>,
    pub sequence: u32,
    pub callbacks: Option<mpsc::UnboundedSender<Outgoing>>,
    pub reason_ended: Option<&'static str>,
    pub call_sid_ending: Option<String>,
}

/// A participant (or a call on its way in).
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub call_sid: String,
    pub label: Option<String>,
    pub joined: bool,
    pub muted: bool,
    pub hold: bool,
    pub hold_url: Option<String>,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub coaching: bool,
    pub call_sid_to_coach: Option<String>,
    /// Recorded, never fetched.
    pub wait_url: Option<String>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub joined_at: Option<Instant>,
}
