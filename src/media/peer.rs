//! One `Rtc` and what the SFU knows about it: its role (publishing or subscribing), its
//! layers or tracks, its routing entries and its deadline; and the slots of the peer table
//! that hold the peers, with the lookups that need only the table.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Candidate;
use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;

use super::allocate::{Choice, TrackPolicy};
use super::forward::{DownTrack, Selection};
use super::ids::{LinkKey, PeerId, StreamKey, Subscriber};
use super::meter::LayerMeter;
use super::types::TrackStats;

/// Per-peer routing entries kept at most (older ones are evicted from the address map).
pub(crate) const MAX_ADDRS_PER_PEER: usize = 4;
/// Remote candidates buffered before the remote description is known.
pub(crate) const MAX_BUFFERED_CANDIDATES: usize = 32;
/// Incoming layers kept per up stream (m-lines × simulcast rids); more are ignored.
pub(crate) const MAX_UP_LAYERS: usize = 16;
/// Tracks with statistics kept per stream, at most.
pub(crate) const MAX_TRACK_STATS: usize = MAX_UP_LAYERS;
/// Packets held for `Sfu::poll_sink_packet` before the oldest are dropped. The caller drains
/// after every input, so this only bounds a caller that does not.
pub(crate) const MAX_QUEUED_SINK_PACKETS: usize = 4096;
/// Tracks a local sink takes at most: one audio, one video.
pub(crate) const MAX_SINK_TRACKS: usize = 2;

/// One local sink (`Sfu::attach_sink`): the up stream it listens to and, per track, the layer
/// feeding it.
#[derive(Debug)]
pub(crate) struct LocalSink {
    /// The up stream's peer.
    pub source: PeerId,
    /// Per track (the index is the track's number), the layer of `source` feeding it.
    pub layers: heapless::Vec<usize, MAX_SINK_TRACKS>,
}

/// One entry of the peer table: a peer, or a free slot, and the generation that tells a
/// current [`PeerId`] from a stale one.
pub(crate) struct Slot {
    /// Incremented each time the slot's peer is removed.
    pub generation: u32,
    /// The live peer, if any.
    pub peer: Option<Box<Peer>>,
}

/// One stream = one `Rtc`.
pub(crate) struct Peer {
    /// The caller's name for the stream.
    pub key: StreamKey,
    /// The WebRTC engine of this stream.
    pub rtc: Rtc,
    /// Publishing or subscribing state.
    pub role: Role,
    /// The `Rtc`'s own next timeout.
    pub rtc_deadline: Instant,
    /// The deadline in the timer heap: `rtc_deadline` folded with the ICE failure check.
    pub deadline: Option<Instant>,
    /// DTLS is up (media can flow).
    pub connected: bool,
    /// Since when ICE is disconnected, and whether the failure was reported.
    pub ice_down_since: Option<Instant>,
    /// The failure of the current disconnection was reported.
    pub ice_failure_reported: bool,
    /// Our ICE ufrag, as registered in the ufrag map.
    pub ufrag: String,
    /// Remote addresses routed to this peer (oldest first).
    pub addrs: heapless::Vec<SocketAddr, MAX_ADDRS_PER_PEER>,
    /// Remote candidates received before the remote description.
    pub early_candidates: Vec<Candidate>,
    /// The remote description is set (candidates can be added directly).
    pub has_remote_description: bool,
    /// Statistics per track (bounded by the caller).
    pub stats: Vec<StatsState>,
}

/// One track's statistics and the last report they were computed from.
pub(crate) struct StatsState {
    /// What is shown.
    pub stats: TrackStats,
    /// Byte count of the last report.
    pub bytes: u64,
    /// Time of the last report.
    pub at: Instant,
}

/// What a peer does.
pub(crate) enum Role {
    /// It receives a publisher's media.
    Up(UpState),
    /// It sends media from an up stream to a receiver (boxed: much larger than an up role).
    Down(Box<DownState>),
}

/// A publishing stream.
#[derive(Default)]
pub(crate) struct UpState {
    /// One entry per incoming layer: per m-line, per simulcast rid.
    pub layers: Vec<UpLayer>,
    /// The last rate limit sent to the publisher (REMB), bits per second.
    pub remb: Option<u64>,
    /// When the stream was created.
    pub created: Option<Instant>,
    /// Consecutive rounds in which a rate limit was wanted.
    pub limit_rounds: u8,
}

