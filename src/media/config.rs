//! Settings: what the caller may tune ([`SfuConfig`]) and the str0m configuration every stream
//! starts from ([`stream_rtc_config`], [`sending_extensions`]).

use std::net::SocketAddr;
use std::time::Duration;

use str0m::media::Direction;
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Rtc, RtcConfig};

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
