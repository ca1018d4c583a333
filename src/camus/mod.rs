//! The Camus chat protocol (docs/camus.md): the WebSocket signalling of the `camus-chat` web
//! client, version 0.2.3 of the protocol, which both published client bundles (0.2.3 and
//! 0.3.1) speak, with the original server's unsafe parts fixed (see docs/camus.md, "Fixed or
//! changed on purpose").
//! Media never passes through sfubox: Camus is peer to peer, the server only relays.
//!
//! - [`msg`]: the JSON envelope, parsed without copying payloads, and the server's messages.
//! - [`limit`]: per-connection size and rate limits.
//! - [`pass`]: client ids and the password passes (cookies) of protected rooms.
//! - [`hub`]: the sans-IO state of all Camus connections and rooms.
//! - [`page`]: the HTML of the room page, the password form and `/public`.
//!
//! Rooms come from `data/camus-rooms.json` ([`crate::config::camus`]); ICE servers from the
//! same `data/ice-servers.json` as Galène's.

pub mod hub;
pub mod limit;
pub mod msg;
pub mod page;
pub mod pass;

#[cfg(test)]
mod tests;

pub use hub::{Admission, Hub, Page, PublicRoom, Refusal};
