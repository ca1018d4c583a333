//! Test support shared by the engine's simulation ([`crate::media::sim`]), the integration
//! tests (`tests/media_wire.rs`) and the load generator (`benches/loadgen/`): one str0m test
//! peer, [`TestPeer`]. Not part of sfubox's interface.
//!
//! A [`TestPeer`] is a browser stand-in: one str0m `Rtc` (one PeerConnection) in RTP mode with
//! a host candidate. It makes offers to publish, accepts answers, answers offers, takes
//! datagrams and timeouts in, hands out what str0m wants sent and what happened
//! ([`TestPeer::poll`]), writes RTP ([`TestPeer::write_rtp`]) and counts the RTP that arrives.
//! It owns no socket and reads no clock: each user moves datagrams its own way (the simulation
//! through its in-memory links on a fake clock, the integration tests and the load generator
//! through UDP sockets in real time, the load generator with its emulated bottlenecks and
//! pacing) and keeps its own payload formats and accounting on top.
//!
//! Why a module of the library and not a crate of its own: the simulation is library code
//! (`media::sim`, used by the engine's unit tests and by `benches/forward.rs`), and library
//! code cannot use a dev-dependency; a separate crate would have to become a normal
//! dependency of sfubox. As a module it adds nothing to the product: nothing the `sfubox`
//! binary runs refers to it, so the linker drops it (the stripped release binary is the same
//! size with and without it). `#[doc(hidden)]` keeps it out of the documentation.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Why a [`TestPeer`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// An offer was asked for with nothing in it.
    NothingToOffer,
    /// An answer came with no offer of ours pending.
    NoPendingOffer,
    /// SDP that str0m could not parse.
    BadSdp(String),
    /// str0m refused the offer or answer.
    Negotiation(String),
    /// str0m refused the address as a host candidate.
    Candidate(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::NothingToOffer => f.write_str("nothing to offer"),
            PeerError::NoPendingOffer => f.write_str("no pending offer"),
            PeerError::BadSdp(e) => write!(f, "bad SDP: {e}"),
            PeerError::Negotiation(e) => write!(f, "negotiation: {e}"),
            PeerError::Candidate(e) => write!(f, "candidate: {e}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// How test peers are built; one per test world, cloned into every peer.
#[derive(Clone)]
pub struct PeerConfig {
    /// The crypto provider (str0m's, from its feature flags).
    pub crypto: Arc<CryptoProvider>,
    /// One DTLS certificate for every peer (generating one per peer is slow), or a fresh one
    /// each.
    pub cert: Option<DtlsCert>,
    /// How often str0m reports media statistics (`None`: never).
    pub stats_interval: Option<Duration>,
}

impl PeerConfig {
    /// str0m's crypto provider, a certificate per peer, no statistics.
    pub fn new() -> PeerConfig {
        PeerConfig {
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            cert: None,
            stats_interval: None,
        }
    }

    /// Generates one certificate all peers share. `None` if the provider cannot.
    pub fn with_shared_cert(mut self) -> Option<PeerConfig> {
        self.cert = Some(self.crypto.dtls_provider.generate_certificate()?);
        Some(self)
    }
}

impl Default for PeerConfig {
    fn default() -> PeerConfig {
        PeerConfig::new()
    }
}

/// What an offer to publish contained.
#[derive(Debug, Clone)]
pub struct Offered {
    /// The offer.
    pub sdp: String,
    /// The audio m-line, if any.
    pub audio: Option<Mid>,
    /// The video m-line, if any.
    pub video: Option<Mid>,
}

/// One RTP packet that arrived, with the m-line it arrived on.
#[derive(Debug)]
pub struct ReceivedRtp {
    /// The m-line of the receiving stream (`None`: a stream str0m does not map to one).
    pub mid: Option<Mid>,
    /// Audio or video, from the m-line.
    pub kind: Option<MediaKind>,
    /// The packet.
    pub packet: Box<RtpPacket>,
}

/// What [`TestPeer::poll`] hands out.
#[derive(Debug)]
pub enum PeerOutput {
    /// A datagram to send.
    Transmit(Transmit),
    /// An RTP packet arrived (already counted in [`TestPeer::rtp_received`]).
    Rtp(ReceivedRtp),
    /// Any other event (`Connected` has already set [`TestPeer::connected`]).
    Event(Event),
}

/// A browser stand-in: one str0m `Rtc` in RTP mode with a host candidate.
pub struct TestPeer {
    /// The PeerConnection.
    pub rtc: Rtc,
    /// Its address (the host candidate's).
    pub addr: SocketAddr,
    /// When str0m wants [`TestPeer::handle_timeout`] next.
    pub deadline: Instant,
    /// ICE and DTLS are up.
    pub connected: bool,
    /// RTP packets received.
    pub rtp_received: u64,
    /// The last error str0m's `poll_output` returned (the `Rtc` is then dead).
    pub failed: Option<String>,
    /// The latest time given to str0m: inputs never go back in time.
    last_input: Instant,
    pending: Option<SdpPendingOffer>,
}

impl TestPeer {
    /// A peer at `addr` with its host candidate, starting at `now`.
    pub fn new(addr: SocketAddr, now: Instant, config: &PeerConfig) -> Result<TestPeer, PeerError> {
        let mut peer = TestPeer::without_candidate(addr, now, config);
        peer.add_host_candidate()?;
        Ok(peer)
    }

    /// A peer at `addr` without a local candidate yet (see [`TestPeer::add_host_candidate`]).
    pub fn without_candidate(addr: SocketAddr, now: Instant, config: &PeerConfig) -> TestPeer {
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .set_crypto_provider(config.crypto.clone())
            .set_stats_interval(config.stats_interval);
        if let Some(cert) = &config.cert {
            builder = builder.set_dtls_cert(cert.clone());
        }
        TestPeer {
            rtc: builder.build(now),
            addr,
            deadline: now,
            connected: false,
            rtp_received: 0,
            failed: None,
            last_input: now,
            pending: None,
        }
    }

    /// Adds the peer's address as its host candidate.
    pub fn add_host_candidate(&mut self) -> Result<(), PeerError> {
        let candidate =
            Candidate::host(self.addr, "udp").map_err(|e| PeerError::Candidate(e.to_string()))?;
        self.rtc.add_local_candidate(candidate);
        Ok(())
    }

    /// The host candidate as an SDP candidate line, for trickling.
    pub fn candidate_line(&self) -> String {
        format!(
            "candidate:1 1 udp 2130706431 {} {} typ host",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Adds a remote candidate given as an SDP candidate line; says whether it parsed.
    pub fn add_remote_candidate(&mut self, line: &str) -> bool {
        match Candidate::from_sdp_string(line) {
            Ok(c) => {
                self.rtc.add_remote_candidate(c);
                true
            }
            Err(_) => false,
        }
    }

    /// An offer to publish audio and/or video (video simulcast with `rids`, best first), kept
    /// pending for [`TestPeer::accept_answer`].
    pub fn publish_offer(
        &mut self,
        audio: bool,
        video: bool,
        rids: &[&str],
    ) -> Result<Offered, PeerError> {
        let mut api = self.rtc.sdp_api();
        let audio =
            audio.then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        let simulcast = (!rids.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for rid in rids {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let video = video
            .then(|| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast));
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(Offered {
            sdp: offer.to_sdp_string(),
            audio,
            video,
        })
    }

    /// An offer to receive audio and/or video (as a WHEP client makes), kept pending for
    /// [`TestPeer::accept_answer`].
    pub fn receive_offer(&mut self, audio: bool, video: bool) -> Result<Offered, PeerError> {
        let mut api = self.rtc.sdp_api();
        let audio =
            audio.then(|| api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None));
        let video =
            video.then(|| api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None));
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(Offered {
            sdp: offer.to_sdp_string(),
            audio,
            video,
        })
    }

    /// An offer that restarts ICE (new credentials), kept pending for
    /// [`TestPeer::accept_answer`].
    pub fn ice_restart_offer(&mut self) -> Result<String, PeerError> {
        let mut api = self.rtc.sdp_api();
        api.ice_restart(false);
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// Applies the answer to our pending offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), PeerError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        let pending = self.pending.take().ok_or(PeerError::NoPendingOffer)?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| PeerError::Negotiation(e.to_string()))
    }

    /// Answers a remote offer.
    pub fn answer_offer(&mut self, sdp: &str) -> Result<String, PeerError> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| PeerError::Negotiation(e.to_string()))?;
        Ok(answer.to_sdp_string())
    }

    /// Hands str0m a datagram from `from` that arrived at `at`; says whether str0m took it.
    /// Call [`TestPeer::poll`] afterwards.
    pub fn receive(&mut self, at: Instant, from: SocketAddr, data: &[u8]) -> bool {
        let at = self.input_time(at);
        match Receive::new(Protocol::Udp, from, self.addr, data) {
            Ok(receive) => self.rtc.handle_input(Input::Receive(at, receive)).is_ok(),
            Err(_) => false,
        }
    }

    /// Runs str0m's timers at `now`. Call [`TestPeer::poll`] afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.input_time(now);
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// Runs str0m's timers if they are due at `now`; says whether they were.
    pub fn timeout_due(&mut self, now: Instant) -> bool {
        let due = now >= self.deadline;
        if due {
            self.handle_timeout(now);
        }
        due
    }

    /// `at`, or the latest input time if `at` is earlier.
    fn input_time(&mut self, at: Instant) -> Instant {
        let at = at.max(self.last_input);
        self.last_input = at;
        at
    }

    /// The next thing str0m has for us; `None` once it asks for a timeout (then in
    /// [`TestPeer::deadline`]) or fails (then in [`TestPeer::failed`]). Drain it after every
    /// input: `while let Some(out) = peer.poll() { … }`.
    pub fn poll(&mut self) -> Option<PeerOutput> {
        let event = match self.rtc.poll_output() {
            Ok(Output::Timeout(at)) => {
                self.deadline = at;
                return None;
            }
            Ok(Output::Transmit(t)) => return Some(PeerOutput::Transmit(t)),
            Ok(Output::Event(e)) => e,
            Err(e) => {
                self.failed = Some(e.to_string());
                return None;
            }
        };
        Some(match event {
            Event::RtpPacket(packet) => {
                self.rtp_received += 1;
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&packet.header.ssrc)
                    .map(|s| s.mid());
                let kind = mid.and_then(|mid| self.rtc.media(mid)).map(|m| m.kind());
                PeerOutput::Rtp(ReceivedRtp { mid, kind, packet })
            }
            event => {
                if matches!(event, Event::Connected) {
                    self.connected = true;
                }
                PeerOutput::Event(event)
            }
        })
    }

    /// The payload type negotiated for `codec`, if any.
    pub fn payload_type(&mut self, codec: Codec) -> Option<Pt> {
        self.rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
    }

    /// Writes one RTP packet of `codec` on `mid` (and simulcast `rid`): video is kept for
    /// retransmission, audio is not. Says whether it was written (false before negotiation).
    /// Call [`TestPeer::poll`] afterwards.
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp(
        &mut self,
        codec: Codec,
        mid: Mid,
        rid: Option<Rid>,
        seq: u64,
        ts: u32,
        now: Instant,
        marker: bool,
        payload: Vec<u8>,
    ) -> bool {
        let Some(pt) = self.payload_type(codec) else {
            return false;
        };
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, rid) else {
            return false;
        };
        let video = codec.is_video();
        tx.write_rtp(
            RtpWrite::new(pt, seq.into(), ts, now, payload)
                .marker(marker)
                .nackable(video),
        );
        true
    }
}

/// The two bytes every simple fake VP8 payload starts with: the payload descriptor (S bit on
/// a frame's first packet, no extensions) and the VP8 header's first byte (P bit clear on
/// keyframes). `payload` must hold at least two bytes (shorter ones are left alone).
pub fn write_vp8_start(payload: &mut [u8], first_packet: bool, keyframe: bool) {
    if let [descriptor, header, ..] = payload {
        *descriptor = if first_packet { 0x10 } else { 0x00 };
        *header = if keyframe { 0x00 } else { 0x01 };
    }
}
