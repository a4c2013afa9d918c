//! Integration tests: real HTTP against the real routers, DynamoDB Local and moto over the
//! network. One binary, so the stand-ins start once per run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod agents;
mod contacts;
mod departments;
mod helpers;
mod input_policy;
mod lambda_events;
mod platform;
mod provider_fakes;
mod realtime;
mod telephony;
mod telephony_safety;
mod transfers;
mod tts;
mod websocket;
