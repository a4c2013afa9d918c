//! The transfer engine: raising transfers, routing them to agents or queues, offers,
//! accepts, declines, completions, cancellations, and calls. Every operation reads, computes
//! the change with the pure rules of [`crate::model`], and commits the change and its domain
//! events in one transaction whose conditions (record versions, agent availability) make a
//! lost race fail cleanly; the engine then re-reads and tries again or the next candidate.

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use vocelio_shared::agent::{Agent, AgentStatus};
use vocelio_shared::dynamo::{Cancellation, commit};
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::idempotency::Idempotent;
use vocelio_shared::ids::{TenantId, new_id};
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, Role, clock, directory};

use crate::model::{Call, CallStatus, Transfer, TransferStatus, TransferType, Urgency, round2};
use crate::store::{Store, conflict};

/// How often a lost race is retried before the request answers 409.
const ATTEMPTS: usize = 8;

/// Why an offered agent gives a transfer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    /// The agent said no (they stay available).
    Declined,
    /// The offer lapsed (the sweeper): acts only once it has expired; the agent goes offline.
    OfferTimeout,
    /// The agent's phone leg was busy, unanswered or failed: acts at once, so the next
    /// agent is offered within seconds; the agent goes offline (not at their desk).
    NotAnswered,
}

impl Decline {
    /// The `reason` of the `transfer_declined` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Decline::Declined => "declined",
            Decline::OfferTimeout => "offer_timeout",
            Decline::NotAnswered => "not_answered",
        }
    }
}
/// How many candidates one attempt tries before re-reading.
const CANDIDATES_PER_ATTEMPT: usize = 5;

/// A validated transfer request.
#[derive(Debug, Clone, Serialize)]
pub struct NewTransfer {
    pub call_id: String,
    /// A department id or name.
    pub department: String,
    pub transfer_type: TransferType,
    pub transfer_reason: Option<String>,
    pub urgency_level: Urgency,
    pub context_summary: Option<String>,
    pub required_skills: Vec<String>,
    pub language: Option<String>,
}

/// The engine of one tenant.
pub struct Engine<'a> {
    pub store: Store<'a>,
    state: &'a AppState,
    tenant: &'a TenantId,
}

enum Claim {
    Claimed(Box<Transfer>),
    AgentChanged,
    OthersChanged,
}

fn seconds_after(now: OffsetDateTime, seconds: u32) -> String {
    clock::rfc3339(now + time::Duration::seconds(i64::from(seconds)))
}

impl<'a> Engine<'a> {
    /// The engine of `tenant`.
    pub fn new(state: &'a AppState, tenant: &'a TenantId) -> Self {
        Self {
            store: Store::new(state, tenant),
            state,
            tenant,
        }
    }

    fn event(
        &self,
        kind: &'static str,
        data: serde_json::Value,
        now: OffsetDateTime,
    ) -> ApiResult<TransactWriteItem> {
        DomainEvent::new(kind, &data, now)?.put(self.state, self.tenant)
    }

    async fn commit(&self, actions: Vec<TransactWriteItem>) -> ApiResult<Option<Cancellation>> {
        commit(&self.state.db, actions).await
    }

