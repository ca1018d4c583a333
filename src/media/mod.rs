//! The media engine: a sans-IO SFU over str0m, one `Rtc` per unidirectional stream.
//!
//! [`Sfu`] owns every [`str0m::Rtc`] of the server. Each Galène stream (one PeerConnection, one
//! direction) is one `Rtc`, in ICE-lite and RTP mode, behind the one UDP socket whose addresses
//! are given in [`SfuConfig::candidates`]. Streams are named by the caller with a [`StreamKey`].
//!
//! - A publisher's offer becomes an *up* stream ([`Sfu::accept_offer`], answered recvonly).
//! - A receiver gets a *down* stream per up stream ([`Sfu::create_down`], offered sendonly with
//!   the publisher's codecs at Galène's fixed payload types, see [`MediaCodec`]).
//! - Every RTP packet of an up layer goes to each attached down track, with the payload shared
//!   (an `Arc` clone), and payload type, SSRC, sequence numbers and timestamps rewritten per
//!   receiver so they stay continuous across layer switches and source replacements.
//!
//! # Run loop
//!
//! The engine never reads the clock and never touches a socket. The caller drives it:
//!
//! 1. Feed one input: a datagram ([`Sfu::handle_receive`]), an expired deadline
//!    ([`Sfu::handle_timeout`]) or a command from signalling (`accept_offer`, `create_down`, ...).
//! 2. Drain [`Sfu::poll_transmit`] until `None`, sending each datagram from its `source` to its
//!    `destination`; drain [`Sfu::poll_event`] until `None` and act on each [`MediaEvent`].
//! 3. Sleep until [`Sfu::poll_timeout`] or the next input, whichever is first, then go to 1.
//!
//! Inside, every mutation of an `Rtc` is followed by draining its `poll_output` until
//! `Output::Timeout` (str0m's rule), datagrams are routed by remote address (falling back to the
//! STUN USERNAME's ufrag, never a scan of all `Rtc`s) and only `Rtc`s whose own deadline expired
//! are woken (a timer heap keyed by deadline, with lazy invalidation).
//!
//! ```no_run
//! use std::time::Instant;
//! use sfubox::media::{Sfu, SfuConfig};
//!
//! # fn recv() -> Option<(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send(_: &sfubox::media::Transmit) {}
//! let mut sfu = Sfu::new(SfuConfig::new(vec!["192.0.2.1:8443".parse().unwrap()])).unwrap();
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

mod adapt;
mod allocate;
mod codecs;
mod demux;
mod forward;
mod layers;
mod peer;
pub mod sim;
mod timers;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

pub use adapt::{LayerStats, LinkKey};
pub use codecs::MediaCodec;
pub use forward::{Selection, VideoChoice};

use allocate::TrackPolicy;
use codecs::configure_codecs;
use forward::{Decision, DownTrack, LayerShape, PacketMeta, SourceRef, choose_layer};
use layers::CodecMeta;
use peer::{
    DownSlot, DownState, MAX_ADDRS_PER_PEER, MAX_BUFFERED_CANDIDATES, Peer, PeerId, Role,
    Subscriber, UpLayer, UpState,
};
use timers::TimerHeap;

/// The caller's name for one stream (one `Rtc`). Up and down streams share one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey(pub u64);

/// Settings of the media engine.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Local addresses announced as host candidates (the UDP socket's addresses).
    pub candidates: Vec<SocketAddr>,
    /// Packets of NACK history per outgoing video stream (str0m's RTX cache).
    pub video_nack_packets: usize,
    /// Oldest packet kept in the NACK history.
    pub video_nack_age: Duration,
    /// Minimum time between two keyframe requests to one publisher layer.
    pub keyframe_request_interval: Duration,
    /// How long ICE may stay disconnected before the stream counts as failed.
    pub ice_failure_after: Duration,
    /// Outgoing datagrams held before the oldest are dropped (the caller drains after each call).
    pub max_queued_transmits: usize,
    /// Events held before the oldest are dropped.
    pub max_queued_events: usize,
    /// Estimate each subscriber's downlink (TWCC on down streams), choose layers to fit it and
    /// send publishers rate limits (REMB). Off: every receiver gets the best layer it asked
    /// for that arrives, whatever its link.
    pub downlink_estimation: bool,
    /// The estimate a new down stream starts from, bits per second.
    pub initial_downlink_estimate: u64,
}

impl SfuConfig {
    /// Defaults for a small board: 256 packets (≈ 2–3 s of 1 Mb/s video) of NACK history kept
    /// at most 2 s, keyframe requests at most every 500 ms (Galène's rate), ICE failure after
    /// 10 s disconnected.
    pub fn new(candidates: Vec<SocketAddr>) -> SfuConfig {
        SfuConfig {
            candidates,
            video_nack_packets: 256,
            video_nack_age: Duration::from_secs(2),
            keyframe_request_interval: Duration::from_millis(500),
            ice_failure_after: Duration::from_secs(10),
            max_queued_transmits: 4096,
            max_queued_events: 1024,
            downlink_estimation: true,
            initial_downlink_estimate: 1_500_000,
        }
    }
}

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    /// Local address to send from.
    pub source: SocketAddr,
    /// Remote address to send to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// One incoming layer of an up stream, as announced in [`MediaEvent::UpTracks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Audio or video.
    pub kind: TrackKind,
    /// The m-line's mid.
    pub mid: String,
    /// The simulcast rid, if the m-line is simulcast.
    pub rid: Option<String>,
}

/// Statistics of one track of a stream, from str0m's once-a-second reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackStats {
    /// Audio or video.
    pub kind: TrackKind,
    /// The m-line's mid.
    pub mid: String,
    /// The simulcast rid, if any.
    pub rid: Option<String>,
    /// Bits per second over the last report interval.
    pub bitrate: u64,
    /// Fraction of packets lost (as reported by the receiving side).
    pub loss: f64,
    /// Interarrival jitter in milliseconds (incoming tracks; outgoing ones as the receiver
    /// reports it).
    pub jitter_ms: f64,
    /// Round-trip time in milliseconds, when known.
    pub rtt_ms: Option<f64>,
    /// The layer choice of an outgoing video track (down streams).
    pub layer: Option<LayerStats>,
}

/// Tracks with statistics kept per stream, at most.
const MAX_TRACK_STATS: usize = MAX_UP_LAYERS;

/// Why a stream disappeared on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// The remote closed DTLS.
    RemoteClosed,
    /// The engine failed on this stream (an `Rtc` error or panic); it was dropped.
    EngineError,
}

/// Something signalling must know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS are up: media flows.
    Connected {
        /// The stream.
        stream: StreamKey,
    },
    /// The layers of an up stream are known or changed (after each negotiation that changed
    /// them). Signalling pushes the stream to receivers, or re-applies their selections.
    UpTracks {
        /// The up stream.
        stream: StreamKey,
        /// Its layers, m-line order, then rid order.
        tracks: Vec<TrackInfo>,
    },
    /// ICE of an up stream failed: signalling MUST ask the client to re-offer with an ICE
    /// restart (Galène's `renegotiate`).
    UpIceFailed {
        /// The up stream.
        stream: StreamKey,
    },
    /// ICE of a down stream failed: signalling SHOULD call [`Sfu::restart_ice`] and send the
    /// offer.
    DownIceFailed {
        /// The down stream.
        stream: StreamKey,
    },
    /// The stream no longer exists in the engine; signalling MUST forget it (and close the
    /// down streams of a gone up stream).
    StreamGone {
        /// The stream.
        stream: StreamKey,
        /// Why.
        reason: GoneReason,
    },
    /// A down stream's video is now received below (or back at) the best layer the receiver
    /// asked for, because of the receiver's own link. Signalling MAY tell the receiver.
    LayerReduced {
        /// The down stream.
        stream: StreamKey,
        /// Whether it is reduced now.
        reduced: bool,
    },
}

