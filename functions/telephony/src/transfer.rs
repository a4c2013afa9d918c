//! Transfers of Twilio calls to people. A department transfer is a transfer request of the
//! transfer service; its events drive the phone side: the caller waits in a conference with
//! hold music, each agent the routing offers the transfer to is dialled into it (hearing the
//! context first when the transfer is warm), the agent answering accepts the offer and an
//! agent who does not answer declines it, so the routing moves on. Events arrive through the
//! table's stream (at least once): every leg is dialled once, behind a marker item.

use serde_json::{Value, json};
use transfers::engine::{Decline, Engine, NewTransfer};
use transfers::model::{Call, CallStatus, Transfer, TransferStatus, TransferType, Urgency};
use vocelio_shared::events::{StreamedEvent, types};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AuthUser, Role, clock, phone};

use crate::callback::{CallStatus as TwilioStatus, StatusCallback};
use crate::calls::{self, cold_transfer};
use crate::client::{CallUpdate, Instructions, NewCall};
use crate::service::{Telephony, twilio_error};
use crate::store::{self, Leg, LegMark, SidOwner};
use crate::twiml;

/// The conference room of a transfer.
pub fn room(transfer_id: &str) -> String {
    format!("transfer-{transfer_id}")
}

/// `transfer_to`: a phone number (cold transfer) or a department id or name.
pub async fn transfer(
    tel: &Telephony,
    user: &AuthUser,
    id: &str,
    transfer_to: &str,
    context: Option<String>,
    mode: Option<&str>,
) -> ApiResult<Value> {
    let transfer_to = transfer_to.trim();
    if transfer_to.is_empty() {
        return Err(ApiError::field("transfer_to", "is required"));
    }
    let warm = match mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("cold") | Some("blind") => false,
        Some("warm") | Some("consult") => true,
        Some(_) => return Err(ApiError::field("mode", "must be warm or cold")),
    };
    if let Some(c) = &context
        && c.chars().count() > 2000
    {
        return Err(ApiError::field(
            "context",
            "must be at most 2000 characters",
        ));
    }
    tel.twilio()?;
    let (call, _) = calls::find(tel, &user.tenant, id).await?;
    crate::policy::may_control(user, &call)?;
    let looks_like_number = transfer_to.starts_with('+')
        || transfer_to
            .chars()
            .all(|c| c.is_ascii_digit() || " ()-.".contains(c));
    if looks_like_number {
        let number = phone::normalize(transfer_to, tel.app.config.default_phone_region)
            .map_err(|e| ApiError::field("transfer_to", format!("{e}")))?;
        if warm {
            return Err(ApiError::field(
                "mode",
                "a warm transfer goes to a department (its agents hear the context first)",
            ));
        }
        // Bridging a live call to a number is dialling: the same rules as placing a call.
        crate::policy::may_dial(user, &tel.dial_policy(&user.tenant).await?)?;
        return cold_transfer(tel, &user.tenant, &call, number.as_str()).await;
    }
    if call.call_sid.is_none() {
        return Err(ApiError::conflict(
            "call_not_placed",
            "Twilio has not accepted this call yet; retry shortly",
        ));
    }
    let request = NewTransfer {
        call_id: call.call_id.clone(),
        department: transfer_to.to_owned(),
        transfer_type: if warm {
            TransferType::Warm
        } else {
            TransferType::Cold
        },
        transfer_reason: Some("telephony_transfer".into()),
        urgency_level: Urgency::Medium,
        context_summary: context,
        required_skills: Vec::new(),
        language: None,
    };
    let transfer = Engine::new(&tel.app, &user.tenant)
        .request(request, &user.user_id, None)
        .await?;
    Ok(json!({
        "call_sid": call.call_sid,
        "call_id": call.call_id,
        "mode": if warm { "warm" } else { "cold" },
        "transfer_id": transfer.transfer_id,
        "department_id": transfer.department_id,
        "target_department": transfer.target_department,
        "status": transfer.status,
        "agent_id": transfer.agent_id,
        "conference": room(&transfer.transfer_id),
    }))
}

fn transfer_of(event: &StreamedEvent) -> Option<Transfer> {
    serde_json::from_value(event.event.data.get("transfer")?.clone()).ok()
}

