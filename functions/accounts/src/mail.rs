//! Account emails (password reset, invitations) behind one sender. Locally they are
//! printed and kept in an outbox the local stack serves; on Lambda, until the SES sender
//! of the omnichannel work plugs in here, they are not sent (and never logged: they carry
//! single-use links).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use vocelio_shared::config::Source;

/// One email as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Email {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// When it was sent.
    pub sent_at: String,
}

/// Where account emails go: `EMAIL_SENDER` = `log` (default off Lambda) or `disabled`
/// (default on Lambda).
#[derive(Debug, Clone)]
pub enum Mailer {
    /// Printed to the console and kept (the last 200) for the local outbox.
    Log(Arc<Mutex<VecDeque<Email>>>),
    /// Nothing is sent.
    Disabled,
}

impl Mailer {
    /// The mailer `EMAIL_SENDER` names.
    pub fn from_source(source: &dyn Source) -> Self {
        match source.get("EMAIL_SENDER").as_deref() {
            Some("log") => Self::log(),
            Some(_) => Self::Disabled,
            None if vocelio_shared::jwt::on_lambda() => Self::Disabled,
            None => Self::log(),
        }
    }

    /// A console mailer with an empty outbox.
    pub fn log() -> Self {
        Self::Log(Arc::default())
    }

    /// Sends an email.
    pub fn send(&self, to: &str, subject: &str, text: String) {
        match self {
            Self::Log(outbox) => {
                println!("[email] to {to}: {subject}\n{text}\n");
                if let Ok(mut outbox) = outbox.lock() {
                    if outbox.len() >= 200 {
                        outbox.pop_front();
                    }
                    outbox.push_back(Email {
                        to: to.to_owned(),
                        subject: subject.to_owned(),
                        text,
                        sent_at: vocelio_shared::clock::rfc3339(vocelio_shared::clock::now()),
                    });
                }
            }
            Self::Disabled => {
                tracing::warn!(
                    subject,
                    "an account email was not sent: no email sender is configured"
                );
            }
        }
    }

    /// The emails kept, newest last (empty when disabled).
    pub fn outbox(&self) -> Vec<Email> {
        match self {
            Self::Log(outbox) => outbox
                .lock()
                .map(|o| o.iter().cloned().collect())
                .unwrap_or_default(),
            Self::Disabled => Vec::new(),
        }
    }
}