/// Why a command or input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// No stream has this key.
    UnknownStream(StreamKey),
    /// A stream with this key exists already.
    StreamExists(StreamKey),
    /// The stream has the wrong direction for this command.
    WrongDirection(StreamKey),
    /// The SDP could not be parsed.
    BadSdp(String),
    /// The SDP parsed but negotiation failed.
    Negotiation(String),
    /// An answer came for a stream without a pending offer.
    NoPendingOffer(StreamKey),
    /// The selection matches no track of the up stream.
    NothingSelected,
    /// The up stream has no negotiated codec the down stream could use.
    CodecMismatch,
    /// The ICE candidate could not be parsed.
    BadCandidate(String),
    /// The datagram belongs to no stream.
    Unroutable,
    /// The datagram is not STUN, DTLS, RTP or RTCP.
    Malformed,
    /// The stream's `Rtc` refused the datagram.
    Rejected(String),
    /// The crypto provider could not make a DTLS certificate.
    Crypto,
    /// The engine panicked on this stream; the stream was dropped.
    EnginePanic,
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::UnknownStream(k) => write!(f, "unknown stream {}", k.0),
            MediaError::StreamExists(k) => write!(f, "stream {} exists already", k.0),
            MediaError::WrongDirection(k) => write!(f, "stream {} has the wrong direction", k.0),
            MediaError::BadSdp(e) => write!(f, "bad SDP: {e}"),
            MediaError::Negotiation(e) => write!(f, "negotiation failed: {e}"),
            MediaError::NoPendingOffer(k) => write!(f, "stream {} has no pending offer", k.0),
            MediaError::NothingSelected => f.write_str("the selection matches no track"),
            MediaError::CodecMismatch => f.write_str("no common codec"),
            MediaError::BadCandidate(e) => write!(f, "bad ICE candidate: {e}"),
            MediaError::Unroutable => f.write_str("datagram belongs to no stream"),
            MediaError::Malformed => f.write_str("malformed datagram"),
            MediaError::Rejected(e) => write!(f, "datagram rejected: {e}"),
            MediaError::Crypto => f.write_str("cannot create a DTLS certificate"),
            MediaError::EnginePanic => f.write_str("the WebRTC engine panicked"),
        }
    }
}

impl std::error::Error for MediaError {}

/// Sizes of the engine's tables, for tests and status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaCounts {
    /// Live streams (`Rtc`s).
    pub streams: usize,
    /// Entries in the timer heap (stale ones included).
    pub timers: usize,
    /// Remote addresses in the routing map.
    pub routes: usize,
    /// Ufrags in the STUN routing map.
    pub ufrags: usize,
    /// Down tracks attached to up layers.
    pub subscriptions: usize,
    /// Datagrams waiting in [`Sfu::poll_transmit`].
    pub queued_transmits: usize,
    /// Datagrams dropped because the queue was full.
    pub dropped_transmits: u64,
}

/// Incoming layers kept per up stream (m-lines × simulcast rids); more are ignored.
const MAX_UP_LAYERS: usize = 16;

/// Due timeouts one drain hands to an `Rtc` before leaving the rest to the timer heap (str0m
/// asks for at most one after a write; the bound only guards against a deadline that never
/// moves).
const MAX_IMMEDIATE_TIMEOUTS: u32 = 4;

/// Outputs read from an `Rtc` being closed, at most (its goodbye is a handful of datagrams).
const MAX_GOODBYE_OUTPUTS: usize = 64;

/// Work that crosses from one `Rtc` to another, run after the current mutation is drained.
#[derive(Debug)]
enum Deferred {
    /// Ask the publisher of this layer for a keyframe (throttled).
    Keyframe(SourceRef),
    /// A down stream's receiver asked for a keyframe on this m-line.
    KeyframeForTrack { down: PeerId, mid: Mid },
    /// A down track no longer listens to this layer.
    Unsubscribe(SourceRef, Subscriber),
    /// Drop a stream.
    Remove(PeerId, GoneReason),
}

struct Slot {
    generation: u32,
    peer: Option<Box<Peer>>,
}

/// The media engine. See the [module docs](self) for the run loop.
pub struct Sfu {
    config: SfuConfig,
    crypto: Arc<CryptoProvider>,
    dtls_cert: DtlsCert,
    slots: Vec<Slot>,
    free: Vec<u32>,
    keys: HashMap<StreamKey, PeerId>,
    routes: HashMap<SocketAddr, PeerId>,
    ufrags: HashMap<String, PeerId>,
    timers: TimerHeap,
    due: Vec<PeerId>,
    transmits: VecDeque<Transmit>,
    dropped_transmits: u64,
    events: VecDeque<MediaEvent>,
    deferred: VecDeque<Deferred>,
    /// Down streams per subscriber link.
    links: HashMap<LinkKey, Vec<PeerId>>,
    /// Links whose layer choice must be revisited at the end of the current input.
    dirty_links: Vec<LinkKey>,
    /// When the periodic adaptation runs next.
    next_adapt_at: Option<Instant>,
    /// When publishers are sent their rate limits next.
    next_remb_at: Option<Instant>,
}

/// Runs `f`, turning a panic inside str0m into an error.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, MediaError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| MediaError::EnginePanic)
}

fn track_kind(kind: MediaKind) -> TrackKind {
    match kind {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
}

/// Whether a decoder can start at this payload (the first packet of a keyframe).
fn starts_decoding(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => str0m::format::detect_vp8_keyframe(payload),
        Codec::Vp9 => str0m::format::detect_vp9_keyframe(payload),
        Codec::Av1 => str0m::format::detect_av1_keyframe(payload),
        Codec::H264 => str0m::format::detect_h264_keyframe(payload),
        _ => true,
    }
}

