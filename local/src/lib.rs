//! The Vocelio local stack as a library: the test harness and the benchmark use the same
//! stand-ins, tables and merged router as `vocelio-local up`.

mod accounts_bench;
pub mod app;
pub mod bench;
mod contacts_bench;
pub mod fakes;
pub mod gateway;
pub mod stack;
pub mod standins;
pub mod streams;
pub mod tables;
mod telephony_bench;
mod tts_bench;