/// Reacts to one event of the log (the stream consumer calls this for each).
pub async fn on_event(tel: &Telephony, event: &StreamedEvent) -> ApiResult<()> {
    if tel.twilio().is_err() {
        return Ok(());
    }
    let kind = event.event.event_type.as_str();
    let Some(transfer) = transfer_of(event) else {
        return Ok(());
    };
    let tenant = &event.tenant;
    match kind {
        types::TRANSFER_INITIATED => hold_caller(tel, tenant, &transfer).await,
        types::TRANSFER_ASSIGNED => dial_agent(tel, tenant, &transfer).await,
        types::TRANSFER_CANCELLED | types::TRANSFER_FAILED => {
            release_caller(tel, tenant, &transfer).await
        }
        _ => Ok(()),
    }
}

/// The caller's Twilio call of a transfer, if it is one we carry and it is live.
async fn live_call(
    tel: &Telephony,
    tenant: &TenantId,
    transfer: &Transfer,
) -> ApiResult<Option<Call>> {
    let call = Engine::new(&tel.app, tenant)
        .store
        .call(&transfer.call_id)
        .await?
        .map(|(c, _)| c);
    Ok(call.filter(|c| {
        c.call_sid.is_some()
            && !c.status.is_ended()
            && c.carrier
                .as_ref()
                .and_then(|l| TwilioStatus::parse(&l.status))
                .is_some_and(|s| !s.is_final())
    }))
}

/// Moves the caller into the transfer's conference, where hold music plays until an agent
/// joins; the caller leaving ends it.
async fn hold_caller(tel: &Telephony, tenant: &TenantId, transfer: &Transfer) -> ApiResult<()> {
    let Some(call) = live_call(tel, tenant, transfer).await? else {
        return Ok(());
    };
    if store::mark_leg(&tel.app, tenant, &transfer.transfer_id, "caller").await? == LegMark::Done {
        return Ok(());
    }
    let Some(sid) = calls::owned_sid(tel, tenant, &call).await? else {
        tracing::warn!(call_id = %call.call_id, "the call's SID is not one we placed or answered; not moved");
        return Ok(());
    };
    let room = room(&transfer.transfer_id);
    let query = [
        ("tenant", tenant.as_str()),
        ("call_id", call.call_id.as_str()),
        ("transfer_id", transfer.transfer_id.as_str()),
    ];
    let events = tel.webhook_url("/twilio/conference-status", &query)?;
    let action = tel.webhook_url(
        "/twilio/dial-action",
        &[
            ("tenant", tenant.as_str()),
            ("call_id", call.call_id.as_str()),
            ("kind", "conference"),
        ],
    )?;
    let document = twiml::response([
        twiml::say(&format!(
            "Please hold while I connect you with {}.",
            transfer.target_department
        )),
        twiml::dial().attr("action", action).child(
            twiml::conference(&room)
                .attr("startConferenceOnEnter", "false")
                .attr("endConferenceOnExit", "true")
                .attr("beep", "false")
                .attr("waitUrl", tel.config.hold_music_url.clone())
                .attr("waitMethod", "GET")
                .attr("statusCallback", events)
                .attr("statusCallbackEvent", "start end join leave mute hold"),
        ),
    ]);
    tel.client_for(tenant)
        .await?
        .update_call(&sid, &CallUpdate::Redirect(Instructions::Twiml(document)))
        .await
        .map_err(twilio_error)?;
    let done = store::leg_done(&tel.app, tenant, &transfer.transfer_id, "caller")?;
    Engine::new(&tel.app, tenant)
        .update_call_with(&call.call_id, |current, now| {
            let mut next = current.clone();
            if let Some(leg) = next.carrier.as_mut() {
                leg.conference = Some(room.clone());
            }
            next.updated_at = clock::rfc3339(now);
            Ok(Some((next, vec![done.clone()])))
        })
        .await?;
    Ok(())
}

/// The longest context an agent hears before a warm transfer (about 20 s of speech).
pub const MAX_WHISPER_CHARS: usize = 300;

/// `text` cut to at most `max` characters at a word boundary, with an ellipsis when cut.
pub fn bounded(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max / 2 => cut[..i].trim_end().to_owned(),
        _ => cut,
    };
    format!("{cut}…")
}

