//! Contact lists: create, read, edit, archive or delete, and membership changes that keep
//! each list's `contactCount` exact (the membership item, the contact's `listIds` and the
//! count change in one transaction).

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vocelio_shared::dynamo::{Item, create_action, from_record, n, record_item, s};
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::ids::{TenantId, new_id};
use vocelio_shared::keys::{ENTITY, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, FieldError, clock};

use crate::input::check_tags;
use crate::keys;
use crate::model::{Contact, ContactList, ListStatus, MAX_LISTS_PER_CONTACT};
use crate::store::{self, commit_retrying, update_action};

/// Most lists a tenant may read back in one listing (lists are few; a tenant with more
/// should archive old ones).
pub const MAX_LISTS_PER_TENANT: usize = 5000;

/// `POST /v1/contact-lists` and `PUT /v1/contact-lists/{id}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListBody {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Checked list fields.
struct ListFields {
    name: String,
    description: Option<String>,
    tags: Vec<String>,
}

fn check(body: &ListBody) -> ApiResult<ListFields> {
    let mut errors = Vec::new();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1-100 characters long"));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "must not contain control characters",
        ));
    }
    let description = body
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        errors.push(FieldError::new(
            "description",
            "must be at most 1000 characters",
        ));
    }
    let tags = check_tags(
        &mut errors,
        "tags",
        body.tags.as_deref().unwrap_or_default(),
    );
    if errors.is_empty() {
        Ok(ListFields {
            name,
            description,
            tags,
        })
    } else {
        Err(ApiError::fields(errors))
    }
}

fn list_item(tenant: &TenantId, list: &ContactList) -> ApiResult<Item> {
    let mut item = record_item(
        list,
        vec![(PK, keys::lists_pk(tenant)), (SK, keys::list_sk(&list.id))],
    )?;
    item.insert(ENTITY.to_owned(), s("contact_list"));
    Ok(item)
}

fn name_item(tenant: &TenantId, name: &str, list_id: &str) -> Item {
    [
        (PK.to_owned(), s(keys::lists_pk(tenant))),
        (SK.to_owned(), s(keys::list_name_sk(name))),
        (ENTITY.to_owned(), s("contact_list_name")),
        ("listId".to_owned(), s(list_id)),
    ]
    .into_iter()
    .collect()
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        "list_name_taken",
        format!("a contact list named {name:?} already exists"),
    )
}