    /// Raises a transfer: offered at once to the best eligible available agent, else queued.
    pub async fn request(
        &self,
        request: NewTransfer,
        requested_by: &str,
        guard: Option<&Idempotent>,
    ) -> ApiResult<Transfer> {
        let department_id = directory::resolve(self.state, self.tenant, &request.department)
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "target_department",
                    "no active department has this id or name",
                )
            })?;
        let department = directory::department(self.state, self.tenant, &department_id)
            .await?
            .filter(|d| d.is_active)
            .ok_or_else(|| {
                ApiError::field(
                    "target_department",
                    "no active department has this id or name",
                )
            })?;
        for _ in 0..ATTEMPTS {
            let (call, call_version) = self
                .store
                .call(&request.call_id)
                .await?
                .ok_or_else(|| ApiError::not_found("call"))?;
            if call.status.is_ended() {
                return Err(ApiError::Conflict {
                    code: "call_ended",
                    message: "the call has ended; it cannot be transferred".into(),
                    current: serde_json::to_value(&call).ok(),
                });
            }
            if let Some(open) = &call.open_transfer_id {
                let current = self.store.transfer(open).await?.map(|(t, _)| t);
                return Err(ApiError::Conflict {
                    code: "transfer_open",
                    message: format!("the call already has an open transfer ({open})"),
                    current: current.and_then(|t| serde_json::to_value(t).ok()),
                });
            }
            let now = clock::now();
            let at = clock::rfc3339(now);
            let transfer = Transfer {
                transfer_id: new_id("transfer"),
                call_id: call.call_id.clone(),
                department_id: department.id.clone(),
                target_department: department.name.clone(),
                transfer_type: request.transfer_type,
                transfer_reason: request.transfer_reason.clone(),
                urgency_level: request.urgency_level,
                context_summary: request.context_summary.clone(),
                required_skills: request.required_skills.clone(),
                language: request.language.clone(),
                caller_number: call.caller_number.clone(),
                status: TransferStatus::Queued,
                agent_id: None,
                declined_by: Vec::new(),
                call_index: u32::try_from(call.transfers.len()).unwrap_or(u32::MAX),
                requested_by: requested_by.to_owned(),
                requested_at: at.clone(),
                assigned_at: None,
                offer_expires_at: None,
                accepted_at: None,
                ended_at: None,
                outcome: None,
                notes: None,
                updated_at: at,
            };
            let candidates = crate::model::rank_candidates(
                &transfer,
                self.store
                    .agents_in(&department.id, Some(AgentStatus::Available))
                    .await?,
            );
            let mut call_changed = false;
            for agent in candidates.into_iter().take(CANDIDATES_PER_ATTEMPT) {
                match self
                    .commit_new(&call, call_version, &transfer, Some(&agent), guard, now)
                    .await?
                {
                    NewOutcome::Done(t) => return Ok(*t),
                    NewOutcome::AgentTaken => continue,
                    NewOutcome::CallChanged => {
                        call_changed = true;
                        break;
                    }
                }
            }
            if call_changed {
                continue;
            }
            match self
                .commit_new(&call, call_version, &transfer, None, guard, now)
                .await?
            {
                NewOutcome::Done(queued) => {
                    // An agent may have become available between our look and our write: try
                    // once more now that the transfer is in the queue.
                    return Ok(self
                        .assign_queued(&queued.transfer_id)
                        .await?
                        .unwrap_or(*queued));
                }
                NewOutcome::AgentTaken | NewOutcome::CallChanged => continue,
            }
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the call kept changing; retry",
        ))
    }

    async fn commit_new(
        &self,
        call: &Call,
        call_version: u64,
        transfer: &Transfer,
        agent: Option<&Agent>,
        guard: Option<&Idempotent>,
        now: OffsetDateTime,
    ) -> ApiResult<NewOutcome> {
        let mut transfer = transfer.clone();
        let at = clock::rfc3339(now);
        if let Some(agent) = agent {
            transfer.status = TransferStatus::Assigned;
            transfer.agent_id = Some(agent.agent_id.clone());
            transfer.assigned_at = Some(at.clone());
            transfer.offer_expires_at =
                Some(seconds_after(now, self.state.config.offer_timeout_seconds));
        }
        let mut next_call = call.clone();
        next_call.status = CallStatus::Transferring;
        next_call.open_transfer_id = Some(transfer.transfer_id.clone());
        next_call.transfer_count += 1;
        next_call.transfers.push(transfer.summary());
        next_call.updated_at = at.clone();
        let mut actions = vec![
            self.store.create_transfer(&transfer)?,
            self.store.replace_call(&next_call, call_version)?,
        ];
        let agent_index = actions.len();
        let mut events = vec![self.event(
            types::TRANSFER_INITIATED,
            transfer_event(&transfer, now),
            now,
        )?];
        if let Some(agent) = agent {
            let busy = self.busy(agent, &transfer, now);
            actions.push(self.store.replace_agent(agent, &busy)?);
            events.push(self.event(
                types::TRANSFER_ASSIGNED,
                transfer_event(&transfer, now),
                now,
            )?);
            events.push(self.event(
                types::AGENT_STATUS_CHANGED,
                agent_event(&busy, agent.status),
                now,
            )?);
        } else {
            events.push(self.event(types::TRANSFER_QUEUED, transfer_event(&transfer, now), now)?);
            events.push(self.event(
                types::QUEUE_UPDATED,
                json!({"department_id": transfer.department_id}),
                now,
            )?);
        }
        events.push(self.event(types::CALL_STATUS_UPDATE, call_event(&next_call, now), now)?);
        actions.extend(events);
        let guard_index = actions.len();
        if let Some(guard) = guard {
            actions.push(guard.record(
                self.state,
                axum::http::StatusCode::CREATED,
                &json!({"transfer_id": transfer.transfer_id}),
            )?);
        }
        match self.commit(actions).await? {
            None => Ok(NewOutcome::Done(Box::new(transfer))),
            Some(c) if agent.is_some() && c.condition_failed(agent_index) => {
                Ok(NewOutcome::AgentTaken)
            }
            Some(c) if c.condition_failed(1) => Ok(NewOutcome::CallChanged),
            Some(c) if guard.is_some() && c.condition_failed(guard_index) => {
                Err(ApiError::conflict(
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key was completed concurrently",
                ))
            }
            Some(c) => Err(ApiError::internal(format!(
                "transfer request cancelled: {:?}",
                c.reasons
            ))),
        }
    }

    /// The agent, busy with `transfer`.
    fn busy(&self, agent: &Agent, transfer: &Transfer, now: OffsetDateTime) -> Agent {
        let at = clock::rfc3339(now);
        Agent {
            status: AgentStatus::Busy,
            current_transfer_id: Some(transfer.transfer_id.clone()),
            current_call_id: Some(transfer.call_id.clone()),
            wrap_up_until: None,
            last_activity: at.clone(),
            updated_at: at,
            version: agent.version + 1,
            ..agent.clone()
        }
    }

    /// The agent, freed into `status` (available, wrap-up until a time, or offline).
    fn freed(&self, agent: &Agent, status: AgentStatus, now: OffsetDateTime) -> Agent {
        let at = clock::rfc3339(now);
        let wrap_up_until = (status == AgentStatus::WrapUp)
            .then(|| seconds_after(now, self.state.config.wrap_up_seconds));
        Agent {
            status,
            current_transfer_id: None,
            current_call_id: None,
            wrap_up_until,
            last_activity: at.clone(),
            updated_at: at,
            version: agent.version + 1,
            ..agent.clone()
        }
    }

    /// Adds to `actions` the freeing of `agent` from `transfer_id` into `status` (when the
    /// agent still holds it) and its event; returns the agent as it will be.
    fn release_agent(
        &self,
        agent: Option<Agent>,
        transfer_id: &str,
        status: AgentStatus,
        now: OffsetDateTime,
        actions: &mut Vec<TransactWriteItem>,
    ) -> ApiResult<Option<Agent>> {
        let Some(before) = agent.filter(|a| a.current_transfer_id.as_deref() == Some(transfer_id))
        else {
            return Ok(None);
        };
        let after = self.freed(&before, status, now);
        actions.push(self.store.replace_agent(&before, &after)?);
        actions.push(self.event(
            types::AGENT_STATUS_CHANGED,
            agent_event(&after, before.status),
            now,
        )?);
        Ok(Some(after))
    }

    /// Offers `transfer` (queued, read at `version`) to `agent`, atomically: the agent must
    /// still be available and unclaimed, the transfer still queued, the call unchanged.
    async fn claim(
        &self,
        transfer: &Transfer,
        version: u64,
        agent: &Agent,
        extra: Vec<TransactWriteItem>,
    ) -> ApiResult<Claim> {
        let Some((call, call_version)) = self.store.call(&transfer.call_id).await? else {
            return Ok(Claim::OthersChanged);
        };
        let now = clock::now();
        let at = clock::rfc3339(now);
        let mut assigned = transfer.clone();
        assigned.status = TransferStatus::Assigned;
        assigned.agent_id = Some(agent.agent_id.clone());
        assigned.assigned_at = Some(at.clone());
        assigned.offer_expires_at =
            Some(seconds_after(now, self.state.config.offer_timeout_seconds));
        assigned.updated_at = at.clone();
        let next_call = with_summary(&call, &assigned, &at);
        let busy = self.busy(agent, &assigned, now);
        let mut actions = vec![
            self.store.replace_transfer(&assigned, version)?,
            self.store.replace_agent(agent, &busy)?,
            self.store.replace_call(&next_call, call_version)?,
            self.event(
                types::TRANSFER_ASSIGNED,
                transfer_event(&assigned, now),
                now,
            )?,
            self.event(
                types::QUEUE_UPDATED,
                json!({"department_id": assigned.department_id}),
                now,
            )?,
            self.event(
                types::AGENT_STATUS_CHANGED,
                agent_event(&busy, agent.status),
                now,
            )?,
        ];
        actions.extend(extra);
        Ok(match self.commit(actions).await? {
            None => Claim::Claimed(Box::new(assigned)),
            Some(c) if c.condition_failed(1) => Claim::AgentChanged,
            Some(_) => Claim::OthersChanged,
        })
    }

    /// Offers a queued transfer to the best eligible available agent, if there is one.
    pub async fn assign_queued(&self, transfer_id: &str) -> ApiResult<Option<Transfer>> {
        for _ in 0..ATTEMPTS {
            let Some((transfer, version)) = self.store.transfer(transfer_id).await? else {
                return Ok(None);
            };
            if transfer.status != TransferStatus::Queued {
                return Ok(None);
            }
            let candidates = crate::model::rank_candidates(
                &transfer,
                self.store
                    .agents_in(&transfer.department_id, Some(AgentStatus::Available))
                    .await?,
            );
            if candidates.is_empty() {
                return Ok(None);
            }
            // Try the best few; if all were taken or the transfer changed, read again.
            for agent in candidates.into_iter().take(CANDIDATES_PER_ATTEMPT) {
                match self.claim(&transfer, version, &agent, Vec::new()).await? {
                    Claim::Claimed(t) => return Ok(Some(*t)),
                    Claim::AgentChanged => continue,
                    Claim::OthersChanged => break,
                }
            }
        }
        Ok(None)
    }

    /// Gives an available agent the first waiting transfer they are eligible for.
    pub async fn serve_agent(&self, agent_id: &str) -> ApiResult<Option<Transfer>> {
        for _ in 0..ATTEMPTS {
            let Some(agent) = self.store.agent(agent_id).await? else {
                return Ok(None);
            };
            if agent.status != AgentStatus::Available || agent.current_transfer_id.is_some() {
                return Ok(None);
            }
            let queue = self.store.queue(&agent.department).await?;
            let mut agent_changed = false;
            let mut tried = 0;
            for waiting in queue.iter().filter(|t| t.eligible(&agent)) {
                if tried == CANDIDATES_PER_ATTEMPT {
                    break;
                }
                tried += 1;
                let Some((transfer, version)) = self.store.transfer(&waiting.transfer_id).await?
                else {
                    continue;
                };
                if transfer.status != TransferStatus::Queued {
                    continue;
                }
                match self.claim(&transfer, version, &agent, Vec::new()).await? {
                    Claim::Claimed(t) => return Ok(Some(*t)),
                    Claim::AgentChanged => {
                        agent_changed = true;
                        break;
                    }
                    Claim::OthersChanged => continue,
                }
            }
            if !agent_changed && tried < CANDIDATES_PER_ATTEMPT {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Cancelling tells a live caller that nobody will take the call: only whoever asked
    /// for the transfer (the voice agent) or a manager may; the offered agent declines.
    fn may_cancel(user: &AuthUser, transfer: &Transfer) -> ApiResult<()> {
        match user.role {
            Role::Admin | Role::Supervisor => Ok(()),
            _ if transfer.requested_by == user.user_id => Ok(()),
            Role::Viewer => Err(ApiError::Forbidden(
                "the viewer role is read-only: it cannot change anything".into(),
            )),
            _ => Err(ApiError::Forbidden(
                "only whoever requested the transfer or a manager may cancel it; the offered agent may decline it"
                    .into(),
            )),
        }
    }

    fn may_act_on(user: &AuthUser, transfer: &Transfer) -> ApiResult<()> {
        match user.role {
            Role::Admin | Role::Supervisor => Ok(()),
            Role::Agent if transfer.agent_id.as_deref() == Some(user.user_id.as_str()) => Ok(()),
            Role::Agent => Err(ApiError::Forbidden(
                "only the agent offered this transfer may do this".into(),
            )),
            Role::Viewer => Err(ApiError::Forbidden(
                "the viewer role is read-only: it cannot change anything".into(),
            )),
        }
    }

    async fn load(&self, transfer_id: &str) -> ApiResult<(Transfer, u64)> {
        if !vocelio_shared::ids::is_id("transfer", transfer_id) {
            return Err(ApiError::not_found("transfer"));
        }
        self.store
            .transfer(transfer_id)
            .await?
            .ok_or_else(|| ApiError::not_found("transfer"))
    }

    /// The agent holding `transfer` (if any) and its call with the call's version.
    async fn holder_and_call(&self, transfer: &Transfer) -> ApiResult<(Option<Agent>, Call, u64)> {
        let agent = match &transfer.agent_id {
            Some(id) => self.store.agent(id).await?,
            None => None,
        };
        let (call, call_version) = self
            .store
            .call(&transfer.call_id)
            .await?
            .ok_or_else(|| ApiError::not_found("call"))?;
        Ok((agent, call, call_version))
    }

    /// The offered agent accepts: the caller is connected to them.
    pub async fn accept(&self, user: &AuthUser, transfer_id: &str) -> ApiResult<Transfer> {
        for _ in 0..ATTEMPTS {
            let (transfer, version) = self.load(transfer_id).await?;
            Self::may_act_on(user, &transfer)?;
            match transfer.status {
                TransferStatus::Assigned => {}
                TransferStatus::Connected => return Ok(transfer),
                _ => {
                    return Err(state_conflict(
                        &transfer,
                        "only an offered (assigned) transfer can be accepted",
                    ));
                }
            }
            let (call, call_version) = self
                .store
                .call(&transfer.call_id)
                .await?
                .ok_or_else(|| ApiError::not_found("call"))?;
            let now = clock::now();
            let at = clock::rfc3339(now);
            let mut connected = transfer.clone();
            connected.status = TransferStatus::Connected;
            connected.accepted_at = Some(at.clone());
            connected.offer_expires_at = None;
            connected.updated_at = at.clone();
            let mut next_call = with_summary(&call, &connected, &at);
            if !next_call.status.is_ended() {
                next_call.status = CallStatus::Connected;
            }
            next_call.assigned_agent = connected.agent_id.clone();
            next_call.current_department = Some(connected.department_id.clone());
            next_call.connected_at = Some(at.clone());
            let actions = vec![
                self.store.replace_transfer(&connected, version)?,
                self.store.replace_call(&next_call, call_version)?,
                self.event(
                    types::TRANSFER_ACCEPTED,
                    transfer_event(&connected, now),
                    now,
                )?,
                self.event(types::CALL_STATUS_UPDATE, call_event(&next_call, now), now)?,
            ];
            if self.commit(actions).await?.is_none() {
                return Ok(connected);
            }
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the transfer kept changing; retry",
        ))
    }

    /// The offered agent declines (or lets the offer lapse, `timed_out`): the transfer goes
    /// back to its place in the queue and on to the next eligible agent, never back to them.
    pub async fn decline(
        &self,
        user: Option<&AuthUser>,
        transfer_id: &str,
        why: Decline,
    ) -> ApiResult<Transfer> {
        self.decline_offer(user, None, transfer_id, why).await
    }

    /// [`Self::decline`] of the offer to `offered` only: when the transfer has moved on to
    /// another agent meanwhile (a late report of an earlier agent's leg), nothing changes
    /// (409 `invalid_transfer_state`).
    pub async fn decline_offer(
        &self,
        user: Option<&AuthUser>,
        offered: Option<&str>,
        transfer_id: &str,
        why: Decline,
    ) -> ApiResult<Transfer> {
        let timed_out = why != Decline::Declined;
        for _ in 0..ATTEMPTS {
            let (transfer, version) = self.load(transfer_id).await?;
            if let Some(user) = user {
                Self::may_act_on(user, &transfer)?;
            }
            if let Some(offered) = offered
                && transfer.agent_id.as_deref() != Some(offered)
            {
                return Err(state_conflict(
                    &transfer,
                    "the transfer is no longer offered to that agent",
                ));
            }
            if transfer.status != TransferStatus::Assigned {
                return Err(state_conflict(
                    &transfer,
                    "only an offered (assigned) transfer can be declined",
                ));
            }
            let now = clock::now();
            if why == Decline::OfferTimeout
                && transfer.offer_expires_at.as_deref() > Some(clock::rfc3339(now).as_str())
            {
                return Ok(transfer);
            }
            let Some(agent_id) = transfer.agent_id.clone() else {
                return Err(state_conflict(&transfer, "the transfer has no agent"));
            };
            let (agent, call, call_version) = self.holder_and_call(&transfer).await?;
            let at = clock::rfc3339(now);
            let mut requeued = transfer.clone();
            requeued.status = TransferStatus::Queued;
            requeued.agent_id = None;
            requeued.assigned_at = None;
            requeued.offer_expires_at = None;
            if !requeued.declined_by.contains(&agent_id) {
                requeued.declined_by.push(agent_id.clone());
            }
            requeued.updated_at = at.clone();
            let next_call = with_summary(&call, &requeued, &at);
            let mut actions = vec![
                self.store.replace_transfer(&requeued, version)?,
                self.store.replace_call(&next_call, call_version)?,
                self.event(
                    types::TRANSFER_DECLINED,
                    json!({"transfer": requeued, "agent_id": agent_id, "reason": why.as_str(), "timestamp": at}),
                    now,
                )?,
                self.event(types::QUEUE_UPDATED, json!({"department_id": requeued.department_id}), now)?,
            ];
            // The decliner is free again; one who let the offer lapse is not at their desk.
            let status = if timed_out {
                AgentStatus::Offline
            } else {
                AgentStatus::Available
            };
            let freed = self.release_agent(agent, transfer_id, status, now, &mut actions)?;
            if self.commit(actions).await?.is_some() {
                continue;
            }
            let rerouted = self.assign_queued(transfer_id).await?;
            if let Some(after) = freed
                .as_ref()
                .filter(|a| a.status == AgentStatus::Available)
            {
                self.serve_agent(&after.agent_id).await?;
            }
            return Ok(rerouted.unwrap_or(requeued));
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the transfer kept changing; retry",
        ))
    }

    /// The agent is done with the caller: the transfer completes and the agent goes to
    /// wrap-up (or straight to available, then takes the next waiting caller).
    pub async fn complete(
        &self,
        user: &AuthUser,
        transfer_id: &str,
        outcome: Option<String>,
        notes: Option<String>,
    ) -> ApiResult<Transfer> {
        for _ in 0..ATTEMPTS {
            let (transfer, version) = self.load(transfer_id).await?;
            Self::may_act_on(user, &transfer)?;
            match transfer.status {
                TransferStatus::Connected => {}
                TransferStatus::Completed => return Ok(transfer),
                _ => {
                    return Err(state_conflict(
                        &transfer,
                        "only a connected (accepted) transfer can be completed",
                    ));
                }
            }
            let (agent, call, call_version) = self.holder_and_call(&transfer).await?;
            let now = clock::now();
            let at = clock::rfc3339(now);
            let mut done = transfer.clone();
            done.status = TransferStatus::Completed;
            done.ended_at = Some(at.clone());
            done.outcome = outcome.clone();
            done.notes = notes.clone();
            done.updated_at = at.clone();
            let mut next_call = with_summary(&call, &done, &at);
            next_call.open_transfer_id = None;
            let mut actions = vec![
                self.store.replace_transfer(&done, version)?,
                self.store.replace_call(&next_call, call_version)?,
                self.event(types::TRANSFER_COMPLETED, transfer_event(&done, now), now)?,
            ];
            let status = if self.state.config.wrap_up_seconds > 0 {
                AgentStatus::WrapUp
            } else {
                AgentStatus::Available
            };
            let freed = self.release_agent(agent, transfer_id, status, now, &mut actions)?;
            if self.commit(actions).await?.is_some() {
                continue;
            }
            if let Some(after) = freed
                .as_ref()
                .filter(|a| a.status == AgentStatus::Available)
            {
                self.serve_agent(&after.agent_id).await?;
            }
            return Ok(done);
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the transfer kept changing; retry",
        ))
    }

    /// Withdraws an open transfer (the caller hung up, the AI resolved it): it leaves the
    /// queue or frees its agent, who then takes the next waiting caller.
    pub async fn cancel(
        &self,
        user: Option<&AuthUser>,
        transfer_id: &str,
        reason: Option<String>,
    ) -> ApiResult<Transfer> {
        for _ in 0..ATTEMPTS {
            let (transfer, version) = self.load(transfer_id).await?;
            if let Some(user) = user {
                Self::may_cancel(user, &transfer)?;
            }
            match transfer.status {
                s if s.is_open() => {}
                TransferStatus::Cancelled => return Ok(transfer),
                _ => return Err(state_conflict(&transfer, "the transfer has already ended")),
            }
            let (agent, call, call_version) = self.holder_and_call(&transfer).await?;
            let now = clock::now();
            let at = clock::rfc3339(now);
            let mut cancelled = transfer.clone();
            cancelled.status = TransferStatus::Cancelled;
            cancelled.ended_at = Some(at.clone());
            cancelled.outcome = reason.clone();
            cancelled.offer_expires_at = None;
            cancelled.updated_at = at.clone();
            let mut next_call = with_summary(&call, &cancelled, &at);
            next_call.open_transfer_id = None;
            if next_call.status == CallStatus::Transferring {
                next_call.status = CallStatus::Active;
            }
            let mut actions = vec![
                self.store.replace_transfer(&cancelled, version)?,
                self.store.replace_call(&next_call, call_version)?,
                self.event(
                    types::TRANSFER_CANCELLED,
                    transfer_event(&cancelled, now),
                    now,
                )?,
                self.event(types::CALL_STATUS_UPDATE, call_event(&next_call, now), now)?,
            ];
            if transfer.status == TransferStatus::Queued {
                actions.push(self.event(
                    types::QUEUE_UPDATED,
                    json!({"department_id": transfer.department_id}),
                    now,
                )?);
            }
            let freed = self.release_agent(
                agent,
                transfer_id,
                AgentStatus::Available,
                now,
                &mut actions,
            )?;
            if self.commit(actions).await?.is_some() {
                continue;
            }
            if let Some(after) = &freed {
                self.serve_agent(&after.agent_id).await?;
            }
            return Ok(cancelled);
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the transfer kept changing; retry",
        ))
    }

    /// Closes the open transfer of a call that is ending: one its agent was talking on is
    /// completed (outcome `call_ended`: the caller hung up on the agent, the transfer did
    /// its job), one still waiting or ringing is cancelled.
    async fn close_for_ended_call(&self, transfer_id: &str) -> ApiResult<()> {
        let (transfer, _) = self.load(transfer_id).await?;
        if transfer.status == TransferStatus::Connected {
            let system = AuthUser {
                user_id: "system".into(),
                tenant: self.tenant.clone(),
                role: vocelio_shared::Role::Supervisor,
                scopes: None,
            };
            self.complete(&system, transfer_id, Some("call_ended".into()), None)
                .await
                .map(|_| ())
        } else {
            self.cancel(None, transfer_id, Some("call_ended".into()))
                .await
                .map(|_| ())
        }
    }

    /// Ends an agent's wrap-up once its time has come, then serves them the queue.
    pub async fn end_wrap_up(&self, agent_id: &str) -> ApiResult<()> {
        let Some(agent) = self.store.agent(agent_id).await? else {
            return Ok(());
        };
        let now = clock::now();
        let due = agent
            .wrap_up_until
            .as_deref()
            .is_some_and(|until| until <= clock::rfc3339(now).as_str());
        if agent.status != AgentStatus::WrapUp || !due {
            return Ok(());
        }
        let after = self.freed(&agent, AgentStatus::Available, now);
        let actions = vec![
            self.store.replace_agent(&agent, &after)?,
            self.event(
                types::AGENT_STATUS_CHANGED,
                agent_event(&after, agent.status),
                now,
            )?,
        ];
        if self.commit(actions).await?.is_none() {
            self.serve_agent(agent_id).await?;
        }
        Ok(())
    }

    /// Registers a call (idempotent on `call_id`: the same call again returns it).
    pub async fn create_call(&self, call: Call) -> ApiResult<Call> {
        self.create_call_with(call, Vec::new()).await
    }

    /// Registers a call together with `extra` writes (index items, idempotency records) in
    /// one transaction.
    pub async fn create_call_with(
        &self,
        call: Call,
        extra: Vec<TransactWriteItem>,
    ) -> ApiResult<Call> {
        let now = clock::now();
        let mut actions = vec![
            self.store.create_call(&call)?,
            self.event(types::CALL_STATUS_UPDATE, call_event(&call, now), now)?,
        ];
        actions.extend(extra);
        match self.commit(actions).await? {
            None => Ok(call),
            Some(c) if c.condition_failed(0) => {
                let (existing, _) = self
                    .store
                    .call(&call.call_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("call"))?;
                if existing.caller_number == call.caller_number {
                    Ok(existing)
                } else {
                    Err(conflict(
                        "call_exists",
                        "another call already has this call_id",
                        c.item(0),
                    ))
                }
            }
            Some(c) => Err(ApiError::internal(format!(
                "call create cancelled: {:?}",
                c.reasons
            ))),
        }
    }

    /// Applies a change to a call computed by `change` from its current state; ending a call
    /// with an open transfer cancels the transfer first.
    pub async fn update_call<F>(&self, call_id: &str, change: F) -> ApiResult<Call>
    where
        F: Fn(&Call, OffsetDateTime) -> ApiResult<Call>,
    {
        self.update_call_with(call_id, |call, now| {
            change(call, now).map(|next| Some((next, Vec::new())))
        })
        .await
    }

    /// Like [`Self::update_call`], but `change` may decide there is nothing to do (`None`:
    /// no write, no event; the call is returned as it is) and may add writes of its own
    /// (index items, idempotency records) to the same transaction. The write is conditioned
    /// on the version read, so two concurrent changes never both apply to the same state.
    pub async fn update_call_with<F>(&self, call_id: &str, change: F) -> ApiResult<Call>
    where
        F: Fn(&Call, OffsetDateTime) -> ApiResult<Option<(Call, Vec<TransactWriteItem>)>>,
    {
        for _ in 0..ATTEMPTS {
            let (call, version) = self
                .store
                .call(call_id)
                .await?
                .ok_or_else(|| ApiError::not_found("call"))?;
            let now = clock::now();
            let Some((next, extra)) = change(&call, now)? else {
                return Ok(call);
            };
            if next.status.is_ended()
                && let Some(open) = &call.open_transfer_id
            {
                match self.close_for_ended_call(open).await {
                    // Ended meanwhile (completed by its agent): nothing left to close.
                    Ok(()) => {}
                    Err(ApiError::Conflict { code, .. }) if code != "concurrent_update" => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let mut actions = vec![
                self.store.replace_call(&next, version)?,
                self.event(types::CALL_STATUS_UPDATE, call_event(&next, now), now)?,
            ];
            if next.status.is_ended() && !call.status.is_ended() {
                actions.push(self.event(
                    types::CALL_ENDED,
                    json!({"call_id": next.call_id, "status": next.status, "total_duration": next.duration, "timestamp": clock::rfc3339(now), "call": next}),
                    now,
                )?);
            }
            actions.extend(extra);
            if self.commit(actions).await?.is_none() {
                return Ok(next);
            }
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the call kept changing; retry",
        ))
    }
}

