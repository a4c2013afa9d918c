//! The test harness: the stand-ins start once per run (free loopback ports, stopped by PID
//! when the run ends), every test gets the real merged router on its own free port and a
//! fresh tenant, and sessions that read like a user's actions.

use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{Value, json};
use vocelio_local::gateway::LocalGateway;
use vocelio_local::stack::{self, LocalAws};
use vocelio_local::standins::{self, StandIns};
use vocelio_local::tables::TableSpec;
use vocelio_shared::{AppState, Role};

/// The local stack's signing keys (JSON), as `up` and the `token` subcommand use them.
pub fn dev_keys() -> &'static str {
    static KEYS: OnceLock<String> = OnceLock::new();
    KEYS.get_or_init(|| stack::local_keys_json().expect("local signing keys"))
}

/// Their public half (a JWKS), as every function's `JWT_PUBLIC_KEYS`.
pub fn dev_jwks() -> String {
    vocelio_shared::jwt::SigningKeys::from_json(dev_keys())
        .expect("local signing keys")
        .jwks()
        .to_string()
}

/// Keys no function trusts, under the same key id as the local ones (a forger's).
pub fn foreign_keys() -> String {
    let kid = vocelio_shared::jwt::SigningKeys::from_json(dev_keys())
        .expect("local signing keys")
        .active_kid()
        .to_owned();
    vocelio_shared::jwt::SigningKeys::generate(&kid)
        .expect("a key")
        .to_json()
}

/// The running stand-ins of this test run.
pub struct Stand {
    pub dynamodb_url: String,
    pub s3_url: String,
    pub tables: Vec<TableSpec>,
    /// The run's Twilio simulator (one simulated second = [`SIM_SECOND`]).
    pub twilio: twilio_sim::Simulator,
    /// Where the simulator reaches our webhooks: the stack app of the stream follower,
    /// alive for the whole run (every test app serves the same routes over the same table).
    pub hooks_base: String,
}

/// One simulated second of the test run's Twilio simulator.
pub const SIM_SECOND: std::time::Duration = std::time::Duration::from_millis(20);

/// Simulated seconds a dialled party talks before hanging up, in tests.
pub const TALK_SECONDS: f64 = 250.0;

static STAND: OnceLock<Result<Stand, String>> = OnceLock::new();

/// Starts the stand-ins once (installing what is missing) and creates the tables.
pub fn stand() -> &'static Stand {
    let result = STAND.get_or_init(|| {
        std::thread::spawn(|| -> Result<Stand, String> {
            let standins = StandIns::start(None, None).map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let tables = runtime.block_on(async {
                let aws = LocalAws::connect(&standins.dynamodb.url, &standins.s3.url).await;
                aws.provision(&standins::project_root().join("template.yaml"))
                    .await
            })?;
            let (twilio, hooks_base) =
                start_stream_follower(&standins.dynamodb.url, &standins.s3.url)?;
            let stand = Stand {
                dynamodb_url: standins.dynamodb.url.clone(),
                s3_url: standins.s3.url.clone(),
                tables,
                twilio,
                hooks_base,
            };
            // Kept running for the whole run; their supervisors stop them by PID when this
            // test process exits.
            std::mem::forget(standins);
            Ok(stand)
        })
        .join()
        .unwrap_or_else(|_| Err("starting the stand-ins panicked".into()))
    });
    match result {
        Ok(stand) => stand,
        Err(e) => panic!("the local stand-ins could not start: {e}"),
    }
}