impl Sfu {
    /// Turns the result of a guarded str0m call into ours: str0m's own error becomes `reject`
    /// of its text, and a panic inside str0m schedules the stream's removal (its state can no
    /// longer be trusted).
    fn settle<T, E: fmt::Display>(
        &mut self,
        id: PeerId,
        handled: Result<Result<T, E>, MediaError>,
        reject: fn(String) -> MediaError,
    ) -> Result<T, MediaError> {
        match handled {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(reject(e.to_string())),
            Err(e) => {
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
                Err(e)
            }
        }
    }

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
        })
    }

    // ------------------------------------------------------------------ outputs

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for signalling.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Whether [`Sfu::poll_event`] has something: most datagrams produce no event, and the
    /// caller skips its signalling work for them.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// When [`Sfu::handle_timeout`] must be called next (`None`: no stream).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        let next = self
            .timers
            .next_deadline(|at, id| scheduled(slots, id) == Some(at));
        match (next, self.next_adapt_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Table sizes.
    pub fn counts(&self) -> MediaCounts {
        let mut subscriptions = 0;
        for slot in &self.slots {
            if let Some(up) = slot.peer.as_ref().and_then(|p| p.up()) {
                subscriptions += up.layers.iter().map(|l| l.subscribers.len()).sum::<usize>();
            }
        }
        MediaCounts {
            streams: self.keys.len(),
            timers: self.timers.len(),
            routes: self.routes.len(),
            ufrags: self.ufrags.len(),
            subscriptions,
            queued_transmits: self.transmits.len(),
            dropped_transmits: self.dropped_transmits,
        }
    }

    // ------------------------------------------------------------------ inputs

    /// Handles one datagram received on the media socket.
    ///
    /// Errors say why it was dropped; none of them is fatal for the engine.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), MediaError> {
        let stun_ufrag = demux::stun_local_ufrag(datagram);
        let id = stun_ufrag
            .and_then(|u| self.ufrags.get(u).copied())
            .or_else(|| self.routes.get(&source).copied())
            .ok_or(MediaError::Unroutable)?;
        let receive = Receive::new(Protocol::Udp, source, destination, datagram)
            .map_err(|_| MediaError::Malformed)?;
        let input = Input::Receive(now, receive);
        let peer = self.peer_mut(id).ok_or(MediaError::Unroutable)?;
        if !peer.rtc.accepts(&input) {
            return Err(MediaError::Unroutable);
        }
        let handled = guarded(|| peer.rtc.handle_input(input));
        if stun_ufrag.is_some() && handled.is_ok() {
            self.learn_route(source, id);
        }
        let result = self.settle(id, handled, MediaError::Rejected);
        self.drain(now, id);
        self.run_deferred(now);
        result
    }

    /// Wakes the streams whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        loop {
            let slots = &self.slots;
            let Some(id) = self
                .timers
                .pop_due(now, |at, id| scheduled(slots, id) == Some(at))
            else {
                break;
            };
            if let Some(peer) = self.peer_mut(id) {
                peer.deadline = None;
            }
            due.push(id);
        }
        for &id in &due {
            self.wake(now, id);
        }
        self.due = due;
        if self.next_adapt_at.is_some_and(|at| now >= at) {
            self.next_adapt_at = (!self.keys.is_empty()).then_some(now + adapt::ADAPT_INTERVAL);
            self.adapt_tick(now);
        }
        self.run_deferred(now);
    }

    fn wake(&mut self, now: Instant, id: PeerId) {
        let failure_after = self.config.ice_failure_after;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut failed = None;
        if let Some(since) = peer.ice_down_since
            && !peer.ice_failure_reported
            && now >= since + failure_after
        {
            peer.ice_failure_reported = true;
            failed = Some(match peer.role {
                Role::Up(_) => MediaEvent::UpIceFailed { stream: peer.key },
                Role::Down(_) => MediaEvent::DownIceFailed { stream: peer.key },
            });
        }
        if now >= peer.rtc_deadline {
            let handled = guarded(|| peer.rtc.handle_input(Input::Timeout(now)));
            if !matches!(handled, Ok(Ok(()))) {
                log::debug!("stream {}: timeout handling failed", peer.key.0);
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
            }
        }
        if let Some(event) = failed {
            self.push_event(event);
        }
        self.drain(now, id);
    }

    // ------------------------------------------------------------------ commands

    /// Answers a publisher's offer: creates the up stream `key`, or renegotiates it if it
    /// exists. `codecs` are the group's codecs (ignored on renegotiation). Returns the answer.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        key: StreamKey,
        offer: &str,
        codecs: &[MediaCodec],
    ) -> Result<String, MediaError> {
        // We only ever receive on up streams: answer a sendrecv m-line as recvonly.
        let offer = if offer.contains("a=sendrecv") {
            Cow::Owned(offer.replace("a=sendrecv", "a=sendonly"))
        } else {
            Cow::Borrowed(offer)
        };
        let offer =
            SdpOffer::from_sdp_string(&offer).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let (id, created) = match self.keys.get(&key) {
            Some(&id) => {
                if self.peer(id).and_then(|p| p.up()).is_none() {
                    return Err(MediaError::WrongDirection(key));
                }
                (id, false)
            }
            None => {
                let codecs = if codecs.is_empty() {
                    MediaCodec::DEFAULT
                } else {
                    codecs
                };
                let rtc = self.build_rtc(now, codecs, Direction::RecvOnly)?;
                let up = UpState {
                    created: Some(now),
                    ..UpState::default()
                };
                (self.insert_peer(now, key, rtc, Role::Up(up)), true)
            }
        };
        let Some(peer) = self.peer_mut(id) else {
            return Err(MediaError::UnknownStream(key));
        };
        let answer = guarded(|| peer.rtc.sdp_api().accept_offer(offer));
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                if created {
                    self.remove_peer(id, None);
                } else {
                    self.drain(now, id);
                }
                return Err(MediaError::Negotiation(e.to_string()));
            }
            Err(e) => {
                self.remove_peer(id, None);
                return Err(e);
            }
        };
        let before = self.track_infos(id);
        let answer = answer.to_sdp_string();
        // str0m announces media only once DTLS is up; the answer names the m-lines now.
        for mid in demux::sdp_mids(&answer) {
            let kind = self
                .peer(id)
                .and_then(|p| p.rtc.media(mid))
                .map(|m| m.kind());
            if let Some(kind) = kind {
                self.add_up_layers(id, mid, kind);
            }
        }
        self.drain(now, id);
        self.remote_description_set(now, id);
        self.refresh_ufrag(id);
        let after = self.track_infos(id);
        if after != before && !after.is_empty() {
            self.push_event(MediaEvent::UpTracks {
                stream: key,
                tracks: after,
            });
        }
        self.run_deferred(now);
        Ok(answer)
    }

    /// Creates the down stream `key` carrying `selection` of the up stream `source` to the
    /// subscriber whose network path is `link` (all down streams of one subscriber share one
    /// bandwidth budget). Returns the offer to send to the receiver.
    pub fn create_down(
        &mut self,
        now: Instant,
        key: StreamKey,
        source: StreamKey,
        link: LinkKey,
        selection: Selection,
    ) -> Result<String, MediaError> {
        if self.keys.contains_key(&key) {
            return Err(MediaError::StreamExists(key));
        }
        let up_id = self.up_id(source)?;
        if selection.is_empty() {
            return Err(MediaError::NothingSelected);
        }
        let codecs = self.up_codecs(up_id);
        if codecs.is_empty() {
            return Err(MediaError::CodecMismatch);
        }
        let rtc = self.build_rtc(now, &codecs, Direction::SendOnly)?;
        let down = DownState {
            link,
            estimate: None,
            remb: None,
            desired: 0,
            created: now,
            min_rtt: None,
            last_rtt: None,
            congested_at: None,
            congestion_cap: None,
            trial_failed_at: None,
            carried_peak: 0,
            probing: 0,
            reports: heapless::Vec::new(),
            source: up_id,
            selection,
            tracks: Vec::new(),
            pending_offer: None,
            queued_selection: None,
            queued_ice_restart: false,
        };
        let id = self.insert_peer(now, key, rtc, Role::Down(Box::new(down)));
        self.join_link(link, id);
        self.refresh_ufrag(id);
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        match result {
            Ok(Some(offer)) => Ok(offer),
            Ok(None) => {
                self.remove_peer(id, None);
                Err(MediaError::NothingSelected)
            }
            Err(e) => {
                self.remove_peer(id, None);
                Err(e)
            }
        }
    }

    /// Applies the receiver's answer to our last offer on down stream `key`. Returns a
    /// follow-up offer if changes were queued meanwhile.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        key: StreamKey,
        answer: &str,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let answer =
            SdpAnswer::from_sdp_string(answer).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return Err(MediaError::WrongDirection(key));
        };
        let pending = down
            .pending_offer
            .take()
            .ok_or(MediaError::NoPendingOffer(key))?;
        let handled = guarded(|| rtc.sdp_api().accept_answer(pending, answer));
        let accepted = self.settle(id, handled, MediaError::Negotiation);
        self.drain(now, id);
        if let Err(e) = accepted {
            self.run_deferred(now);
            return Err(e);
        }
        self.configure_nack_history(now, id);
        self.remote_description_set(now, id);
        self.refresh_ufrag(id);
        let (selection, restart) = match self.peer_mut(id).and_then(|p| p.down_mut()) {
            Some(d) => (
                d.queued_selection.take(),
                std::mem::take(&mut d.queued_ice_restart),
            ),
            None => (None, false),
        };
        let result = if selection.is_some() || restart {
            self.renegotiate_down(now, id, selection, restart)
        } else {
            Ok(None)
        };
        self.run_deferred(now);
        result
    }

    /// Adds a trickled remote ICE candidate (`candidate:...` text) to stream `key`; buffered
    /// until the remote description is known.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        key: StreamKey,
        candidate: &str,
    ) -> Result<(), MediaError> {
        let id = self.key_id(key)?;
        let text = candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        let candidate = Candidate::from_sdp_string(text)
            .map_err(|e| MediaError::BadCandidate(e.to_string()))?;
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        if peer.has_remote_description {
            peer.rtc.add_remote_candidate(candidate);
            self.drain(now, id);
            self.run_deferred(now);
        } else if peer.early_candidates.len() < MAX_BUFFERED_CANDIDATES {
            peer.early_candidates.push(candidate);
        }
        Ok(())
    }

    /// Restarts ICE on down stream `key` (after [`MediaEvent::DownIceFailed`]). Returns the
    /// offer, or `None` if an offer is pending: the restart is then offered after its answer.
    pub fn restart_ice(
        &mut self,
        now: Instant,
        key: StreamKey,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let down = self
            .peer_mut(id)
            .and_then(|p| p.down_mut())
            .ok_or(MediaError::WrongDirection(key))?;
        if down.pending_offer.is_some() {
            down.queued_ice_restart = true;
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, None, true);
        self.run_deferred(now);
        result
    }

    /// Changes what down stream `key` carries. Returns an offer if the m-lines change; a switch
    /// between `video` and `video-low` needs none (it happens at the next keyframe). While an
    /// offer is pending the change is queued and offered after the answer.
    ///
    /// Also call this after [`MediaEvent::UpTracks`] for the source, to pick up new tracks.
    pub fn set_selection(
        &mut self,
        now: Instant,
        key: StreamKey,
        selection: Selection,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let down = self
            .peer_mut(id)
            .and_then(|p| p.down_mut())
            .ok_or(MediaError::WrongDirection(key))?;
        if down.pending_offer.is_some() {
            down.queued_selection = Some(selection);
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        result
    }

    /// Feeds down stream `key` from another up stream (a publisher's `replace`), keeping the
    /// receiver's sequence numbers and timestamps continuous. The new source must use codecs
    /// the down stream negotiated.
    pub fn replace_source(
        &mut self,
        now: Instant,
        key: StreamKey,
        source: StreamKey,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let up_id = self.up_id(source)?;
        let wanted = self.up_codecs(up_id);
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        let supported = wanted.iter().all(|c| {
            peer.rtc
                .codec_config()
                .params()
                .iter()
                .any(|p| p.spec().codec == c.str0m_codec())
        });
        if !supported {
            return Err(MediaError::CodecMismatch);
        }
        let down = peer.down_mut().ok_or(MediaError::WrongDirection(key))?;
        down.source = up_id;
        let selection = down.selection;
        if down.pending_offer.is_some() {
            down.queued_selection = Some(selection);
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        result
    }

    /// Closes stream `key` (either direction) and forgets everything about it.
    pub fn close_stream(&mut self, now: Instant, key: StreamKey) -> Result<(), MediaError> {
        let id = self.key_id(key)?;
        self.remove_peer(id, None);
        self.run_deferred(now);
        Ok(())
    }

    // ------------------------------------------------------------------ internals: peers

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        let slot = self.slots.get(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.peer.as_deref()
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        peer_in(&mut self.slots, id)
    }

    fn key_id(&self, key: StreamKey) -> Result<PeerId, MediaError> {
        self.keys
            .get(&key)
            .copied()
            .ok_or(MediaError::UnknownStream(key))
    }

    fn up_id(&self, key: StreamKey) -> Result<PeerId, MediaError> {
        let id = self.key_id(key)?;
        match self.peer(id).map(|p| &p.role) {
            Some(Role::Up(_)) => Ok(id),
            _ => Err(MediaError::WrongDirection(key)),
        }
    }

    /// A new `Rtc` for a stream that only receives (`RecvOnly`, a publisher) or only sends; see
    /// [`stream_rtc_config`].
    fn build_rtc(
        &self,
        now: Instant,
        codecs: &[MediaCodec],
        direction: Direction,
    ) -> Result<Rtc, MediaError> {
        let estimate = direction == Direction::SendOnly && self.config.downlink_estimation;
        let mut config = stream_rtc_config(direction, self.config.video_nack_packets);
        if estimate {
            config = config
                .set_extension_map(sending_extensions(true))
                .enable_bwe(Some(Bitrate::bps(self.config.initial_downlink_estimate)));
        }
        let config = config
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.dtls_cert.clone())
            .set_stats_interval(Some(Duration::from_secs(1)));
        let config = configure_codecs(config, codecs);
        let candidates = &self.config.candidates;
        guarded(move || {
            let mut rtc = config.build(now);
            for &addr in candidates {
                if let Ok(c) = Candidate::host(addr, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
            rtc
        })
    }

    fn insert_peer(&mut self, now: Instant, key: StreamKey, rtc: Rtc, role: Role) -> PeerId {
        let peer = Box::new(Peer {
            key,
            rtc,
            role,
            rtc_deadline: now,
            deadline: None,
            connected: false,
            ice_down_since: None,
            ice_failure_reported: false,
            ufrag: String::new(),
            addrs: heapless::Vec::new(),
            early_candidates: Vec::new(),
            has_remote_description: false,
            stats: Vec::new(),
        });
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize]; // free holds valid indices only
                slot.peer = Some(peer);
                PeerId::new(index, slot.generation)
            }
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    generation: 0,
                    peer: Some(peer),
                });
                PeerId::new(index, 0)
            }
        };
        self.keys.insert(key, id);
        if self.next_adapt_at.is_none() {
            self.next_adapt_at = Some(now + adapt::ADAPT_INTERVAL);
        }
        self.drain(now, id);
        id
    }

    fn remove_peer(&mut self, id: PeerId, announce: Option<GoneReason>) {
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return;
        };
        if slot.generation != id.generation() {
            return;
        }
        let Some(mut peer) = slot.peer.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        if let Ok(index) = u32::try_from(id.index()) {
            self.free.push(index);
        }
        if self.keys.get(&peer.key) == Some(&id) {
            self.keys.remove(&peer.key);
        }
        if self.keys.is_empty() {
            // Nothing to adapt: an idle engine has no deadline.
            self.next_adapt_at = None;
            self.next_remb_at = None;
        }
        for addr in &peer.addrs {
            if self.routes.get(addr) == Some(&id) {
                self.routes.remove(addr);
            }
        }
        if self.ufrags.get(&peer.ufrag) == Some(&id) {
            self.ufrags.remove(&peer.ufrag);
        }
        match &peer.role {
            Role::Up(up) => {
                for layer in &up.layers {
                    for sub in &layer.subscribers {
                        if let Some(slot) = self
                            .peer_mut(sub.down)
                            .and_then(|d| d.down_mut())
                            .and_then(|d| d.tracks.get_mut(sub.track))
                        {
                            slot.track.forget_up(id);
                        }
                    }
                }
            }
            Role::Down(down) => {
                self.leave_link(down.link, id);
                for (index, slot) in down.tracks.iter().enumerate() {
                    let sub = Subscriber {
                        down: id,
                        track: index,
                    };
                    for source in slot.track.keyframe_targets() {
                        self.unsubscribe(source, sub);
                    }
                }
            }
        }
        // Say goodbye (RTCP BYE, DTLS close_notify) if the engine still can.
        let rtc = &mut peer.rtc;
        let mut goodbye = Vec::new();
        let _ = guarded(|| {
            if rtc.close().is_err() {
                return;
            }
            for _ in 0..MAX_GOODBYE_OUTPUTS {
                match rtc.poll_output() {
                    Ok(Output::Transmit(t)) => goodbye.push(t),
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
            }
        });
        for t in goodbye {
            self.push_transmit(t);
        }
        let slots = &self.slots;
        self.timers
            .compact(|at, id| scheduled(slots, id) == Some(at));
        if let Some(reason) = announce {
            self.push_event(MediaEvent::StreamGone {
                stream: peer.key,
                reason,
            });
        }
    }
}

