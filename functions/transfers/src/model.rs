//! Calls and transfers: the records, their state machines and the routing rules. Pure.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use vocelio_shared::agent::{Agent, AgentStatus};

/// Where a phone call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Ringing,
    Active,
    OnHold,
    Transferring,
    Connected,
    Completed,
    Missed,
    Abandoned,
    Failed,
}

impl CallStatus {
    /// 0 before the call is answered, 1 while live, 2 once ended. Calls only move forward.
    pub fn stage(self) -> u8 {
        match self {
            Self::Ringing => 0,
            Self::Active | Self::OnHold | Self::Transferring | Self::Connected => 1,
            Self::Completed | Self::Missed | Self::Abandoned | Self::Failed => 2,
        }
    }

    /// Whether the call has ended.
    pub fn is_ended(self) -> bool {
        self.stage() == 2
    }

    /// Whether `self` may become `next` (never backwards, never out of an ended state).
    pub fn may_become(self, next: Self) -> bool {
        !self.is_ended() && next.stage() >= self.stage()
    }

    /// The status as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::Active => "active",
            Self::OnHold => "on_hold",
            Self::Transferring => "transferring",
            Self::Connected => "connected",
            Self::Completed => "completed",
            Self::Missed => "missed",
            Self::Abandoned => "abandoned",
            Self::Failed => "failed",
        }
    }
}

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// A transfer as summarised on its call (what the Call Logs page reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferSummary {
    pub transfer_id: String,
    pub target_department: String,
    pub department_id: String,
    pub agent_id: Option<String>,
    pub status: TransferStatus,
    pub requested_at: String,
}

/// One phone call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub call_id: String,
    pub call_sid: Option<String>,
    pub caller_number: String,
    pub called_number: Option<String>,
    pub direction: Direction,
    pub current_flow: Option<String>,
    /// The department id handling the call, once a transfer connected.
    pub current_department: Option<String>,
    pub assigned_agent: Option<String>,
    pub status: CallStatus,
    pub start_time: String,
    pub end_time: Option<String>,
    /// Seconds, set when the call ends.
    pub duration: Option<u64>,
    pub ai_minutes: f64,
    pub transfer_minutes: f64,
    pub cost_ai: f64,
    pub cost_human: f64,
    pub transfer_count: u32,
    /// The transfer in progress, if any (at most one per call).
    pub open_transfer_id: Option<String>,
    /// When a human agent was connected (for transfer minutes).
    pub connected_at: Option<String>,
    #[serde(default)]
    pub transfers: Vec<TransferSummary>,
    /// The carrier's view of the call (Twilio's status, sequence, price, conference), when
    /// the telephony adapter placed or answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<CarrierLeg>,
    pub created_at: String,
    pub updated_at: String,
}

/// The carrier's state of a call, kept current by its status callbacks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CarrierLeg {
    /// `twilio`.
    pub provider: String,
    /// The carrier's own status (`queued`, `ringing`, `in-progress`, `completed`, ...).
    pub status: String,
    /// The highest callback `SequenceNumber` applied.
    pub sequence: Option<u32>,
    /// The carrier's direction (`inbound`, `outbound-api`).
    pub direction: String,
    /// The number dialled (E.164) and the number shown to the callee.
    pub to: String,
    pub from: String,
    /// When the callee answered.
    pub answered_at: Option<String>,
    /// What the carrier charged (negative, in `price_unit`), once it says.
    pub price: Option<f64>,
    pub price_unit: Option<String>,
    /// The conference the call sits in (a department transfer), and its SID once known.
    pub conference: Option<String>,
    pub conference_sid: Option<String>,
    pub muted: bool,
    pub on_hold: bool,
    /// The number a cold transfer dialled.
    pub transferred_to: Option<String>,
    /// When the carrier's state was last read (callback or fetch).
    pub synced_at: String,
    /// The seconds the carrier reported at the end, once counted against the tenant's
    /// daily minutes (counted once: set in the same write as the count).
    #[serde(default)]
    pub counted_seconds: Option<u64>,
    /// The seconds of the tenant's daily minutes reserved for this call when it was placed
    /// (its `TimeLimit`); its end gives back what it did not use.
    #[serde(default)]
    pub reserved_seconds: Option<u64>,
    /// The seconds reserved for a cold transfer's dialled leg, until its end gives back
    /// what it did not use.
    #[serde(default)]
    pub transfer_reserved_seconds: Option<u64>,
    /// The request that placed the call (a random nonce): a concurrent retry with the same
    /// `Idempotency-Key` finds another nonce on the record and does not dial.
    #[serde(default)]
    pub attempt: Option<String>,
}