/// Dials the agent the routing offered the transfer to, into its conference; a warm
/// transfer's agent hears the context first.
async fn dial_agent(tel: &Telephony, tenant: &TenantId, transfer: &Transfer) -> ApiResult<()> {
    let Some(agent_id) = transfer.agent_id.clone() else {
        return Ok(());
    };
    let Some(call) = live_call(tel, tenant, transfer).await? else {
        return Ok(());
    };
    // The event may be old (a retried batch): dial only an offer that still stands.
    let still_offered = Engine::new(&tel.app, tenant)
        .store
        .transfer(&transfer.transfer_id)
        .await?
        .is_some_and(|(t, _)| {
            t.status == TransferStatus::Assigned && t.agent_id.as_deref() == Some(agent_id.as_str())
        });
    if !still_offered {
        return Ok(());
    }
    if store::mark_leg(&tel.app, tenant, &transfer.transfer_id, &agent_id).await? == LegMark::Done {
        return Ok(());
    }
    // Twilio Client identities are tenant-scoped keyed hashes: a same-named agent of
    // another tenant is another identity.
    let target = tel
        .config
        .agent_dial_target
        .replace("{identity}", &tel.client_identity(tenant, &agent_id)?)
        .replace("{agent_id}", &agent_id);
    if target.starts_with('+') {
        // An agent reached at a phone number is a number dialled like any other.
        vocelio_shared::dnc::ensure_callable(&tel.app, tenant, &target).await?;
    }
    let from = calls::our_number(tel, &call).unwrap_or_default();
    let query = [
        ("tenant", tenant.as_str()),
        ("call_id", call.call_id.as_str()),
        ("transfer_id", transfer.transfer_id.as_str()),
    ];
    let conference = twiml::dial().child(
        twiml::conference(&room(&transfer.transfer_id))
            .attr("startConferenceOnEnter", "true")
            .attr("endConferenceOnExit", "true")
            .attr("beep", "false")
            .attr(
                "statusCallback",
                tel.webhook_url("/twilio/conference-status", &query)?,
            )
            .attr("statusCallbackEvent", "start end join leave"),
    );
    // The whisper is bounded, and shortened further if the document would pass Twilio's
    // 4,000-character limit (which would refuse the leg, offer after offer).
    let mut budget = MAX_WHISPER_CHARS;
    let document = loop {
        let mut verbs = Vec::new();
        if transfer.transfer_type == TransferType::Warm {
            let context = transfer
                .context_summary
                .as_deref()
                .map(|c| bounded(c, budget))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "No summary was given.".into());
            verbs.push(twiml::say(&format!(
                "Transfer for {} from {}. {}",
                bounded(&transfer.target_department, 80),
                transfer.caller_number,
                context
            )));
        }
        verbs.push(conference.clone());
        let document = twiml::response(verbs);
        if document.chars().count() <= crate::client::MAX_TWIML_CHARS || budget == 0 {
            break document;
        }
        budget /= 2;
    };
    let status = tel.webhook_url(
        "/twilio/status",
        &[
            ("tenant", tenant.as_str()),
            ("call_id", call.call_id.as_str()),
            ("transfer_id", transfer.transfer_id.as_str()),
            ("agent_id", agent_id.as_str()),
            ("leg", "agent"),
        ],
    )?;
    let placed = tel
        .client_for(tenant)
        .await?
        .create_call(&NewCall {
            to: target,
            from,
            instructions: Instructions::Twiml(document),
            status_callback: Some(status),
            timeout_seconds: Some(tel.config.agent_ring_seconds),
            time_limit_seconds: Some(tel.config.limits.max_call_seconds),
        })
        .await;
    match placed {
        Ok(leg) => {
            let agent_id_done = agent_id.clone();
            let owner = SidOwner {
                tenant_id: tenant.as_str().to_owned(),
                call_id: call.call_id.clone(),
                leg: Leg::Agent,
                transfer_id: Some(transfer.transfer_id.clone()),
                agent_id: Some(agent_id),
            };
            // First checked before the offer could lapse (a lost `answered` must not let
            // it), then every LEG_CHECK_SECONDS while the leg lives.
            let first_check = tel
                .config
                .leg_check_seconds
                .min(u64::from(tel.config.agent_ring_seconds) + 5);
            let action = store::put_agent_leg_owner(&tel.app, &leg.sid, &owner, first_check)?;
            let done = store::leg_done(&tel.app, tenant, &transfer.transfer_id, &agent_id_done)?;
            vocelio_shared::dynamo::commit(&tel.app.db, vec![action, done]).await?;
            Ok(())
        }
        // Twilio is down or throttling us: the event fails, the stream retries it, and the
        // pending marker lets the retry dial.
        Err(failure @ crate::client::TwilioFailure::Unreachable(_)) => Err(twilio_error(failure)),
        Err(crate::client::TwilioFailure::Twilio(e)) if e.status == 429 || e.status >= 500 => {
            Err(twilio_error(crate::client::TwilioFailure::Twilio(e)))
        }
        Err(failure) => {
            let agent_id_done = agent_id.clone();
            tracing::warn!(error = %failure, transfer_id = %transfer.transfer_id, "agent leg refused by Twilio; declining the offer");
            let done = store::leg_done(&tel.app, tenant, &transfer.transfer_id, &agent_id_done)?;
            vocelio_shared::dynamo::commit(&tel.app.db, vec![done]).await?;
            decline_now(
                &Engine::new(&tel.app, tenant),
                &transfer.transfer_id,
                &agent_id_done,
            )
            .await
        }
    }
}

