//! The simulator end to end: its REST contract, call lifecycles, TwiML, conferences,
//! accounts and phone numbers, and signed webhooks, against a receiver on 127.0.0.1 (one
//! simulated second = 20 ms).

mod accounts;
mod calls;
mod common;
mod conferences;
mod numbers;
mod rest;
