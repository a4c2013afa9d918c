//! Tracing for processes that are not on Lambda (the local stack, benchmarks).
//! On Lambda, `lambda_http::tracing::init_default_subscriber` honours
//! `AWS_LAMBDA_LOG_LEVEL` / `AWS_LAMBDA_LOG_FORMAT` (JSON logs).

use tracing_subscriber::EnvFilter;

/// Human-readable logs filtered by `RUST_LOG` (default `info`); safe to call twice.
pub fn init_local() {
    init_with("info");
}

/// Human-readable logs filtered by `RUST_LOG`, else by `default` (`warn`, `info`, ...).
pub fn init_with(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
