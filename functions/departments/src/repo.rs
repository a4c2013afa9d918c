//! Department storage: one item per department in the tenant's department partition, plus
//! one name-reservation item per active department (the case-insensitive uniqueness rule).

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use vocelio_shared::dynamo::{Item, commit, decode_cursor, encode_cursor, s, sdk_error};
use vocelio_shared::error::{ApiError, ApiResult};
use vocelio_shared::events::DomainEvent;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{AppState, directory, keys};

use crate::domain::{Department, Updated};

/// Departments of one tenant.
pub struct DepartmentRepo<'a> {
    state: &'a AppState,
    tenant: &'a TenantId,
}

/// One page of a department list.
pub struct Page {
    pub departments: Vec<Department>,
    pub next_cursor: Option<String>,
}

/// Extra actions committed with a write (the event, an idempotency record).
pub type Extra = Vec<TransactWriteItem>;

impl<'a> DepartmentRepo<'a> {
    /// The repository of `tenant`.
    pub fn new(state: &'a AppState, tenant: &'a TenantId) -> Self {
        Self { state, tenant }
    }

    fn pk(&self) -> String {
        keys::departments_pk(self.tenant)
    }

    fn to_item(&self, department: &Department) -> ApiResult<Item> {
        let mut item: Item = serde_dynamo::to_item(department).map_err(ApiError::internal)?;
        item.insert(keys::PK.into(), s(self.pk()));
        item.insert(keys::SK.into(), s(keys::department_sk(&department.id)));
        item.insert(keys::ENTITY.into(), s("department"));
        Ok(item)
    }

    fn from_item(item: Item) -> ApiResult<Department> {
        serde_dynamo::from_item(item).map_err(ApiError::internal)
    }

    fn name_reservation(&self, name: &str, department_id: &str) -> Item {
        [
            (keys::PK.to_owned(), s(self.pk())),
            (keys::SK.to_owned(), s(keys::department_name_sk(name))),
            (keys::ENTITY.to_owned(), s("department_name")),
            ("department_id".to_owned(), s(department_id)),
        ]
        .into_iter()
        .collect()
    }

