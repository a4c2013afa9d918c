//! A local stand-in for Twilio's Voice REST API: our backend (and the frontend) place and
//! watch calls with no Twilio account. Production code reaches it only through its base
//! URL (`TWILIO_API_BASE`); the contract it follows is `shared/contracts/FACTS.md`,
//! `shared/contracts/messaging/FACTS.md` ("Phone numbers", "Subaccounts") and Twilio's
//! OpenAPI spec (`shared/contracts/twilio/twilio_api_v2010.json`).
//!
//! # REST API (`/2010-04-01/…`, `.json` paths, JSON answers)
//! - Accounts: `POST Accounts.json`, `GET Accounts.json?FriendlyName=&Status=`,
//!   `GET|POST Accounts/{AC}.json` (see "Accounts" below).
//! - Under `/Accounts/{AccountSid}/`:
//!   - `POST Calls.json` (201, `queued`), `GET Calls.json` (`To`, `From`, `ParentCallSid`,
//!     `Status` filters, newest first, one page), `GET|POST Calls/{CA}.json`.
//!   - `GET Conferences.json?FriendlyName=&Status=`, `GET|POST Conferences/{CF}.json`.
//!   - `GET|POST Conferences/{CF}/Participants.json`,
//!     `GET|POST|DELETE Conferences/{CF}/Participants/{CA}.json`. The participant may also
//!     be named by its `Label`; for `POST …/Participants.json` the conference may be a
//!     friendly name (created if needed), as Twilio allows.
//!   - `GET AvailablePhoneNumbers.json`, `GET AvailablePhoneNumbers/{IsoCountry}.json`,
//!     `GET AvailablePhoneNumbers/{IsoCountry}/Local.json|TollFree.json` (see "Phone
//!     numbers").
//!   - `GET|POST IncomingPhoneNumbers.json`,
//!     `GET|POST|DELETE IncomingPhoneNumbers/{PN}.json`.
//! - Resources have the spec's fields: calls (`sid`, `account_sid`, `to`, `to_formatted`,
//!   `from`, `from_formatted`, `status`, `direction`, `parent_call_sid`, `phone_number_sid`
//!   (the number an inbound call reached), `start_time`, `end_time`, `duration` (string),
//!   `price`, `price_unit`, `answered_by`, `api_version`, `caller_name`, `date_created`,
//!   `date_updated`, `queue_time`, `uri`, `subresource_uris`, …), conferences,
//!   participants, accounts, numbers likewise. Dates are RFC 2822.
//!
//! # Checks, in order (each answers `{"code","message","more_info","status"}`)
//! 1. Every request under `/2010-04-01` counts in [`Simulator::rest_requests`]; a pending
//!    [`Simulator::fail_next`] answers first, then a pending [`Simulator::fail_next_for`]
//!    of the account named in the path.
//! 2. Basic auth must be `sid:auth_token` of an **active** account (the main account or
//!    one of its subaccounts) → else 401 **20003** "Authenticate" (Twilio lists a suspended
//!    or closed account among the causes of 20003; the simulator never answers 403).
//! 3. The path's AccountSid must match `^AC[0-9a-fA-F]{32}$` → else 404 **20404**; and be
//!    the authenticated account or, for the main account, one of its subaccounts → else
//!    401 **20003** (a subaccount acting on its parent's or a sibling's path, any unknown
//!    account). The path's account must be active → else 401 **20003**, for its parent too
//!    (`Accounts/{AC}.json` itself excepted: the parent reactivates it there).
//! 4. Path SIDs must be `CA…`/`CF…`/`PN…` + 32 hex, and exist **in the path's account** →
//!    else 404 **20404** (another account's call, conference or number is not found);
//!    paths without `.json` or unknown → 404 **20404**; a wrong method → 405 **20004**.
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
//!    Last, the caller ID: an E.164 `From` must be a number the path's account bought
//!    (IncomingPhoneNumbers) or one of its caller IDs ([`SimOptions::caller_ids`] for the
//!    main account, [`Simulator::add_caller_id`]) → else 400 **21210** "The source phone
//!    number provided, +1…, is not yet verified for your account. You may only make calls
//!    from phone numbers that you've verified or purchased from Twilio." (a parent's numbers
//!    are not its subaccounts', nor the reverse). The Participants API create applies the
//!    same rule; a `client:` From is not checked, nor is `<Dial callerId>` (Twilio's rule
//!    there — the calling or called number, or a number of the account, else 13214 — is not
//!    modelled).
//! 7. Update: `Url` and `Twiml` together 400 **21205**; a redirect of a call that is over
//!    400 **21220** "Call is not in-progress. Cannot redirect."; `Status` wins over
//!    `Url`/`Twiml` in the same request; `StatusCallback` replaces the URL (the subscribed
//!    events stay).
//!
//! # Accounts
//! - The configured account ([`SimOptions::account_sid`]/[`SimOptions::auth_token`]) is the
//!   main account (friendly name `Main Account`, `owner_account_sid` = its own SID).
//! - `POST Accounts.json` (`FriendlyName`, at most 64 characters else 400 **20001**; default
//!   `SubAccount Created at YYYY-MM-DD HH:MM am|pm`) → 201 with a new subaccount: `sid`
//!   (`AC` + 32 random hex), `auth_token` (32 random hex), `owner_account_sid` (the main
//!   account), `friendly_name`, `status: "active"`, `type: "Full"`, `date_created`,
//!   `date_updated`, `uri` (`/2010-04-01/Accounts/{AC}.json`), `subresource_uris`
//!   (`calls`, `conferences`, `incoming_phone_numbers`, `available_phone_numbers`, … →
//!   `/2010-04-01/Accounts/{AC}/{Name}.json`). Only the main account creates subaccounts
//!   (a subaccount's credentials: 401 **20003**).
//! - `GET Accounts.json?FriendlyName=&Status=` → `{"accounts": [...], "uri", "page",
//!   "page_size", "first_page_uri", "next_page_uri", "previous_page_uri", "start", "end"}`:
//!   the authenticated account itself first, then its subaccounts in creation order (Twilio
//!   lists the accounts the credentials can reach; a subaccount sees only itself). Filters
//!   are exact; a `Status` outside active/suspended/closed is 400 **20001**.
//! - `GET Accounts/{AC}.json`: the account itself or its parent (else 401 **20003**).
//! - `POST Accounts/{AC}.json`: `FriendlyName` (the account or its parent); `Status`
//!   (`active`, `suspended`, `closed`): only the parent, on a subaccount (its own
//!   credentials: 401 **20003**; the main account's own status: 400 **20001**). A
//!   suspended or closed account's credentials get 401 **20003** everywhere, and its path
//!   401 **20003** even for its parent, until reactivated. `closed` is final (reopening: 400
//!   **20001**) and releases the account's numbers. Calls already running are not ended.
//!
//! # Phone numbers
//! - The pool is fixed and deterministic (see `numbers.rs`): US/CA local
//!   `+1{area}55501NN` (NN 00–99) for any North American area code (`[2-9][0-8]\d`, not
//!   N11 or toll-free; 415, 212, 312, 213, 617, 206, 512, 305 (US) and 416, 604, 514 (CA)
//!   carry their city, region, postal code, rate center, LATA (US) and coordinates; CA
//!   serves only its listed area codes); US toll-free `+1{800|833|844|855|866|877|888}55501NN`;
//!   GB local `+44 20 7946 01NN` (London), `+44 161 496 01NN` (Manchester); GB toll-free
//!   `+44 808 157 01NN`. No pool number ends in 0002/0003/0004 (the outcome endings).
//!   Numbers held by any account — bought, or a caller ID — are not available.
//! - `GET AvailablePhoneNumbers/{US|CA|GB}/Local.json`, `…/{US|GB}/TollFree.json` →
//!   `{"available_phone_numbers": [{"friendly_name" ("(415) 555-0101"; non-NANP numbers as
//!   E.164), "phone_number", "lata", "locality", "rate_center", "latitude", "longitude"
//!   (numbers), "region", "postal_code", "iso_country", "address_requirements": "none",
//!   "beta": false, "capabilities": {"voice", "SMS", "MMS", "fax"}}], "uri", page fields}`,
//!   in pool order. The capability keys `SMS`/`MMS` are upper case as on Twilio's wire
//!   (twilio-java's `PhoneNumberCapabilities` reads `SMS`/`MMS`), although the spec's
//!   schema spells them in lower case. Capabilities: US/CA local voice+SMS+MMS, US
//!   toll-free voice+SMS, GB voice only; fax never. Query: `AreaCode` (US/CA; a toll-free
//!   prefix for TollFree; not an area code → 400 **21451**; ignored for GB), `Contains` (2–16
//!   characters after an optional `+`: digits, letters as on a keypad, `*` = any one digit
//!   (honoured); matched anywhere in the number's digits; else 400 **20001**), `PageSize`
//!   (default 50, 1–1000 else 400 **20001**), `VoiceEnabled`/`SmsEnabled`/`MmsEnabled`/
//!   `FaxEnabled` (exact), `InRegion`/`InLocality`/`InPostalCode`/`InRateCenter`/`InLata`
//!   (exact, any case); `Beta`, `Exclude*AddressRequired`, `Distance` are checked (booleans
//!   / integer, 400 **20001**) and ignored, `NearNumber`/`NearLatLong` ignored. An unknown
//!   country (or CA toll-free, or another type such as `Mobile.json`) is 404 **20404**.
//!   `GET AvailablePhoneNumbers.json` → `{"countries": [{country_code, country, uri, beta,
//!   subresource_uris: {local, toll_free}}], "uri"}`.
//! - `POST IncomingPhoneNumbers.json`: `PhoneNumber` (E.164, else 400 **21421** "PhoneNumber
//!   … is invalid"; not in the pool or held by any account → 400 **21422** "PhoneNumber … is
//!   not available") or `AreaCode` (the first free number there: local, or toll-free for a
//!   toll-free prefix; not an area code → 400 **21451**; none left → 400 **21452**); neither
//!   → 400 **20001**. Settings: `FriendlyName` (≤ 64 else 400 **20001**; default the
//!   formatted number), `VoiceUrl`, `VoiceMethod`, `VoiceFallbackUrl`,
//!   `VoiceFallbackMethod`, `StatusCallback`, `StatusCallbackMethod`, `SmsUrl`,
//!   `SmsMethod`, `SmsFallbackUrl`, `SmsFallbackMethod`, `VoiceCallerIdLookup`. A URL that
//!   is not absolute http(s) → 400 **21502** "Invalid callback url" (all five URL
//!   settings); a method outside GET/POST or a bad boolean → 400 **20001**;
//!   `VoiceApplicationSid` → 400 **21218** (no applications). → 201 `{sid ("PN" + 32 hex),
//!   account_sid, phone_number, friendly_name, capabilities: {voice, sms, mms, fax} (lower
//!   case, as the spec has them for this resource), status: "in-use", type ("local" |
//!   "toll-free"), origin: "twilio", beta: false, address_requirements: "none",
//!   api_version, voice_url, voice_method, voice_fallback_url, voice_fallback_method,
//!   voice_caller_id_lookup, voice_receive_mode: "voice", status_callback,
//!   status_callback_method, sms_url, sms_method, sms_fallback_url, sms_fallback_method,
//!   emergency_status: "Inactive", emergency_address_status: "unregistered", the other
//!   `*_sid` fields null, date_created, date_updated, uri, subresource_uris}`. Unset URLs
//!   are null; methods default to POST. The fallback and SMS URLs are stored, never
//!   requested.
//! - `GET IncomingPhoneNumbers.json?PhoneNumber=&FriendlyName=` → `{"incoming_phone_numbers":
//!   [...], page fields}`: the path account's numbers in purchase order; `PhoneNumber` is
//!   exact, or partial with `*` wildcards.
//! - `GET|POST|DELETE IncomingPhoneNumbers/{PN}.json`: fetch; update (the settings above —
//!   an empty value clears a URL — and `AccountSid`, which moves the number to the main
//!   account or one of its active subaccounts: main account credentials only, else 401
//!   **20003**; another target 400 **20001**); release → 204, the number returns to the
//!   pool.
//!
//! # Call lifecycle (simulated seconds; one lasts [`SimOptions::second`])
//! - Outbound (`outbound-api`): `queued` → 0.1 s → `initiated` (the REST status stays
//!   `queued`, which is all the spec's enum has) → 0.2 s → `ringing` → the outcome by the
//!   dialled number's last four digits: **0002** busy after `ring_seconds`, **0003**
//!   no-answer after min(`Timeout`, 2 × `ring_seconds`), **0004** failed after
//!   `ring_seconds`; anything else (and every `client:`/`sip:` address) is answered
//!   (`in-progress`) after `ring_seconds` — or is no-answer at `Timeout` when that is shorter.
//!   An address given to [`Simulator::set_no_answer`] (an unregistered softphone) rings
//!   for its whole `Timeout` and ends no-answer. The status callbacks of calls to an
//!   address given to [`Simulator::lose_status_callbacks`] are never delivered.
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
//! - Every call and conference belongs to an account: the one in whose path it was
//!   created, the dialling call's for `<Dial>` legs and `<Conference>` rooms (rooms are per
//!   account: two accounts' `room-1` are two conferences), the number's owner for inbound
//!   calls to a bought number, else the main account. All its webhooks (status, voice,
//!   action, conference) carry that account's `AccountSid` and are signed with that
//!   account's auth token.
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
//! [`Simulator::inbound`] or `POST /__sim/inbound`: a new `CA…` (`inbound`, `ringing`).
//! When `to` is an IncomingPhoneNumber, the call belongs to the number's account, has its
//! `phone_number_sid`, requests the number's `VoiceUrl` with its `VoiceMethod` (the
//! request's `url`, if given, with POST instead) and sends its status callbacks to the
//! number's `StatusCallback` (`StatusCallbackMethod`); no `VoiceUrl` and no `url` → an
//! error; a suspended account's number → an error (Twilio rejects the call, 10003).
//! Otherwise the call belongs to the main account: the voice URL is the request's `url`,
//! else [`SimOptions::voice_url`], and status callbacks go to
//! [`SimOptions::status_callback_url`]; no voice URL → an error. The voice URL is requested
//! with `CallStatus=ringing`, and the call turns `in-progress` at its first verb other than
//! `<Reject>`. Status callbacks carry all four events (Twilio sends no `initiated` for
//! inbound calls: ringing, in-progress, completed).
//!
//! # Simulator endpoints
//! `POST /__sim/inbound` `{from, to, url?}` → 201 `{call_sid}`; `GET /__sim/calls` and
//! `GET /__sim/calls/{CA}` ([`CallSnapshot`], with `account_sid`: whose softphone a
//! `client:` leg rang); `POST /__sim/calls/{CA}/hangup`; `GET /__sim/conferences`
//! ([`ConferenceSnapshot`]); `GET /__sim/accounts` ([`AccountSnapshot`]: sid,
//! friendly_name, status, owner_account_sid, auth_token — shown on purpose, this is a local
//! test tool —, caller_ids, numbers); `GET /__sim/numbers` ([`NumberSnapshot`]);
//! `GET /__sim/callbacks` ([`CallbackRecord`], with the signing `account_sid`);
//! `POST /__sim/fail` `{status, code, message, count?}` → 204;
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
mod numbers;
mod rest;
mod runner;
mod state;
mod twiml;
mod util;