/// The deadline a live peer has in the heap.
/// The str0m settings every stream of sfubox starts from, for a stream that only receives
/// (`RecvOnly`, a publisher) or only sends: ICE-lite, RTP mode, a send ring of
/// `video_nack_packets` for video and none for audio (never NACKed), and the header extensions.
///
/// A sending stream negotiates no transport-wide sequence numbers and no absolute send time:
/// they only feed bandwidth estimation, which sfubox does not do on the way out, and each costs
/// a header extension per packet and (TWCC) a stream of feedback to parse. Publishers keep them,
/// so browsers estimate their uplink from our TWCC feedback. Public so that the benchmark's null
/// SFU runs str0m exactly as sfubox does.
pub fn stream_rtc_config(direction: Direction, video_nack_packets: usize) -> RtcConfig {
    let extensions = if direction == Direction::SendOnly {
        sending_extensions(false)
    } else {
        ExtensionMap::standard()
    };
    Rtc::builder()
        .set_extension_map(extensions)
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_send_buffer_audio(1)
        .set_send_buffer_video(video_nack_packets)
}

/// The header extensions of a sending stream: str0m's standard ids less 2 (absolute send time)
/// and the simulcast stream ids (a down track is one layer), and with 3 (transport-wide
/// sequence numbers) only when `transport_cc`: the downlink estimator needs it, and it costs
/// an extension per packet and a stream of feedback to parse.
pub fn sending_extensions(transport_cc: bool) -> ExtensionMap {
    let mut sending = ExtensionMap::empty();
    sending.set(1, Extension::AudioLevel);
    if transport_cc {
        sending.set(3, Extension::TransportSequenceNumber);
    }
    sending.set(4, Extension::RtpMid);
    sending.set(13, Extension::VideoOrientation);
    sending
}