/// One incoming encoding: an m-line, or one simulcast rid of it.
pub(crate) struct UpLayer {
    /// The m-line.
    pub mid: Mid,
    /// Index of the m-line among this stream's m-lines.
    pub mline: usize,
    /// Simulcast rid.
    pub rid: Option<Rid>,
    /// Audio or video.
    pub kind: MediaKind,
    /// The SSRC seen for this layer.
    pub ssrc: Option<Ssrc>,
    /// Incremented when the SSRC changes (the publisher restarted the encoding).
    pub epoch: u32,
    /// Down tracks fed from this layer.
    pub subscribers: Vec<Subscriber>,
    /// Local sinks fed from this layer: the sink's key and the index of its track.
    pub sinks: Vec<(StreamKey, u8)>,
    /// The last keyframe request sent to the publisher for this layer.
    pub last_keyframe_request: Option<Instant>,
    /// The payload type last seen and its parameters.
    pub payload: Option<(Pt, PayloadParams)>,
    /// Its rate, per temporal layer, and whether it is arriving.
    pub meter: LayerMeter,
}

/// A subscribing stream.
pub(crate) struct DownState {
    /// The subscriber's link: every down stream of one subscriber shares its budget.
    pub link: LinkKey,
    /// The bandwidth estimate of this stream's own path (TWCC), bits per second.
    pub estimate: Option<u64>,
    /// The receiver's own estimate (REMB), bits per second.
    pub remb: Option<u64>,
    /// The `desired` rate last given to the estimator.
    pub desired: u64,
    /// When the stream was created (its estimate is not trusted at first).
    pub created: Instant,
    /// The lowest round-trip time the receiver's reports gave.
    pub min_rtt: Option<Duration>,
    /// When the receiver's reports last showed congestion (loss or a queue building).
    pub congested_at: Option<Instant>,
    /// When they last showed sustained loss (a queue overflowing, not only filling).
    pub losing_at: Option<Instant>,
    /// The most the stream sent in any report's period since `carried_peak_at`, bits per
    /// second (see [`super::adapt`]'s `PEAK_HOLD`).
    pub carried_peak: u64,
    /// When `carried_peak` was taken.
    pub carried_peak_at: Option<Instant>,
    /// When a trial's padding last met congestion on this stream.
    pub trial_failed_at: Option<Instant>,
    /// The rate this stream is held to while congested, and when it was set.
    pub congestion_cap: Option<(Instant, u64)>,
    /// The padding floor last given to the estimator (an upgrade on trial).
    pub probing: u64,
    /// When the estimator is next asked for a probe, while the tracks are held below their
    /// best (see [`super::adapt`]'s `RECOVERY_PROBE_INTERVAL`).
    pub next_recovery_probe: Option<Instant>,
    /// The desired rate is lowered until then, to ask for that probe when it rises again.
    pub recovery_dip_until: Option<Instant>,
    /// The estimate when the last of those probes was asked for, bits per second.
    pub recovery_probe_base: u64,
    /// Per m-line, the last fresh receiver report.
    pub reports: heapless::Vec<LastReport, 4>,
    /// Whether the last fresh receiver report showed loss above the congestion threshold.
    pub last_report_lossy: bool,
    /// Whether the estimate, after the start-up grace, has once reached what the stream
    /// carries: until then it is still finding the path, and clean receiver reports vouch
    /// for what the link carries (see `Sfu::link_proven`).
    pub estimate_caught_up: bool,
    /// The up stream it forwards from (`None`: a receiver-negotiated stream that has not
    /// been given one yet).
    pub source: Option<PeerId>,
    /// The receiver negotiated the m-lines with its own offer ([`super::Sfu::answer_down`]):
    /// they never change, and sources are attached and swapped without an offer.
    pub answered: bool,
    /// What the receiver asked for.
    pub selection: Selection,
    /// One per m-line we offered.
    pub tracks: Vec<DownSlot>,
    /// Our offer waiting for its answer.
    pub pending_offer: Option<SdpPendingOffer>,
    /// A selection to apply once the answer is in.
    pub queued_selection: Option<Selection>,
    /// An ICE restart to offer once the answer is in.
    pub queued_ice_restart: bool,
}

