//! The contacts function's own settings, read once at cold start.

use vocelio_shared::config::{ConfigError, Env, Source};

/// Everything the contacts functions read from their environment.
#[derive(Debug, Clone)]
pub struct ContactsConfig {
    /// `UPLOAD_BUCKET`: where uploaded contact files, error reports and exports live.
    pub upload_bucket: String,
    /// `UPLOAD_URL_SECONDS` (default 900): lifetime of presigned upload/download URLs.
    pub url_seconds: u64,
    /// `IMPORT_MAX_BYTES` (default 512 MiB): the largest file an import accepts.
    pub import_max_bytes: u64,
    /// `IMPORT_BUDGET_SECONDS` (default 780): how long one worker invocation imports before
    /// it checkpoints and hands the rest to the next invocation (below the function's
    /// 15-minute timeout on AWS).
    pub import_budget_seconds: u64,
    /// `IMPORT_LEASE_SECONDS` (default 120): how long a worker's claim on a job outlives its
    /// last checkpoint; after that a stalled job may be resumed.
    pub import_lease_seconds: u64,
    /// `IMPORT_PROGRESS_ROWS` (default 1000): an `import_progress` event every this many rows.
    pub import_progress_rows: u64,
}

fn bad(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_owned(),
    }
}

fn number(
    source: &dyn Source,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match source.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| {
                bad(
                    name,
                    &format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

impl ContactsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads any source (tests and the local stack pass closures).
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let upload_bucket = source
            .get("UPLOAD_BUCKET")
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                bad(
                    "UPLOAD_BUCKET",
                    "is required (the S3 bucket for contact files)",
                )
            })?;
        Ok(Self {
            upload_bucket: upload_bucket.trim().to_owned(),
            url_seconds: number(source, "UPLOAD_URL_SECONDS", 900, 60..=604_800)?,
            import_max_bytes: number(
                source,
                "IMPORT_MAX_BYTES",
                512 * 1024 * 1024,
                1..=5 * 1024 * 1024 * 1024,
            )?,
            import_budget_seconds: number(source, "IMPORT_BUDGET_SECONDS", 780, 1..=86_400)?,
            import_lease_seconds: number(source, "IMPORT_LEASE_SECONDS", 120, 5..=3600)?,
            import_progress_rows: number(source, "IMPORT_PROGRESS_ROWS", 1000, 1..=1_000_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_is_required_and_numbers_are_checked() {
        let none = |_: &str| None::<String>;
        assert_eq!(
            ContactsConfig::from_source(&none).unwrap_err().variable,
            "UPLOAD_BUCKET"
        );
        let bad_budget = |name: &str| match name {
            "UPLOAD_BUCKET" => Some("b".to_owned()),
            "IMPORT_BUDGET_SECONDS" => Some("soon".to_owned()),
            _ => None,
        };
        assert_eq!(
            ContactsConfig::from_source(&bad_budget)
                .unwrap_err()
                .variable,
            "IMPORT_BUDGET_SECONDS"
        );
    }
}
