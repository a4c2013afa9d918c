//! Secrets on AWS: a variable `NAME` may instead be given as `NAME_SECRET_ARN`, the ARN of
//! a Secrets Manager secret read once at cold start through the AWS Parameters and
//! Secrets Lambda Extension (`localhost:2773`, authenticated by the function's own session
//! token), so the secret never sits in the function's configuration. Each function's role
//! may read only the secrets it names.

use std::collections::HashMap;

/// The variables that may come from Secrets Manager.
pub const SECRET_VARIABLES: [&str; 2] = ["TWILIO_AUTH_TOKEN", "TELEPHONY_SECRETS_KEY"];

/// Reads every `NAME_SECRET_ARN` of [`SECRET_VARIABLES`] that is set; `Err` names the
/// variable whose secret could not be read.
pub async fn resolve_from_env() -> Result<HashMap<String, String>, String> {
    vocelio_shared::secrets::resolve_from_env(&SECRET_VARIABLES).await
}
