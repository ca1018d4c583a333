//! The signalling protocol of the GStreamer webrtc examples (gst-examples'
//! `simple_server.py`; see `docs/gstreamer.md`): registration, 1-1 sessions and rooms, with
//! sfubox as a drop-in replacement for the examples' server. Only signalling passes
//! through; media flows between the peers.
//!
//! - [`msg`]: every string the server sends, close codes and reasons.
//! - [`parse`]: the text commands, matched by exact words.
//! - [`hub`]: the sans-IO state of all connections of this protocol.

pub mod hub;
pub mod msg;
pub mod parse;

pub use hub::Hub;
