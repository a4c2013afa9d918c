//! Wiring the local stack: AWS clients pointed at the stand-ins, tables from the template,
//! the bucket, the shared state every router gets, and dev tokens.

use std::path::Path;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use vocelio_shared::config::{Config, ConfigError};
use vocelio_shared::jwt::{Claims, SigningKeys};
use vocelio_shared::{AppState, Role};

use crate::tables::{self, TableSpec};

/// The S3 bucket the local stack creates for audio and uploads.
pub const LOCAL_BUCKET: &str = "vocelio-local-media";

/// AWS SDK clients pointed at the stand-ins (static local credentials, us-east-1).
#[derive(Debug, Clone)]
pub struct LocalAws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    /// The SDK configuration (credentials, region) other clients are built from.
    pub sdk: aws_config::SdkConfig,
}

impl LocalAws {
    /// Clients for the DynamoDB endpoint and the S3 endpoint.
    pub async fn connect(dynamodb_url: &str, s3_url: &str) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "vocelio-local",
            ))
            .load()
            .await;
        let dynamodb = vocelio_shared::state::dynamodb_client(&sdk, Some(dynamodb_url));
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .endpoint_url(s3_url)
                .force_path_style(true)
                .build(),
        );
        Self { dynamodb, s3, sdk }
    }

    /// Creates every table of `template.yaml` and the media bucket; returns the tables.
    pub async fn provision(&self, template: &Path) -> Result<Vec<TableSpec>, String> {
        let specs = tables::from_template(template).map_err(|e| e.to_string())?;
        for spec in &specs {
            tables::create(&self.dynamodb, spec).await?;
        }
        let bucket_exists = self
            .s3
            .head_bucket()
            .bucket(LOCAL_BUCKET)
            .send()
            .await
            .is_ok();
        if !bucket_exists {
            self.s3
                .create_bucket()
                .bucket(LOCAL_BUCKET)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "S3 CreateBucket: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
        }
        Ok(specs)
    }
}

/// The template's core table.
pub const CORE_TABLE: &str = "CoreTable";
/// The template's WebSocket connections table.
pub const CONNECTIONS_TABLE: &str = "ConnectionsTable";

