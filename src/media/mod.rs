//! The media engine: a sans-IO SFU over str0m, one `Rtc` per unidirectional stream.
//!
//! [`Sfu`] owns every [`str0m::Rtc`] of the server. Each Galène stream (one PeerConnection, one
//! direction) is one `Rtc`, in ICE-lite and RTP mode, behind the one UDP socket whose addresses
//! are given in [`SfuConfig::candidates`]. Streams are named by the caller with a [`StreamKey`].
//!
//! - A publisher's offer becomes an *up* stream ([`Sfu::accept_offer`], answered recvonly).
//! - A receiver gets a *down* stream per up stream ([`Sfu::create_down`], offered sendonly with
//!   the publisher's codecs at Galène's fixed payload types, see [`MediaCodec`]).
//! - A receiver that makes its own offer (WHEP) gets a down stream that answers it
//!   ([`Sfu::answer_down`]); its source is attached and swapped with [`Sfu::replace_source`].
//! - Every RTP packet of an up layer goes to each attached down track, with the payload shared
//!   (an `Arc` clone), and payload type, SSRC, sequence numbers and timestamps rewritten per
//!   receiver so they stay continuous across layer switches and source replacements.
//! - An in-process receiver without an `Rtc` (the recorder) gets a *local sink* instead of a
//!   down stream ([`Sfu::attach_sink`]): the packets of the layers it selected come out of
//!   [`Sfu::poll_sink_packet`] as they arrive, payload shared, headers untouched.
//!
//! # Run loop
//!
//! `Sfu` follows the contract str0m documents for its own `Rtc` (see str0m's `Rtc` docs, "Run
//! loop"), one level up: it is a state machine that never reads the clock and never touches a
//! socket. The caller owns the UDP socket and the clock, and after every input drains every
//! output before the next input:
//!
//! 1. **One input.** A datagram ([`Sfu::handle_receive`]), an expired deadline
//!    ([`Sfu::handle_timeout`], with the time now) or one command from signalling
//!    ([`Sfu::accept_offer`], [`Sfu::create_down`], [`Sfu::accept_answer`], ...).
//! 2. **Drain the outputs.** [`Sfu::poll_transmit`] until `None`, sending each datagram from
//!    its `source` to its `destination`; then [`Sfu::poll_event`] until `None`, acting on each
//!    [`MediaEvent`], and [`Sfu::poll_sink_packet`] until `None` ([`Sfu::has_events`] says
//!    whether there is any event or sink packet, without taking it).
//! 3. **Wait.** Until [`Sfu::poll_timeout`] or the next datagram or command, whichever comes
//!    first, then go to 1. Drain before the next input: the queues are bounded and drop their
//!    oldest entries when full ([`SfuConfig::max_queued_transmits`]).
//!
//! Inside, str0m's single-mutation invariant holds for each `Rtc`: every mutation (an input, an
//! SDP change, a `write_rtp`, a keyframe request) is followed at once by draining that `Rtc`'s
//! `poll_output` until `Output::Timeout`, before its next mutation. The fan-out mutates down
//! `Rtc`s from inside an up `Rtc`'s drain, draining each at once, as str0m allows; other work
//! for another stream (a keyframe request, a removal) is queued and run once the drains of the
//! current input are over. Datagrams are routed by the STUN USERNAME's ufrag, else by the
//! remote address STUN learned, never by a scan of all `Rtc`s; only `Rtc`s whose own deadline
//! expired are woken (a timer heap keyed by deadline, with lazy invalidation). See
//! `docs/media.md` for the design as a whole.
//!
//! ```no_run
//! use std::time::Instant;
//! use sfubox::media::{Sfu, SfuConfig};
//!
//! # fn recv() -> Option<(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send(_: &sfubox::media::Transmit) {}
//! let local = "192.0.2.1:8443".parse().expect("a literal address");
//! let mut sfu = Sfu::new(SfuConfig::new(vec![local])).expect("a DTLS certificate");
//! loop {
//!     let now = Instant::now();
//!     match recv() {
//!         Some((from, to, data)) => { let _ = sfu.handle_receive(now, from, to, &data); }
//!         None => sfu.handle_timeout(now),
//!     }
//!     while let Some(t) = sfu.poll_transmit() { send(&t); }
//!     while let Some(_event) = sfu.poll_event() { /* tell signalling */ }
//!     let _sleep_until = sfu.poll_timeout();
//! }
//! ```
//!
//! # Memory
//!
//! Queues are bounded ([`SfuConfig::max_queued_transmits`], events, buffered candidates, routes
//! per stream). Video down streams keep a NACK/RTX history of
//! [`SfuConfig::video_nack_packets`] packets (at most [`SfuConfig::video_nack_age`] old); audio
//! keeps none. History entries share the publisher's payload `Arc`, so the payload bytes of a
//! packet are stored once however many receivers cache it; what each receiver pays is str0m's
//! 408-byte `RtpPacket` per entry. `cargo bench --bench forward` measures, on x86-64 (numbers
//! from one run, shared 2-core machine):
//!
//! | subscribers | engine heap per down stream (history full) | allocations per datagram out | datagrams out per engine-second |
//! |---|---|---|---|
//! | 1  | 341 kB (includes the shared payloads) | 3.41 | 424 000 |
//! | 10 | 179 kB | 1.38 | 540 000 |
//! | 50 | 164 kB | 1.18 | 416 000 |
//!
//! (Down streams negotiate no TWCC: str0m's send register for it was another 90 kB each.)
//!
//! The one allocation per datagram that remains is str0m's (SRTP output is a fresh `Vec`), plus
//! one `Arc` per incoming packet; the fan-out itself does not allocate.
//!
//! # Files
//!
//! The [`Sfu`] struct is here; its methods are spread over files by job. Imports between the
//! files run one way. The value files (`ids`, `types`, `config`, `meter`, `forward`,
//! `allocate`, `peer`, `deferred`, `timers`, `codecs`, `demux`, `layers`) never name `Sfu`,
//! and this file imports only from them. The files that implement `Sfu` (`guard`, `output`,
//! `route`, `drain`, `fanout`, `lifecycle`, `negotiate`, `answer`, `slots`, `stats`, `adapt`,
//! `sink`) import
//! `Sfu` and value files, and nothing from each other but `guard`'s `guarded`. `sim` and
//! `tests` use the public API only.

