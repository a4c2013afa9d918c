//! Calls over Twilio: placing them, following their status callbacks, reading, ending,
//! muting and holding them, cold transfers. The call record is the transfer service's
//! [`Call`]; Twilio's own view of it lives in [`CarrierLeg`] on the record, so one
//! conditional write moves both and a callback can never apply twice.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use transfers::engine::{Engine, SentFigures, end_call};
use transfers::model::{Call, CallStatus, CarrierLeg, Direction};
use vocelio_shared::idempotency;
use vocelio_shared::ids::{self, TenantId};
use vocelio_shared::{ApiError, ApiResult, AuthUser, clock, phone};

use crate::callback::{CallStatus as TwilioStatus, Known, StatusCallback, Verdict, is_sid, judge};
use crate::client::{CallUpdate, Instructions, NewCall, ParticipantUpdate, TwilioCall};
use crate::service::{Telephony, twilio_error};
use crate::store::{self, Leg, SidOwner};
use crate::twiml::{self, Element};

/// The longest message an outbound call speaks.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// Our status for a call whose Twilio status became `twilio` (live statuses never undo a
/// transfer's or a hold's state).
pub fn our_status(current: CallStatus, twilio: TwilioStatus) -> CallStatus {
    match twilio {
        TwilioStatus::Queued | TwilioStatus::Initiated | TwilioStatus::Ringing => current,
        TwilioStatus::InProgress if current == CallStatus::Ringing => CallStatus::Active,
        TwilioStatus::InProgress => current,
        TwilioStatus::Completed => CallStatus::Completed,
        TwilioStatus::Busy | TwilioStatus::NoAnswer => CallStatus::Missed,
        TwilioStatus::Failed => CallStatus::Failed,
        TwilioStatus::Canceled => CallStatus::Abandoned,
    }
}

/// The carrier leg of a call we place or answer.
pub fn new_leg(
    direction: &str,
    to: &str,
    from: &str,
    status: TwilioStatus,
    at: &str,
) -> CarrierLeg {
    CarrierLeg {
        provider: "twilio".into(),
        status: status.as_str().into(),
        direction: direction.into(),
        to: to.into(),
        from: from.into(),
        synced_at: at.into(),
        ..CarrierLeg::default()
    }
}

/// The call after Twilio reported `update`, or `None` when it changes nothing (a duplicate
/// or an older callback arriving late).
pub fn apply_carrier(
    call: &Call,
    update: &StatusCallback,
    now: OffsetDateTime,
    prices: (f64, f64),
) -> Option<Call> {
    let at = clock::rfc3339(now);
    let mut leg = call.carrier.clone().unwrap_or_else(|| {
        new_leg(
            update.direction.as_deref().unwrap_or("inbound"),
            update.to.as_deref().unwrap_or_default(),
            update.from.as_deref().unwrap_or_default(),
            TwilioStatus::Queued,
            &at,
        )
    });
    let known = Known {
        status: TwilioStatus::parse(&leg.status).unwrap_or(TwilioStatus::Queued),
        last_sequence: leg.sequence,
    };
    let verdict = judge(&known, update);
    let mut next = call.clone();
    if next.call_sid.is_none() {
        next.call_sid = Some(update.call_sid.clone());
    }
    if verdict != Verdict::Apply {
        // A late price still counts (Twilio sends it once the call is rated).
        if update.price.is_some() && leg.price.is_none() && known.status.is_final() {
            leg.price = update.price;
            leg.price_unit = update.price_unit.clone();
            next.carrier = Some(leg);
            next.updated_at = at;
            return Some(next);
        }
        return (next.call_sid != call.call_sid).then_some(next);
    }
    leg.status = update.status.as_str().into();
    leg.sequence = match (leg.sequence, update.sequence_number) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    leg.synced_at = at.clone();
    if update.status == TwilioStatus::InProgress && leg.answered_at.is_none() {
        leg.answered_at = Some(at.clone());
    }
    if update.price.is_some() {
        leg.price = update.price;
        leg.price_unit = update.price_unit.clone();
    }
    if update.status.is_final() {
        leg.conference = None;
        leg.muted = false;
        leg.on_hold = false;
    }
    next.carrier = Some(leg);
    next.updated_at = at;
    let status = our_status(call.status, update.status);
    if status != call.status && call.status.may_become(status) {
        if status.is_ended() {
            let sent = SentFigures {
                duration: update.call_duration_seconds.map(u64::from),
                ..SentFigures::default()
            };
            end_call(&mut next, status, now, prices, &sent);
        } else {
            next.status = status;
        }
    }
    Some(next)
}

/// A fetched call, read as a status callback without a sequence number.
pub fn as_callback(fetched: &TwilioCall, account_sid: &str) -> Option<StatusCallback> {
    Some(StatusCallback {
        call_sid: fetched.sid.clone(),
        account_sid: account_sid.to_owned(),
        status: TwilioStatus::parse(&fetched.status)?,
        sequence_number: None,
        timestamp: None,
        call_duration_seconds: fetched.duration.as_deref().and_then(|d| d.parse().ok()),
        from: fetched.from.clone(),
        to: fetched.to.clone(),
        direction: fetched.direction.clone(),
        parent_call_sid: fetched.parent_call_sid.clone(),
        price: fetched.price.as_deref().and_then(|p| p.parse().ok()),
        price_unit: None,
    })
}