/// The local configuration: the process environment first, then local defaults
/// (`TABLE_NAME` and `CONNECTIONS_TABLE` = the template's tables, `JWT_PUBLIC_KEYS` = the
/// public half of [`local_signing_keys`], `WEBSOCKET_CALLBACK_URL` = `api_base`, where the local stack serves
/// the management API).
pub fn local_config(api_base: &str) -> Result<Config, ConfigError> {
    local_config_with(api_base, &|name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

/// The same, reading `source` first instead of the process environment (tests).
pub fn local_config_with(
    api_base: &str,
    source: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let api_base = api_base.to_owned();
    Config::from_source(&move |name: &str| {
        source(name).or_else(|| match name {
            "TABLE_NAME" => Some(CORE_TABLE.to_owned()),
            "CONNECTIONS_TABLE" => Some(CONNECTIONS_TABLE.to_owned()),
            "JWT_PUBLIC_KEYS" => local_signing_keys().ok().map(|k| k.jwks().to_string()),
            "WEBSOCKET_CALLBACK_URL" => Some(api_base.clone()),
            _ => None,
        })
    })
}

/// The state every router gets in the local stack.
pub fn local_state(config: Config, aws: &LocalAws) -> AppState {
    AppState::with_db(config, aws.dynamodb.clone())
}

/// The realtime function's state over the stand-ins (its management API clients use the
/// local credentials; each connection records the endpoint that reaches it).
pub fn local_realtime(state: AppState, aws: &LocalAws) -> Result<realtime::Realtime, String> {
    realtime::Realtime::new(state, &aws.sdk).map_err(|e| e.to_string())
}

/// Where the local stack's speech providers are: the contract fakes' base URLs.
#[derive(Debug, Clone)]
pub struct SpeechFakes {
    pub azure_url: String,
    pub elevenlabs_url: String,
}

/// The TTS function over the stand-ins: the process environment first (real keys reach the
/// real services), then local defaults — the media bucket and the contract fakes with the
/// keys they accept.
pub fn local_tts(
    aws: &LocalAws,
    fakes: &SpeechFakes,
    source: &dyn Fn(&str) -> Option<String>,
) -> Result<tts::Tts, String> {
    let fakes = fakes.clone();
    let real_azure = source("AZURE_SPEECH_KEY").is_some();
    let real_elevenlabs = source("ELEVENLABS_API_KEY").is_some();
    let config = tts::config::TtsConfig::from_source(&move |name: &str| {
        source(name).or_else(|| match name {
            "AUDIO_BUCKET" => Some(LOCAL_BUCKET.to_owned()),
            "AZURE_SPEECH_KEY" => Some(crate::fakes::AZURE_FAKE_KEY.to_owned()),
            "AZURE_SPEECH_ENDPOINT" if !real_azure => Some(fakes.azure_url.clone()),
            "ELEVENLABS_API_KEY" => Some(crate::fakes::ELEVENLABS_FAKE_KEY.to_owned()),
            "ELEVENLABS_BASE_URL" if !real_elevenlabs => Some(fakes.elevenlabs_url.clone()),
            _ => None,
        })
    })
    .map_err(|e| e.to_string())?;
    tts::Tts::new(config, aws.s3.clone())
}

/// Starts the Azure Speech and ElevenLabs contract fakes (espeak-ng behind them).
pub async fn start_speech_fakes() -> Result<(SpeechFakes, Vec<tokio::task::JoinHandle<()>>), String>
{
    let engine = tts::local_engine::LocalEngine::default();
    let (azure, azure_task) = crate::fakes::start_azure(engine.clone())
        .await
        .map_err(|e| format!("Azure fake: {e}"))?;
    let (eleven, eleven_task) = crate::fakes::start_elevenlabs(engine)
        .await
        .map_err(|e| format!("ElevenLabs fake: {e}"))?;
    Ok((
        SpeechFakes {
            azure_url: azure.base_url,
            elevenlabs_url: eleven.base_url,
        },
        vec![azure_task, eleven_task],
    ))
}

/// The telephony function over the stand-ins: the process environment first (real Twilio
/// credentials reach the real Twilio), then local defaults — the simulator's account, token
/// and URL, a local caller ID, and `webhooks_base` (where the simulator reaches our
/// `/twilio/...` webhooks).
pub fn local_telephony(
    state: AppState,
    tts: Option<tts::Tts>,
    simulator_url: &str,
    webhooks_base: &str,
    source: &dyn Fn(&str) -> Option<String>,
) -> Result<telephony::Telephony, String> {
    // `LOCAL_TWILIO_SIMULATOR=off`: no simulator defaults (telephony answers 503 unless
    // real TWILIO_* settings are given).
    let real = source("TWILIO_ACCOUNT_SID").is_some()
        || source("LOCAL_TWILIO_SIMULATOR").is_some_and(|v| v == "off");
    let simulator_url = simulator_url.to_owned();
    let webhooks_base = webhooks_base.to_owned();
    let config = telephony::config::TelephonyConfig::from_source(&move |name: &str| {
        source(name).or_else(|| match name {
            "TWILIO_ACCOUNT_SID" if !real => Some(twilio_sim::ACCOUNT_SID.to_owned()),
            "TWILIO_AUTH_TOKEN" if !real => Some(twilio_sim::AUTH_TOKEN.to_owned()),
            "TWILIO_API_BASE" if !real => Some(simulator_url.clone()),
            "TWILIO_PHONE_NUMBER" if !real => Some(LOCAL_CALLER_ID.to_owned()),
            "TWILIO_WEBHOOK_BASE_URL" if !real || source("TWILIO_ACCOUNT_SID").is_some() => {
                Some(webhooks_base.clone())
            }
            "TELEPHONY_SECRETS_KEY" => local_secrets_key().ok(),
            _ => None,
        })
    })
    .map_err(|e| e.to_string())?;
    telephony::Telephony::new(state, config, tts)
}

/// The local master key of the telephony function's own secrets (sealed subaccount
/// tokens, callback signatures): `.local/telephony-secrets.key`, made on first use with
/// owner-only permissions. On AWS it comes from Secrets Manager.
pub fn local_secrets_key() -> Result<String, String> {
    let path = crate::standins::install_dir().join("telephony-secrets.key");
    let read = || {
        // A file another process has just created may not hold its key yet.
        for _ in 0..100 {
            match std::fs::read_to_string(&path) {
                Ok(key) if !key.trim().is_empty() => return Some(key.trim().to_owned()),
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
        None
    };
    if let Some(key) = read() {
        return Ok(key);
    }
    let key = telephony::seal::Keys::generate_master();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(key.as_bytes()).map_err(|e| e.to_string())?;
            Ok(key)
        }
        // Another process made it first: use theirs.
        Err(_) => read().ok_or_else(|| format!("{} holds no key", path.display())),
    }
}

/// Starts the Twilio simulator of the local stack: inbound calls go to the voice webhook
/// under `webhooks_base`, their status callbacks to its status webhook; `second` is the
/// real length of one simulated second.
pub async fn start_twilio_simulator(
    webhooks_base: &str,
    second: std::time::Duration,
) -> Result<(twilio_sim::Simulator, tokio::task::JoinHandle<()>), String> {
    twilio_sim::start(twilio_sim::SimOptions {
        second,
        voice_url: Some(format!("{webhooks_base}/twilio/voice")),
        status_callback_url: Some(format!("{webhooks_base}/twilio/status")),
        ..twilio_sim::SimOptions::default()
    })
    .await
    .map_err(|e| format!("Twilio simulator: {e}"))
}

/// The contacts function over the stand-ins: `source` first, then the media bucket for
/// uploads.
pub fn local_contacts(
    state: AppState,
    aws: &LocalAws,
    source: &dyn Fn(&str) -> Option<String>,
) -> Result<contacts::Contacts, String> {
    let config = contacts::config::ContactsConfig::from_source(&move |name: &str| {
        source(name).or_else(|| match name {
            "UPLOAD_BUCKET" => Some(LOCAL_BUCKET.to_owned()),
            _ => None,
        })
    })
    .map_err(|e| e.to_string())?;
    Ok(contacts::Contacts::new(state, config, aws.s3.clone()))
}

/// The caller ID of outbound calls in the local stack.
pub const LOCAL_CALLER_ID: &str = "+14155550100";

/// The local stack's token signing keys: `.local/jwt-signing-keys.json`, made on first use
/// with owner-only permissions (key id `local-…`, which Lambda refuses). On AWS the
/// accounts function reads its keys from Secrets Manager.
pub fn local_signing_keys() -> Result<SigningKeys, String> {
    let path = crate::standins::install_dir().join("jwt-signing-keys.json");
    let read = || {
        // A file another process has just created may not hold its keys yet.
        for _ in 0..100 {
            match std::fs::read_to_string(&path) {
                Ok(raw) if !raw.trim().is_empty() => {
                    if let Ok(keys) = SigningKeys::from_json(&raw) {
                        return Some(keys);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
        None
    };
    if let Some(keys) = read() {
        return Ok(keys);
    }
    let kid = format!(
        "{}{}",
        vocelio_shared::jwt::LOCAL_KID_PREFIX,
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let keys = SigningKeys::generate(&kid).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(keys.to_json().as_bytes())
                .map_err(|e| e.to_string())?;
            Ok(keys)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            read().ok_or_else(|| format!("{} holds no readable key set", path.display()))
        }
        Err(err) => Err(format!("cannot write {}: {err}", path.display())),
    }
}

/// The local signing keys as JSON (what [`mint_token`] takes).
pub fn local_keys_json() -> Result<String, String> {
    local_signing_keys().map(|k| k.to_json())
}

/// Mints a dev access token for `tenant`, `user`, `role`, valid for `hours` (at most 24;
/// negative for an expired one),
/// signed with `keys` (a signing key set as JSON, e.g. [`local_keys_json`]).
pub fn mint_token(
    keys: &str,
    tenant: &str,
    user: &str,
    role: Role,
    hours: i64,
) -> Result<String, String> {
    let keys = SigningKeys::from_json(keys).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    keys.sign(&Claims {
        iss: std::env::var("JWT_ISSUER")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "vocelio".into()),
        aud: std::env::var("JWT_AUDIENCE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "vocelio-api".into()),
        sub: user.to_owned(),
        tenant_id: tenant.to_owned(),
        role,
        exp: now + hours.min(24) * 3600,
        iat: now,
        jti: vocelio_shared::ids::new_id("jti"),
        sid: None,
        uid: None,
    })
    .map_err(|e| e.to_string())
}

/// The accounts function over the stand-ins: signing with `keys` (the local ones:
/// [`local_signing_keys`]), emails printed and kept for `/__local/outbox`.
pub fn local_accounts(
    source: &dyn Fn(&str) -> Option<String>,
    keys: SigningKeys,
) -> Result<accounts::Accounts, String> {
    let settings = accounts::AccountsSettings::from_source(&|name: &str| source(name))
        .map_err(|e| e.to_string())?;
    accounts::Accounts::new(settings, keys, accounts::Mailer::log()).map_err(|e| e.to_string())
}