/// Starts, on their own thread for the whole run, the Twilio simulator, the stack app the
/// simulator calls back (the merged router, as `up` serves it) and the one stream follower
/// (as the event source mappings of a stack: the realtime fan-out, each connection
/// recording the endpoint of the app it connected to, and the telephony consumer).
fn start_stream_follower(
    dynamodb_url: &str,
    s3_url: &str,
) -> Result<(twilio_sim::Simulator, String), String> {
    let dynamodb_url = dynamodb_url.to_owned();
    let s3_url = s3_url.to_owned();
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            let started = async {
                let aws = LocalAws::connect(&dynamodb_url, &s3_url).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                let base = format!(
                    "http://{}",
                    listener.local_addr().map_err(|e| e.to_string())?
                );
                let config =
                    stack::local_config_with(&base, &|_| None).map_err(|e| e.to_string())?;
                let table = config.table_name.clone();
                let state = stack::local_state(config, &aws);
                let realtime = stack::local_realtime(state.clone(), &aws)?;
                // Dialled parties (agents' softphones included) stay TALK_SECONDS before
                // hanging up: long enough (5 s real) for a test to act on a connected
                // transfer while the whole suite loads both cores.
                let (twilio, _) = twilio_sim::start(twilio_sim::SimOptions {
                    second: SIM_SECOND,
                    talk_seconds: TALK_SECONDS,
                    voice_url: Some(format!("{base}/twilio/voice")),
                    status_callback_url: Some(format!("{base}/twilio/status")),
                    ..twilio_sim::SimOptions::default()
                })
                .await
                .map_err(|e| format!("Twilio simulator: {e}"))?;
                let engine = tts::local_engine::LocalEngine::default();
                let (azure, _) = vocelio_local::fakes::start_azure(engine.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let (elevenlabs, _) = vocelio_local::fakes::start_elevenlabs(engine)
                    .await
                    .map_err(|e| e.to_string())?;
                let fakes = stack::SpeechFakes {
                    azure_url: azure.base_url,
                    elevenlabs_url: elevenlabs.base_url,
                };
                let tts = stack::local_tts(&aws, &fakes, &|_| None)?;
                // The run's reconciler re-reads live agent legs every 2 s (60 s on AWS).
                let telephony = stack::local_telephony(
                    state.clone(),
                    Some(tts.clone()),
                    &twilio.base_url,
                    &base,
                    &|name| (name == "LEG_CHECK_SECONDS").then(|| "2".to_owned()),
                )?;
                let _reconciler = vocelio_local::app::spawn_reconciler(
                    telephony.clone(),
                    std::time::Duration::from_millis(500),
                );
                let gateway = LocalGateway::new(realtime.clone());
                let contacts = stack::local_contacts(state.clone(), &aws, &|_| None)?;
                // The run's one deliverer of the bucket's import notifications.
                let _imports = vocelio_local::app::spawn_import_notifications(
                    contacts.clone(),
                    std::time::Duration::from_millis(50),
                );
                let accounts = stack::local_accounts(&|_| None, stack::local_signing_keys()?)?;
                let app = vocelio_local::app::app(
                    state,
                    &gateway,
                    tts,
                    telephony.clone(),
                    contacts,
                    accounts,
                );
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                Ok::<_, String>((realtime, telephony, twilio, base, table))
            };
            match started.await {
                Ok((realtime, telephony, twilio, base, table)) => {
                    let _ = ready.send(Ok((twilio, base)));
                    vocelio_local::streams::follow(realtime, Some(telephony), dynamodb_url, table)
                        .await;
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        });
    });
    started.recv().map_err(|e| e.to_string()).and_then(|r| r)
}

/// One running copy of the API with its own tenant.
pub struct TestApp {
    pub base: String,
    /// `ws://127.0.0.1:<port>`.
    pub ws_base: String,
    pub tenant: String,
    pub state: AppState,
    /// The realtime function's state (connections table, management API clients).
    pub realtime: realtime::Realtime,
    /// The emulated WebSocket API of this app.
    pub gateway: LocalGateway,
    /// The TTS service of this app.
    pub tts: tts::Tts,
    /// The Azure Speech fake behind this app (call counts, failure injection).
    pub azure: vocelio_local::fakes::FakeControl,
    /// The ElevenLabs fake behind this app.
    pub elevenlabs: vocelio_local::fakes::FakeControl,
    /// The run's Twilio simulator.
    pub twilio: twilio_sim::Simulator,
    /// The telephony service of this app (the simulator's account).
    pub telephony: telephony::Telephony,
    /// The contacts service of this app (its S3 client reaches the run's bucket).
    pub contacts: contacts::Contacts,
    http: reqwest::Client,
}