fn prices(tel: &Telephony) -> (f64, f64) {
    (
        tel.app.config.ai_price_per_minute,
        tel.app.config.human_price_per_minute,
    )
}

/// Applies a status report of the caller's leg to call `call_id` of `tenant`. The report
/// must be about the call's own leg: once the call has a SID, a report naming another SID
/// changes nothing (`None`). A final report of an outbound call counts its seconds against
/// the tenant's daily minutes, once.
pub async fn apply_status(
    tel: &Telephony,
    tenant: &TenantId,
    call_id: &str,
    update: &StatusCallback,
) -> ApiResult<Option<Call>> {
    let prices = prices(tel);
    // A callback that beat our own write of the SID records the SID's owner with it.
    let owner = store::put_sid_owner(
        &tel.app,
        &update.call_sid,
        &SidOwner::caller(tenant, call_id),
    )?;
    let engine = Engine::new(&tel.app, tenant);
    let other_leg = std::sync::atomic::AtomicBool::new(false);
    let count = |call: &Call| -> Option<u64> {
        let leg = call.carrier.as_ref()?;
        (call.direction == Direction::Outbound
            && leg.counted_seconds.is_none()
            && update.status.is_final())
        .then(|| u64::from(update.call_duration_seconds.unwrap_or(0)))
    };
    let call = engine
        .update_call_with(call_id, |call, now| {
            if call
                .call_sid
                .as_deref()
                .is_some_and(|sid| sid != update.call_sid)
            {
                other_leg.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(None);
            }
            let mut extra = if call.call_sid.is_none() {
                vec![owner.clone()]
            } else {
                Vec::new()
            };
            let counted = count(call);
            let mut next = match apply_carrier(call, update, now, prices) {
                Some(next) => next,
                None if counted.is_some() => call.clone(),
                None => return Ok(None),
            };
            if let Some(seconds) = counted
                && let Some(leg) = next.carrier.as_mut()
            {
                leg.counted_seconds = Some(seconds);
                // What the call used, less what it reserved when it was placed.
                let reserved = leg.reserved_seconds.unwrap_or(0);
                let delta = i64::try_from(seconds).unwrap_or(i64::MAX)
                    - i64::try_from(reserved).unwrap_or(0);
                if delta != 0 {
                    extra.push(tel.count_minutes(tenant, delta)?);
                }
            }
            Ok(Some((next, extra)))
        })
        .await?;
    if other_leg.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(%call_id, call_sid = %update.call_sid, "a status report of another leg named this call; ignored");
        return Ok(None);
    }
    Ok(Some(call))
}

// ---- placing calls ----

/// The voice the app chose (`voice_settings`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceSettings {
    pub provider: Option<String>,
    pub voice_id: Option<String>,
    pub tier: Option<String>,
}

/// `POST /api/calls/make`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeCall {
    pub to: Option<String>,
    pub to_number: Option<String>,
    pub from: Option<String>,
    pub from_number: Option<String>,
    pub message: Option<String>,
    pub voice_settings: Option<VoiceSettings>,
    pub flow_id: Option<String>,
    pub contact_id: Option<String>,
    pub metadata: Option<Value>,
    /// Sent by some screens; kept with the request, not used.
    pub pricing: Option<Value>,
}

struct Checked {
    to: String,
    from: Option<String>,
    message: Option<String>,
    flow_id: Option<String>,
}