fn scheduled(slots: &[Slot], id: PeerId) -> Option<Instant> {
    let slot = slots.get(id.index())?;
    if slot.generation != id.generation() {
        return None;
    }
    slot.peer.as_ref()?.deadline
}

impl Sfu {
    // ------------------------------------------------------------------ internals: outputs

    fn push_transmit(&mut self, t: str0m::net::Transmit) {
        if self.transmits.len() >= self.config.max_queued_transmits {
            self.transmits.pop_front();
            self.dropped_transmits += 1;
        }
        self.transmits.push_back(Transmit {
            source: t.source,
            destination: t.destination,
            contents: t.contents.into(),
        });
    }

    fn push_event(&mut self, event: MediaEvent) {
        if self.events.len() >= self.config.max_queued_events {
            log::warn!("media event queue full, dropping {:?}", self.events.front());
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    // ------------------------------------------------------------------ internals: the drain

    /// Polls `id`'s `Rtc` until it returns a timeout, dispatching everything it outputs.
    ///
    /// str0m releases media written with `write_rtp` only on its next timeout input, and asks
    /// for one at once (a deadline that is already due). That timeout is given here, followed
    /// by its own drain, rather than through the timer heap and another turn of the caller's
    /// loop: a forwarded packet leaves in the same call that received it.
    fn drain(&mut self, now: Instant, id: PeerId) {
        let mut immediate_timeouts = 0;
        loop {
            let Some(peer) = self.peer_mut(id) else {
                return;
            };
            let polled = guarded(|| peer.rtc.poll_output());
            match polled {
                Ok(Ok(Output::Timeout(at)))
                    if at <= now && immediate_timeouts < MAX_IMMEDIATE_TIMEOUTS =>
                {
                    immediate_timeouts += 1;
                    let handled = guarded(|| peer.rtc.handle_input(Input::Timeout(now)));
                    if !matches!(handled, Ok(Ok(()))) {
                        log::debug!("stream {}: timeout handling failed", peer.key.0);
                        self.deferred
                            .push_back(Deferred::Remove(id, GoneReason::EngineError));
                        return;
                    }
                }
                Ok(Ok(Output::Timeout(at))) => {
                    peer.rtc_deadline = at;
                    self.reschedule(id);
                    return;
                }
                Ok(Ok(Output::Transmit(t))) => self.push_transmit(t),
                Ok(Ok(Output::Event(event))) => self.on_event(now, id, event),
                Ok(Err(e)) => {
                    log::debug!("stream {}: engine error {e}", peer.key.0);
                    self.deferred
                        .push_back(Deferred::Remove(id, GoneReason::EngineError));
                    return;
                }
                Err(_) => {
                    self.deferred
                        .push_back(Deferred::Remove(id, GoneReason::EngineError));
                    return;
                }
            }
        }
    }

    /// Puts `id`'s current deadline into the timer heap if it changed.
    fn reschedule(&mut self, id: PeerId) {
        let failure_after = self.config.ice_failure_after;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut at = peer.rtc_deadline;
        if let Some(since) = peer.ice_down_since
            && !peer.ice_failure_reported
        {
            at = at.min(since + failure_after);
        }
        if peer.deadline == Some(at) {
            return;
        }
        peer.deadline = Some(at);
        self.timers.schedule(at, id);
        let live = self.keys.len();
        if self.timers.len() > 4 * live + 64 {
            let slots = &self.slots;
            self.timers
                .compact(|at, id| scheduled(slots, id) == Some(at));
        }
    }

    fn on_event(&mut self, now: Instant, id: PeerId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(now, id, packet),
            Event::KeyframeRequest(request) => {
                self.deferred.push_back(Deferred::KeyframeForTrack {
                    down: id,
                    mid: request.mid,
                });
            }
            Event::Connected => {
                let mut deferred_keyframes: Vec<SourceRef> = Vec::new();
                let Some(peer) = self.peer_mut(id) else {
                    return;
                };
                peer.connected = true;
                let key = peer.key;
                if let Some(down) = peer.down_mut() {
                    // A new receiver needs a keyframe to start.
                    for slot in &down.tracks {
                        for source in slot.track.keyframe_targets() {
                            deferred_keyframes.push(source);
                        }
                    }
                }
                for source in deferred_keyframes.drain(..) {
                    self.deferred.push_back(Deferred::Keyframe(source));
                }
                self.push_event(MediaEvent::Connected { stream: key });
            }
            Event::IceConnectionStateChange(state) => {
                let Some(peer) = self.peer_mut(id) else {
                    return;
                };
                match state {
                    IceConnectionState::Disconnected if peer.ice_down_since.is_none() => {
                        peer.ice_down_since = Some(now);
                        peer.ice_failure_reported = false;
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        peer.ice_down_since = None;
                    }
                    _ => {}
                }
            }
            Event::MediaIngressStats(report) => {
                let jitter = report.jitter;
                let sample = (report.mid, report.rid, report.bytes, report.timestamp);
                self.record_stats(id, sample, report.loss, Some(jitter), report.rtt);
            }
            Event::MediaEgressStats(report) => {
                let jitter = report.remote.as_ref().map(|r| r.jitter);
                let acked = report.remote.as_ref().map(|r| *r.maximum_sequence_number);
                let sample = (report.mid, report.rid, report.bytes, report.timestamp);
                self.record_stats(id, sample, report.loss, jitter, report.rtt);
                if let Some(acked) = acked {
                    self.on_receiver_report(now, id, (report.mid, acked), report.loss, report.rtt);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.on_estimate(id, estimate.as_u64(), false);
            }
            Event::EgressBitrateEstimate(BweKind::Remb { estimate, .. }) => {
                self.on_estimate(id, estimate.as_u64(), true);
            }
            Event::Closed => self
                .deferred
                .push_back(Deferred::Remove(id, GoneReason::RemoteClosed)),
            _ => {}
        }
    }

    /// Folds one stats report (mid, rid, byte count, time) into `id`'s track statistics.
    fn record_stats(
        &mut self,
        id: PeerId,
        (mid, rid, bytes, at): (Mid, Option<str0m::media::Rid>, u64, Instant),
        loss: Option<f32>,
        jitter: Option<u32>,
        rtt: Option<Duration>,
    ) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Some(kind) = peer.rtc.media(mid).map(|m| track_kind(m.kind())) else {
            return;
        };
        let clock = if kind == TrackKind::Audio {
            48_000.0
        } else {
            90_000.0
        };
        let mid_text = mid.to_string();
        let rid_text = rid.map(|r| r.to_string());
        let index = match peer
            .stats
            .iter()
            .position(|s| s.stats.mid == mid_text && s.stats.rid == rid_text)
        {
            Some(i) => i,
            None if peer.stats.len() < MAX_TRACK_STATS => {
                peer.stats.push(peer::StatsState {
                    stats: TrackStats {
                        kind,
                        mid: mid_text,
                        rid: rid_text,
                        bitrate: 0,
                        loss: 0.0,
                        jitter_ms: 0.0,
                        rtt_ms: None,
                        layer: None,
                    },
                    bytes,
                    at,
                });
                return;
            }
            None => return,
        };
        let entry = &mut peer.stats[index]; // index from position() on this vector
        let elapsed = at.saturating_duration_since(entry.at).as_secs_f64();
        if elapsed > 0.0 {
            let delta = bytes.saturating_sub(entry.bytes) as f64;
            entry.stats.bitrate = (delta * 8.0 / elapsed) as u64;
        }
        entry.bytes = bytes;
        entry.at = at;
        if let Some(loss) = loss {
            entry.stats.loss = f64::from(loss);
        }
        if let Some(jitter) = jitter {
            entry.stats.jitter_ms = f64::from(jitter) * 1000.0 / clock;
        }
        if let Some(rtt) = rtt {
            entry.stats.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
        }
    }

    /// The per-track statistics of stream `key` (empty until the first report, a second
    /// after media starts).
    pub fn stream_stats(&self, key: StreamKey) -> Vec<TrackStats> {
        let Some((id, peer)) = self
            .keys
            .get(&key)
            .and_then(|&id| Some((id, self.peer(id)?)))
        else {
            return Vec::new();
        };
        let mut stats: Vec<TrackStats> = peer.stats.iter().map(|s| s.stats.clone()).collect();
        if let Some(down) = peer.down() {
            for track in &mut stats {
                let index = down
                    .tracks
                    .iter()
                    .position(|t| t.mid.to_string() == track.mid);
                track.layer = index.and_then(|i| self.layer_stats(id, i));
            }
        }
        stats
    }

    /// Records the layers of a new incoming m-line.
    fn add_up_layers(&mut self, id: PeerId, mid: Mid, kind: MediaKind) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let peer_key = peer.key.0;
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        if up.layers.iter().any(|l| l.mid == mid) {
            return;
        }
        let mline = up.layers.last().map(|l| l.mline + 1).unwrap_or(0);
        let rids: Vec<Option<str0m::media::Rid>> = match rtc.media(mid).map(|m| m.rids_rx()) {
            Some(str0m::media::Rids::Specific(rids)) if !rids.is_empty() => {
                rids.iter().copied().map(Some).collect()
            }
            _ => vec![None],
        };
        for rid in rids {
            if up.layers.len() >= MAX_UP_LAYERS {
                log::debug!(
                    "stream {}: ignoring layers beyond {MAX_UP_LAYERS}",
                    peer_key
                );
                return;
            }
            up.layers.push(UpLayer {
                mid,
                mline,
                rid,
                kind,
                ssrc: None,
                epoch: 0,
                subscribers: Vec::new(),
                last_keyframe_request: None,
                payload: None,
                meter: Default::default(),
            });
        }
    }