/// Reads one list of the tenant (archived ones too).
pub async fn get(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<Option<ContactList>> {
    if !vocelio_shared::ids::is_id("lst", id) {
        return Ok(None);
    }
    store::get_item(state, &keys::lists_pk(tenant), &keys::list_sk(id))
        .await?
        .map(from_record)
        .transpose()
}

/// Reads one list or answers 404.
pub async fn find(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<ContactList> {
    get(state, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact list"))
}

/// Creates a list (name unique per tenant, case-insensitively); `extra` joins the transaction
/// (the idempotency record).
pub async fn create(
    state: &AppState,
    tenant: &TenantId,
    user_id: &str,
    body: &ListBody,
    extra: impl FnOnce(&ContactList) -> ApiResult<Vec<TransactWriteItem>>,
) -> ApiResult<ContactList> {
    let fields = check(body)?;
    let now = clock::now();
    let at = clock::rfc3339(now);
    let list = ContactList {
        id: new_id("lst"),
        name: fields.name,
        description: fields.description,
        tags: fields.tags,
        status: ListStatus::Active,
        contact_count: 0,
        created_by: user_id.to_owned(),
        created_at: at.clone(),
        updated_at: at,
        version: 1,
    };
    let mut actions = vec![
        create_action(state.table(), list_item(tenant, &list)?)?,
        create_action(state.table(), name_item(tenant, &list.name, &list.id))?,
        DomainEvent::new(types::CONTACT_LIST_CREATED, &list, now)?.put(state, tenant)?,
    ];
    actions.extend(extra(&list)?);
    match commit_retrying(state, actions).await? {
        None => Ok(list),
        Some(c) if c.condition_failed(1) => Err(name_taken(&list.name)),
        Some(_) => Err(ApiError::conflict(
            "concurrent_update",
            "the request raced another; retry",
        )),
    }
}

/// Changes a list's name, description and tags (not its count: memberships do that).
pub async fn update(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    body: &ListBody,
) -> ApiResult<ContactList> {
    let fields = check(body)?;
    let current = find(state, tenant, id).await?;
    let now = clock::now();
    let at = clock::rfc3339(now);
    let mut actions = vec![update_action(
        state,
        keys::lists_pk(tenant),
        keys::list_sk(id),
        "SET #name = :name, description = :description, tags = :tags, updatedAt = :at ADD version :one",
        Some("version = :seen"),
        vec![
            (":name", s(&fields.name)),
            (
                ":description",
                fields
                    .description
                    .as_ref()
                    .map_or(AttributeValue::Null(true), s),
            ),
            (
                ":tags",
                AttributeValue::L(fields.tags.iter().map(s).collect()),
            ),
            (":at", s(&at)),
            (":one", n(1)),
            (":seen", n(current.version)),
        ],
        vec![("#name", "name")],
    )?];
    let renamed = keys::fold(&fields.name) != keys::fold(&current.name);
    if renamed {
        actions.push(create_action(
            state.table(),
            name_item(tenant, &fields.name, id),
        )?);
        actions.push(store::delete_action(
            state,
            keys::lists_pk(tenant),
            keys::list_name_sk(&current.name),
        )?);
    }
    let mut updated = current.clone();
    updated.name = fields.name;
    updated.description = fields.description;
    updated.tags = fields.tags;
    updated.updated_at = at;
    updated.version += 1;
    actions.push(DomainEvent::new(types::CONTACT_LIST_UPDATED, &updated, now)?.put(state, tenant)?);
    match commit_retrying(state, actions).await? {
        None => Ok(find(state, tenant, id).await?),
        Some(c) if renamed && c.condition_failed(1) => Err(name_taken(&updated.name)),
        Some(_) => Err(ApiError::Conflict {
            code: "version_conflict",
            message: "the list was changed by another request; read it and retry".into(),
            current: Some(json!(current)),
        }),
    }
}

/// Archives a list (its members stay; it can no longer gain members).
pub async fn archive(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<ContactList> {
    let current = find(state, tenant, id).await?;
    if current.status == ListStatus::Archived {
        return Ok(current);
    }
    let now = clock::now();
    let mut archived = current.clone();
    archived.status = ListStatus::Archived;
    archived.updated_at = clock::rfc3339(now);
    let actions = vec![
        update_action(
            state,
            keys::lists_pk(tenant),
            keys::list_sk(id),
            "SET #status = :archived, updatedAt = :at ADD version :one",
            Some("attribute_exists(PK)"),
            vec![
                (":archived", s(ListStatus::Archived.as_str())),
                (":at", s(&archived.updated_at)),
                (":one", n(1)),
            ],
            vec![("#status", "status")],
        )?,
        store::delete_action(
            state,
            keys::lists_pk(tenant),
            keys::list_name_sk(&current.name),
        )?,
        DomainEvent::new(types::CONTACT_LIST_DELETED, &archived, now)?.put(state, tenant)?,
    ];
    commit_retrying(state, actions)
        .await?
        .map_or(Ok(()), |_| Err(ApiError::not_found("contact list")))?;
    find(state, tenant, id).await
}

/// Deletes a list for good: first every membership (in batches, each with its count), then
/// the list itself once it is empty. Safe to repeat if interrupted.
pub async fn hard_delete(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<u64> {
    let list = find(state, tenant, id).await?;
    if list.status == ListStatus::Active {
        archive(state, tenant, id).await?;
    }
    let mut removed = 0u64;
    loop {
        let page = store::query_page(
            state,
            &keys::members_pk(tenant, id),
            keys::MEMBER_PREFIX,
            None,
            500,
            true,
        )
        .await?;
        if page.items.is_empty() {
            break;
        }
        let ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|i| store::attr(i, SK))
            .filter_map(|sk| sk.strip_prefix(keys::MEMBER_PREFIX))
            .map(str::to_owned)
            .collect();
        let outcome = change_members(state, tenant, id, &ids, Change::Remove, true).await?;
        removed += outcome.changed.len() as u64;
        if outcome.changed.is_empty() {
            // Memberships whose contact is gone: remove the items and their count.
            for contact_id in &ids {
                let actions = vec![
                    store::delete_existing_action(
                        state,
                        keys::members_pk(tenant, id),
                        keys::member_sk(contact_id),
                        None,
                    )?,
                    update_action(
                        state,
                        keys::lists_pk(tenant),
                        keys::list_sk(id),
                        "ADD contactCount :minus",
                        None,
                        vec![(":minus", n(-1))],
                        vec![],
                    )?,
                ];
                if commit_retrying(state, actions).await?.is_none() {
                    removed += 1;
                }
            }
        }
    }
    let now = clock::now();
    let actions = vec![
        store::delete_existing_action(state, keys::lists_pk(tenant), keys::list_sk(id), None)?,
        DomainEvent::new(
            types::CONTACT_LIST_DELETED,
            &json!({ "id": id, "hardDeleted": true, "membersRemoved": removed }),
            now,
        )?
        .put(state, tenant)?,
    ];
    commit_retrying(state, actions).await?;
    Ok(removed)
}

/// Every list of the tenant (up to [`MAX_LISTS_PER_TENANT`]), newest first.
pub async fn all(state: &AppState, tenant: &TenantId) -> ApiResult<Vec<ContactList>> {
    let mut lists = Vec::new();
    let mut start = None;
    loop {
        let page = store::query_page(
            state,
            &keys::lists_pk(tenant),
            keys::LIST_PREFIX,
            start,
            500,
            false,
        )
        .await?;
        for item in page.items {
            lists.push(from_record::<ContactList>(item)?);
        }
        start = page.last_key;
        if start.is_none() || lists.len() >= MAX_LISTS_PER_TENANT {
            break;
        }
    }
    lists.reverse();
    Ok(lists)
}

/// Adding or removing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

/// One id that could not be changed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub id: String,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    /// A failure of `id`.
    pub fn new(id: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            id: id.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// What a membership change did, per id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipOutcome {
    /// Ids whose membership changed.
    pub changed: Vec<String>,
    /// Ids already in the wanted state (already members / not members).
    pub unchanged: Vec<String>,
    pub failed: Vec<Failure>,
}

/// Contacts per membership transaction: 2 actions each, plus the list's count and the event.
const MEMBERS_PER_TRANSACTION: usize = 48;

/// Adds `contact_ids` to (or removes them from) a list, in transactions of up to
/// [`MEMBERS_PER_TRANSACTION`] contacts. A contact whose write fails (deleted meanwhile, at
/// its list limit, raced by an identical change) is taken out and the rest retried, so the
/// answer says exactly which ids changed and the count moves by exactly that many.
pub async fn change_members(
    state: &AppState,
    tenant: &TenantId,
    list_id: &str,
    contact_ids: &[String],
    change: Change,
    allow_archived: bool,
) -> ApiResult<MembershipOutcome> {
    let list = find(state, tenant, list_id).await?;
    if change == Change::Add && list.status == ListStatus::Archived && !allow_archived {
        return Err(ApiError::conflict(
            "list_archived",
            "the list is archived; it cannot gain members",
        ));
    }
    let mut outcome = MembershipOutcome::default();
    let mut seen = HashSet::new();
    let unique: Vec<String> = contact_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect();
    let found = store::contacts(state, tenant, &unique).await?;
    let found_ids: HashSet<&str> = found.iter().map(|c| c.id.as_str()).collect();
    for id in &unique {
        if !found_ids.contains(id.as_str()) {
            outcome
                .failed
                .push(Failure::new(id, "not_found", "no contact has this id"));
        }
    }
    let mut todo: Vec<Contact> = Vec::new();
    for contact in found {
        let member = contact.list_ids.iter().any(|l| l == list_id);
        match change {
            Change::Add if member => outcome.unchanged.push(contact.id),
            Change::Remove if !member => outcome.unchanged.push(contact.id),
            Change::Add if contact.list_ids.len() >= MAX_LISTS_PER_CONTACT => {
                outcome.failed.push(Failure::new(
                    &contact.id,
                    "too_many_lists",
                    format!("a contact may belong to at most {MAX_LISTS_PER_CONTACT} lists"),
                ));
            }
            _ => todo.push(contact),
        }
    }
    for chunk in todo.chunks(MEMBERS_PER_TRANSACTION) {
        let mut pending: Vec<&Contact> = chunk.iter().collect();
        for round in 0..10u32 {
            if round > 0 {
                tokio::time::sleep(store::backoff(round.min(4))).await;
            }
            if pending.is_empty() {
                break;
            }
            let actions = membership_actions(state, tenant, list_id, &pending, change)?;
            match commit_retrying(state, actions).await? {
                None => {
                    outcome.changed.extend(pending.iter().map(|c| c.id.clone()));
                    pending.clear();
                }
                Some(cancellation) => {
                    if cancellation.condition_failed(0) {
                        return Err(ApiError::conflict(
                            "list_archived",
                            "the list was archived or deleted meanwhile",
                        ));
                    }
                    let mut keep = Vec::new();
                    for (i, contact) in pending.iter().enumerate() {
                        let member_slot = 1 + 2 * i;
                        if cancellation.condition_failed(member_slot) {
                            // An identical change won the race: already in the wanted state.
                            outcome.unchanged.push(contact.id.clone());
                        } else if cancellation.condition_failed(member_slot + 1) {
                            outcome.failed.push(Failure::new(
                                &contact.id,
                                "contact_changed",
                                "the contact was deleted or reached its list limit meanwhile",
                            ));
                        } else {
                            keep.push(*contact);
                        }
                    }
                    pending = keep;
                }
            }
        }
        for contact in pending {
            outcome.failed.push(Failure::new(
                &contact.id,
                "concurrent_update",
                "the membership kept racing other changes; retry",
            ));
        }
    }
    Ok(outcome)
}

/// The actions of one membership transaction: the list's count first, then per contact its
/// membership item and its `listIds`, then the event.
fn membership_actions(
    state: &AppState,
    tenant: &TenantId,
    list_id: &str,
    contacts: &[&Contact],
    change: Change,
) -> ApiResult<Vec<TransactWriteItem>> {
    let count = contacts.len() as i64;
    let now = clock::now();
    let at = clock::rfc3339(now);
    let mut actions = vec![match change {
        Change::Add => update_action(
            state,
            keys::lists_pk(tenant),
            keys::list_sk(list_id),
            "ADD contactCount :count SET updatedAt = :at",
            Some("attribute_exists(PK) AND #status = :active"),
            vec![
                (":count", n(count)),
                (":at", s(&at)),
                (":active", s(ListStatus::Active.as_str())),
            ],
            vec![("#status", "status")],
        )?,
        Change::Remove => update_action(
            state,
            keys::lists_pk(tenant),
            keys::list_sk(list_id),
            "ADD contactCount :count SET updatedAt = :at",
            Some("attribute_exists(PK)"),
            vec![(":count", n(-count)), (":at", s(&at))],
            vec![],
        )?,
    }];
    let set = AttributeValue::Ss(vec![list_id.to_owned()]);
    for contact in contacts {
        match change {
            Change::Add => {
                let member: Item = [
                    (PK.to_owned(), s(keys::members_pk(tenant, list_id))),
                    (SK.to_owned(), s(keys::member_sk(&contact.id))),
                    (ENTITY.to_owned(), s("contact_list_member")),
                    ("contactId".to_owned(), s(&contact.id)),
                    ("addedAt".to_owned(), s(&at)),
                ]
                .into_iter()
                .collect();
                actions.push(create_action(state.table(), member)?);
                actions.push(update_action(
                    state,
                    keys::contacts_pk(tenant),
                    keys::contact_sk(&contact.id),
                    "ADD listIds :list, version :one",
                    Some("attribute_exists(PK) AND (attribute_not_exists(listIds) OR size(listIds) < :max)"),
                    vec![
                        (":list", set.clone()),
                        (":one", n(1)),
                        (":max", n(MAX_LISTS_PER_CONTACT)),
                    ],
                    vec![],
                )?);
            }
            Change::Remove => {
                actions.push(store::delete_existing_action(
                    state,
                    keys::members_pk(tenant, list_id),
                    keys::member_sk(&contact.id),
                    None,
                )?);
                actions.push(update_action(
                    state,
                    keys::contacts_pk(tenant),
                    keys::contact_sk(&contact.id),
                    "DELETE listIds :list ADD version :one",
                    Some("attribute_exists(PK)"),
                    vec![(":list", set.clone()), (":one", n(1))],
                    vec![],
                )?);
            }
        }
    }
    let ids: Vec<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    let data: Value = json!({
        "listId": list_id,
        "change": if change == Change::Add { "added" } else { "removed" },
        "contactIds": ids,
    });
    actions.push(
        DomainEvent::new(types::CONTACT_LIST_MEMBERS_CHANGED, &data, now)?.put(state, tenant)?,
    );
    Ok(actions)
}