    fn reserve_name(&self, name: &str, department_id: &str) -> ApiResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.state.table())
            .set_item(Some(self.name_reservation(name, department_id)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn release_name(&self, name: &str, department_id: &str) -> ApiResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(self.state.table())
            .key(keys::PK, s(self.pk()))
            .key(keys::SK, s(keys::department_name_sk(name)))
            .condition_expression("department_id = :id")
            .expression_attribute_values(":id", s(department_id))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The department with `id`, active or not.
    pub async fn get(&self, id: &str) -> ApiResult<Option<Department>> {
        let out = self
            .state
            .db
            .get_item()
            .table_name(self.state.table())
            .key(keys::PK, s(self.pk()))
            .key(keys::SK, s(keys::department_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.map(Self::from_item).transpose()
    }

    /// A page of departments in creation order (only active ones unless `include_inactive`).
    pub async fn list(
        &self,
        include_inactive: bool,
        limit: i32,
        cursor: Option<&str>,
    ) -> ApiResult<Page> {
        let pk = self.pk();
        let start = cursor
            .map(|c| decode_cursor(c, &[(keys::PK, &pk)]))
            .transpose()?;
        let mut query = self
            .state
            .db
            .query()
            .table_name(self.state.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":prefix", s(keys::DEPARTMENT_SK_PREFIX))
            .limit(limit)
            .set_exclusive_start_key(start);
        if !include_inactive {
            query = query
                .filter_expression("is_active = :active")
                .expression_attribute_values(":active", AttributeValue::Bool(true));
        }
        let out = query.send().await.map_err(sdk_error)?;
        let departments = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Self::from_item)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Page {
            departments,
            next_cursor: out.last_evaluated_key.as_ref().map(encode_cursor),
        })
    }

    /// Creates `department` and reserves its name; 409 when the name is taken.
    /// Returns the actions of `extra` that failed their condition (an idempotency race).
    pub async fn create(&self, department: &Department, extra: Extra) -> ApiResult<()> {
        let put = Put::builder()
            .table_name(self.state.table())
            .set_item(Some(self.to_item(department)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let mut actions = vec![
            TransactWriteItem::builder().put(put).build(),
            self.reserve_name(&department.name, &department.id)?,
        ];
        actions.extend(extra);
        let Some(cancelled) = commit(&self.state.db, actions).await? else {
            return Ok(());
        };
        if cancelled.condition_failed(1) {
            Err(name_taken(&department.name))
        } else if cancelled
            .reasons
            .iter()
            .skip(2)
            .any(|r| r.as_deref() == Some("ConditionalCheckFailed"))
        {
            Err(ApiError::conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key was completed concurrently; retry to get its result",
            ))
        } else {
            Err(ApiError::internal(format!(
                "department create cancelled: {:?}",
                cancelled.reasons
            )))
        }
    }

    /// Writes an update computed by the domain; 409 when the new name is taken, when the
    /// department changed meanwhile, or when deactivating one that agents still reference.
    pub async fn update(
        &self,
        before: &Department,
        updated: &Updated,
        event: &DomainEvent,
    ) -> ApiResult<()> {
        let after = &updated.department;
        let mut update = Update::builder()
            .table_name(self.state.table())
            .key(keys::PK, s(self.pk()))
            .key(keys::SK, s(keys::department_sk(&before.id)))
            .update_expression(
                "SET #name = :name, phone_number = :phone, description = :description, color = :color, \
                 is_active = :active, business_hours = :hours, updated_at = :updated_at",
            )
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&after.name))
            .expression_attribute_values(":phone", s(&after.phone_number))
            .expression_attribute_values(":description", attr(&after.description)?)
            .expression_attribute_values(":color", attr(&after.color)?)
            .expression_attribute_values(":active", AttributeValue::Bool(after.is_active))
            .expression_attribute_values(":hours", attr(&after.business_hours)?)
            .expression_attribute_values(":updated_at", s(&after.updated_at))
            .expression_attribute_values(":old_name", s(&before.name))
            .expression_attribute_values(":old_active", AttributeValue::Bool(before.is_active))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut condition =
            "attribute_exists(PK) AND #name = :old_name AND is_active = :old_active".to_owned();
        if updated.deactivates {
            condition.push_str(&format!(" AND {} = :zero", directory::AGENT_COUNT));
            update = update.expression_attribute_values(":zero", AttributeValue::N("0".into()));
        }
        let update = update
            .condition_expression(condition)
            .build()
            .map_err(ApiError::internal)?;
        let mut actions = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(old) = &updated.names.release {
            actions.push(self.release_name(old, &before.id)?);
        }
        let reserve_index = updated.names.reserve.as_ref().map(|_| actions.len());
        if let Some(new) = &updated.names.reserve {
            actions.push(self.reserve_name(new, &before.id)?);
        }
        actions.push(event.put(self.state, self.tenant)?);
        self.commit(actions, reserve_index, &after.name).await
    }

    /// How many callers wait in the department's queue.
    pub async fn queued(&self, id: &str) -> ApiResult<i32> {
        let out = self
            .state
            .db
            .query()
            .table_name(self.state.table())
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(keys::queue_pk(self.tenant, id)))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.count)
    }

    /// Soft-deletes (deactivates) a department and releases its name; 409 while agents
    /// are registered to it.
    pub async fn deactivate(
        &self,
        before: &Department,
        after: &Department,
        event: &DomainEvent,
    ) -> ApiResult<()> {
        let update = Update::builder()
            .table_name(self.state.table())
            .key(keys::PK, s(self.pk()))
            .key(keys::SK, s(keys::department_sk(&before.id)))
            .update_expression("SET is_active = :inactive, updated_at = :updated_at")
            .condition_expression(format!(
                "is_active = :active AND {} = :zero",
                directory::AGENT_COUNT
            ))
            .expression_attribute_values(":inactive", AttributeValue::Bool(false))
            .expression_attribute_values(":active", AttributeValue::Bool(true))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":updated_at", s(&after.updated_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(ApiError::internal)?;
        let actions = vec![
            TransactWriteItem::builder().update(update).build(),
            self.release_name(&before.name, &before.id)?,
            event.put(self.state, self.tenant)?,
        ];
        self.commit(actions, None, &after.name).await
    }

    async fn commit(
        &self,
        actions: Vec<TransactWriteItem>,
        reserve_index: Option<usize>,
        name: &str,
    ) -> ApiResult<()> {
        let Some(cancelled) = commit(&self.state.db, actions).await? else {
            return Ok(());
        };
        if let Some(i) = reserve_index.filter(|&i| cancelled.condition_failed(i)) {
            tracing::debug!(action = i, "name reservation refused");
            return Err(name_taken(name));
        }
        if cancelled.condition_failed(0) {
            let Some(current) = cancelled.item(0).cloned() else {
                return Err(ApiError::not_found("department"));
            };
            let current = Self::from_item(current)?;
            let current_json = serde_json::to_value(&current).ok();
            if current.agent_count > 0 {
                return Err(ApiError::Conflict {
                    code: "department_in_use",
                    message: format!(
                        "the department still has {} registered agent(s); move or remove them first",
                        current.agent_count
                    ),
                    current: current_json,
                });
            }
            return Err(ApiError::Conflict {
                code: "concurrent_update",
                message: "the department was changed by another request; reload and retry".into(),
                current: current_json,
            });
        }
        Err(ApiError::internal(format!(
            "department write cancelled: {:?}",
            cancelled.reasons
        )))
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        "department_name_taken",
        format!("a department named {name:?} already exists"),
    )
}

/// A domain value as an attribute value.
fn attr<T: serde::Serialize>(value: &T) -> ApiResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(ApiError::internal)
}