impl Call {
    /// A call starting at `at` (RFC 3339) with nothing counted yet.
    pub fn new(
        call_id: String,
        caller_number: String,
        direction: Direction,
        status: CallStatus,
        at: &str,
    ) -> Self {
        Self {
            call_id,
            call_sid: None,
            caller_number,
            called_number: None,
            direction,
            current_flow: None,
            current_department: None,
            assigned_agent: None,
            status,
            start_time: at.to_owned(),
            end_time: None,
            duration: None,
            ai_minutes: 0.0,
            transfer_minutes: 0.0,
            cost_ai: 0.0,
            cost_human: 0.0,
            transfer_count: 0,
            open_transfer_id: None,
            connected_at: None,
            transfers: Vec::new(),
            carrier: None,
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
        }
    }

    /// Seconds since the call started, as of `now` (the end time once ended).
    pub fn live_duration(&self, now: OffsetDateTime) -> u64 {
        if let Some(d) = self.duration {
            return d;
        }
        parse_time(&self.start_time).map_or(0, |start| seconds_between(start, now))
    }

    /// Whether the Live Call Monitor may offer a transfer now.
    pub fn can_transfer(&self) -> bool {
        self.open_transfer_id.is_none() && self.status.stage() == 1
    }
}

/// How urgently a caller needs a human; orders the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Urgency {
    /// 0 is served first.
    pub fn rank(self) -> u8 {
        match self {
            Self::Urgent => 0,
            Self::High => 1,
            Self::Medium => 2,
            Self::Low => 3,
        }
    }
}

/// Warm (the agent gets the context first) or cold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferType {
    #[default]
    Warm,
    Cold,
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Waiting in its department's queue.
    Queued,
    /// Offered to `agent_id`, who must accept within the offer timeout.
    Assigned,
    /// The agent accepted; the caller is with them.
    Connected,
    Completed,
    Cancelled,
    Failed,
}

impl TransferStatus {
    /// Whether the transfer is still in progress.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Assigned | Self::Connected)
    }

    /// The status as in JSON and conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Connected => "connected",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// A request to hand a call to a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub transfer_id: String,
    pub call_id: String,
    pub department_id: String,
    /// The department's name when requested (the app shows names).
    pub target_department: String,
    pub transfer_type: TransferType,
    pub transfer_reason: Option<String>,
    pub urgency_level: Urgency,
    pub context_summary: Option<String>,
    pub required_skills: Vec<String>,
    pub language: Option<String>,
    pub caller_number: String,
    pub status: TransferStatus,
    pub agent_id: Option<String>,
    /// Agents who declined or let the offer lapse: never offered this transfer again.
    pub declined_by: Vec<String>,
    /// The index of this transfer in its call's `transfers`.
    pub call_index: u32,
    pub requested_by: String,
    pub requested_at: String,
    pub assigned_at: Option<String>,
    pub offer_expires_at: Option<String>,
    pub accepted_at: Option<String>,
    pub ended_at: Option<String>,
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub updated_at: String,
}

impl Transfer {
    /// Whether `agent` may be offered this transfer.
    pub fn eligible(&self, agent: &Agent) -> bool {
        agent.department == self.department_id
            && agent.status == AgentStatus::Available
            && agent.current_transfer_id.is_none()
            && !self.declined_by.contains(&agent.agent_id)
            && agent.qualifies(&self.required_skills, self.language.as_deref())
    }

    /// The summary kept on the call.
    pub fn summary(&self) -> TransferSummary {
        TransferSummary {
            transfer_id: self.transfer_id.clone(),
            target_department: self.target_department.clone(),
            department_id: self.department_id.clone(),
            agent_id: self.agent_id.clone(),
            status: self.status,
            requested_at: self.requested_at.clone(),
        }
    }
}

/// Orders eligible agents: idle longest first (oldest `last_activity`), then the higher
/// `performance_rating`, then the id (so the order is total and repeatable).
pub fn rank_candidates(transfer: &Transfer, agents: Vec<Agent>) -> Vec<Agent> {
    let mut eligible: Vec<Agent> = agents
        .into_iter()
        .filter(|a| transfer.eligible(a))
        .collect();
    eligible.sort_by(|a, b| {
        a.last_activity
            .cmp(&b.last_activity)
            .then_with(|| {
                let ra = a.performance_rating.unwrap_or(0.0);
                let rb = b.performance_rating.unwrap_or(0.0);
                rb.partial_cmp(&ra).unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| a.agent_id.cmp(&b.agent_id))
    });
    eligible
}

/// Estimated wait for the caller at 1-based `position`: the callers ahead are served by the
/// department's staffed agents, each taking the recent average handle time.
pub fn estimated_wait_seconds(
    position: usize,
    staffed_agents: usize,
    average_handle_seconds: f64,
) -> u64 {
    let agents = staffed_agents.max(1) as f64;
    let rounds = ((position.max(1) - 1) as f64 / agents).floor() + 1.0;
    (rounds * average_handle_seconds).round().max(0.0) as u64
}

/// Parses an RFC 3339 time written by [`vocelio_shared::clock::rfc3339`].
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Whole seconds from `from` to `to` (0 when `to` is earlier).
pub fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_seconds()).unwrap_or(0)
}