use std::sync::Arc;
use std::time::Duration;

use state::{Account, Direction, Shared, Source, StatusHook};

/// The account SID the simulator accepts by default.
pub const ACCOUNT_SID: &str = "ACc0ffee00000000000000000000000000";
/// The auth token the simulator accepts (and signs webhooks with) by default.
pub const AUTH_TOKEN: &str = "local-twilio-auth-token";
/// The main account's caller IDs by default: Twilio's magic test caller ID `+15005550006`
/// and `+14155550100`, the local stack's `TWILIO_PHONE_NUMBER`.
pub const DEFAULT_CALLER_IDS: [&str; 2] = ["+15005550006", "+14155550100"];

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The main (parent) account: Basic-auth user and path AccountSid. Subaccounts are
    /// created over the REST API.
    pub account_sid: String,
    /// The main account's Basic-auth password, and the key its webhooks are signed with.
    pub auth_token: String,
    /// Numbers the main account may call from without buying them (verified caller IDs);
    /// nobody can buy them. Default [`DEFAULT_CALLER_IDS`].
    pub caller_ids: Vec<String>,
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
            caller_ids: DEFAULT_CALLER_IDS.map(str::to_owned).to_vec(),
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
    /// The account the call belongs to (for a `client:` leg: whose softphone rang).
    pub account_sid: String,
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
    pub account_sid: String,
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
    /// The account whose auth token signed it (and whose `AccountSid` it carries).
    pub account_sid: String,
}

