//! DynamoDB access for contacts: reads (single, batched, paged), the write actions that keep a
//! contact's claim, index items and counters in step with the record, and commits that retry
//! DynamoDB's transaction conflicts.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use vocelio_shared::dynamo::{
    Cancellation, Item, commit, create_action, from_record, n, record_item, replace_action, s,
    sdk_error,
};
use vocelio_shared::ids::TenantId;
use vocelio_shared::keys::{ENTITY, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState};

use crate::keys::{self, fold};
use crate::model::{Contact, ContactStatus};

/// The most actions one DynamoDB transaction may hold.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;

/// A `(PK, SK)` pair.
pub type Key = (String, String);

/// Runs a transaction, retrying (with jittered backoff) when DynamoDB reports a conflict with
/// another transaction on the same items; conditions that fail are returned, not retried.
pub async fn commit_retrying(
    state: &AppState,
    actions: Vec<TransactWriteItem>,
) -> ApiResult<Option<Cancellation>> {
    let mut attempt = 0u32;
    loop {
        match commit(&state.db, actions.clone()).await {
            Err(ApiError::Conflict { code, .. }) if code == "concurrent_update" && attempt < 12 => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// Jittered exponential backoff: ~5 ms doubling to ~320 ms.
pub fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::now_v7().as_u128() as u16) % base.max(1);
    Duration::from_millis(base / 2 + jitter)
}

/// Reads one item by key (strongly consistent).
pub async fn get_item(state: &AppState, pk: &str, sk: &str) -> ApiResult<Option<Item>> {
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(PK, s(pk))
        .key(SK, s(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(found.item)
}

/// Reads many items by key: BatchGetItem in chunks of 100, retrying unprocessed keys.
/// Items come back in no particular order; missing ones are simply absent.
pub async fn batch_get(state: &AppState, keys: &[Key]) -> ApiResult<Vec<Item>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut unique: Vec<&Key> = Vec::with_capacity(keys.len());
    for key in keys {
        if !unique.contains(&key) {
            unique.push(key);
        }
    }
    for chunk in unique.chunks(100) {
        let mut pending = KeysAndAttributes::builder().consistent_read(true);
        for (pk, sk) in chunk {
            pending = pending.keys(HashMap::from([
                (PK.to_owned(), s(pk.as_str())),
                (SK.to_owned(), s(sk.as_str())),
            ]));
        }
        let mut request = Some(pending.build().map_err(ApiError::internal)?);
        let mut attempt = 0u32;
        while let Some(keys_and_attributes) = request.take() {
            let answer = state
                .db
                .batch_get_item()
                .request_items(state.table(), keys_and_attributes)
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(mut responses) = answer.responses
                && let Some(items) = responses.remove(state.table())
            {
                out.extend(items);
            }
            if let Some(mut unprocessed) = answer.unprocessed_keys
                && let Some(rest) = unprocessed.remove(state.table())
                && !rest.keys().is_empty()
            {
                attempt += 1;
                if attempt > 10 {
                    return Err(ApiError::Unavailable(
                        "dynamodb left keys unprocessed".into(),
                    ));
                }
                tokio::time::sleep(backoff(attempt)).await;
                request = Some(rest);
            }
        }
    }
    Ok(out)
}

/// The string attribute `name` of an item.
pub fn attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// One page of a partition: items whose sort key begins with `prefix`, from after `start`.
pub struct Page {
    pub items: Vec<Item>,
    /// The key to continue from, when the partition has more.
    pub last_key: Option<Item>,
}

/// Queries one page of `pk` (sort keys beginning with `prefix`), at most `limit` items.
pub async fn query_page(
    state: &AppState,
    pk: &str,
    prefix: &str,
    start: Option<Item>,
    limit: i32,
    keys_only: bool,
) -> ApiResult<Page> {
    let mut query = state
        .db
        .query()
        .table_name(state.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":prefix", s(prefix))
        .set_exclusive_start_key(start)
        .limit(limit);
    if keys_only {
        query = query.projection_expression("PK, SK");
    }
    let answer = query.send().await.map_err(sdk_error)?;
    Ok(Page {
        items: answer.items.unwrap_or_default(),
        last_key: answer.last_evaluated_key,
    })
}

/// A key item for cursors: `{PK, SK}` of an item.
pub fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| k.as_str() == PK || k.as_str() == SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A put without condition.
pub fn put_action(state: &AppState, item: Item) -> ApiResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(state.table())
        .set_item(Some(item))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A delete without condition (an absent item is fine).
pub fn delete_action(state: &AppState, pk: String, sk: String) -> ApiResult<TransactWriteItem> {
    let delete = Delete::builder()
        .table_name(state.table())
        .key(PK, s(pk))
        .key(SK, s(sk))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A delete that fails unless the item exists (and, when given, has `version`).
pub fn delete_existing_action(
    state: &AppState,
    pk: String,
    sk: String,
    version: Option<u64>,
) -> ApiResult<TransactWriteItem> {
    let mut delete = Delete::builder()
        .table_name(state.table())
        .key(PK, s(pk))
        .key(SK, s(sk))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    delete = match version {
        Some(v) => delete
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(v)),
        None => delete.condition_expression("attribute_exists(PK)"),
    };
    Ok(TransactWriteItem::builder()
        .delete(delete.build().map_err(ApiError::internal)?)
        .build())
}

/// An update action with a ready expression.
pub fn update_action(
    state: &AppState,
    pk: String,
    sk: String,
    expression: &str,
    condition: Option<&str>,
    values: Vec<(&str, AttributeValue)>,
    names: Vec<(&str, &str)>,
) -> ApiResult<TransactWriteItem> {
    let mut update = Update::builder()
        .table_name(state.table())
        .key(PK, s(pk))
        .key(SK, s(sk))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_owned))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    for (name, value) in values {
        update = update.expression_attribute_values(name, value);
    }
    for (alias, name) in names {
        update = update.expression_attribute_names(alias, name);
    }
    // Every other `#name` in the expressions stands for the attribute `name` (attribute
    // names such as `processed` or `status` are reserved words in expressions).
    let mut implied: Vec<&str> = Vec::new();
    for text in [Some(expression), condition].into_iter().flatten() {
        for (i, _) in text.match_indices('#') {
            let name: &str = text[i + 1..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            if !name.is_empty() && !implied.contains(&name) {
                implied.push(name);
            }
        }
    }
    for name in implied {
        let alias = format!("#{name}");
        update = update.expression_attribute_names(alias, name);
    }
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(ApiError::internal)?)
        .build())
}

