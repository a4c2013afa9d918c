//! Each tenant's Twilio account: a subaccount of ours, created on first telephony use, so
//! its numbers, calls, client identities and webhook signatures are its own. Its SID and
//! auth token are stored sealed ([`crate::seal`]) under the tenant, and an index item maps
//! the SID back to the tenant: a webhook's `AccountSid` names the tenant and the token its
//! signature must be made with. Never returned by any API, never logged.
//!
//! With `TWILIO_SUBACCOUNTS=false` (one organisation on its own account) every tenant uses
//! the configured account.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use vocelio_shared::dynamo::{from_record, n, record_item, s, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, clock, keys};

use crate::client::TwilioClient;
use crate::service::{Telephony, twilio_error};
use crate::store;

/// The sort key of a tenant's account item.
const ACCOUNT_SK: &str = "ACCOUNT";
/// How long one request may hold the right to create a tenant's subaccount.
const CREATE_LEASE_SECONDS: i64 = 30;

/// A tenant's Twilio account: the SID its REST paths name and the token that signs its
/// webhooks.
#[derive(Clone)]
pub struct TenantAccount {
    pub sid: String,
    token: String,
}

impl std::fmt::Debug for TenantAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantAccount")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl TenantAccount {
    /// The auth token (webhook signatures).
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Who a webhook's `AccountSid` is: the tenant of a subaccount (absent for our own account,
/// whose callbacks name their tenant in a signed query) and the token to verify with.
#[derive(Clone)]
pub struct AccountOwner {
    pub tenant: Option<TenantId>,
    pub token: String,
}

/// The stored account of a tenant (`TENANT#t#TELEPHONY`, `ACCOUNT`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountRecord {
    status: String,
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    sealed_token: Option<String>,
    #[serde(default)]
    lease_until: Option<i64>,
    created_at: String,
}

/// The index item of a subaccount (`CARRIER#TWILIO#ACCOUNT#<sid>`, `OWNER`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountIndex {
    tenant_id: String,
    account_sid: String,
    sealed_token: String,
}

fn context(tenant: &str, sid: &str) -> String {
    format!("{tenant}|{sid}")
}

/// The friendly name of a tenant's subaccount (how a lost creation is found again).
pub fn friendly_name(tenant: &TenantId) -> String {
    format!("vocelio:{tenant}")
}

impl Telephony {
    fn keys(&self) -> ApiResult<&crate::seal::Keys> {
        self.config
            .keys
            .as_ref()
            .ok_or_else(|| ApiError::internal("TELEPHONY_SECRETS_KEY is not set"))
    }

    /// The tenant's account, created (as a subaccount of ours) on first use.
    pub async fn account(&self, tenant: &TenantId) -> ApiResult<TenantAccount> {
        let parent = self.twilio()?;
        if !self.config.subaccounts {
            return Ok(TenantAccount {
                sid: parent.account_sid().to_owned(),
                token: self.auth_token()?.to_owned(),
            });
        }
        if let Some(found) = self.cached_account(tenant) {
            return Ok(found);
        }
        let account = self.provision(tenant, parent).await?;
        self.cache_account(tenant, &account);
        Ok(account)
    }

    /// A Twilio client acting on the tenant's account.
    pub async fn client_for(&self, tenant: &TenantId) -> ApiResult<TwilioClient> {
        let account = self.account(tenant).await?;
        Ok(self.twilio()?.for_account(&account.sid))
    }

    async fn read_account(&self, tenant: &TenantId) -> ApiResult<Option<AccountRecord>> {
        store::get(&self.app, keys::telephony_pk(tenant), ACCOUNT_SK)
            .await?
            .map(from_record)
            .transpose()
    }

    fn open_record(
        &self,
        tenant: &TenantId,
        record: &AccountRecord,
    ) -> ApiResult<Option<TenantAccount>> {
        match (&record.account_sid, &record.sealed_token) {
            (Some(sid), Some(sealed)) if record.status == "active" => {
                let token = self
                    .keys()?
                    .open(&context(tenant.as_str(), sid), sealed)
                    .map_err(|e| ApiError::internal(format!("tenant account token: {e}")))?;
                Ok(Some(TenantAccount {
                    sid: sid.clone(),
                    token,
                }))
            }
            _ => Ok(None),
        }
    }