/// An account (the main one or a subaccount) as the simulator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountSnapshot {
    pub sid: String,
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// The parent; the main account's own SID for the main account.
    pub owner_account_sid: String,
    /// Its Basic-auth password and webhook signing key (shown: this is a local test tool).
    pub auth_token: String,
    /// Numbers it may call from without owning them.
    pub caller_ids: Vec<String>,
    /// The numbers it bought (IncomingPhoneNumbers), in purchase order.
    pub numbers: Vec<String>,
}

/// A bought number (IncomingPhoneNumber) as the simulator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NumberSnapshot {
    /// `PN…`.
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice_url: Option<String>,
    pub voice_method: String,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub sms_url: Option<String>,
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

    /// Simulates a call from `from` to our number `to`; returns its CallSid. When `to` is
    /// an IncomingPhoneNumber the call belongs to its account and runs its `VoiceUrl`;
    /// otherwise it belongs to the main account and runs the configured voice URL.
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
        let all_events = || {
            ["initiated", "ringing", "answered", "completed"]
                .map(str::to_owned)
                .to_vec()
        };
        let mut state = self.shared.lock();
        let (account_sid, phone_number_sid, voice, method, hook) = match state
            .number_by_phone(to)
            .cloned()
        {
            Some(number) => {
                if !state
                    .account(&number.account_sid)
                    .is_some_and(Account::is_active)
                {
                    return Err(format!(
                        "{to} belongs to {}, which is not active: Twilio rejects the call (10003)",
                        number.account_sid
                    ));
                }
                let (voice, method) = match url {
                    Some(url) => (url.to_owned(), twiml::HttpMethod::Post),
                    None => (
                        number.voice_url.clone().ok_or_else(|| {
                            format!(
                                "the number {to} ({}) has no VoiceUrl: set one or pass url",
                                number.sid
                            )
                        })?,
                        number.voice_method,
                    ),
                };
                let hook = number.status_callback.clone().map(|url| StatusHook {
                    url,
                    method: number.status_callback_method,
                    events: all_events(),
                });
                (number.account_sid, Some(number.sid), voice, method, hook)
            }
            None => {
                let voice = url
                    .map(str::to_owned)
                    .or_else(|| state.voice_url.clone())
                    .ok_or(
                        "no voice URL: set SimOptions::voice_url, call set_inbound_webhooks, pass url or call a bought number with a VoiceUrl",
                    )?;
                let hook = state.status_callback_url.clone().map(|url| StatusHook {
                    url,
                    method: twiml::HttpMethod::Post,
                    events: all_events(),
                });
                (
                    self.shared.account_sid.clone(),
                    None,
                    voice,
                    twiml::HttpMethod::Post,
                    hook,
                )
            }
        };
        if !util::is_http_url(&voice) {
            return Err(format!("the voice URL '{voice}' is not an http(s) URL"));
        }
        Ok(engine::create_call(
            &self.shared,
            &mut state,
            engine::NewCall {
                account_sid,
                phone_number_sid,
                direction: Direction::Inbound,
                from: from.to_owned(),
                to: to.to_owned(),
                parent: None,
                source: Some(Source::Url { url: voice, method }),
                whisper: None,
                hook,
                timeout: 60.0,
            },
        ))
    }

    /// Every account: the main one, then its subaccounts in creation order.
    pub fn accounts(&self) -> Vec<AccountSnapshot> {
        let state = self.shared.lock();
        state
            .accounts
            .iter()
            .map(|a| state.account_snapshot(a))
            .collect()
    }

    /// The account `sid`, if the simulator knows it.
    pub fn account(&self, sid: &str) -> Option<AccountSnapshot> {
        let state = self.shared.lock();
        state.account(sid).map(|a| state.account_snapshot(a))
    }

    /// Creates an active subaccount of the main account (as `POST Accounts.json` does).
    pub fn create_subaccount(&self, friendly_name: &str) -> AccountSnapshot {
        let mut state = self.shared.lock();
        let account = Account::sub(&self.shared.account_sid, friendly_name.to_owned());
        let snapshot = state.account_snapshot(&account);
        state.accounts.push(account);
        snapshot
    }

    /// Lets `account_sid` call from `phone_number` without buying it (a verified caller
    /// ID). False when the account is unknown or the number is not E.164.
    pub fn add_caller_id(&self, account_sid: &str, phone_number: &str) -> bool {
        if !util::is_e164(phone_number) {
            return false;
        }
        let mut state = self.shared.lock();
        let Some(account) = state.account_mut(account_sid) else {
            return false;
        };
        if !account.caller_ids.iter().any(|c| c == phone_number) {
            account.caller_ids.push(phone_number.to_owned());
        }
        true
    }

    /// Buys `phone_number` from the pool for `account_sid` (as `POST
    /// IncomingPhoneNumbers.json` does), with its voice URL (POST) and status callback.
    pub fn buy_number(
        &self,
        account_sid: &str,
        phone_number: &str,
        voice_url: Option<&str>,
        status_callback: Option<&str>,
    ) -> Result<NumberSnapshot, String> {
        for url in [voice_url, status_callback].into_iter().flatten() {
            if !util::is_http_url(url) {
                return Err(format!("'{url}' is not an http(s) URL"));
            }
        }
        let mut state = self.shared.lock();
        if !state.account(account_sid).is_some_and(Account::is_active) {
            return Err(format!("no active account {account_sid}"));
        }
        let available = rest::available_number(&state, phone_number).map_err(|e| e.message)?;
        let mut number = rest::new_number(account_sid, &available);
        number.voice_url = voice_url.map(str::to_owned);
        number.status_callback = status_callback.map(str::to_owned);
        let snapshot = state::State::number_snapshot(&number);
        state.numbers.push(number);
        Ok(snapshot)
    }

    /// Every bought number, in purchase order.
    pub fn numbers(&self) -> Vec<NumberSnapshot> {
        self.shared
            .lock()
            .numbers
            .iter()
            .map(state::State::number_snapshot)
            .collect()
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

    /// The next `count` REST requests on `account_sid`'s path (`/Accounts/{sid}/…`) answer
    /// Twilio's error JSON with this status, code and message; other accounts are not
    /// affected (0 cancels).
    pub fn fail_next_for(
        &self,
        account_sid: &str,
        status: u16,
        code: u32,
        message: &str,
        count: usize,
    ) {
        let mut state = self.shared.lock();
        if count == 0 {
            state.failing_for.remove(account_sid);
        } else {
            state.failing_for.insert(
                account_sid.to_owned(),
                (status, code, message.to_owned(), count),
            );
        }
    }

    /// Calls to `address` (`client:<identity>` or a number) ring until their timeout and
    /// end `no-answer`, as a softphone that is not registered does.
    pub fn set_no_answer(&self, address: &str) {
        self.shared.lock().no_answer.insert(address.to_owned());
    }

    /// Status callbacks of calls to `address` are lost on the way (never delivered), as
    /// happens when a webhook is down: Twilio does not retry them.
    pub fn lose_status_callbacks(&self, address: &str) {
        self.shared.lock().lost_status.insert(address.to_owned());
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