/// The tenant's contact counters, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub total: u64,
    pub active: u64,
    pub inactive: u64,
    pub do_not_call: u64,
}

impl Counts {
    /// The count of one status.
    pub fn of(&self, status: ContactStatus) -> u64 {
        match status {
            ContactStatus::Active => self.active,
            ContactStatus::Inactive => self.inactive,
            ContactStatus::DoNotCall => self.do_not_call,
        }
    }
}

/// Reads the tenant's contact counters.
pub async fn counts(state: &AppState, tenant: &TenantId) -> ApiResult<Counts> {
    let item = get_item(state, &keys::contacts_pk(tenant), keys::COUNT_SK).await?;
    let number = |name: &str| {
        item.as_ref()
            .and_then(|i| i.get(name))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(0, |v| v.max(0) as u64)
    };
    Ok(Counts {
        total: number("total"),
        active: number(ContactStatus::Active.as_str()),
        inactive: number(ContactStatus::Inactive.as_str()),
        do_not_call: number(ContactStatus::DoNotCall.as_str()),
    })
}

/// Changes to the tenant's counters, summed over many contacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountDelta {
    pub total: i64,
    pub by_status: [i64; 3],
}

impl CountDelta {
    fn index(status: ContactStatus) -> usize {
        match status {
            ContactStatus::Active => 0,
            ContactStatus::Inactive => 1,
            ContactStatus::DoNotCall => 2,
        }
    }

    /// Records a contact moving from `old` to `new` (`None` = absent).
    pub fn record(&mut self, old: Option<ContactStatus>, new: Option<ContactStatus>) {
        if let Some(old) = old {
            self.total -= 1;
            self.by_status[Self::index(old)] -= 1;
        }
        if let Some(new) = new {
            self.total += 1;
            self.by_status[Self::index(new)] += 1;
        }
    }

