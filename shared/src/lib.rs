//! The Vocelio common library: configuration, telemetry, errors, auth, ids, phone numbers,
//! DynamoDB helpers, the event log and the HTTP plumbing every function shares.

pub mod access;
pub mod agent;
pub mod apikeys;
pub mod auth;
pub mod capacity;
pub mod clock;
pub mod config;
pub mod directory;
pub mod dnc;
pub mod dynamo;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod phone;
pub mod secrets;
pub mod state;
pub mod telemetry;
pub mod validate;
pub mod wsapi;

pub use auth::{AuthUser, Role};
pub use error::{ApiError, ApiResult, FieldError};
pub use state::AppState;