/// A transfer that ended without an agent: the caller is told and the call ends.
async fn release_caller(tel: &Telephony, tenant: &TenantId, transfer: &Transfer) -> ApiResult<()> {
    if transfer.outcome.as_deref() == Some("call_ended") {
        return Ok(());
    }
    let Some(call) = live_call(tel, tenant, transfer).await? else {
        return Ok(());
    };
    if call.carrier.as_ref().and_then(|l| l.conference.clone()) != Some(room(&transfer.transfer_id))
    {
        return Ok(());
    }
    let Some(sid) = calls::owned_sid(tel, tenant, &call).await? else {
        return Ok(());
    };
    let document = twiml::response([
        twiml::say("Sorry, no one can take your call right now. Please call again later. Goodbye."),
        twiml::hangup(),
    ]);
    tel.client_for(tenant)
        .await?
        .update_call(&sid, &CallUpdate::Redirect(Instructions::Twiml(document)))
        .await
        .map_err(twilio_error)?;
    Ok(())
}

/// A status report of an agent's leg: answering accepts the offer; not answering declines
/// it (the routing offers the next agent); hanging up after talking completes the transfer.
pub async fn on_agent_leg(
    tel: &Telephony,
    tenant: &TenantId,
    transfer_id: &str,
    agent_id: &str,
    update: &StatusCallback,
) -> ApiResult<()> {
    let engine = Engine::new(&tel.app, tenant);
    let Some((transfer, _)) = engine.store.transfer(transfer_id).await? else {
        return Ok(());
    };
    if transfer.agent_id.as_deref() != Some(agent_id) {
        return Ok(());
    }
    // The report must be about the leg we placed for this offer (once its SID is recorded;
    // a report that beats our write of it is taken on the signed URL alone).
    if let Some(owner) = store::sid_owner(&tel.app, &update.call_sid).await?
        && (owner.tenant_id != tenant.as_str()
            || owner.leg != Leg::Agent
            || owner.transfer_id.as_deref() != Some(transfer_id)
            || owner.agent_id.as_deref() != Some(agent_id))
    {
        tracing::warn!(call_sid = %update.call_sid, %transfer_id, "a status report of another leg named this offer; ignored");
        return Ok(());
    }
    let agent = AuthUser {
        user_id: agent_id.to_owned(),
        tenant: tenant.clone(),
        role: Role::Agent,
        scopes: None,
    };
    let outcome = match (update.status, transfer.status) {
        (TwilioStatus::InProgress, TransferStatus::Assigned) => {
            engine.accept(&agent, transfer_id).await.map(|_| ())
        }
        (
            TwilioStatus::Busy
            | TwilioStatus::NoAnswer
            | TwilioStatus::Failed
            | TwilioStatus::Canceled,
            TransferStatus::Assigned,
        ) => decline_now(&engine, transfer_id, agent_id).await,
        (TwilioStatus::Completed, TransferStatus::Connected) => engine
            .complete(&agent, transfer_id, Some("resolved".into()), None)
            .await
            .map(|_| ()),
        // Completed while still offered: the agent answered and hung up and both earlier
        // reports were lost (Twilio reports unanswered legs as busy or no-answer).
        (TwilioStatus::Completed, TransferStatus::Assigned) => {
            match engine.accept(&agent, transfer_id).await {
                Ok(_) => engine
                    .complete(&agent, transfer_id, Some("resolved".into()), None)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    };
    match outcome {
        // The transfer's state moved on first (the app, the sweeper): theirs stands. A
        // transfer that kept changing is not that: it fails (5xx) and is logged.
        Err(ApiError::Conflict { code, .. }) if code != "concurrent_update" => Ok(()),
        Err(ApiError::Conflict { message, .. }) => Err(ApiError::Unavailable(message)),
        other => other,
    }
}

/// Gives an offer back at once because the agent's leg was not answered: the next agent is
/// offered now, not when the offer would have lapsed.
async fn decline_now(engine: &Engine<'_>, transfer_id: &str, agent_id: &str) -> ApiResult<()> {
    match engine
        .decline_offer(None, Some(agent_id), transfer_id, Decline::NotAnswered)
        .await
    {
        Ok(_) => Ok(()),
        Err(ApiError::Conflict { code, .. }) if code != "concurrent_update" => Ok(()),
        Err(e) => Err(e),
    }
}

/// A conference event of a transfer: the conference SID is kept on the caller's call while
/// the caller is in it (mute and hold need it); mute and hold changes are mirrored.
pub async fn on_conference(
    tel: &Telephony,
    tenant: &TenantId,
    call_id: &str,
    params: &[(String, String)],
) -> ApiResult<()> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(conference_sid) = get("ConferenceSid").filter(|s| crate::callback::is_sid("CF", s))
    else {
        return Err(ApiError::field("ConferenceSid", "is missing or malformed"));
    };
    let event = get("StatusCallbackEvent").unwrap_or_default();
    let participant = get("CallSid");
    let friendly = get("FriendlyName");
    Engine::new(&tel.app, tenant)
        .update_call_with(call_id, |current, now| {
            let mut next = current.clone();
            let Some(leg) = next.carrier.as_mut() else {
                return Ok(None);
            };
            if leg.conference.is_none() || leg.conference != friendly {
                return Ok(None);
            }
            let is_caller = participant.is_some() && participant == current.call_sid;
            let mut changed = false;
            // Mute and hold address the caller's participant: known once the caller is in.
            if is_caller
                && event == "participant-join"
                && leg.conference_sid.as_deref() != Some(conference_sid.as_str())
            {
                leg.conference_sid = Some(conference_sid.clone());
                changed = true;
            }
            if is_caller && event == "participant-leave" && leg.conference_sid.is_some() {
                leg.conference_sid = None;
                leg.muted = false;
                leg.on_hold = false;
                changed = true;
            }
            if is_caller {
                let flag = |name: &str| get(name).map(|v| v == "true");
                match event.as_str() {
                    "participant-mute" | "participant-unmute" => {
                        if let Some(m) = flag("Muted")
                            && leg.muted != m
                        {
                            leg.muted = m;
                            changed = true;
                        }
                    }
                    "participant-hold" | "participant-unhold" => {
                        if let Some(h) = flag("Hold")
                            && leg.on_hold != h
                        {
                            leg.on_hold = h;
                            changed = true;
                        }
                    }
                    _ => {}
                }
            }
            if !changed {
                return Ok(None);
            }
            next.updated_at = clock::rfc3339(now);
            Ok(Some((next, Vec::new())))
        })
        .await?;
    Ok(())
}

/// What the caller hears when the `<Dial>` of a transfer ends: after a cold transfer that
/// connected, or after the conference with the agent, the call ends; a dial that failed
/// says so first.
pub async fn after_dial(
    tel: &Telephony,
    tenant: &TenantId,
    call_id: &str,
    kind: &str,
    dial_status: Option<&str>,
    dial_seconds: Option<u64>,
) -> ApiResult<String> {
    let connected = matches!(dial_status, None | Some("completed" | "answered"));
    if kind == "cold" {
        Engine::new(&tel.app, tenant)
            .update_call_with(call_id, |current, now| {
                let mut next = current.clone();
                let mut extra = Vec::new();
                // The dialled leg's minutes: what it used, less what was reserved (once).
                if let Some(leg) = next.carrier.as_mut()
                    && let Some(reserved) = leg.transfer_reserved_seconds.take()
                {
                    let used = i64::try_from(dial_seconds.unwrap_or(0)).unwrap_or(0);
                    let delta = used - i64::try_from(reserved).unwrap_or(0);
                    if delta != 0 {
                        extra.push(tel.count_minutes(tenant, delta)?);
                    }
                }
                let moves =
                    !current.status.is_ended() && current.status == CallStatus::Transferring;
                if moves {
                    next.status = if connected {
                        CallStatus::Connected
                    } else {
                        CallStatus::Active
                    };
                }
                if !moves && extra.is_empty() {
                    return Ok(None);
                }
                next.updated_at = clock::rfc3339(now);
                Ok(Some((next, extra)))
            })
            .await?;
    }
    Ok(if connected {
        twiml::response([twiml::hangup()])
    } else {
        twiml::response([
            twiml::say("Sorry, the transfer could not be completed. Goodbye."),
            twiml::hangup(),
        ])
    })
}