    /// Whether nothing changes.
    pub fn is_zero(&self) -> bool {
        self.total == 0 && self.by_status.iter().all(|c| *c == 0)
    }

    /// The `ADD` on the counter item, or nothing when the delta is zero.
    pub fn action(
        &self,
        state: &AppState,
        tenant: &TenantId,
    ) -> ApiResult<Option<TransactWriteItem>> {
        if self.is_zero() {
            return Ok(None);
        }
        let counters: Vec<(&str, f64)> = std::iter::once(("total", self.total as f64))
            .chain(
                ContactStatus::ALL
                    .iter()
                    .map(|s| (s.as_str(), self.by_status[Self::index(*s)] as f64)),
            )
            .filter(|(_, v)| *v != 0.0)
            .collect();
        vocelio_shared::dynamo::add_action(
            state.table(),
            keys::contacts_pk(tenant),
            keys::COUNT_SK.to_owned(),
            &counters,
        )
        .map(Some)
    }
}

/// The search index sort keys of a contact: its email, and its name both ways round.
pub fn index_sks(contact: &Contact) -> Vec<String> {
    let mut sks = Vec::new();
    if let Some(email) = contact.email.as_deref().filter(|e| !e.is_empty()) {
        sks.push(keys::email_sk(
            &email.to_lowercase().replace('#', ""),
            &contact.id,
        ));
    }
    let first = fold(&contact.first_name);
    let last = fold(contact.last_name.as_deref().unwrap_or_default());
    let forward = fold(&format!("{first} {last}"));
    if !forward.is_empty() {
        sks.push(keys::name_sk(&forward, &contact.id));
    }
    if !last.is_empty() && !first.is_empty() {
        sks.push(keys::name_sk(&format!("{last} {first}"), &contact.id));
    }
    if let Some(company) = contact
        .company
        .as_deref()
        .map(fold)
        .filter(|c| !c.is_empty())
    {
        sks.push(keys::name_sk(&company, &contact.id));
    }
    sks.sort();
    sks.dedup();
    sks
}

fn index_item(tenant: &TenantId, sk: String, contact_id: &str) -> Item {
    [
        (PK.to_owned(), s(keys::index_pk(tenant, &sk))),
        (SK.to_owned(), s(sk)),
        (ENTITY.to_owned(), s("contact_index")),
        ("contactId".to_owned(), s(contact_id)),
    ]
    .into_iter()
    .collect()
}

/// The stored item of a contact record.
pub fn contact_item(tenant: &TenantId, contact: &Contact) -> ApiResult<Item> {
    let mut item = record_item(
        contact,
        vec![
            (PK, keys::contacts_pk(tenant)),
            (SK, keys::contact_sk(&contact.id)),
        ],
    )?;
    item.insert(ENTITY.to_owned(), s("contact"));
    Ok(item)
}

/// Reads a contact record from its item.
pub fn contact_from(item: Item) -> ApiResult<Contact> {
    from_record(item)
}

