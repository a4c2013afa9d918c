//! Agent storage: one item per agent in the tenant's agent partition, indexed by
//! department + status (GSI1) and by status (GSI2) so routing and lists never scan.

use aws_sdk_dynamodb::types::{Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use vocelio_shared::dynamo::{
    Item, commit, create_action, decode_cursor, encode_cursor, replace_action, s, sdk_error,
};
use vocelio_shared::error::{ApiError, ApiResult};
use vocelio_shared::events::DomainEvent;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{AppState, directory, keys};

use crate::domain::{Agent, AgentStatus};

/// Agents of one tenant.
pub struct AgentRepo<'a> {
    state: &'a AppState,
    tenant: &'a TenantId,
}

/// Which agents a list asks for.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub department_id: Option<String>,
    pub status: Option<AgentStatus>,
}

/// One page of agents.
pub struct Page {
    pub agents: Vec<Agent>,
    pub next_cursor: Option<String>,
}

impl<'a> AgentRepo<'a> {
    /// The repository of `tenant`.
    pub fn new(state: &'a AppState, tenant: &'a TenantId) -> Self {
        Self { state, tenant }
    }

    fn from_item(item: Item) -> ApiResult<Agent> {
        serde_dynamo::from_item(item).map_err(ApiError::internal)
    }

    /// Registers `agent` and counts it on its department, atomically: 409 when the id is
    /// taken, 422 when the department is not an active department of the tenant.
    pub async fn register(&self, agent: &Agent, extra: Vec<TransactWriteItem>) -> ApiResult<()> {
        let mut actions = vec![
            create_action(self.state.table(), agent.item(self.tenant)?)?,
            directory::reference(
                self.state,
                self.tenant,
                &agent.department,
                directory::AGENT_COUNT,
                1,
            )?,
        ];
        actions.extend(extra);
        let Some(cancelled) = commit(&self.state.db, actions).await? else {
            return Ok(());
        };
        if cancelled.condition_failed(0) {
            return Err(ApiError::conflict(
                "agent_exists",
                format!(
                    "an agent with agent_id {:?} is already registered",
                    agent.agent_id
                ),
            ));
        }
        if cancelled.condition_failed(1) {
            return Err(ApiError::field(
                "department",
                "no active department has this id or name",
            ));
        }
        Err(ApiError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key was completed concurrently; retry to get its result",
        ))
    }

    /// The agent with `agent_id`.
    pub async fn get(&self, agent_id: &str) -> ApiResult<Option<Agent>> {
        let out = self
            .state
            .db
            .get_item()
            .table_name(self.state.table())
            .key(keys::PK, s(keys::agents_pk(self.tenant)))
            .key(keys::SK, s(keys::agent_sk(agent_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.map(Self::from_item).transpose()
    }

    /// A page of agents matching `filter`, each case one Query on a key or an index.
    pub async fn list(
        &self,
        filter: &AgentFilter,
        limit: i32,
        cursor: Option<&str>,
    ) -> ApiResult<Page> {
        let query = self
            .state
            .db
            .query()
            .table_name(self.state.table())
            .limit(limit);
        let (query, pinned) = match (&filter.department_id, filter.status) {
            (Some(department), status) => {
                let pk = keys::agents_by_department_pk(self.tenant, department);
                let query = query
                    .index_name(keys::GSI1)
                    .expression_attribute_values(":pk", s(&pk));
                let query = match status {
                    Some(status) => query
                        .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                        .expression_attribute_values(":prefix", s(format!("{}#", status.as_str()))),
                    None => query.key_condition_expression("GSI1PK = :pk"),
                };
                (query, (keys::GSI1PK, pk))
            }
            (None, Some(status)) => {
                let pk = keys::agents_by_status_pk(self.tenant, status.as_str());
                (
                    query
                        .index_name(keys::GSI2)
                        .key_condition_expression("GSI2PK = :pk")
                        .expression_attribute_values(":pk", s(&pk)),
                    (keys::GSI2PK, pk),
                )
            }
            (None, None) => {
                let pk = keys::agents_pk(self.tenant);
                (
                    query
                        .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":prefix", s(keys::AGENT_SK_PREFIX)),
                    (keys::PK, pk),
                )
            }
        };
        let start = cursor
            .map(|c| decode_cursor(c, &[(pinned.0, &pinned.1)]))
            .transpose()?;
        let out = query
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let agents = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Self::from_item)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Page {
            agents,
            next_cursor: out.last_evaluated_key.as_ref().map(encode_cursor),
        })
    }

    /// Writes a status change computed from `before`; 409 (with the current agent) when the
    /// agent changed meanwhile, 404 when it is gone.
    pub async fn change_status(
        &self,
        before: &Agent,
        after: &Agent,
        event: &DomainEvent,
    ) -> ApiResult<()> {
        let actions = vec![
            replace_action(self.state.table(), after.item(self.tenant)?, before.version)?,
            event.put(self.state, self.tenant)?,
        ];
        let Some(cancelled) = commit(&self.state.db, actions).await? else {
            return Ok(());
        };
        match cancelled.item(0).cloned() {
            Some(current) if cancelled.condition_failed(0) => Err(ApiError::Conflict {
                code: "concurrent_update",
                message: "the agent changed meanwhile; retry with the current state".into(),
                current: serde_json::to_value(Self::from_item(current)?).ok(),
            }),
            None if cancelled.condition_failed(0) => Err(ApiError::not_found("agent")),
            _ => Err(ApiError::internal(format!(
                "status change cancelled: {:?}",
                cancelled.reasons
            ))),
        }
    }

    /// Deregisters an agent and releases its department reference, atomically; refused with
    /// 409 while the agent is busy on a call, or when it changed since `before` was read.
    pub async fn deregister(&self, before: &Agent, event: &DomainEvent) -> ApiResult<()> {
        let delete = Delete::builder()
            .table_name(self.state.table())
            .key(keys::PK, s(keys::agents_pk(self.tenant)))
            .key(keys::SK, s(keys::agent_sk(&before.agent_id)))
            .condition_expression("version = :seen AND #status <> :busy")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", vocelio_shared::dynamo::n(before.version))
            .expression_attribute_values(":busy", s(AgentStatus::Busy.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(ApiError::internal)?;
        let actions = vec![
            TransactWriteItem::builder().delete(delete).build(),
            directory::reference(
                self.state,
                self.tenant,
                &before.department,
                directory::AGENT_COUNT,
                -1,
            )?,
            event.put(self.state, self.tenant)?,
        ];
        let Some(cancelled) = commit(&self.state.db, actions).await? else {
            return Ok(());
        };
        match cancelled.item(0).cloned() {
            Some(current) if cancelled.condition_failed(0) => {
                let current = Self::from_item(current)?;
                let busy = current.status == AgentStatus::Busy;
                Err(ApiError::Conflict {
                    code: if busy {
                        "agent_busy"
                    } else {
                        "concurrent_update"
                    },
                    message: if busy {
                        "the agent is on a call; end or transfer it first".into()
                    } else {
                        "the agent changed meanwhile; retry".into()
                    },
                    current: serde_json::to_value(current).ok(),
                })
            }
            None if cancelled.condition_failed(0) => Err(ApiError::not_found("agent")),
            _ => Err(ApiError::internal(format!(
                "deregister cancelled: {:?}",
                cancelled.reasons
            ))),
        }
    }
}
