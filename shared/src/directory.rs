//! Department references made by other records (agents now; transfers later): resolving
//! what a user typed (an id or a name) and counting references atomically, so a department
//! is never deactivated while something still points at it.

use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use crate::dynamo::{n, s, sdk_error};
use crate::error::{ApiError, ApiResult};
use crate::ids::{TenantId, is_id};
use crate::keys;
use crate::state::AppState;

/// The counter on a department item that counts its registered agents.
pub const AGENT_COUNT: &str = "agent_count";

/// Resolves a department given by id (`dept_...`) or by name (case-insensitive) to its id.
/// `None` when no active department has that name; ids are returned as given and checked
/// atomically by [`reference`] when the referencing record is written.
pub async fn resolve(
    state: &AppState,
    tenant: &TenantId,
    id_or_name: &str,
) -> ApiResult<Option<String>> {
    let value = id_or_name.trim();
    if is_id("dept", value) {
        return Ok(Some(value.to_owned()));
    }
    if value.is_empty() || value.chars().count() > 255 {
        return Ok(None);
    }
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(keys::departments_pk(tenant)))
        .key(keys::SK, s(keys::department_name_sk(value)))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(found.item.and_then(|item| {
        item.get("department_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
    }))
}

/// The transaction action that adds `delta` references of `counter` to a department, failing
/// its condition unless the department exists and is active (when adding).
pub fn reference(
    state: &AppState,
    tenant: &TenantId,
    department_id: &str,
    counter: &str,
    delta: i64,
) -> ApiResult<TransactWriteItem> {
    let mut update = Update::builder()
        .table_name(state.table())
        .key(keys::PK, s(keys::departments_pk(tenant)))
        .key(keys::SK, s(keys::department_sk(department_id)))
        .update_expression("ADD #counter :delta")
        .expression_attribute_names("#counter", counter)
        .expression_attribute_values(":delta", n(delta))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    update = if delta > 0 {
        update
            .condition_expression("is_active = :active")
            .expression_attribute_values(
                ":active",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
    } else {
        update.condition_expression("attribute_exists(PK)")
    };
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(ApiError::internal)?)
        .build())
}

/// What other records need to know of a department.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DepartmentRef {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// False once deleted.
    pub is_active: bool,
}

/// The department `id` of `tenant`, active or not.
pub async fn department(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
) -> ApiResult<Option<DepartmentRef>> {
    if !is_id("dept", id) {
        return Ok(None);
    }
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(keys::departments_pk(tenant)))
        .key(keys::SK, s(keys::department_sk(id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    found.item.map(crate::dynamo::from_record).transpose()
}

/// Every department of `tenant` (active or not), for showing names.
pub async fn departments(state: &AppState, tenant: &TenantId) -> ApiResult<Vec<DepartmentRef>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let out = state
            .db
            .query()
            .table_name(state.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::departments_pk(tenant)))
            .expression_attribute_values(":prefix", s(keys::DEPARTMENT_SK_PREFIX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        for item in out.items.unwrap_or_default() {
            all.push(crate::dynamo::from_record(item)?);
        }
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(all),
        }
    }
}