/// Minutes between two RFC 3339 times, rounded to 0.01.
pub fn minutes_between(from: &str, to: &str) -> f64 {
    match (parse_time(from), parse_time(to)) {
        (Some(a), Some(b)) => round2(seconds_between(a, b) as f64 / 60.0),
        _ => 0.0,
    }
}

/// Rounds money and minutes to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, last: &str, rating: f64, skills: &[&str], languages: &[&str]) -> Agent {
        Agent {
            agent_id: id.into(),
            name: id.into(),
            email: format!("{id}@example.com"),
            department: "dept_1".into(),
            skills: skills.iter().map(|s| s.to_string()).collect(),
            languages: languages.iter().map(|s| s.to_string()).collect(),
            performance_rating: Some(rating),
            status: AgentStatus::Available,
            current_call_id: None,
            current_transfer_id: None,
            wrap_up_until: None,
            last_activity: last.into(),
            created_at: last.into(),
            updated_at: last.into(),
            version: 0,
        }
    }

    fn transfer(skills: &[&str], language: Option<&str>) -> Transfer {
        Transfer {
            transfer_id: "transfer_1".into(),
            call_id: "call_1".into(),
            department_id: "dept_1".into(),
            target_department: "Sales".into(),
            transfer_type: TransferType::Warm,
            transfer_reason: None,
            urgency_level: Urgency::Medium,
            context_summary: None,
            required_skills: skills.iter().map(|s| s.to_string()).collect(),
            language: language.map(str::to_owned),
            caller_number: "+15551234567".into(),
            status: TransferStatus::Queued,
            agent_id: None,
            declined_by: vec![],
            call_index: 0,
            requested_by: "ai".into(),
            requested_at: "2026-11-25T10:00:00.000Z".into(),
            assigned_at: None,
            offer_expires_at: None,
            accepted_at: None,
            ended_at: None,
            outcome: None,
            notes: None,
            updated_at: "2026-11-25T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn calls_only_move_forward() {
        use CallStatus::*;
        assert!(Ringing.may_become(Active));
        assert!(Active.may_become(OnHold) && OnHold.may_become(Active));
        assert!(!Active.may_become(Ringing));
        assert!(Active.may_become(Completed));
        assert!(!Completed.may_become(Active));
        assert!(!Completed.may_become(Completed));
    }

    #[test]
    fn the_longest_idle_qualified_agent_comes_first() {
        let t = transfer(&["billing"], Some("es"));
        let ranked = rank_candidates(
            &t,
            vec![
                agent(
                    "recent",
                    "2026-11-25T10:05:00.000Z",
                    5.0,
                    &["billing"],
                    &["es"],
                ),
                agent(
                    "idle-low",
                    "2026-11-25T09:00:00.000Z",
                    3.0,
                    &["billing"],
                    &["es"],
                ),
                agent(
                    "idle-high",
                    "2026-11-25T09:00:00.000Z",
                    4.5,
                    &["billing"],
                    &["es", "en"],
                ),
                agent("no-skill", "2026-11-25T08:00:00.000Z", 5.0, &[], &["es"]),
                agent(
                    "no-spanish",
                    "2026-11-25T08:00:00.000Z",
                    5.0,
                    &["billing"],
                    &["en"],
                ),
            ],
        );
        let ids: Vec<&str> = ranked.iter().map(|a| a.agent_id.as_str()).collect();
        assert_eq!(ids, ["idle-high", "idle-low", "recent"]);

        let mut declined = t.clone();
        declined.declined_by.push("idle-high".into());
        assert!(!declined.eligible(&ranked[0]));
    }

    #[test]
    fn urgency_orders_the_queue_and_estimates_follow_position() {
        assert!(Urgency::Urgent.rank() < Urgency::High.rank());
        assert!(Urgency::Medium.rank() < Urgency::Low.rank());
        assert_eq!(estimated_wait_seconds(1, 2, 120.0), 120);
        assert_eq!(estimated_wait_seconds(2, 2, 120.0), 120);
        assert_eq!(estimated_wait_seconds(3, 2, 120.0), 240);
        assert_eq!(estimated_wait_seconds(3, 0, 60.0), 180);
    }

    #[test]
    fn minutes_and_money_round_to_cents() {
        assert_eq!(
            minutes_between("2026-11-25T10:00:00.000Z", "2026-11-25T10:01:30.000Z"),
            1.5
        );
        assert_eq!(round2(0.125_1), 0.13);
    }
}
