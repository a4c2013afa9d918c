//! Sending frames to connections: the shared management API client.

pub use vocelio_shared::wsapi::{Delivery, Poster};
