//! Text to speech. This release: the pure core the endpoints build on — SSML built from
//! escaped values, audio formats and their provider names, WAV / G.711 μ-law for telephony,
//! content-addressed cache keys, and the local engine (espeak-ng). The endpoints, providers and S3 cache come next (issue 6).

pub mod audio;
pub mod cache;
pub mod formats;
pub mod local_engine;
pub mod ssml;
pub mod wav;