    fn track_infos(&self, id: PeerId) -> Vec<TrackInfo> {
        let Some(up) = self.peer(id).and_then(|p| p.up()) else {
            return Vec::new();
        };
        up.layers
            .iter()
            .map(|l| TrackInfo {
                kind: track_kind(l.kind),
                mid: l.mid.to_string(),
                rid: l.rid.map(|r| r.to_string()),
            })
            .collect()
    }

    /// The table codecs negotiated on an up stream's m-lines.
    fn up_codecs(&self, id: PeerId) -> Vec<MediaCodec> {
        let mut codecs = Vec::new();
        let Some(peer) = self.peer(id) else {
            return codecs;
        };
        let Some(up) = peer.up() else {
            return codecs;
        };
        let params = peer.rtc.codec_config().params();
        for layer in &up.layers {
            let Some(media) = peer.rtc.media(layer.mid) else {
                continue;
            };
            for pt in media.remote_pts() {
                let codec = params
                    .iter()
                    .find(|p| p.pt() == *pt)
                    .and_then(|p| MediaCodec::from_str0m(p.spec().codec));
                if let Some(c) = codec
                    && !codecs.contains(&c)
                {
                    codecs.push(c);
                }
            }
        }
        codecs
    }

    // ------------------------------------------------------------------ internals: forwarding

