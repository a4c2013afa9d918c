//! Secrets on AWS: a variable `NAME` may instead be given as `NAME_SECRET_ARN`, the ARN of
//! a Secrets Manager secret read once at cold start through the AWS Parameters and
//! Secrets Lambda Extension (`localhost:2773`, authenticated by the function's own session
//! token), so the secret never sits in the function's configuration. Each function's role
//! may read only the secrets it names.

use std::collections::HashMap;
use std::time::Duration;

/// Reads every `NAME_SECRET_ARN` of `names` that is set; `Err` names the variable whose
/// secret could not be read.
pub async fn resolve_from_env(names: &[&'static str]) -> Result<HashMap<String, String>, String> {
    let mut found = HashMap::new();
    let wanted: Vec<(&str, String)> = names
        .iter()
        .filter_map(|name| {
            std::env::var(format!("{name}_SECRET_ARN"))
                .ok()
                .filter(|arn| !arn.trim().is_empty())
                .map(|arn| (*name, arn))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(found);
    }
    let port = std::env::var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
        .unwrap_or_else(|_| "2773".to_owned());
    let session = std::env::var("AWS_SESSION_TOKEN")
        .map_err(|_| "AWS_SESSION_TOKEN is not set (secrets are read on Lambda)".to_owned())?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    for (name, arn) in wanted {
        let answer = http
            .get(format!("http://localhost:{port}/secretsmanager/get"))
            .query(&[("secretId", arn.as_str())])
            .header("X-Aws-Parameters-Secrets-Token", &session)
            .send()
            .await
            .map_err(|e| format!("{name}_SECRET_ARN: the secrets extension did not answer: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!(
                "{name}_SECRET_ARN: the secret could not be read (HTTP {})",
                answer.status().as_u16()
            ));
        }
        let body: serde_json::Value = answer
            .json()
            .await
            .map_err(|_| format!("{name}_SECRET_ARN: unreadable answer"))?;
        let value = body["SecretString"]
            .as_str()
            .ok_or_else(|| format!("{name}_SECRET_ARN: the secret has no SecretString"))?;
        found.insert(name.to_owned(), value.trim().to_owned());
    }
    Ok(found)
}