mod adapt;
mod allocate;
mod answer;
mod codecs;
mod config;
mod deferred;
mod demux;
mod drain;
mod fanout;
mod forward;
mod guard;
mod ids;
mod layers;
mod lifecycle;
mod meter;
mod negotiate;
mod output;
mod peer;
mod route;
pub mod sim;
mod sink;
mod slots;
mod stats;
mod timers;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::config::{CryptoProvider, DtlsCert};

pub use codecs::MediaCodec;
pub use config::{SfuConfig, sending_extensions, stream_rtc_config};
pub use forward::{Selection, VideoChoice};
pub use ids::{LinkKey, StreamKey};
pub use types::{
    GoneReason, LayerStats, MediaCounts, MediaError, MediaEvent, SenderClock, SinkPacket,
    SinkTrack, TrackInfo, TrackKind, TrackStats, Transmit,
};

use deferred::Deferred;
use ids::PeerId;
use peer::{LocalSink, Slot};
use timers::TimerHeap;

/// The media engine. See the [module docs](self) for the run loop.
pub struct Sfu {
    /// Settings.
    config: SfuConfig,
    /// The crypto provider every `Rtc` is built with.
    crypto: Arc<CryptoProvider>,
    /// The one DTLS certificate all streams share.
    dtls_cert: DtlsCert,
    /// The peer table, indexed by [`PeerId`].
    slots: Vec<Slot>,
    /// Indices of empty slots.
    free: Vec<u32>,
    /// The peer of each of the caller's stream keys.
    keys: HashMap<StreamKey, PeerId>,
    /// The peer of each remote address learned from STUN.
    routes: HashMap<SocketAddr, PeerId>,
    /// The peer of each local ICE ufrag.
    ufrags: HashMap<String, PeerId>,
    /// Every peer's deadline (stale entries included).
    timers: TimerHeap,
    /// The peers woken by one `handle_timeout` (kept to reuse its allocation).
    due: Vec<PeerId>,
    /// Datagrams waiting for [`Sfu::poll_transmit`].
    transmits: VecDeque<Transmit>,
    /// Datagrams dropped because `transmits` was full.
    dropped_transmits: u64,
    /// Events waiting for [`Sfu::poll_event`].
    events: VecDeque<MediaEvent>,
    /// Work for other streams, run once the current drain is over.
    deferred: VecDeque<Deferred>,
    /// Down streams per subscriber link.
    links: HashMap<LinkKey, Vec<PeerId>>,
    /// Links whose layer choice must be revisited at the end of the current input.
    dirty_links: Vec<LinkKey>,
    /// When the periodic adaptation runs next.
    next_adapt_at: Option<Instant>,
    /// When publishers are sent their rate limits next.
    next_remb_at: Option<Instant>,
    /// Local sinks ([`Sfu::attach_sink`]), by the caller's key.
    sinks: HashMap<StreamKey, LocalSink>,
    /// Packets waiting for [`Sfu::poll_sink_packet`].
    sink_packets: VecDeque<SinkPacket>,
    /// Packets for sinks dropped because `sink_packets` was full.
    dropped_sink_packets: u64,
}

impl Sfu {
    /// Creates the engine; makes the one DTLS certificate all streams share.
    pub fn new(config: SfuConfig) -> Result<Sfu, MediaError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let dtls_cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or(MediaError::Crypto)?;
        Ok(Sfu {
            config,
            crypto,
            dtls_cert,
            slots: Vec::new(),
            free: Vec::new(),
            keys: HashMap::new(),
            routes: HashMap::new(),
            ufrags: HashMap::new(),
            timers: TimerHeap::default(),
            due: Vec::new(),
            transmits: VecDeque::new(),
            dropped_transmits: 0,
            events: VecDeque::new(),
            deferred: VecDeque::new(),
            links: HashMap::new(),
            dirty_links: Vec::new(),
            next_adapt_at: None,
            next_remb_at: None,
            sinks: HashMap::new(),
            sink_packets: VecDeque::new(),
            dropped_sink_packets: 0,
        })
    }
}