enum NewOutcome {
    Done(Box<Transfer>),
    AgentTaken,
    CallChanged,
}

/// The call with the summary of `transfer` brought up to date.
fn with_summary(call: &Call, transfer: &Transfer, at: &str) -> Call {
    let mut next = call.clone();
    let summary = transfer.summary();
    match next
        .transfers
        .iter_mut()
        .find(|s| s.transfer_id == transfer.transfer_id)
    {
        Some(existing) => *existing = summary,
        None => next.transfers.push(summary),
    }
    next.updated_at = at.to_owned();
    next
}

fn state_conflict(transfer: &Transfer, message: &str) -> ApiError {
    ApiError::Conflict {
        code: "invalid_transfer_state",
        message: format!("{message}; it is {}", transfer.status.as_str()),
        current: serde_json::to_value(transfer).ok(),
    }
}

/// Event data for a transfer: flat fields the app reads plus the whole record.
fn transfer_event(transfer: &Transfer, now: OffsetDateTime) -> serde_json::Value {
    json!({
        "transfer_id": transfer.transfer_id,
        "call_id": transfer.call_id,
        "department_id": transfer.department_id,
        "target_department": transfer.target_department,
        "transfer_type": transfer.transfer_type,
        "urgency_level": transfer.urgency_level,
        "status": transfer.status,
        "agent_id": transfer.agent_id,
        "timestamp": clock::rfc3339(now),
        "transfer": transfer,
    })
}

