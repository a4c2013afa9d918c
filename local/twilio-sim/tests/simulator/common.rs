//! Test helpers: a receiver (records every webhook, serves TwiML by path), REST helpers and
//! polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use twilio_sim::{ACCOUNT_SID, AUTH_TOKEN, SimOptions, Simulator};

/// Fast simulated time: one second is 20 ms.
pub fn options() -> SimOptions {
    SimOptions {
        second: Duration::from_millis(20),
        ring_seconds: 2.0,
        talk_seconds: 5.0,
        ..SimOptions::default()
    }
}

pub async fn simulator(options: SimOptions) -> Simulator {
    twilio_sim::start(options)
        .await
        .expect("simulator starts")
        .0
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    /// The full URL as requested (query included).
    pub url: String,
    pub params: Vec<(String, String)>,
    pub signature: Option<String>,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `X-Twilio-Signature` validates with the telephony crate, as production
    /// code checks it (for GET, the URL carries the parameters and none are appended).
    pub fn signature_ok(&self) -> bool {
        self.signed_with(AUTH_TOKEN)
    }

    /// Whether `X-Twilio-Signature` validates with `auth_token` (a subaccount's).
    pub fn signed_with(&self, auth_token: &str) -> bool {
        let params: &[(String, String)] = if self.method == "GET" {
            &[]
        } else {
            &self.params
        };
        telephony::signature::validate_form(
            auth_token,
            &self.url,
            params,
            self.signature.as_deref(),
        )
        .is_ok()
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: Vec<Hit>,
    documents: HashMap<String, String>,
}

/// A webhook receiver on 127.0.0.1: records every request and answers the TwiML set for
/// its path (200 with an empty body otherwise).
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let router = Router::new()
            .fallback(receive)
            .with_state((base.clone(), Arc::clone(&state)));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { base, state }
    }

    /// Serves `twiml` at `path`.
    pub fn serve(&self, path: &str, twiml: &str) {
        self.state
            .lock()
            .expect("receiver lock")
            .documents
            .insert(path.to_owned(), twiml.to_owned());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests received at `path`, in order.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.state
            .lock()
            .expect("receiver lock")
            .hits
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

async fn receive(
    State((base, state)): State<(String, Arc<Mutex<ReceiverState>>)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let params = if method == Method::GET {
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    } else {
        form_urlencoded::parse(&body).into_owned().collect()
    };
    let hit = Hit {
        method: method.to_string(),
        path: path.clone(),
        url: format!("{base}{path_and_query}"),
        params,
        signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let mut state = state.lock().expect("receiver lock");
    state.hits.push(hit);
    match state.documents.get(&path) {
        Some(doc) => ([(header::CONTENT_TYPE, "text/xml")], doc.clone()).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// `{base}/2010-04-01/Accounts/{ACCOUNT_SID}`.
pub fn api(sim: &Simulator) -> String {
    api_of(sim, ACCOUNT_SID)
}

/// `{base}/2010-04-01/Accounts/{account}`.
pub fn api_of(sim: &Simulator, account: &str) -> String {
    format!("{}/2010-04-01/Accounts/{account}", sim.base_url)
}

/// Basic-auth credentials: `(AccountSid, AuthToken)`.
pub type Credentials<'a> = (&'a str, &'a str);

/// The main account's credentials.
pub const MAIN: Credentials<'static> = (ACCOUNT_SID, AUTH_TOKEN);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// A form-encoded request with the default credentials.
pub async fn form(method: Method, url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    form_as(MAIN, method, url, pairs).await
}

/// A form-encoded request with `auth`.
pub async fn form_as(
    auth: Credentials<'_>,
    method: Method,
    url: &str,
    pairs: &[(&str, &str)],
) -> (u16, Value) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let response = client()
        .request(method, url)
        .basic_auth(auth.0, Some(auth.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

pub async fn post(url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    form(Method::POST, url, pairs).await
}

/// A GET with the default credentials.
pub async fn get(url: &str) -> (u16, Value) {
    get_as(MAIN, url).await
}

/// A GET with `auth`.
pub async fn get_as(auth: Credentials<'_>, url: &str) -> (u16, Value) {
    let response = client()
        .get(url)
        .basic_auth(auth.0, Some(auth.1))
        .send()
        .await
        .expect("request");
    answer(response).await
}

/// A POST with `auth`.
pub async fn post_as(auth: Credentials<'_>, url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    form_as(auth, Method::POST, url, pairs).await
}

/// A GET of the simulator's own endpoint `path` (no credentials).
pub async fn sim_get(sim: &Simulator, path: &str) -> Value {
    client()
        .get(format!("{}{path}", sim.base_url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// A subaccount created over the REST API: `(sid, auth_token)`.
pub async fn subaccount(sim: &Simulator, name: &str) -> (String, String) {
    let (status, body) = post(
        &format!("{}/2010-04-01/Accounts.json", sim.base_url),
        &[("FriendlyName", name)],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let text = |key: &str| body[key].as_str().expect(key).to_owned();
    (text("sid"), text("auth_token"))
}

/// A request with explicit (or no) credentials.
pub async fn raw(
    method: Method,
    url: &str,
    auth: Option<(&str, &str)>,
    content_type: &str,
    body: &str,
) -> (u16, Value, HeaderMap) {
    let mut request = client()
        .request(method, url)
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("request");
    let headers = response.headers().clone();
    let (status, value) = answer(response).await;
    (status, value, headers)
}

/// Asserts a Twilio error answer.
pub fn assert_error(answer: &(u16, Value), status: u16, code: u64) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Polls `check` every 10 ms until it yields, or panics after 10 s with `what`.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the call `sid` has `status`.
pub async fn wait_status(sim: &Simulator, sid: &str, status: &str) -> twilio_sim::CallSnapshot {
    wait_for(&format!("{sid} to be {status}"), || {
        sim.call(sid).filter(|c| c.status == status)
    })
    .await
}

/// Waits until the call `sid` is over (any final status).
pub async fn wait_over(sim: &Simulator, sid: &str) -> twilio_sim::CallSnapshot {
    wait_for(&format!("{sid} to end"), || {
        sim.call(sid).filter(|c| {
            matches!(
                c.status.as_str(),
                "completed" | "busy" | "no-answer" | "failed" | "canceled"
            )
        })
    })
    .await
}

/// Waits until `path` received `count` requests.
pub async fn wait_hits(receiver: &Receiver, path: &str, count: usize) -> Vec<Hit> {
    wait_for(&format!("{count} requests to {path}"), || {
        let hits = receiver.hits(path);
        (hits.len() >= count).then_some(hits)
    })
    .await
}

/// The values of `name` across `hits`.
pub fn values(hits: &[Hit], name: &str) -> Vec<String> {
    hits.iter()
        .map(|h| h.param(name).unwrap_or_default().to_owned())
        .collect()
}
