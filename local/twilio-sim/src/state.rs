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
use crate::numbers::{Capabilities, NumberKind};
use crate::twiml::HttpMethod;
use crate::{AccountSnapshot, CallSnapshot, CallbackRecord, ConferenceSnapshot, NumberSnapshot};

/// Settings and state shared by the server, the call tasks and [`crate::Simulator`].
pub(crate) struct Shared {
    /// The main (parent) account.
    pub account_sid: String,
    /// The main account's auth token.
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
                accounts: vec![Account::main(options)],
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
    /// Failures of requests on one account's path: `account → (status, code, message,
    /// requests left)`.
    pub failing_for: HashMap<String, (u16, u32, String, usize)>,
    /// Addresses (`client:…`, numbers) that ring until the call's timeout, unanswered (a
    /// softphone that is not registered, a desk phone nobody picks up).
    pub no_answer: std::collections::HashSet<String>,
    /// Addresses whose calls' status callbacks are never delivered (nor recorded).
    pub lost_status: std::collections::HashSet<String>,
    pub voice_url: Option<String>,
    pub status_callback_url: Option<String>,
    /// The main account first, then its subaccounts in creation order.
    pub accounts: Vec<Account>,
    /// Bought numbers (IncomingPhoneNumbers), in purchase order.
    pub numbers: Vec<PhoneNumber>,
}

impl State {
    pub(crate) fn account(&self, sid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.sid == sid)
    }

    pub(crate) fn account_mut(&mut self, sid: &str) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.sid == sid)
    }

    pub(crate) fn number(&self, sid: &str) -> Option<&PhoneNumber> {
        self.numbers.iter().find(|n| n.sid == sid)
    }

    pub(crate) fn number_mut(&mut self, sid: &str) -> Option<&mut PhoneNumber> {
        self.numbers.iter_mut().find(|n| n.sid == sid)
    }

    /// The IncomingPhoneNumber `phone_number`, whoever owns it.
    pub(crate) fn number_by_phone(&self, phone_number: &str) -> Option<&PhoneNumber> {
        self.numbers.iter().find(|n| n.phone_number == phone_number)
    }

    /// Whether some account holds `phone_number` (bought, or as a caller ID).
    pub(crate) fn is_taken(&self, phone_number: &str) -> bool {
        self.number_by_phone(phone_number).is_some()
            || self
                .accounts
                .iter()
                .any(|a| a.caller_ids.iter().any(|c| c == phone_number))
    }

    /// Whether `account` may use `phone_number` as a caller ID: it bought it, or it is one of
    /// its caller IDs.
    pub(crate) fn owns(&self, account: &str, phone_number: &str) -> bool {
        self.numbers
            .iter()
            .any(|n| n.account_sid == account && n.phone_number == phone_number)
            || self
                .account(account)
                .is_some_and(|a| a.caller_ids.iter().any(|c| c == phone_number))
    }

    pub(crate) fn account_snapshot(&self, account: &Account) -> AccountSnapshot {
        AccountSnapshot {
            sid: account.sid.clone(),
            friendly_name: account.friendly_name.clone(),
            status: account.status.as_str().to_owned(),
            owner_account_sid: account.owner.clone(),
            auth_token: account.auth_token.clone(),
            caller_ids: account.caller_ids.clone(),
            numbers: self
                .numbers
                .iter()
                .filter(|n| n.account_sid == account.sid)
                .map(|n| n.phone_number.clone())
                .collect(),
        }
    }

    pub(crate) fn number_snapshot(number: &PhoneNumber) -> NumberSnapshot {
        let method = |m: HttpMethod| m.as_str().to_owned();
        NumberSnapshot {
            sid: number.sid.clone(),
            account_sid: number.account_sid.clone(),
            phone_number: number.phone_number.clone(),
            friendly_name: number.friendly_name.clone(),
            voice_url: number.voice_url.clone(),
            voice_method: method(number.voice_method),
            status_callback: number.status_callback.clone(),
            status_callback_method: method(number.status_callback_method),
            sms_url: number.sms_url.clone(),
        }
    }

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

    /// The account's live (not completed) conference called `name`.
    pub(crate) fn active_conference(&self, account_sid: &str, name: &str) -> Option<&Conference> {
        self.conferences.iter().find(|c| {
            c.account_sid == account_sid
                && c.friendly_name == name
                && c.status != ConferenceStatus::Completed
        })
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
            account_sid: call.account_sid.clone(),
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
            account_sid: conference.account_sid.clone(),
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
    /// The IncomingPhoneNumber an inbound call reached.
    pub phone_number_sid: Option<String>,
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

/// `active`, `suspended`, `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountStatus {
    Active,
    Suspended,
    Closed,
}

impl AccountStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Closed => "closed",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "active" => AccountStatus::Active,
            "suspended" => AccountStatus::Suspended,
            "closed" => AccountStatus::Closed,
            _ => return None,
        })
    }
}

/// The friendly name of the main account.
pub(crate) const MAIN_FRIENDLY_NAME: &str = "Main Account";

/// The main account or one of its subaccounts.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub sid: String,
    pub auth_token: String,
    pub friendly_name: String,
    /// The parent; the main account's own SID for the main account.
    pub owner: String,
    pub status: AccountStatus,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// Numbers it may call from without owning them (Twilio's verified caller IDs).
    pub caller_ids: Vec<String>,
}

impl Account {
    fn main(options: &crate::SimOptions) -> Self {
        let now = crate::util::now();
        let mut caller_ids: Vec<String> = Vec::new();
        for id in &options.caller_ids {
            if !caller_ids.contains(id) {
                caller_ids.push(id.clone());
            }
        }
        Self {
            sid: options.account_sid.clone(),
            auth_token: options.auth_token.clone(),
            friendly_name: MAIN_FRIENDLY_NAME.to_owned(),
            owner: options.account_sid.clone(),
            status: AccountStatus::Active,
            created: now,
            updated: now,
            caller_ids,
        }
    }

    /// A new active subaccount of `owner`, with a random SID and auth token.
    pub(crate) fn sub(owner: &str, friendly_name: String) -> Self {
        let now = crate::util::now();
        Self {
            sid: crate::util::new_sid("AC"),
            auth_token: crate::util::random_hex32(),
            friendly_name,
            owner: owner.to_owned(),
            status: AccountStatus::Active,
            created: now,
            updated: now,
            caller_ids: Vec::new(),
        }
    }

    pub(crate) fn is_main(&self) -> bool {
        self.owner == self.sid
    }

    pub(crate) fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
}

/// A bought number (IncomingPhoneNumber).
#[derive(Debug, Clone)]
pub(crate) struct PhoneNumber {
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub kind: NumberKind,
    pub capabilities: Capabilities,
    pub voice_url: Option<String>,
    pub voice_method: HttpMethod,
    /// Stored and shown, never requested.
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: HttpMethod,
    pub voice_caller_id_lookup: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// Stored and shown; the simulator has no messaging.
    pub sms_url: Option<String>,
    pub sms_method: HttpMethod,
    pub sms_fallback_url: Option<String>,
    pub sms_fallback_method: HttpMethod,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}