    /// Sends one packet of an up stream to every down track attached to its layer.
    fn forward(&mut self, now: Instant, up_id: PeerId, packet: RtpPacket) {
        let Some(peer) = self.peer_mut(up_id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let index = match up.layers.iter().position(|l| l.ssrc == Some(ssrc)) {
            Some(i) => i,
            None => {
                // A new SSRC: find its layer by mid/rid once, then remember it.
                let Some((mid, rid)) = rtc
                    .direct_api()
                    .stream_rx(&ssrc)
                    .map(|s| (s.mid(), s.rid()))
                else {
                    return;
                };
                let Some(i) = up.layers.iter().position(|l| l.mid == mid && l.rid == rid) else {
                    return;
                };
                let layer = &mut up.layers[i]; // i comes from position() on the same vector
                if layer.ssrc.is_some() {
                    layer.epoch = layer.epoch.wrapping_add(1);
                }
                layer.ssrc = Some(ssrc);
                i
            }
        };
        let layer = &mut up.layers[index]; // index was found in this vector above
        let pt = packet.header.payload_type;
        if layer.payload.map(|(p, _)| p) != Some(pt) {
            let Some(params) = rtc.codec_config().params().iter().find(|p| p.pt() == pt) else {
                return;
            };
            layer.payload = Some((pt, *params));
        }
        let Some((_, params)) = layer.payload else {
            return;
        };
        let codec = params.spec().codec;
        let is_video = layer.kind == MediaKind::Video;
        let codec_meta = if is_video {
            CodecMeta::parse(codec, &packet.payload)
        } else {
            CodecMeta::Other
        };
        layer.meter.on_packet(
            packet.timestamp,
            packet.payload.len(),
            codec_meta.tid(),
            packet.header.marker,
        );
        if layer.subscribers.is_empty() {
            return;
        }
        // str0m patches VP8 descriptors on the way out; its own parse says where the fields are.
        let vp8_descriptor = match codec_meta {
            CodecMeta::Vp8(_) => str0m::rtp::Vp8Descriptor::parse(&packet.payload).ok(),
            _ => None,
        };
        let meta = PacketMeta {
            source: SourceRef {
                up: up_id,
                layer: index,
            },
            epoch: layer.epoch,
            seq: *packet.seq_no,
            ts: packet.header.timestamp,
            at: packet.timestamp,
            clock_rate: packet.time.frequency().get(),
            starts_decoding: !is_video || starts_decoding(codec, &packet.payload),
            marker: packet.header.marker,
            codec: codec_meta,
        };
        let ext_vals = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let subscribers = std::mem::take(&mut layer.subscribers);
        let mut want_keyframe = false;
        for &sub in &subscribers {
            let Some(down_peer) = peer_in(&mut self.slots, sub.down) else {
                self.deferred
                    .push_back(Deferred::Unsubscribe(meta.source, sub));
                continue;
            };
            if !down_peer.connected {
                continue;
            }
            let Peer { rtc, role, .. } = down_peer;
            let Role::Down(down) = role else {
                continue;
            };
            let Some(slot) = down.tracks.get_mut(sub.track) else {
                continue;
            };
            let (seq, ts, marker, ids) = match slot.track.on_packet(&meta) {
                Decision::Forward {
                    seq,
                    ts,
                    left,
                    marker,
                    ids,
                } => {
                    if let Some(old) = left {
                        self.deferred.push_back(Deferred::Unsubscribe(old, sub));
                    }
                    (seq, ts, marker, ids)
                }
                Decision::WaitKeyframe => {
                    want_keyframe = true;
                    continue;
                }
                Decision::Drop => {
                    // A VP9 spatial layer can only be added at a keyframe.
                    want_keyframe |= slot.track.needs_keyframe();
                    continue;
                }
            };
            let out_pt = match slot.pt_map {
                Some((from, to)) if from == pt => to,
                _ => {
                    let Some(local) = rtc.codec_config().match_params(params).map(|p| p.pt())
                    else {
                        continue;
                    };
                    slot.pt_map = Some((pt, local));
                    local
                }
            };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(slot.mid, None) else {
                continue;
            };
            let mut write = match (&meta.codec, ids) {
                // VP9 descriptors are rewritten in a copy (str0m has no patch for them).
                (CodecMeta::Vp9(_), Some(ids)) => {
                    let mut copy = packet.payload.to_vec();
                    meta.codec.write_into(&mut copy, ids);
                    RtpWrite::new(out_pt, seq.into(), ts, meta.at, copy)
                }
                _ => RtpWrite::new(out_pt, seq.into(), ts, meta.at, packet.payload.clone()),
            };
            if let (Some(descriptor), Some(ids)) = (&vp8_descriptor, ids) {
                let mut patch = descriptor.patch();
                if let Some(picture_id) = ids.picture_id {
                    patch = patch.picture_id(picture_id.value);
                }
                if let Some(tl0) = ids.tl0_pic_idx {
                    patch = patch.tl0_pic_idx(tl0);
                }
                if let Ok(patch) = patch.build() {
                    write = write.vp8_patch(patch);
                }
            }
            tx.write_rtp(
                write
                    .marker(marker)
                    .ext_vals(ext_vals.clone())
                    .nackable(is_video),
            );
            self.drain(now, sub.down);
        }
        if let Some(layer) = self
            .peer_mut(up_id)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(index))
        {
            // Nothing subscribes during a fan-out, but keep anything that did.
            let added = std::mem::replace(&mut layer.subscribers, subscribers);
            layer.subscribers.extend(added);
        }
        if want_keyframe {
            self.deferred.push_back(Deferred::Keyframe(meta.source));
        }
    }

