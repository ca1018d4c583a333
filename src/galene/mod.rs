//! The Galène WebSocket signalling protocol, version "2" and the older dialect of the
//! documents sfubox was specified from (docs/galene.md), as a thin sans-IO adapter over
//! [`crate::core`] and [`crate::streams`].
//!
//! - [`stats`]: the JSON of `/galene-api/v0/.stats` from the media session layer's figures.
//! - [`msg`]: the one wire message type (case-insensitive keys on input).
//! - [`session`]: per-connection state (handshake, dialect, liveness, error → close code)
//!   turning messages into core requests, and media messages into calls of the protocol-
//!   neutral media session layer ([`crate::streams`]).
//! - [`parse`]: structured payloads (stream requests, `clearchat` scopes, token values).
//! - [`render`]: core events as wire messages in the receiver's dialect.

pub mod msg;
pub mod parse;
pub mod render;
pub mod session;
pub mod stats;

#[cfg(test)]
mod tests;

pub use msg::Message;
pub use session::{Dialect, Session};