impl DownState {
    /// A new down stream on `link`, fed by `source` (`None` for one its receiver negotiated,
    /// which gets its source later) with `selection`; no tracks, estimates or reports yet.
    pub(crate) fn new(
        now: Instant,
        link: LinkKey,
        source: Option<PeerId>,
        answered: bool,
        selection: Selection,
    ) -> DownState {
        DownState {
            link,
            estimate: None,
            remb: None,
            desired: 0,
            created: now,
            min_rtt: None,
            congested_at: None,
            losing_at: None,
            congestion_cap: None,
            trial_failed_at: None,
            carried_peak: 0,
            carried_peak_at: None,
            probing: 0,
            next_recovery_probe: None,
            recovery_dip_until: None,
            recovery_probe_base: 0,
            reports: heapless::Vec::new(),
            last_report_lossy: false,
            estimate_caught_up: false,
            source,
            answered,
            selection,
            tracks: Vec::new(),
            pending_offer: None,
            queued_selection: None,
            queued_ice_restart: false,
        }
    }
}

/// What the last receiver report of one m-line of a down stream said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastReport {
    /// The m-line.
    pub mid: Mid,
    /// The highest sequence number it acknowledged (a stats event repeats the last report
    /// when no new one came: the same number again).
    pub acked: u64,
    /// Its round-trip time.
    pub rtt: Option<Duration>,
    /// The fraction of packets it said were lost.
    pub loss: Option<f32>,
    /// When it came.
    pub at: Instant,
}

/// One m-line of a down stream.
pub(crate) struct DownSlot {
    /// The m-line.
    pub mid: Mid,
    /// Whether the m-line is currently negotiated as sending.
    pub active: bool,
    /// Forwarding state.
    pub track: DownTrack,
    /// Incoming payload type and the outgoing one it maps to.
    pub pt_map: Option<(Pt, Pt)>,
    /// The NACK history of this m-line's send stream has been sized.
    pub nack_configured: bool,
    /// The up layer the receiver's selection names (the best this track may get).
    pub wanted: Option<usize>,
    /// What the downlink adaptation remembers about this track.
    pub policy: TrackPolicy,
    /// The layer and temporal layers chosen for it, with its spatial rank among the layers
    /// of its m-line (for stats: Galène's `sid`, `tid`).
    pub choice: Option<Choice>,
    /// Received below the best layer because the link does not carry more.
    pub reduced: bool,
    /// The budget this track may use, bits per second (Galène's `maxBitrate`).
    pub max_bitrate: Option<u64>,
    /// The best up layer the link could carry (what to ask the publisher for).
    pub ceiling: Option<usize>,
}

impl Peer {
    /// What it sent (or received) over the last stats period, all tracks, bits per second.
    pub(crate) fn carried(&self) -> u64 {
        self.stats.iter().map(|s| s.stats.bitrate).sum()
    }

    /// The role as a down stream.
    pub(crate) fn down_mut(&mut self) -> Option<&mut DownState> {
        match &mut self.role {
            Role::Down(d) => Some(d),
            Role::Up(_) => None,
        }
    }

    /// The role as a down stream.
    pub(crate) fn down(&self) -> Option<&DownState> {
        match &self.role {
            Role::Down(d) => Some(d),
            Role::Up(_) => None,
        }
    }

    /// The role as an up stream.
    pub(crate) fn up(&self) -> Option<&UpState> {
        match &self.role {
            Role::Up(u) => Some(u),
            Role::Down(_) => None,
        }
    }

    /// The role as an up stream, mutable.
    pub(crate) fn up_mut(&mut self) -> Option<&mut UpState> {
        match &mut self.role {
            Role::Up(u) => Some(u),
            Role::Down(_) => None,
        }
    }
}

/// The live peer `id` in `slots` (a free function so callers can borrow other fields too).
pub(crate) fn peer_in(slots: &mut [Slot], id: PeerId) -> Option<&mut Peer> {
    let slot = slots.get_mut(id.index())?;
    if slot.generation != id.generation() {
        return None;
    }
    slot.peer.as_deref_mut()
}

/// Whether the live peer `id` in `slots` is connected (DTLS up).
pub(crate) fn peer_connected(slots: &[Slot], id: PeerId) -> bool {
    slots
        .get(id.index())
        .filter(|s| s.generation == id.generation())
        .and_then(|s| s.peer.as_ref())
        .is_some_and(|p| p.connected)
}

/// The deadline a live peer has in the timer heap (entries that differ are stale).
pub(crate) fn scheduled(slots: &[Slot], id: PeerId) -> Option<Instant> {
    let slot = slots.get(id.index())?;
    if slot.generation != id.generation() {
        return None;
    }
    slot.peer.as_ref()?.deadline
}
