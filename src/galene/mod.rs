//! The Galène WebSocket signalling protocol (galene.md §3), version "2" and the older seed
//! dialect (galene-seed-dialect.md), as a thin sans-IO adapter over [`crate::core`].
//!
//! - [`media`]: publishers' and receivers' streams over the media engine (offer, answer,
//!   ice, push logic).
//! - [`msg`]: the one wire message type (case-insensitive keys on input).
//! - [`session`]: per-connection state (handshake, dialect, liveness, error → close code)
//!   turning messages into core requests.
//! - [`parse`]: structured payloads (stream requests, `clearchat` scopes, token values).
//! - [`render`]: core events as wire messages in the receiver's dialect.

pub mod media;
pub mod msg;
pub mod parse;
pub mod render;
pub mod session;

#[cfg(test)]
mod tests;

pub use msg::Message;
pub use session::{Dialect, Session};
