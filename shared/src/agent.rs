//! Agents as every function sees them (the agents function registers them, the transfer
//! engine claims them).

use serde::{Deserialize, Serialize};

use crate::dynamo::{Item, record_item};
use crate::error::ApiResult;
use crate::ids::TenantId;
use crate::keys;

/// Where an agent is in their working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Ready for the next transfer.
    Available,
    /// On a call (`current_call_id` names it when known).
    Busy,
    /// Finishing notes after a call; not routed to.
    WrapUp,
    /// Away for a while; not routed to.
    OnBreak,
    /// Signed out; not routed to.
    Offline,
}

impl AgentStatus {
    /// The status as in keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::WrapUp => "wrap_up",
            Self::OnBreak => "on_break",
            Self::Offline => "offline",
        }
    }
}

/// An agent as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Chosen at registration; the agent's token carries it as `sub`.
    pub agent_id: String,
    pub name: String,
    pub email: String,
    /// The department's id.
    pub department: String,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub performance_rating: Option<f64>,
    pub status: AgentStatus,
    /// The call the agent is on, while busy.
    pub current_call_id: Option<String>,
    /// The transfer the agent holds (offered or connected), while busy.
    #[serde(default)]
    pub current_transfer_id: Option<String>,
    /// When wrap-up ends and the agent becomes available again.
    #[serde(default)]
    pub wrap_up_until: Option<String>,
    pub last_activity: String,
    pub created_at: String,
    pub updated_at: String,
    /// Incremented by every write; the optimistic lock of status changes and claims.
    #[serde(default)]
    pub version: u64,
}

impl Agent {
    /// Whether this agent may take a transfer needing `skills` and `language`.
    pub fn qualifies(&self, skills: &[String], language: Option<&str>) -> bool {
        skills.iter().all(|s| self.skills.contains(s))
            && language.is_none_or(|l| self.languages.iter().any(|have| have == l))
    }
}

impl Agent {
    /// The item of this agent in `tenant`, with its index keys: GSI1 (department + status),
    /// GSI2 (status), GSI3 (the wrap-up timer, while one runs).
    pub fn item(&self, tenant: &TenantId) -> ApiResult<Item> {
        let status = self.status.as_str();
        let mut item_keys = vec![
            (keys::PK, keys::agents_pk(tenant)),
            (keys::SK, keys::agent_sk(&self.agent_id)),
            (keys::ENTITY, "agent".to_owned()),
            (
                keys::GSI1PK,
                keys::agents_by_department_pk(tenant, &self.department),
            ),
            (
                keys::GSI1SK,
                keys::agents_by_department_sk(status, &self.agent_id),
            ),
            (keys::GSI2PK, keys::agents_by_status_pk(tenant, status)),
            (keys::GSI2SK, keys::agent_sk(&self.agent_id)),
        ];
        if let Some(due) = &self.wrap_up_until {
            item_keys.push((keys::GSI3PK, keys::TIMERS_PK.to_owned()));
            item_keys.push((
                keys::GSI3SK,
                keys::timer_sk(due, tenant, "AGENT", &self.agent_id),
            ));
        }
        record_item(self, item_keys)
    }
}
