//! The engine's public values: what it hands its caller ([`Transmit`], [`MediaEvent`]), why it
//! refuses something ([`MediaError`]), and what it reports ([`TrackStats`], [`LayerStats`],
//! [`MediaCounts`]).

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use str0m::change::SdpOffer;
use str0m::media::MediaKind;

use super::codecs::MediaCodec;
use super::ids::StreamKey;

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

/// Parses a peer's offer for a stream that carries media one way only: a `sendrecv` m-line
/// is read as `peer_side` (`a=sendonly` for a publisher, `a=recvonly` for a viewer).
pub(crate) fn parse_one_way_offer(offer: &str, peer_side: &str) -> Result<SdpOffer, MediaError> {
    let offer = if offer.contains("a=sendrecv") {
        Cow::Owned(offer.replace("a=sendrecv", peer_side))
    } else {
        Cow::Borrowed(offer)
    };
    SdpOffer::from_sdp_string(&offer).map_err(|e| MediaError::BadSdp(e.to_string()))
}

/// The public name of a str0m media kind.
pub(crate) fn track_kind(kind: MediaKind) -> TrackKind {
    match kind {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
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

/// One track of a local sink ([`Sfu::attach_sink`](super::Sfu::attach_sink)): which incoming
/// layer feeds it and the codec negotiated for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkTrack {
    /// Audio or video.
    pub kind: TrackKind,
    /// The m-line's mid.
    pub mid: String,
    /// The simulcast rid of the layer, if any.
    pub rid: Option<String>,
    /// The first codec of the table negotiated on that m-line, if any ([`SinkPacket::codec`]
    /// says what each packet really carries).
    pub codec: Option<MediaCodec>,
}

/// The publisher's clock at one instant, from its last RTCP sender report: the wall-clock
/// (NTP) time and the RTP timestamp of the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    /// The sender's wall-clock time.
    pub ntp: SystemTime,
    /// The RTP timestamp (low 32 bits) at that time.
    pub rtp: u32,
}

/// One RTP packet of an up layer delivered to a local sink: what a recorder (or any
/// in-process receiver without an `Rtc`) gets. The payload is the publisher's, shared.
#[derive(Debug, Clone)]
pub struct SinkPacket {
    /// The sink.
    pub sink: StreamKey,
    /// The index of the sink's track (in the order [`Sfu::attach_sink`] returned them).
    ///
    /// [`Sfu::attach_sink`]: super::Sfu::attach_sink
    pub track: u8,
    /// The codec of the payload type, if the table knows it.
    pub codec: Option<MediaCodec>,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Changes when the publisher restarts the layer (a new SSRC): numbering starts over.
    pub epoch: u32,
    /// Extended sequence number.
    pub seq: u64,
    /// Extended RTP timestamp.
    pub time: u64,
    /// The RTP marker bit.
    pub marker: bool,
    /// The payload (no RTP header).
    pub payload: Arc<[u8]>,
    /// When the datagram arrived.
    pub arrival: Instant,
    /// The publisher's clock from its last sender report on this layer, if one came.
    pub sender_clock: Option<SenderClock>,
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

/// Stats of a down track's layer choice (Galène's `sid`/`tid`/`maxSid`/`maxTid` and
/// `maxBitrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    /// Spatial rank of the layer forwarded among the layers of its m-line (0 = lowest).
    pub sid: u8,
    /// Highest spatial rank available.
    pub max_sid: u8,
    /// Highest temporal layer forwarded.
    pub tid: u8,
    /// Highest temporal layer the layer has.
    pub max_tid: u8,
    /// The budget of this track, bits per second.
    pub max_bitrate: Option<u64>,
    /// Received below the best layer because of the subscriber's network.
    pub reduced: bool,
}

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
    ///
    /// [`Sfu::restart_ice`]: super::Sfu::restart_ice
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
    /// The down stream was negotiated by its receiver's offer: the server cannot offer on it.
    ReceiverNegotiated(StreamKey),
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
            MediaError::ReceiverNegotiated(k) => {
                write!(f, "stream {} is negotiated by its receiver", k.0)
            }
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
    /// Datagrams waiting in [`Sfu::poll_transmit`](super::Sfu::poll_transmit).
    pub queued_transmits: usize,
    /// Datagrams dropped because the queue was full.
    pub dropped_transmits: u64,
    /// Local sinks.
    pub sinks: usize,
    /// Packets for local sinks dropped because their queue was full.
    pub dropped_sink_packets: u64,
}
