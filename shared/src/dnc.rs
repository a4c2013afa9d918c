//! The tenant-wide do-not-call check: one GetItem per number, read by every function that
//! dials (telephony) and by the contacts API, written only by the contacts API.

use crate::dynamo::{s, sdk_error};
use crate::error::{ApiError, ApiResult};
use crate::ids::TenantId;
use crate::keys;
use crate::state::AppState;

/// The DNC lists of `tenant` that hold `e164` (empty: the number may be called).
pub async fn lists_blocking(
    state: &AppState,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<Vec<String>> {
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(keys::dnc_number_pk(tenant, e164)))
        .key(keys::SK, s(keys::DNC_NUMBER_SK))
        .projection_expression("#lists")
        .expression_attribute_names("#lists", keys::DNC_LISTS_ATTR)
        .send()
        .await
        .map_err(sdk_error)?;
    let mut lists: Vec<String> = found
        .item
        .and_then(|mut item| item.remove(keys::DNC_LISTS_ATTR))
        .and_then(|value| value.as_ss().ok().cloned())
        .unwrap_or_default();
    lists.sort();
    Ok(lists)
}

/// `Ok` when `e164` may be called; 403 `do_not_call` naming the lists when it may not.
pub async fn ensure_callable(state: &AppState, tenant: &TenantId, e164: &str) -> ApiResult<()> {
    let lists = lists_blocking(state, tenant, e164).await?;
    if lists.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Refused {
            code: "do_not_call",
            message: format!(
                "{e164} is on a do-not-call list ({}); the call was not placed",
                lists.join(", ")
            ),
        })
    }
}
