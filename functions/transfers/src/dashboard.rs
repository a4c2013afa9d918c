//! The guide's live transfer summary (`transfer_status` on `/ws/transfers`).

use serde::Serialize;
use vocelio_shared::agent::AgentStatus;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiResult, AppState, directory};

use crate::store::Store;

/// What the guide's dashboard shows, in its field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferDashboard {
    /// Transfers not yet finished: waiting in a queue, offered to an agent, or in progress.
    pub active_transfers: usize,
    /// Agents free to take a transfer now.
    pub available_agents: usize,
    /// Callers waiting in all department queues.
    pub total_queue_length: usize,
}

/// The dashboard of `tenant`: per active department one queue Query and one agents Query.
pub async fn dashboard(state: &AppState, tenant: &TenantId) -> ApiResult<TransferDashboard> {
    let store = Store::new(state, tenant);
    let mut summary = TransferDashboard {
        active_transfers: 0,
        available_agents: 0,
        total_queue_length: 0,
    };
    for department in directory::departments(state, tenant)
        .await?
        .into_iter()
        .filter(|d| d.is_active)
    {
        let queued = store.queue(&department.id).await?.len();
        let agents = store.agents_in(&department.id, None).await?;
        summary.total_queue_length += queued;
        summary.available_agents += agents
            .iter()
            .filter(|a| a.status == AgentStatus::Available)
            .count();
        summary.active_transfers += queued
            + agents
                .iter()
                .filter(|a| a.current_transfer_id.is_some())
                .count();
    }
    Ok(summary)
}