fn check(tel: &Telephony, body: &MakeCall) -> ApiResult<Checked> {
    let mut errors = Vec::new();
    let region = tel.app.config.default_phone_region;
    let number =
        |field: &str, raw: Option<&String>, errors: &mut Vec<vocelio_shared::FieldError>| {
            let raw = raw?;
            match phone::normalize(raw, region) {
                Ok(n) => Some(n.as_str().to_owned()),
                Err(e) => {
                    errors.push(vocelio_shared::FieldError::new(
                        field,
                        format!("{e} (a dialable number in E.164, like +14155550123)"),
                    ));
                    None
                }
            }
        };
    let to_field = if body.to.is_some() { "to" } else { "to_number" };
    let to = number(
        to_field,
        body.to.as_ref().or(body.to_number.as_ref()),
        &mut errors,
    );
    if body.to.is_none() && body.to_number.is_none() {
        errors.push(vocelio_shared::FieldError::new("to", "is required"));
    }
    let from_field = if body.from.is_some() {
        "from"
    } else {
        "from_number"
    };
    let from = number(
        from_field,
        body.from.as_ref().or(body.from_number.as_ref()),
        &mut errors,
    );
    let message = body
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if let Some(m) = message
        && m.chars().count() > MAX_MESSAGE_CHARS
    {
        errors.push(vocelio_shared::FieldError::new(
            "message",
            format!("must be at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    if let Some(flow) = &body.flow_id
        && !ids::is_key_safe(flow)
    {
        errors.push(vocelio_shared::FieldError::new(
            "flow_id",
            "is not a flow id",
        ));
    }
    if let Some(contact) = &body.contact_id
        && !ids::is_key_safe(contact)
    {
        errors.push(vocelio_shared::FieldError::new(
            "contact_id",
            "is not a contact id",
        ));
    }
    if let Some(meta) = &body.metadata
        && (!meta.is_object() || meta.to_string().len() > 4096)
    {
        errors.push(vocelio_shared::FieldError::new(
            "metadata",
            "must be an object of at most 4 KiB",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    match (to, from) {
        (Some(to), from) => Ok(Checked {
            to,
            from,
            message: message.map(str::to_owned),
            flow_id: body.flow_id.clone(),
        }),
        _ => Err(ApiError::field("to", "is required")),
    }
}

/// Whether `settings` ask for a voice our TTS speaks (else Twilio's `<Say>`).
fn tts_provider(settings: Option<&VoiceSettings>) -> Option<String> {
    let settings = settings?;
    match settings.provider.as_deref().map(str::to_ascii_lowercase) {
        Some(p) if matches!(p.as_str(), "azure" | "elevenlabs" | "local" | "auto") => Some(p),
        Some(_) => None,
        None => settings
            .voice_id
            .as_deref()
            .and_then(tts::provider::ProviderKind::owning_voice)
            .map(|k| k.as_str().to_owned()),
    }
}

/// The verb that speaks `message`: a `<Play>` of audio our TTS put in S3 (a presigned URL)
/// for our voices, else `<Say>`.
async fn speak(
    tel: &Telephony,
    tenant: &TenantId,
    call_id: &str,
    message: &str,
    settings: Option<&VoiceSettings>,
) -> ApiResult<Element> {
    if let (Some(provider), Some(tts)) = (tts_provider(settings), tel.tts()) {
        let settings = settings.cloned().unwrap_or_default();
        let mut plan = tts.plan(tts::service::SynthesizeBody {
            text: Some(message.to_owned()),
            voice_id: settings.voice_id,
            provider: Some(provider),
            tier: settings.tier,
            format: Some("mulaw_wav".into()),
            call_id: Some(call_id.to_owned()),
            ..tts::service::SynthesizeBody::default()
        })?;
        plan.cache_scope = tenant.as_str().to_owned();
        let clip = tts.synthesize(&plan, false).await?;
        let entry = tts::usage::UsageEntry {
            characters: plan.text.chars().count(),
            audio_seconds: clip.facts.duration_seconds,
            cost: clip.cost,
            cached: clip.cached,
            provider: clip.facts.provider.as_str(),
        };
        if let Err(e) = tts::usage::record(&tel.app, tenant, Some(call_id), None, &entry).await {
            tracing::error!(error = %e, "speech usage not recorded");
        }
        let url = tts
            .store()
            .url(&clip.key)
            .await
            .map_err(|e| ApiError::Unavailable(format!("audio URL: {e}")))?;
        return Ok(twiml::play(&url));
    }
    let voice = settings
        .filter(|s| {
            s.provider
                .as_deref()
                .is_some_and(|p| matches!(p, "twilio" | "polly" | "google"))
        })
        .and_then(|s| s.voice_id.clone())
        .or_else(|| tel.config.say_voice.clone());
    Ok(twiml::say(message).attr_opt("voice", voice))
}

/// A call id derived from an `Idempotency-Key`: a retry finds the same record, so two
/// concurrent retries can never both dial.
fn call_id_for(tenant: &TenantId, key: Option<&str>) -> String {
    match key {
        Some(key) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{tenant}\n{key}").as_bytes());
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("call_{hex}")
        }
        None => ids::new_id("call"),
    }
}

/// The answer of `POST /api/calls/make`.
fn made(call: &Call) -> Value {
    let leg = call.carrier.clone().unwrap_or_default();
    json!({
        "call_sid": call.call_sid,
        "call_id": call.call_id,
        "status": leg.status,
        "to": leg.to,
        "from": leg.from,
        "direction": leg.direction,
        "flow_id": call.current_flow,
    })
}

/// Places a call: checks, the spoken message, the call record, Twilio's Calls API, then
/// the SID bound to the record (and to the `Idempotency-Key`) in one transaction. The
/// flag says the answer is a replay of an earlier request with the same key.
pub async fn make(
    tel: &Telephony,
    user: &AuthUser,
    body: MakeCall,
    key: Option<&str>,
) -> ApiResult<(StatusCode, Value, bool)> {
    tel.twilio()?;
    let tenant = &user.tenant;
    let policy = tel.dial_policy(tenant).await?;
    crate::policy::may_dial(user, &policy)?;
    let guard = idempotency::guard(tenant, "calls.make", key, &body)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &tel.app).await? {
        let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
        return Ok((status, replay.body, true));
    }
    let checked = check(tel, &body)?;
    tel.check_destination(&policy, &checked.to)?;
    // Never dial a number on one of the tenant's do-not-call lists, nor a contact marked
    // do-not-call; call from a number the tenant owns; run its flow. Independent reads, so
    // at once (one round trip of latency, not four).
    let flow_lookup = async {
        match &checked.flow_id {
            Some(id) => store::flow(&tel.app, tenant, id)
                .await?
                .map(Some)
                .ok_or_else(|| ApiError::field("flow_id", "no flow has this id")),
            None => Ok(None),
        }
    };
    let (callable, from, flow) = tokio::join!(
        vocelio_shared::dnc::ensure_callable_for(
            &tel.app,
            tenant,
            &checked.to,
            body.contact_id.as_deref(),
        ),
        crate::numbers::caller_id(tel, tenant, checked.from.as_deref()),
        flow_lookup,
    );
    callable?;
    let from = from?;
    let flow = flow?;
    let checked = Checked {
        from: Some(from.clone()),
        ..checked
    };
    let call_id = call_id_for(tenant, key);
    // Quotas before anything that costs (synthesis, the call): a refused request costs
    // nothing; the reserved minutes go back if the call is not placed.
    let time_limit = tel.reserve_call(tenant).await?;
    place(
        tel,
        user,
        &body,
        guard.as_ref(),
        &checked,
        flow.as_ref(),
        &from,
        &call_id,
        time_limit,
    )
    .await
}

/// `result`, after giving back the reserved `seconds` when it is an error (the call was
/// not dialled).
async fn or_refund<T>(
    tel: &Telephony,
    tenant: &TenantId,
    seconds: u32,
    result: ApiResult<T>,
) -> ApiResult<T> {
    if result.is_err() {
        tel.refund_minutes(tenant, seconds).await;
    }
    result
}

/// The call itself, once its minutes are reserved.
#[allow(clippy::too_many_arguments)]
async fn place(
    tel: &Telephony,
    user: &AuthUser,
    body: &MakeCall,
    guard: Option<&idempotency::Idempotent>,
    checked: &Checked,
    flow: Option<&store::Flow>,
    from: &str,
    call_id: &str,
    time_limit: u32,
) -> ApiResult<(StatusCode, Value, bool)> {
    let tenant = &user.tenant;
    let call_id = call_id.to_owned();
    let from = from.to_owned();
    let mut verbs = Vec::new();
    if let Some(message) = &checked.message {
        let spoken = speak(tel, tenant, &call_id, message, body.voice_settings.as_ref()).await;
        verbs.push(or_refund(tel, tenant, time_limit, spoken).await?);
    }
    match flow.and_then(|f| f.webhook_url.as_deref()) {
        Some(webhook) => verbs.push(twiml::redirect(webhook)),
        None => {
            if let Some(greeting) = flow.and_then(|f| f.greeting.as_deref())
                && checked.message.is_none()
            {
                verbs.push(twiml::say(greeting));
            }
            verbs.push(twiml::hangup());
        }
    }
    let document = twiml::response(verbs);
    let now = clock::now();
    let at = clock::rfc3339(now);
    let mut record = Call::new(
        call_id.clone(),
        checked.to.clone(),
        Direction::Outbound,
        CallStatus::Ringing,
        &at,
    );
    record.called_number = Some(from.clone());
    record.current_flow = checked.flow_id.clone();
    let attempt = ids::new_id("attempt");
    let mut leg = new_leg(
        "outbound-api",
        &checked.to,
        &from,
        TwilioStatus::Queued,
        &at,
    );
    leg.reserved_seconds = Some(u64::from(time_limit));
    leg.attempt = Some(attempt.clone());
    record.carrier = Some(leg);
    let client = or_refund(tel, tenant, time_limit, tel.client_for(tenant).await).await?;
    let engine = Engine::new(&tel.app, tenant);
    let stored = engine.create_call_with(record, Vec::new()).await;
    let stored = or_refund(tel, tenant, time_limit, stored).await?;
    if stored.carrier.as_ref().and_then(|l| l.attempt.as_deref()) != Some(attempt.as_str()) {
        // Another request with this key made the record: it dials, not us; our
        // reservation goes back.
        tel.refund_minutes(tenant, time_limit).await;
        // The same key is being (or was) served by another request.
        if let Some(replay) = idempotency::replay_of(guard, &tel.app).await? {
            let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
            return Ok((status, replay.body, true));
        }
        return Err(ApiError::conflict(
            "request_in_progress",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        ));
    }
    let callback = tel.webhook_url(
        "/twilio/status",
        &[("tenant", tenant.as_str()), ("call_id", &call_id)],
    );
    let callback = or_refund(tel, tenant, time_limit, callback).await?;
    let placed = client
        .create_call(&NewCall {
            to: checked.to.clone(),
            from: from.clone(),
            instructions: Instructions::Twiml(document),
            status_callback: Some(callback),
            timeout_seconds: None,
            time_limit_seconds: Some(time_limit),
        })
        .await;
    match placed {
        Ok(twilio_call) => {
            let owner_action = store::put_sid_owner(
                &tel.app,
                &twilio_call.sid,
                &SidOwner::caller(tenant, &call_id),
            )?;
            let answered = TwilioStatus::parse(&twilio_call.status).unwrap_or(TwilioStatus::Queued);
            let call = engine
                .update_call_with(&call_id, |call, now| {
                    let mut next = call.clone();
                    next.call_sid = Some(twilio_call.sid.clone());
                    if let Some(leg) = next.carrier.as_mut()
                        && TwilioStatus::parse(&leg.status)
                            .is_none_or(|s| s.rank() < answered.rank())
                    {
                        leg.status = answered.as_str().into();
                    }
                    next.updated_at = clock::rfc3339(now);
                    let mut extra = vec![owner_action.clone()];
                    if let Some(guard) = &guard {
                        extra.push(guard.record(&tel.app, StatusCode::CREATED, &made(&next))?);
                    }
                    Ok(Some((next, extra)))
                })
                .await?;
            Ok((StatusCode::CREATED, made(&call), false))
        }
        Err(failure) => {
            let error = twilio_error(failure);
            let prices = prices(tel);
            let failed = engine
                .update_call_with(&call_id, |call, now| {
                    let mut next = call.clone();
                    if let Some(leg) = next.carrier.as_mut() {
                        leg.status = TwilioStatus::Failed.as_str().into();
                        leg.synced_at = clock::rfc3339(now);
                        // Never dialled: nothing counted, the reservation given back.
                        leg.counted_seconds = Some(0);
                    }
                    end_call(
                        &mut next,
                        CallStatus::Failed,
                        now,
                        prices,
                        &SentFigures::default(),
                    );
                    let mut extra = vec![tel.count_minutes(tenant, -i64::from(time_limit))?];
                    if let Some(guard) = &guard {
                        extra.push(guard.record(&tel.app, error.status(), &error.body())?);
                    }
                    Ok(Some((next, extra)))
                })
                .await;
            if let Err(e) = failed {
                tracing::error!(error = %e, %call_id, "failed call not recorded");
            }
            Err(error)
        }
    }
}

// ---- reading, ending, controlling ----

/// The call named by a Twilio `CallSid` or by our `call_id`, in the caller's tenant only.
pub async fn find(tel: &Telephony, tenant: &TenantId, id: &str) -> ApiResult<(Call, u64)> {
    let call_id = if is_sid("CA", id) {
        match store::sid_owner(&tel.app, id).await? {
            Some(owner) if owner.tenant_id == tenant.as_str() && owner.leg == Leg::Caller => {
                owner.call_id
            }
            _ => return Err(ApiError::not_found("call")),
        }
    } else if ids::is_key_safe(id) {
        id.to_owned()
    } else {
        return Err(ApiError::not_found("call"));
    };
    Engine::new(&tel.app, tenant)
        .store
        .call(&call_id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))
}

/// The status as `GET /api/calls/{call_sid}/status` answers it (Twilio's vocabulary, which
/// the app reads).
pub fn status_view(call: &Call, now: OffsetDateTime) -> Value {
    let leg = call.carrier.clone().unwrap_or_default();
    let status = if leg.status.is_empty() {
        match call.status {
            CallStatus::Ringing => "ringing",
            s if s.is_ended() => "completed",
            _ => "in-progress",
        }
        .to_owned()
    } else {
        leg.status.clone()
    };
    json!({
        "call_sid": call.call_sid,
        "call_id": call.call_id,
        "status": status,
        "call_status": call.status,
        "duration": call.live_duration(now),
        "start_time": call.start_time,
        "answered_at": leg.answered_at,
        "end_time": call.end_time,
        "direction": if leg.direction.is_empty() { None } else { Some(leg.direction.clone()) },
        "to": if leg.to.is_empty() { call.called_number.clone() } else { Some(leg.to.clone()) },
        "from": if leg.from.is_empty() { Some(call.caller_number.clone()) } else { Some(leg.from.clone()) },
        "price": leg.price,
        "price_unit": leg.price_unit,
        "in_conference": leg.conference.is_some() && leg.conference_sid.is_some(),
        "muted": leg.muted,
        "on_hold": leg.on_hold,
        "transfer_id": call.open_transfer_id,
    })
}

/// The call's status, re-read from Twilio when the stored one is stale and not final.
pub async fn status(tel: &Telephony, user: &AuthUser, id: &str) -> ApiResult<Value> {
    let (mut call, _) = find(tel, &user.tenant, id).await?;
    // Stale: a live status not heard of for a while, or an ended call Twilio has not
    // priced for us yet (it rates calls shortly after they end; an hour at most).
    let stale = call.carrier.as_ref().is_some_and(|leg| {
        let final_status = TwilioStatus::parse(&leg.status).is_some_and(TwilioStatus::is_final);
        let age = transfers::model::parse_time(&leg.synced_at)
            .map(|t| (clock::now() - t).whole_milliseconds());
        let limit = i128::try_from(tel.config.stale_after.as_millis()).unwrap_or(i128::MAX);
        match (final_status, age) {
            (false, age) => age.is_none_or(|a| a > limit),
            (true, Some(a)) => leg.price.is_none() && a > limit && a < 3_600_000,
            (true, None) => false,
        }
    });
    if stale
        && let Some(sid) = owned_sid(tel, &user.tenant, &call).await?
        && let Ok(client) = tel.client_for(&user.tenant).await
    {
        match client.fetch_call(&sid).await {
            Ok(fetched) => {
                if let Some(update) = as_callback(&fetched, client.account_sid())
                    && let Some(applied) =
                        apply_status(tel, &user.tenant, &call.call_id, &update).await?
                {
                    call = applied;
                }
            }
            Err(e) => tracing::warn!(error = %e, %sid, "status refresh failed; serving stored"),
        }
    }
    Ok(status_view(&call, clock::now()))
}

/// The call's Twilio SID if it is recorded as this call's own leg in this tenant (a SID
/// written onto a call by a client is never used at Twilio unless we recorded it).
pub async fn owned_sid(
    tel: &Telephony,
    tenant: &TenantId,
    call: &Call,
) -> ApiResult<Option<String>> {
    let Some(sid) = call.call_sid.clone() else {
        return Ok(None);
    };
    let owner = store::sid_owner(&tel.app, &sid).await?;
    Ok(owner
        .filter(|o| {
            o.tenant_id == tenant.as_str() && o.call_id == call.call_id && o.leg == Leg::Caller
        })
        .map(|_| sid))
}

/// The SID of a live call that this tenant's call owns (409 when ended or not placed;
/// 409 `call_sid_not_owned` when the SID on the record is not one we placed or answered).
pub async fn live_owned_sid(tel: &Telephony, tenant: &TenantId, call: &Call) -> ApiResult<String> {
    let sid = live_sid(call)?;
    match owned_sid(tel, tenant, call).await? {
        Some(owned) if owned == sid => Ok(sid),
        _ => Err(ApiError::conflict(
            "call_sid_not_owned",
            "this call's call_sid is not a call this account placed or answered",
        )),
    }
}

fn live_sid(call: &Call) -> ApiResult<String> {
    if call.status.is_ended() {
        return Err(ApiError::Conflict {
            code: "call_ended",
            message: "the call has ended".into(),
            current: Some(status_view(call, clock::now())),
        });
    }
    call.call_sid.clone().ok_or_else(|| {
        ApiError::conflict(
            "call_not_placed",
            "Twilio has not accepted this call yet; retry shortly",
        )
    })
}

/// Ends a call: completed at Twilio when answered, cancelled while queued or ringing; the
/// record ends at once (its callbacks later add Twilio's duration and price).
pub async fn end(tel: &Telephony, user: &AuthUser, id: &str) -> ApiResult<Value> {
    tel.twilio()?;
    let (call, _) = find(tel, &user.tenant, id).await?;
    crate::policy::may_control(user, &call)?;
    if call.status.is_ended() {
        return Ok(status_view(&call, clock::now()));
    }
    let sid = live_owned_sid(tel, &user.tenant, &call).await?;
    let client = tel.client_for(&user.tenant).await?;
    let answered = call
        .carrier
        .as_ref()
        .and_then(|l| TwilioStatus::parse(&l.status))
        .is_some_and(|s| s.rank() >= TwilioStatus::InProgress.rank());
    let update = if answered {
        CallUpdate::Complete
    } else {
        CallUpdate::Cancel
    };
    let result = client.update_call(&sid, &update).await;
    let ended_status = match &result {
        Ok(fetched) => TwilioStatus::parse(&fetched.status),
        // Twilio no longer knows it as live: it ended on its side.
        Err(crate::client::TwilioFailure::Twilio(e)) if matches!(e.code, Some(20404 | 21220)) => {
            None
        }
        Err(_) => {
            return Err(twilio_error(
                result
                    .err()
                    .unwrap_or(crate::client::TwilioFailure::Unreachable("".into())),
            ));
        }
    };
    let final_status = match ended_status {
        Some(s) if s.is_final() => s,
        _ if answered => TwilioStatus::Completed,
        _ => TwilioStatus::Canceled,
    };
    let prices = prices(tel);
    let call = Engine::new(&tel.app, &user.tenant)
        .update_call_with(&call.call_id, |current, now| {
            if current.status.is_ended() {
                return Ok(None);
            }
            let mut next = current.clone();
            if let Some(leg) = next.carrier.as_mut() {
                leg.status = final_status.as_str().into();
                leg.synced_at = clock::rfc3339(now);
                leg.conference = None;
            }
            end_call(
                &mut next,
                our_status(current.status, final_status),
                now,
                prices,
                &SentFigures::default(),
            );
            Ok(Some((next, Vec::new())))
        })
        .await?;
    Ok(status_view(&call, clock::now()))
}

/// Mutes or holds the caller in the transfer's conference (409 when not in one).
pub async fn participant(
    tel: &Telephony,
    user: &AuthUser,
    id: &str,
    change: ParticipantChange,
) -> ApiResult<Value> {
    tel.twilio()?;
    let (call, _) = find(tel, &user.tenant, id).await?;
    crate::policy::may_control(user, &call)?;
    let sid = live_owned_sid(tel, &user.tenant, &call).await?;
    let client = tel.client_for(&user.tenant).await?;
    let (room, recorded) = call
        .carrier
        .as_ref()
        .and_then(|l| Some((l.conference.clone()?, l.conference_sid.clone()?)))
        .ok_or_else(|| {
            ApiError::conflict(
                "not_in_conference",
                "the call is not in a conference; mute and hold apply to a caller in a transfer",
            )
        })?;
    let update = match change {
        ParticipantChange::Mute(m) => ParticipantUpdate::Mute(m),
        ParticipantChange::Hold(h) => ParticipantUpdate::Hold {
            hold: h,
            hold_url: tel.config.hold_music_url.clone(),
        },
    };
    // Conference callbacks may arrive late or out of order, so the recorded SID can lag the
    // conference the caller is in now: ask Twilio which live conferences carry the room's
    // name (newest first) and address the caller in the first that has them.
    let mut candidates = client.live_conferences(&room).await.unwrap_or_default();
    if !candidates.contains(&recorded) {
        candidates.push(recorded);
    }
    let mut answered = None;
    let mut last_error = None;
    for conference_sid in candidates {
        match client
            .update_participant(&conference_sid, &sid, &update)
            .await
        {
            Ok(_) => {
                answered = Some(conference_sid);
                break;
            }
            Err(crate::client::TwilioFailure::Twilio(e))
                if e.status == 404 || e.code == Some(20404) =>
            {
                last_error = Some(crate::client::TwilioFailure::Twilio(e));
            }
            Err(e) => return Err(twilio_error(e)),
        }
    }
    let Some(conference_sid) = answered else {
        return Err(match last_error {
            Some(e) => twilio_error(e),
            None => ApiError::conflict("not_in_conference", "the caller is in no conference"),
        });
    };
    let call = Engine::new(&tel.app, &user.tenant)
        .update_call_with(&call.call_id, |current, now| {
            let mut next = current.clone();
            let Some(leg) = next.carrier.as_mut() else {
                return Ok(None);
            };
            leg.conference_sid = Some(conference_sid.clone());
            match change {
                ParticipantChange::Mute(m) => leg.muted = m,
                ParticipantChange::Hold(h) => leg.on_hold = h,
            }
            if !next.status.is_ended() {
                next.status = match change {
                    ParticipantChange::Hold(true) => CallStatus::OnHold,
                    ParticipantChange::Hold(false) if next.assigned_agent.is_some() => {
                        CallStatus::Connected
                    }
                    ParticipantChange::Hold(false) if next.open_transfer_id.is_some() => {
                        CallStatus::Transferring
                    }
                    ParticipantChange::Hold(false) => CallStatus::Active,
                    ParticipantChange::Mute(_) => next.status,
                };
            }
            next.updated_at = clock::rfc3339(now);
            Ok(Some((next, Vec::new())))
        })
        .await?;
    Ok(status_view(&call, clock::now()))
}

/// Mute or hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantChange {
    Mute(bool),
    Hold(bool),
}

/// The tenant's own number on `call` (the number called, for an inbound call; the caller
/// ID, for an outbound one): what legs dialled for the call present. With subaccounts off,
/// the organisation's `TWILIO_PHONE_NUMBER` when the call has none.
pub fn our_number(tel: &Telephony, call: &Call) -> Option<String> {
    call.carrier
        .as_ref()
        .map(|l| {
            if l.direction == "inbound" {
                l.to.clone()
            } else {
                l.from.clone()
            }
        })
        .filter(|n| n.starts_with('+'))
        .or_else(|| {
            (!tel.config.subaccounts)
                .then(|| tel.config.phone_number.clone())
                .flatten()
        })
}

/// A cold transfer: the live call is redirected to `<Dial>` the number; when the dialled
/// party hangs up, the call ends (a failed dial tells the caller and hangs up).
pub async fn cold_transfer(
    tel: &Telephony,
    tenant: &TenantId,
    call: &Call,
    number: &str,
) -> ApiResult<Value> {
    tel.twilio()?;
    let policy = tel.dial_policy(tenant).await?;
    tel.check_destination(&policy, number)?;
    vocelio_shared::dnc::ensure_callable(&tel.app, tenant, number).await?;
    let sid = live_owned_sid(tel, tenant, call).await?;
    let client = tel.client_for(tenant).await?;
    if call.open_transfer_id.is_some() {
        return Err(ApiError::conflict(
            "transfer_open",
            "the call already has an open transfer",
        ));
    }
    // The dialled leg is a call like any other: the same quotas, its own time limit.
    let time_limit = tel.reserve_call(tenant).await?;
    let from = our_number(tel, call);
    let action = tel.webhook_url(
        "/twilio/dial-action",
        &[
            ("tenant", tenant.as_str()),
            ("call_id", &call.call_id),
            ("kind", "cold"),
        ],
    )?;
    let document = twiml::response([
        twiml::say("Please hold while we transfer your call."),
        twiml::dial()
            .attr("action", action)
            .attr("timeout", "30")
            .attr("timeLimit", time_limit.to_string())
            .attr_opt("callerId", from)
            .child(twiml::number(number)),
    ]);
    let redirected = client
        .update_call(&sid, &CallUpdate::Redirect(Instructions::Twiml(document)))
        .await
        .map_err(twilio_error);
    or_refund(tel, tenant, time_limit, redirected).await?;
    let number = number.to_owned();
    let call = Engine::new(&tel.app, tenant)
        .update_call_with(&call.call_id, |current, now| {
            let mut next = current.clone();
            if let Some(leg) = next.carrier.as_mut() {
                leg.transferred_to = Some(number.clone());
                leg.transfer_reserved_seconds = Some(u64::from(time_limit));
            }
            if !next.status.is_ended() {
                next.status = CallStatus::Transferring;
            }
            next.transfer_count += 1;
            next.updated_at = clock::rfc3339(now);
            Ok(Some((next, Vec::new())))
        })
        .await?;
    Ok(json!({
        "call_sid": call.call_sid,
        "call_id": call.call_id,
        "mode": "cold",
        "transfer_to": number,
        "status": "transferring",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: CallStatus, leg_status: TwilioStatus, sequence: Option<u32>) -> Call {
        let at = "2026-11-25T10:00:00.000Z";
        let mut leg = new_leg(
            "outbound-api",
            "+14155550123",
            "+14155550100",
            leg_status,
            at,
        );
        leg.sequence = sequence;
        let mut call = Call::new(
            "call_1".into(),
            "+14155550123".into(),
            Direction::Outbound,
            status,
            at,
        );
        call.call_sid = Some("CA0123456789abcdef0123456789abcdef".into());
        call.called_number = Some("+14155550100".into());
        call.carrier = Some(leg);
        call
    }

    fn report(status: TwilioStatus, sequence: u32, duration: Option<u32>) -> StatusCallback {
        StatusCallback {
            sequence_number: Some(sequence),
            call_duration_seconds: duration,
            ..StatusCallback::bare(
                "CA0123456789abcdef0123456789abcdef",
                "ACc0ffee00000000000000000000000000",
                status,
            )
        }
    }

    fn at(seconds: i64) -> OffsetDateTime {
        transfers::model::parse_time("2026-11-25T10:00:00.000Z").expect("time")
            + time::Duration::seconds(seconds)
    }

    #[test]
    fn answering_makes_a_ringing_call_active_and_the_end_uses_twilios_duration() {
        let ringing = call(CallStatus::Ringing, TwilioStatus::Ringing, Some(1));
        let live = apply_carrier(
            &ringing,
            &report(TwilioStatus::InProgress, 2, None),
            at(5),
            (0.1, 1.0),
        )
        .expect("applies");
        assert_eq!(live.status, CallStatus::Active);
        let leg = live.carrier.clone().expect("leg");
        assert_eq!(
            (leg.status.as_str(), leg.sequence),
            ("in-progress", Some(2))
        );
        assert!(leg.answered_at.is_some());
        let ended = apply_carrier(
            &live,
            &report(TwilioStatus::Completed, 3, Some(42)),
            at(60),
            (0.1, 1.0),
        )
        .expect("applies");
        assert_eq!(ended.status, CallStatus::Completed);
        assert_eq!(ended.duration, Some(42));
        assert_eq!(ended.ai_minutes, 0.7);
        // Repeated and late reports change nothing.
        assert!(
            apply_carrier(
                &ended,
                &report(TwilioStatus::Completed, 3, Some(42)),
                at(61),
                (0.1, 1.0)
            )
            .is_none()
        );
        assert!(
            apply_carrier(
                &ended,
                &report(TwilioStatus::Ringing, 1, None),
                at(62),
                (0.1, 1.0)
            )
            .is_none()
        );
    }

    #[test]
    fn outcomes_map_to_our_statuses_and_live_states_are_kept() {
        assert_eq!(
            our_status(CallStatus::Ringing, TwilioStatus::Busy),
            CallStatus::Missed
        );
        assert_eq!(
            our_status(CallStatus::Ringing, TwilioStatus::NoAnswer),
            CallStatus::Missed
        );
        assert_eq!(
            our_status(CallStatus::Ringing, TwilioStatus::Canceled),
            CallStatus::Abandoned
        );
        assert_eq!(
            our_status(CallStatus::Active, TwilioStatus::Failed),
            CallStatus::Failed
        );
        assert_eq!(
            our_status(CallStatus::Connected, TwilioStatus::InProgress),
            CallStatus::Connected
        );
        assert_eq!(
            our_status(CallStatus::Ringing, TwilioStatus::Initiated),
            CallStatus::Ringing
        );
        // A completed report that overtook ringing still ends the call.
        let queued = call(CallStatus::Ringing, TwilioStatus::Queued, None);
        let ended = apply_carrier(
            &queued,
            &report(TwilioStatus::Busy, 3, Some(0)),
            at(3),
            (0.1, 1.0),
        )
        .expect("applies");
        assert_eq!(ended.status, CallStatus::Missed);
        assert!(
            apply_carrier(
                &ended,
                &report(TwilioStatus::Ringing, 1, None),
                at(4),
                (0.1, 1.0)
            )
            .is_none()
        );
    }

    #[test]
    fn idempotency_keys_name_one_call_per_tenant() {
        let a = TenantId::parse("acme").expect("tenant");
        let b = TenantId::parse("globex").expect("tenant");
        assert_eq!(call_id_for(&a, Some("k1")), call_id_for(&a, Some("k1")));
        assert_ne!(call_id_for(&a, Some("k1")), call_id_for(&b, Some("k1")));
        assert!(ids::is_key_safe(&call_id_for(&a, Some("k1"))));
        assert_ne!(call_id_for(&a, None), call_id_for(&a, None));
    }
}