/// An admin token of `app`'s tenant (for query-string tokens and raw requests).
pub fn token_for(app: &TestApp) -> String {
    stack::mint_token(dev_keys(), &app.tenant, "admin-1", Role::Admin, 1).expect("token")
}

/// A fresh tenant id.
pub fn new_tenant() -> String {
    format!("t-{}", uuid::Uuid::now_v7().simple())
}

/// Starts the merged router (exactly what `vocelio-local up` serves) on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The same, with some configuration variables set (`OFFER_TIMEOUT_SECONDS`, ...).
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    let stand = stand();
    let aws = LocalAws::connect(&stand.dynamodb_url, &stand.s3_url).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| {
        settings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            // Every test client signs up from one address: the hourly allowance of
            // anonymous actions is tested on its own.
            .or_else(|| (name == "ANONYMOUS_ACTIONS_PER_HOUR").then(|| "100000".to_owned()))
    };
    let config = stack::local_config_with(&base, &lookup).expect("test config");
    let engine = tts::local_engine::LocalEngine::default();
    let (azure, _) = vocelio_local::fakes::start_azure(engine.clone())
        .await
        .expect("Azure fake");
    let (elevenlabs, _) = vocelio_local::fakes::start_elevenlabs(engine)
        .await
        .expect("ElevenLabs fake");
    let fakes = stack::SpeechFakes {
        azure_url: azure.base_url.clone(),
        elevenlabs_url: elevenlabs.base_url.clone(),
    };
    let tts = stack::local_tts(&aws, &fakes, &lookup).expect("tts");
    let state = stack::local_state(config, &aws);
    let realtime = stack::local_realtime(state.clone(), &aws).expect("realtime");
    let gateway = LocalGateway::new(realtime.clone()).with_tts(tts::ws::TtsSocket::new(
        state.clone(),
        tts.clone(),
        &aws.sdk,
    ));
    let telephony = stack::local_telephony(
        state.clone(),
        Some(tts.clone()),
        &stand.twilio.base_url,
        &stand.hooks_base,
        &lookup,
    )
    .expect("telephony");
    let contacts = stack::local_contacts(state.clone(), &aws, &lookup).expect("contacts");
    let accounts = stack::local_accounts(
        &lookup,
        stack::local_signing_keys().expect("local signing keys"),
    )
    .expect("accounts");
    let app = vocelio_local::app::app(
        state.clone(),
        &gateway,
        tts.clone(),
        telephony.clone(),
        contacts.clone(),
        accounts,
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestApp {
        ws_base: base.replace("http://", "ws://"),
        base,
        tenant: new_tenant(),
        state,
        realtime,
        gateway,
        tts,
        azure: azure.control,
        elevenlabs: elevenlabs.control,
        twilio: stand.twilio.clone(),
        telephony,
        contacts,
        http: reqwest::Client::new(),
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The machine code of an error reply (`{code}`, or the contact guide's
    /// `{error: {code}}`).
    pub fn code(&self) -> &str {
        self.body["code"]
            .as_str()
            .or_else(|| self.body["error"]["code"].as_str())
            .unwrap_or("")
    }

    /// The fields named by a 422 (`details`, or the contact guide's `error.details`).
    pub fn fields(&self) -> Vec<String> {
        self.body["details"]
            .as_array()
            .or_else(|| self.body["error"]["details"].as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// A user of the app: a bearer token (or none) and the headers they send.
#[derive(Clone)]
pub struct Session<'a> {
    app: &'a TestApp,
    token: Option<String>,
    headers: Vec<(String, String)>,
}

impl TestApp {
    /// A signed-in user of this app's tenant.
    pub fn user(&self, role: Role, user_id: &str) -> Session<'_> {
        self.user_in(&self.tenant, role, user_id)
    }

    /// A signed-in user of another tenant.
    pub fn user_in(&self, tenant: &str, role: Role, user_id: &str) -> Session<'_> {
        let token = stack::mint_token(dev_keys(), tenant, user_id, role, 1).expect("token");
        self.with_token(Some(token))
    }

    /// The tenant's admin.
    pub fn admin(&self) -> Session<'_> {
        self.user(Role::Admin, "admin-1")
    }

    /// The tenant's supervisor.
    pub fn supervisor(&self) -> Session<'_> {
        self.user(Role::Supervisor, "sup-1")
    }

    /// An agent of the tenant, signed in as `agent_id`.
    pub fn agent(&self, agent_id: &str) -> Session<'_> {
        self.user(Role::Agent, agent_id)
    }

    /// Someone with no token at all.
    pub fn anonymous(&self) -> Session<'_> {
        self.with_token(None)
    }

    /// Someone presenting exactly `token`.
    pub fn with_token(&self, token: Option<String>) -> Session<'_> {
        Session {
            app: self,
            token,
            headers: Vec::new(),
        }
    }

    /// The raw HTTP client (for requests a session cannot express).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Session<'_> {
    /// The same user, also sending `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends a request with an optional JSON body; the response unread (audio, streams).
    pub async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let response = self.raw(method, path, body).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}"))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a department and returns it (asserting 201).
    pub async fn create_department(&self, name: &str, phone: &str) -> Value {
        let reply = self
            .post(
                "/api/departments",
                json!({ "name": name, "phone_number": phone }),
            )
            .await
            .expect(201);
        reply.body["department"].clone()
    }

    /// Registers a call the voice agent is handling; returns its id.
    pub async fn start_call(&self, caller: &str) -> String {
        let reply = self
            .post(
                "/api/calls",
                json!({ "caller_number": caller, "current_flow": "support" }),
            )
            .await
            .expect(201);
        reply.body["call"]["call_id"]
            .as_str()
            .expect("call id")
            .to_owned()
    }

    /// Registers an agent with skills and languages and makes them available.
    pub async fn available_agent(
        &self,
        agent_id: &str,
        department: &str,
        skills: &[&str],
        languages: &[&str],
    ) -> Value {
        self.post(
            "/api/agents/register",
            json!({"agent_id": agent_id, "name": agent_id, "email": format!("{agent_id}@example.com"),
                   "department": department, "skills": skills, "languages": languages}),
        )
        .await
        .expect(201);
        self.put(
            &format!("/api/agents/{agent_id}/status"),
            json!({"status": "available"}),
        )
        .await
        .expect(200)
        .body
    }

    /// Registers an agent in `department` (an id or a name) and returns it (asserting 201).
    pub async fn register_agent(&self, agent_id: &str, department: &str) -> Value {
        let reply = self
            .post(
                "/api/agents/register",
                json!({
                    "agent_id": agent_id,
                    "name": format!("Agent {agent_id}"),
                    "email": format!("{agent_id}@example.com"),
                    "department": department,
                    "skills": ["billing"],
                    "languages": ["en"],
                }),
            )
            .await
            .expect(201);
        reply.body["agent"].clone()
    }
}

/// The `id` field of a department value.
pub fn id_of(department: &Value) -> String {
    department["id"].as_str().expect("department id").to_owned()
}

/// The events in `tenant`'s log, oldest first.
pub async fn events_of(app: &TestApp, tenant: &str) -> Vec<Value> {
    let tenant = vocelio_shared::ids::TenantId::parse(tenant).expect("tenant");
    let out = app
        .state
        .db
        .query()
        .table_name(app.state.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(vocelio_shared::keys::events_pk(&tenant)),
        )
        .send()
        .await
        .expect("query events");
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).expect("event"))
        .collect()
}