    async fn provision(
        &self,
        tenant: &TenantId,
        parent: &TwilioClient,
    ) -> ApiResult<TenantAccount> {
        for _ in 0..25 {
            let record = self.read_account(tenant).await?;
            if let Some(record) = &record
                && let Some(account) = self.open_record(tenant, record)?
            {
                return Ok(account);
            }
            let now = clock::now().unix_timestamp();
            let lease_free = record
                .as_ref()
                .is_none_or(|r| r.lease_until.is_none_or(|l| l < now));
            if lease_free && self.take_create_lease(tenant, now).await? {
                return self.create(tenant, parent).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Err(ApiError::Unavailable(
            "the tenant's telephony account is being set up".into(),
        ))
    }

    async fn take_create_lease(&self, tenant: &TenantId, now: i64) -> ApiResult<bool> {
        let result = self
            .app
            .db
            .put_item()
            .table_name(self.app.table())
            .item(keys::PK, s(keys::telephony_pk(tenant)))
            .item(keys::SK, s(ACCOUNT_SK))
            .item(keys::ENTITY, s("telephony_account"))
            .item("status", s("creating"))
            .item("lease_until", n(now + CREATE_LEASE_SECONDS))
            .item("created_at", s(clock::rfc3339(clock::now())))
            .condition_expression(
                "attribute_not_exists(PK) OR (#status = :creating AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":creating", s("creating"))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Creates the subaccount (or adopts the one an interrupted creation left at Twilio,
    /// found by its friendly name) and stores it with its index item in one transaction.
    async fn create(&self, tenant: &TenantId, parent: &TwilioClient) -> ApiResult<TenantAccount> {
        let name = friendly_name(tenant);
        let existing = parent
            .find_subaccounts(&name)
            .await
            .map_err(twilio_error)?
            .into_iter()
            .find(|a| a.auth_token.is_some());
        let created = match existing {
            Some(account) => account,
            None => parent
                .create_subaccount(&name)
                .await
                .map_err(twilio_error)?,
        };
        let token = created
            .auth_token
            .clone()
            .ok_or_else(|| ApiError::internal("Twilio returned a subaccount without its token"))?;
        let sid = created.sid.clone();
        if !crate::callback::is_sid("AC", &sid) {
            return Err(ApiError::internal(
                "Twilio returned a malformed account SID",
            ));
        }
        let keys = self.keys()?;
        let sealed = keys.seal(&context(tenant.as_str(), &sid), &token);
        let at = clock::rfc3339(clock::now());
        let record = record_item(
            &AccountRecord {
                status: "active".into(),
                account_sid: Some(sid.clone()),
                sealed_token: Some(sealed),
                lease_until: None,
                created_at: at,
            },
            vec![
                (keys::PK, keys::telephony_pk(tenant)),
                (keys::SK, ACCOUNT_SK.to_owned()),
                (keys::ENTITY, "telephony_account".to_owned()),
            ],
        )?;
        let index = record_item(
            &AccountIndex {
                tenant_id: tenant.as_str().to_owned(),
                account_sid: sid.clone(),
                sealed_token: keys.seal(&context(tenant.as_str(), &sid), &token),
            },
            vec![
                (keys::PK, keys::carrier_account_pk(&sid)),
                (keys::SK, keys::OWNER_SK.to_owned()),
                (keys::ENTITY, "carrier_account".to_owned()),
            ],
        )?;
        let index_put = Put::builder()
            .table_name(self.app.table())
            .set_item(Some(index))
            .condition_expression("attribute_not_exists(PK) OR tenant_id = :tenant")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .build()
            .map_err(ApiError::internal)?;
        let actions = vec![
            store::put(&self.app, record, None)?,
            TransactWriteItem::builder().put(index_put).build(),
        ];
        if vocelio_shared::dynamo::commit(&self.app.db, actions)
            .await?
            .is_some()
        {
            return Err(ApiError::internal(
                "a Twilio subaccount is already recorded for another tenant",
            ));
        }
        tracing::info!(tenant = %tenant, account_sid = %sid, "Twilio subaccount ready");
        Ok(TenantAccount { sid, token })
    }

    /// Who the webhook's `AccountSid` is, or `None` when it is no account of ours.
    pub async fn account_owner(&self, account_sid: &str) -> ApiResult<Option<AccountOwner>> {
        let parent_sid = self.account_sid();
        if parent_sid == Some(account_sid) {
            return Ok(Some(AccountOwner {
                tenant: None,
                token: self.auth_token()?.to_owned(),
            }));
        }
        if !self.config.subaccounts || !crate::callback::is_sid("AC", account_sid) {
            return Ok(None);
        }
        if let Some(owner) = self.cached_owner(account_sid) {
            return Ok(Some(owner));
        }
        let Some(item) = store::get(
            &self.app,
            keys::carrier_account_pk(account_sid),
            keys::OWNER_SK,
        )
        .await?
        else {
            return Ok(None);
        };
        let index: AccountIndex = from_record(item)?;
        // Sealed for this tenant and SID: an index item pointing a SID at another tenant
        // does not open.
        let token = self
            .keys()?
            .open(&context(&index.tenant_id, account_sid), &index.sealed_token)
            .map_err(|e| ApiError::internal(format!("account index token: {e}")))?;
        let tenant = TenantId::parse(&index.tenant_id)
            .map_err(|_| ApiError::internal("bad tenant on an account"))?;
        let owner = AccountOwner {
            tenant: Some(tenant.clone()),
            token: token.clone(),
        };
        self.cache_account(
            &tenant,
            &TenantAccount {
                sid: account_sid.to_owned(),
                token,
            },
        );
        Ok(Some(owner))
    }
}
