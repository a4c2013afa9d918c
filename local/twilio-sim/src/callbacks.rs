//! Webhooks the simulator makes: form-encoded, signed with `X-Twilio-Signature` exactly as
//! Twilio signs them (`telephony::signature::sign` over the URL as configured, query
//! included; for GET the parameters go into the query and nothing is appended), 5 s
//! timeout, never retried. Each is logged in [`crate::Simulator::callbacks`].
//!
//! Status and conference callbacks go through a per-call / per-conference queue, so they
//! leave in order and each waits for the previous answer; TwiML fetches (voice, action,
//! redirect) are awaited by the call task itself.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::CallbackRecord;
use crate::state::Shared;
use crate::twiml::HttpMethod;

/// One webhook request to make.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The account whose auth token signs the request.
    pub account_sid: String,
    pub url: String,
    pub method: HttpMethod,
    pub params: Vec<(String, String)>,
    /// `status`, `voice`, `action` or `conference`.
    pub kind: &'static str,
}

/// A webhook's answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A queue whose worker sends its webhooks one after the other; the worker ends when the
/// sender is dropped and the queue is drained.
pub(crate) fn queue(sim: &Arc<Shared>) -> mpsc::UnboundedSender<Outgoing> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let sim = Arc::clone(sim);
    sim.runtime.clone().spawn(async move {
        while let Some(out) = rx.recv().await {
            // Errors are logged in the record; nothing is retried.
            let _ = send(&sim, &out).await;
        }
    });
    tx
}

/// The URL requested and the signature for it.
pub(crate) fn signed(auth_token: &str, out: &Outgoing) -> (String, String) {
    match out.method {
        HttpMethod::Post => (
            out.url.clone(),
            telephony::signature::sign(auth_token, &out.url, &out.params),
        ),
        HttpMethod::Get => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&out.params)
                .finish();
            let url = if query.is_empty() {
                out.url.clone()
            } else if out.url.contains('?') {
                format!("{}&{query}", out.url)
            } else {
                format!("{}?{query}", out.url)
            };
            let signature = telephony::signature::sign(auth_token, &url, &[]);
            (url, signature)
        }
    }
}

/// Sends `out` signed with its account's auth token and logs it; `Err` when there was no
/// answer (connect error, timeout).
pub(crate) async fn send(sim: &Shared, out: &Outgoing) -> Result<Reply, String> {
    let (url, signature, index) = {
        let mut state = sim.lock();
        let token = state
            .account(&out.account_sid)
            .map_or_else(|| sim.auth_token.clone(), |a| a.auth_token.clone());
        let (url, signature) = signed(&token, out);
        let lost = out.kind == "status"
            && out
                .params
                .iter()
                .find(|(k, _)| k == "To")
                .is_some_and(|(_, to)| state.lost_status.contains(to));
        if lost {
            // Twilio does not retry status callbacks: one that is lost stays lost.
            return Err("lost (Simulator::lose_status_callbacks)".into());
        }
        state.callbacks.push(CallbackRecord {
            url: url.clone(),
            params: out.params.clone(),
            response_status: None,
            kind: out.kind.to_owned(),
            account_sid: out.account_sid.clone(),
        });
        (url, signature, state.callbacks.len() - 1)
    };
    let request = match out.method {
        HttpMethod::Post => {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&out.params)
                .finish();
            sim.http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        }
        HttpMethod::Get => sim.http.get(&url),
    };
    let result = async {
        let response = request
            .header("x-twilio-signature", signature)
            .header("user-agent", "TwilioProxy/1.1")
            .send()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))?;
        Ok(Reply {
            status,
            content_type,
            body: body.to_vec(),
        })
    }
    .await;
    if let Ok(reply) = &result {
        let mut state = sim.lock();
        if let Some(record) = state.callbacks.get_mut(index) {
            record.response_status = Some(reply.status);
        }
    }
    if let Err(error) = &result {
        tracing::debug!(%url, %error, kind = out.kind, "a webhook got no answer");
    }
    result
}

/// Fetches a media URL (`<Play>`), unsigned and unlogged.
pub(crate) async fn fetch_media(sim: &Shared, url: &str) -> Result<Reply, String> {
    let response = sim
        .http
        .get(url)
        .header("user-agent", "TwilioProxy/1.1")
        .send()
        .await
        .map_err(|_| "unreachable".to_owned())?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|_| "unreadable".to_owned())?;
    Ok(Reply {
        status,
        content_type,
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_webhooks_sign_the_url_with_the_parameters_in_it() {
        let out = Outgoing {
            account_sid: "AC1".into(),
            url: "https://example.com/next?step=2".into(),
            method: HttpMethod::Get,
            params: vec![
                ("CallSid".into(), "CA1".into()),
                ("To".into(), "+1 2".into()),
            ],
            kind: "voice",
        };
        let (url, signature) = signed("token", &out);
        assert_eq!(url, "https://example.com/next?step=2&CallSid=CA1&To=%2B1+2");
        assert_eq!(signature, telephony::signature::sign("token", &url, &[]));
        let post = Outgoing {
            method: HttpMethod::Post,
            ..out
        };
        let (url, signature) = signed("token", &post);
        assert_eq!(url, "https://example.com/next?step=2");
        assert_eq!(
            telephony::signature::validate_form("token", &url, &post.params, Some(&signature)),
            Ok(())
        );
    }
}
