//! sfubox: a WebRTC SFU appliance, compatible with Galène.
//!
//! Layers, from the wire inwards:
//!
//! - [`run`]: the only code that owns sockets, TLS and timers (one smol `LocalExecutor`).
//! - [`http`]: a sans-IO HTTP front: request heads in, responses out.
//! - [`galene`]: the Galène WebSocket protocol (version "2" and the seed dialect) as a thin
//!   adapter over [`core`].
//! - [`gst`]: the GStreamer webrtc examples' signalling protocol (registration, 1-1 sessions,
//!   rooms), a sans-IO hub of its own.
//! - [`camus`]: the Camus chat protocol (rooms, peer-to-peer signalling relay), a sans-IO hub
//!   of its own.
//! - [`whip`]: WHIP ingest and WHEP playback sessions, in-process clients created over HTTP.
//! - [`streams`]: the protocol-neutral media session layer: clients publish and receive
//!   streams through it (the Galène adapter, and any in-process client such as a recorder).
//! - [`core`]: groups, clients, permissions, chat history; sans-IO, driven with `now`.
//! - [`record`]: the recorder: streams received through local sinks, depacketised, aligned
//!   and muxed into WebM/Matroska files (the file I/O itself is in [`run`]).
//! - [`media`]: the sans-IO media engine: one str0m `Rtc` per stream, RTP forwarding.
//! - [`config`]: the files on disk and the rules that interpret them.
//! - [`conn`]: connection ids, outputs and deadlines, shared by every protocol.
//! - [`app`]: the facade that ties the sans-IO parts together for the runtime.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod camus;
pub mod cli;
pub mod config;
pub mod conn;
pub mod core;
pub mod galene;
pub mod gst;
pub mod http;
pub mod media;
pub mod record;
pub mod run;
pub mod streams;
#[doc(hidden)]
pub mod testing;
pub mod whip;