fn agent_event(agent: &Agent, previous: AgentStatus) -> serde_json::Value {
    json!({"agent": agent, "previous_status": previous})
}

fn call_event(call: &Call, now: OffsetDateTime) -> serde_json::Value {
    json!({
        "call_id": call.call_id,
        "status": call.status,
        "duration": call.live_duration(now),
        "timestamp": clock::rfc3339(now),
        "call": call,
    })
}

/// Ends `call` at `now` as `status`: end time, duration, AI and human minutes and costs
/// (values the caller sent win over computed ones).
pub fn end_call(
    call: &mut Call,
    status: CallStatus,
    now: OffsetDateTime,
    prices: (f64, f64),
    sent: &SentFigures,
) {
    let at = clock::rfc3339(now);
    call.status = status;
    call.end_time = Some(at.clone());
    let duration = sent.duration.unwrap_or_else(|| call.live_duration(now));
    call.duration = Some(duration);
    let human = call
        .connected_at
        .as_deref()
        .map_or(0.0, |connected| {
            crate::model::minutes_between(connected, &at)
        })
        .min(duration as f64 / 60.0);
    call.transfer_minutes = sent.transfer_minutes.unwrap_or(round2(human));
    call.ai_minutes = sent
        .ai_minutes
        .unwrap_or_else(|| round2((duration as f64 / 60.0 - call.transfer_minutes).max(0.0)));
    call.cost_ai = sent
        .cost_ai
        .unwrap_or_else(|| round2(call.ai_minutes * prices.0));
    call.cost_human = sent
        .cost_human
        .unwrap_or_else(|| round2(call.transfer_minutes * prices.1));
}

/// Figures a client may send when updating a call (they win over computed ones).
#[derive(Debug, Clone, Default)]
pub struct SentFigures {
    pub duration: Option<u64>,
    pub ai_minutes: Option<f64>,
    pub transfer_minutes: Option<f64>,
    pub cost_ai: Option<f64>,
    pub cost_human: Option<f64>,
}