/// Reads one contact of the tenant.
pub async fn contact(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<Option<Contact>> {
    if !vocelio_shared::ids::is_id("con", id) {
        return Ok(None);
    }
    get_item(state, &keys::contacts_pk(tenant), &keys::contact_sk(id))
        .await?
        .map(contact_from)
        .transpose()
}

/// Reads many contacts of the tenant by id; the answer keeps the order of `ids` and skips
/// ids that do not exist.
pub async fn contacts(
    state: &AppState,
    tenant: &TenantId,
    ids: &[String],
) -> ApiResult<Vec<Contact>> {
    let pk = keys::contacts_pk(tenant);
    let keys: Vec<Key> = ids
        .iter()
        .filter(|id| vocelio_shared::ids::is_id("con", id))
        .map(|id| (pk.clone(), keys::contact_sk(id)))
        .collect();
    let mut found: HashMap<String, Contact> = HashMap::new();
    for item in batch_get(state, &keys).await? {
        let contact = contact_from(item)?;
        found.insert(contact.id.clone(), contact);
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// The contact id owning `e164` in the tenant, if any.
pub async fn phone_owner(
    state: &AppState,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<Option<String>> {
    Ok(get_item(
        state,
        &keys::index_pk(tenant, &keys::phone_sk(e164)),
        &keys::phone_sk(e164),
    )
    .await?
    .and_then(|item| attr(&item, "contactId").map(str::to_owned)))
}

/// Where a contact write's actions sit in the transaction, to read a cancellation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSlots {
    /// The record's own action.
    pub record: usize,
    /// The new phone claim, when the phone is claimed.
    pub claim: Option<usize>,
}

/// The actions that store `new` (created when `old` is `None`, else replacing `old`):
/// the record (conditional on `old`'s version), the phone claim (conditional: one owner per
/// number), the index items that changed. Counters are left to the caller ([`CountDelta`]).
/// Returns the actions and where the record and claim are among them (offset by `base`).
pub fn contact_write_actions(
    state: &AppState,
    tenant: &TenantId,
    old: Option<&Contact>,
    new: &Contact,
    base: usize,
) -> ApiResult<(Vec<TransactWriteItem>, WriteSlots)> {
    let mut actions = Vec::new();
    let mut slots = WriteSlots {
        record: base,
        claim: None,
    };
    let item = contact_item(tenant, new)?;
    actions.push(match old {
        None => create_action(state.table(), item)?,
        Some(old) => replace_action(state.table(), item, old.version)?,
    });
    let phone_changed = old.is_none_or(|o| o.phone != new.phone);
    if phone_changed {
        let claim: Item = [
            (
                PK.to_owned(),
                s(keys::index_pk(tenant, &keys::phone_sk(&new.phone))),
            ),
            (SK.to_owned(), s(keys::phone_sk(&new.phone))),
            (ENTITY.to_owned(), s("contact_phone")),
            ("contactId".to_owned(), s(&new.id)),
        ]
        .into_iter()
        .collect();
        slots.claim = Some(base + actions.len());
        actions.push(create_action(state.table(), claim)?);
        if let Some(old) = old {
            let old_claim = keys::phone_sk(&old.phone);
            actions.push(delete_action(
                state,
                keys::index_pk(tenant, &old_claim),
                old_claim,
            )?);
        }
    }
    let before = old.map(index_sks).unwrap_or_default();
    let after = index_sks(new);
    for sk in before.iter().filter(|sk| !after.contains(sk)) {
        actions.push(delete_action(
            state,
            keys::index_pk(tenant, sk),
            sk.clone(),
        )?);
    }
    for sk in after.iter().filter(|sk| !before.contains(sk)) {
        actions.push(put_action(state, index_item(tenant, sk.clone(), &new.id))?);
    }
    Ok((actions, slots))
}

/// The actions that remove a contact: the record (at its version), its claim, its index
/// items and every membership with its list's count. Counters are left to the caller.
pub fn contact_delete_actions(
    state: &AppState,
    tenant: &TenantId,
    old: &Contact,
) -> ApiResult<Vec<TransactWriteItem>> {
    let pk = keys::contacts_pk(tenant);
    let mut actions = vec![
        delete_existing_action(
            state,
            pk.clone(),
            keys::contact_sk(&old.id),
            Some(old.version),
        )?,
        delete_action(
            state,
            keys::index_pk(tenant, &keys::phone_sk(&old.phone)),
            keys::phone_sk(&old.phone),
        )?,
    ];
    for sk in index_sks(old) {
        actions.push(delete_action(state, keys::index_pk(tenant, &sk), sk)?);
    }
    for list_id in &old.list_ids {
        actions.push(delete_action(
            state,
            keys::members_pk(tenant, list_id),
            keys::member_sk(&old.id),
        )?);
        actions.push(update_action(
            state,
            keys::lists_pk(tenant),
            keys::list_sk(list_id),
            "ADD contactCount :minus",
            Some("attribute_exists(PK)"),
            vec![(":minus", n(-1))],
            vec![],
        )?);
    }
    Ok(actions)
}

/// The 409 for a phone number another contact owns.
pub fn phone_taken(e164: &str, owner: Option<&str>) -> ApiError {
    ApiError::Conflict {
        code: "duplicate_phone",
        message: format!(
            "a contact with the phone number {e164} already exists{}",
            owner.map(|id| format!(" ({id})")).unwrap_or_default()
        ),
        current: owner.map(|id| serde_json::json!({ "contactId": id, "phone": e164 })),
    }
}