    fn subscribe(&mut self, source: SourceRef, sub: Subscriber) {
        let Some(layer) = self
            .peer_mut(source.up)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(source.layer))
        else {
            return;
        };
        if !layer.subscribers.contains(&sub) {
            layer.subscribers.push(sub);
        }
    }

    fn unsubscribe(&mut self, source: SourceRef, sub: Subscriber) {
        // Still listening (e.g. re-selected before the deferred removal ran)?
        let still_used = self
            .peer(sub.down)
            .and_then(|p| match &p.role {
                Role::Down(d) => d.tracks.get(sub.track),
                Role::Up(_) => None,
            })
            .is_some_and(|slot| slot.track.keyframe_targets().any(|s| s == source));
        if still_used {
            return;
        }
        if let Some(layer) = self
            .peer_mut(source.up)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(source.layer))
        {
            layer.subscribers.retain(|s| *s != sub);
        }
    }

    /// Asks the publisher of `source` for a keyframe unless one was asked for recently.
    fn request_keyframe(&mut self, now: Instant, source: SourceRef) {
        let interval = self.config.keyframe_request_interval;
        let Some(peer) = self.peer_mut(source.up) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        let Some(layer) = up.layers.get_mut(source.layer) else {
            return;
        };
        if layer.kind != MediaKind::Video
            || layer
                .last_keyframe_request
                .is_some_and(|last| now < last + interval)
        {
            return;
        }
        let mut api = rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(layer.mid, layer.rid) else {
            return; // nothing received yet on that layer
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        layer.last_keyframe_request = Some(now);
        self.drain(now, source.up);
    }

    fn run_deferred(&mut self, now: Instant) {
        loop {
            let Some(work) = self.deferred.pop_front() else {
                if self.dirty_links.is_empty() {
                    return;
                }
                // Layer choices may request keyframes and subscribe: deferred work again.
                self.adapt_dirty_links(now);
                continue;
            };
            match work {
                Deferred::Keyframe(source) => self.request_keyframe(now, source),
                Deferred::KeyframeForTrack { down, mid } => {
                    let targets: heapless::Vec<SourceRef, 2> = self
                        .peer(down)
                        .and_then(|p| match &p.role {
                            Role::Down(d) => d.tracks.iter().find(|t| t.mid == mid),
                            Role::Up(_) => None,
                        })
                        .map(|slot| slot.track.keyframe_targets().collect())
                        .unwrap_or_default();
                    for source in targets {
                        self.request_keyframe(now, source);
                    }
                }
                Deferred::Unsubscribe(source, sub) => self.unsubscribe(source, sub),
                Deferred::Remove(id, reason) => self.remove_peer(id, Some(reason)),
            }
        }
    }

    // ------------------------------------------------------------------ internals: routing

    fn learn_route(&mut self, source: SocketAddr, id: PeerId) {
        if self.routes.get(&source) == Some(&id) {
            return;
        }
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut evicted = None;
        if peer.addrs.len() >= MAX_ADDRS_PER_PEER {
            evicted = Some(peer.addrs.remove(0)); // full (and the capacity is > 0): index 0 exists
        }
        // Cannot fail: there is room now.
        let _ = peer.addrs.push(source);
        if let Some(old) = evicted
            && self.routes.get(&old) == Some(&id)
        {
            self.routes.remove(&old);
        }
        self.routes.insert(source, id);
    }

    /// Keeps the ufrag map in step with the `Rtc`'s ICE credentials (they change on restarts).
    fn refresh_ufrag(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag == peer.ufrag {
            return;
        }
        let old = std::mem::replace(&mut peer.ufrag, ufrag.clone());
        if self.ufrags.get(&old) == Some(&id) {
            self.ufrags.remove(&old);
        }
        self.ufrags.insert(ufrag, id);
    }

    /// The remote description is known: add the candidates that came early.
    fn remote_description_set(&mut self, now: Instant, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        peer.has_remote_description = true;
        let early = std::mem::take(&mut peer.early_candidates);
        for candidate in early {
            let Some(peer) = self.peer_mut(id) else {
                return;
            };
            peer.rtc.add_remote_candidate(candidate);
            self.drain(now, id);
        }
    }

    // ------------------------------------------------------------------ internals: down SDP

    /// Sizes the NACK history of newly negotiated video tracks.
    fn configure_nack_history(&mut self, now: Instant, id: PeerId) {
        let packets = self.config.video_nack_packets;
        let age = self.config.video_nack_age;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return;
        };
        let mut changed = false;
        for slot in &mut down.tracks {
            if slot.nack_configured || slot.track.kind != MediaKind::Video {
                continue;
            }
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(slot.mid, None) {
                tx.set_rtx_cache(packets, age, Some(0.15));
                slot.nack_configured = true;
                changed = true;
            }
        }
        if changed {
            self.drain(now, id);
        }
    }

    /// Brings down stream `id` in line with `selection` (if given) and restarts ICE if asked,
    /// in one offer. Returns the offer if the SDP changed.
    fn renegotiate_down(
        &mut self,
        now: Instant,
        id: PeerId,
        selection: Option<Selection>,
        ice_restart: bool,
    ) -> Result<Option<String>, MediaError> {
        let source = match self.peer(id).map(|p| &p.role) {
            Some(Role::Down(d)) => d.source,
            _ => return Ok(None),
        };
        // What the selection maps to on the source, and the msid of those m-lines.
        let mut wanted: [WantedTrack; 2] = [
            (MediaKind::Audio, None, None),
            (MediaKind::Video, None, None),
        ];
        if let Some(sel) = selection
            && let Some(up_peer) = self.peer(source)
            && let Some(up) = up_peer.up()
        {
            let shapes = up.layers.iter().map(|l| LayerShape {
                kind: l.kind,
                mline: l.mline,
                rid: l.rid.as_ref(),
            });
            if sel.audio {
                wanted[0].1 = choose_layer(shapes.clone(), MediaKind::Audio, VideoChoice::None);
            }
            wanted[1].1 = choose_layer(shapes, MediaKind::Video, sel.video);
            for w in &mut wanted {
                w.2 =
                    w.1.and_then(|i| up.layers.get(i))
                        .and_then(|l| up_peer.rtc.media(l.mid))
                        .map(|m| (m.stream_id().to_string(), m.track_id().to_string()));
            }
        }
        let Some(peer) = self.peer_mut(id) else {
            return Ok(None);
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return Ok(None);
        };
        let mut subscribe: Vec<(SourceRef, usize)> = Vec::new();
        let mut unsubscribe: Vec<(SourceRef, usize)> = Vec::new();
        let offer = guarded(|| {
            let mut api = rtc.sdp_api();
            if let Some(sel) = selection {
                down.selection = sel;
                for (kind, layer, msid) in wanted {
                    let want = layer.map(|layer| SourceRef { up: source, layer });
                    match down.tracks.iter().position(|t| t.track.kind == kind) {
                        Some(i) => {
                            let slot = &mut down.tracks[i]; // i from position() on this vector
                            slot.wanted = layer;
                            for old in slot.track.select(want) {
                                unsubscribe.push((old, i));
                            }
                            if let Some(s) = want {
                                subscribe.push((s, i));
                                if !slot.active {
                                    api.set_direction(slot.mid, Direction::SendOnly);
                                    slot.active = true;
                                }
                            } else if slot.active {
                                api.set_direction(slot.mid, Direction::Inactive);
                                slot.active = false;
                            }
                        }
                        None => {
                            let Some(s) = want else {
                                continue;
                            };
                            let (stream_id, track_id) = msid.unzip();
                            let mid =
                                api.add_media(kind, Direction::SendOnly, stream_id, track_id, None);
                            subscribe.push((s, down.tracks.len()));
                            down.tracks.push(DownSlot {
                                mid,
                                active: true,
                                track: DownTrack::new(kind, Some(s)),
                                pt_map: None,
                                nack_configured: false,
                                wanted: layer,
                                policy: TrackPolicy::default(),
                                choice: None,
                                reduced: false,
                                max_bitrate: None,
                                ceiling: None,
                            });
                        }
                    }
                }
            }
            if ice_restart {
                api.ice_restart(true);
            }
            if !api.has_changes() {
                return None;
            }
            let (offer, pending) = api.apply()?;
            down.pending_offer = Some(pending);
            Some(offer.to_sdp_string())
        });
        let connected = peer_connected(&self.slots, id);
        for (source, track) in subscribe {
            self.subscribe(source, Subscriber { down: id, track });
            if connected {
                self.deferred.push_back(Deferred::Keyframe(source));
            }
        }
        for (source, track) in unsubscribe {
            self.unsubscribe(source, Subscriber { down: id, track });
        }
        if ice_restart && let Some(peer) = self.peer_mut(id) {
            peer.ice_down_since = None;
            peer.ice_failure_reported = false;
        }
        if selection.is_some()
            && let Some(link) = self.peer(id).and_then(|p| p.down()).map(|d| d.link)
        {
            self.link_changed(link);
        }
        match offer {
            Ok(offer) => {
                self.drain(now, id);
                self.refresh_ufrag(id);
                Ok(offer)
            }
            Err(e) => {
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
                Err(e)
            }
        }
    }
}

/// The live peer `id` in `slots` (a free function so callers can borrow other fields too).
fn peer_in(slots: &mut [Slot], id: PeerId) -> Option<&mut Peer> {
    let slot = slots.get_mut(id.index())?;
    if slot.generation != id.generation() {
        return None;
    }
    slot.peer.as_deref_mut()
}

/// For one kind: the chosen layer of the source and the msid (stream id, track id) of its
/// m-line, to mirror on the down m-line.
type WantedTrack = (MediaKind, Option<usize>, Option<(String, String)>);

fn peer_connected(slots: &[Slot], id: PeerId) -> bool {
    slots
        .get(id.index())
        .filter(|s| s.generation == id.generation())
        .and_then(|s| s.peer.as_ref())
        .is_some_and(|p| p.connected)
}
