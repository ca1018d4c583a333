//! One emulated browser PeerConnection (a str0m `Rtc` on its own UDP socket), the synthetic
//! camera that feeds a publishing peer, and the receive-side accounting of a subscribing one.
//!
//! Nothing is encoded or decoded. Every payload carries a trailer at [`MARK_AT`]: the source id
//! (u16), the packet index within that source (u64) and the send time in nanoseconds since the
//! generator's epoch (u64), so a receiver can count, sequence-check and time packets on the
//! generator's one clock.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Where the source id, packet index and send time start in every payload.
pub const MARK_AT: usize = 16;
/// Length of the marker fields.
const MARK_LEN: usize = 18;
/// Indices a receiver can track per source during one measured window.
const TRACK_CAPACITY: u64 = 1 << 16;

/// Audio packet interval (Opus, 20 ms frames).
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Opus payload size (≈ 32 kb/s).
const AUDIO_BYTES: usize = 80;
/// Video frame interval (30 frames/s).
const VIDEO_INTERVAL: Duration = Duration::from_micros(33_333);
/// A delta frame: two packets of this size (≈ 400 kb/s).
const DELTA_PACKET_BYTES: usize = 830;
const DELTA_PACKETS: usize = 2;
/// A keyframe: this many full packets (≈ 11 kB).
const KEY_PACKET_BYTES: usize = 1100;
const KEY_PACKETS: usize = 10;
/// A keyframe every this many frames (3 s), and whenever the far end asks.
const KEYFRAME_EVERY: u64 = 90;

/// What a receiver saw from one source in the measured window.
#[derive(Debug, Default)]
pub struct Track {
    /// The source id from the payload.
    pub source: u16,
    /// First index of the window (the source's next index when the window opened).
    pub start: u64,
    bits: Vec<u64>,
    /// Distinct indices seen in `[start, start + TRACK_CAPACITY)`.
    pub unique: u64,
}

impl Track {
    fn mark(&mut self, index: u64) -> bool {
        let Some(offset) = index.checked_sub(self.start) else {
            return false;
        };
        if offset >= TRACK_CAPACITY {
            return false;
        }
        if self.bits.is_empty() {
            self.bits = vec![0; (TRACK_CAPACITY / 64) as usize];
        }
        let word = &mut self.bits[(offset / 64) as usize]; // offset < capacity: in range
        let bit = 1u64 << (offset % 64);
        let new = *word & bit == 0;
        *word |= bit;
        if new {
            self.unique += 1;
        }
        new
    }

    /// Distinct indices seen below `end`.
    pub fn unique_below(&self, end: u64) -> u64 {
        let span = end.saturating_sub(self.start).min(TRACK_CAPACITY);
        let mut n = 0;
        for (w, word) in self.bits.iter().enumerate() {
            let base = w as u64 * 64;
            if base >= span {
                break;
            }
            let keep = span - base;
            let mask = if keep >= 64 {
                u64::MAX
            } else {
                (1u64 << keep) - 1
            };
            n += u64::from((word & mask).count_ones());
        }
        n
    }
}

/// Shared receive-side counters of the whole generator.
#[derive(Debug, Default)]
pub struct Meter {
    /// Whether packets are being counted (the measured window and its grace period).
    pub measuring: bool,
    /// Where each source's window starts (index by source id).
    pub window_start: Vec<u64>,
    /// Added latency of every first copy received in the window, in microseconds.
    pub latency_us: Vec<u32>,
    /// RTP datagrams dropped on purpose on lossy links.
    pub dropped: u64,
    /// RTP datagrams that arrived on lossy links (dropped or not).
    pub lossy_arrived: u64,
}

/// A browser stand-in.
pub struct Peer {
    /// The PeerConnection.
    pub rtc: Rtc,
    /// Its socket (127.0.0.1 or the address given).
    pub socket: UdpSocket,
    /// The socket's address.
    pub addr: SocketAddr,
    /// When str0m wants to be woken.
    pub deadline: Instant,
    /// ICE + DTLS done.
    pub connected: bool,
    /// Fraction of incoming RTP dropped once connected.
    pub loss: f64,
    rng: u64,
    /// Keyframe requests (PLI/FIR) received, for a publisher.
    pub keyframe_requests: u64,
    pending: Option<SdpPendingOffer>,
    /// When the subscription was asked for (join time starts).
    pub joined_at: Option<Instant>,
    /// Time from `joined_at` to the first RTP packet.
    pub join_time: Option<Duration>,
    /// Per-source receive tracks in the measured window.
    pub tracks: Vec<Track>,
    /// RTP packets received in total (any time).
    pub packets: u64,
    /// NACKs this peer sent (cumulative, from str0m's stats, summed over its media).
    pub nacks: u64,
    nacks_by_mid: Vec<(Mid, u64)>,
}

impl Peer {
    /// A peer bound to an ephemeral port on `ip`.
    pub fn new(crypto: &Arc<CryptoProvider>, ip: std::net::IpAddr) -> std::io::Result<Peer> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .set_crypto_provider(crypto.clone())
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        let candidate = Candidate::host(addr, "udp")
            .map_err(|e| std::io::Error::other(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        Ok(Peer {
            rtc,
            socket,
            addr,
            deadline: now,
            connected: false,
            loss: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(addr.port()),
            keyframe_requests: 0,
            pending: None,
            joined_at: None,
            join_time: None,
            tracks: Vec::new(),
            packets: 0,
            nacks: 0,
            nacks_by_mid: Vec::new(),
        })
    }

    /// The host candidate line for trickling.
    pub fn candidate_line(&self) -> String {
        format!(
            "candidate:1 1 udp 2130706431 {} {} typ host",
            self.addr.ip(),
            self.addr.port()
        )
    }

    fn drop_this_one(&mut self) -> bool {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((x % 10_000) as f64) < self.loss * 10_000.0
    }

    /// Reads every waiting datagram, then runs str0m's timers if due.
    pub fn pump(&mut self, buf: &mut [u8], epoch: Instant, meter: &mut Meter) {
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            let Some(data) = buf.get(..n) else { break };
            let rtp = data.first().is_some_and(|b| (128..192).contains(b));
            if self.connected && rtp && self.loss > 0.0 {
                meter.lossy_arrived += 1;
                if self.drop_this_one() {
                    meter.dropped += 1;
                    continue;
                }
            }
            let now = Instant::now();
            if let Ok(receive) = Receive::new(Protocol::Udp, from, self.addr, data)
                && self.rtc.handle_input(Input::Receive(now, receive)).is_ok()
            {
                self.drain(epoch, meter);
            }
        }
        self.tick(Instant::now(), epoch, meter);
    }

    /// Runs str0m's timers if due.
    pub fn tick(&mut self, now: Instant, epoch: Instant, meter: &mut Meter) {
        if now >= self.deadline {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain(epoch, meter);
        }
    }

    /// Sends what str0m has to send and handles its events, until it asks for a timeout.
    pub fn drain(&mut self, epoch: Instant, meter: &mut Meter) {
        let mut due_rounds = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    // str0m releases queued RTP on a timeout that is already due: run it
                    // now rather than at the next housekeeping tick (a few rounds at most).
                    let now = Instant::now();
                    if at <= now && due_rounds < 4 {
                        due_rounds += 1;
                        let _ = self.rtc.handle_input(Input::Timeout(now));
                        continue;
                    }
                    self.deadline = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.event(e, epoch, meter),
                Err(_) => {
                    // A dead Rtc: look again in a second rather than spin.
                    self.deadline = Instant::now() + Duration::from_secs(1);
                    return;
                }
            }
        }
    }

    fn event(&mut self, event: Event, epoch: Instant, meter: &mut Meter) {
        match event {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(_) => self.keyframe_requests += 1,
            Event::MediaIngressStats(s) => {
                match self.nacks_by_mid.iter_mut().find(|(m, _)| *m == s.mid) {
                    Some((_, n)) => *n = s.nacks,
                    None => self.nacks_by_mid.push((s.mid, s.nacks)),
                }
                self.nacks = self.nacks_by_mid.iter().map(|(_, n)| n).sum();
            }
            Event::RtpPacket(p) => {
                let now = Instant::now();
                self.packets += 1;
                if self.join_time.is_none()
                    && let Some(at) = self.joined_at
                {
                    self.join_time = Some(now.saturating_duration_since(at));
                }
                let Some((source, index, sent_ns)) = read_mark(&p.payload) else {
                    return;
                };
                if !meter.measuring {
                    return;
                }
                let Some(&start) = meter.window_start.get(usize::from(source)) else {
                    return;
                };
                let track = match self.tracks.iter().position(|t| t.source == source) {
                    Some(i) => &mut self.tracks[i], // i comes from position(): in range
                    None => {
                        self.tracks.push(Track {
                            source,
                            start,
                            ..Track::default()
                        });
                        let last = self.tracks.len() - 1; // just pushed: not empty
                        &mut self.tracks[last]
                    }
                };
                if track.mark(index) {
                    let now_ns = now.saturating_duration_since(epoch).as_nanos() as u64;
                    let us = now_ns.saturating_sub(sent_ns) / 1000;
                    meter.latency_us.push(us.min(u64::from(u32::MAX)) as u32);
                }
            }
            _ => {}
        }
    }

    /// An offer to publish one Opus and one VP8 track, with their mids.
    pub fn publish_offer(&mut self) -> Result<(String, Mid, Mid), String> {
        let mut api = self.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().ok_or("nothing to offer")?;
        self.pending = Some(pending);
        Ok((offer.to_sdp_string(), audio, video))
    }

    /// Applies the answer to our offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), String> {
        let pending = self.pending.take().ok_or("no pending offer")?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| e.to_string())?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())
    }

    /// Answers a remote offer.
    pub fn answer_offer(&mut self, sdp: &str) -> Result<String, String> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| e.to_string())?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| e.to_string())?;
        Ok(answer.to_sdp_string())
    }

    /// Adds a remote candidate given as an SDP candidate line.
    pub fn add_remote_candidate(&mut self, line: &str) {
        if let Ok(c) = Candidate::from_sdp_string(line) {
            self.rtc.add_remote_candidate(c);
        }
    }
}

fn read_mark(payload: &[u8]) -> Option<(u16, u64, u64)> {
    let mark = payload.get(MARK_AT..MARK_AT + MARK_LEN)?;
    let source = u16::from_be_bytes(mark.get(0..2)?.try_into().ok()?);
    let index = u64::from_be_bytes(mark.get(2..10)?.try_into().ok()?);
    let sent = u64::from_be_bytes(mark.get(10..18)?.try_into().ok()?);
    Some((source, index, sent))
}

/// A synthetic ≈ 500 kb/s camera (VP8 + Opus) on a publishing peer.
pub struct Camera {
    /// The publishing peer (index into the generator's peers).
    pub peer: usize,
    audio_mid: Mid,
    video_mid: Mid,
    /// Source ids: audio, video.
    pub ids: (u16, u16),
    next_audio: Instant,
    next_video: Instant,
    audio_seq: u64,
    video_seq: u64,
    audio_ts: u32,
    video_ts: u32,
    /// Next packet index per source (audio, video).
    pub next_index: (u64, u64),
    frames: u64,
    picture_id: u16,
    keyframe_requests_seen: u64,
    /// Packets written (audio + video).
    pub sent: u64,
}

impl Camera {
    /// A camera on `peer`, whose negotiated media are `mids` (audio, video).
    pub fn new(peer: usize, audio_mid: Mid, video_mid: Mid, ids: (u16, u16)) -> Camera {
        let now = Instant::now();
        Camera {
            peer,
            audio_mid,
            video_mid,
            ids,
            next_audio: now,
            next_video: now,
            audio_seq: 1000,
            video_seq: 5000,
            audio_ts: 0,
            video_ts: 0,
            next_index: (0, 0),
            frames: 0,
            picture_id: 0,
            keyframe_requests_seen: 0,
            sent: 0,
        }
    }

    /// The next time this camera has something to send.
    pub fn next_due(&self) -> Instant {
        self.next_audio.min(self.next_video)
    }

    /// Sends whatever is due at `now` on `peer`.
    pub fn run(&mut self, peer: &mut Peer, now: Instant, epoch: Instant, meter: &mut Meter) {
        if !peer.connected {
            self.next_audio = now + AUDIO_INTERVAL;
            self.next_video = now + VIDEO_INTERVAL;
            return;
        }
        let mut buf = [0u8; KEY_PACKET_BYTES];
        while self.next_audio <= now {
            self.next_audio += AUDIO_INTERVAL;
            self.audio_ts = self.audio_ts.wrapping_add(960);
            let payload = &mut buf[..AUDIO_BYTES];
            payload.fill(0x55);
            let index = self.next_index.0;
            self.next_index.0 += 1;
            write_mark(payload, self.ids.0, index, now, epoch);
            let seq = self.audio_seq;
            self.audio_seq += 1;
            self.write(
                peer,
                Codec::Opus,
                self.audio_mid,
                seq,
                self.audio_ts,
                true,
                payload,
                now,
            );
        }
        while self.next_video <= now {
            self.next_video += VIDEO_INTERVAL;
            self.video_ts = self.video_ts.wrapping_add(3000);
            let asked = peer.keyframe_requests > self.keyframe_requests_seen;
            self.keyframe_requests_seen = peer.keyframe_requests;
            let keyframe = self.frames.is_multiple_of(KEYFRAME_EVERY) || asked;
            self.frames += 1;
            self.picture_id = (self.picture_id + 1) & 0x7fff;
            let (count, len) = if keyframe {
                (KEY_PACKETS, KEY_PACKET_BYTES)
            } else {
                (DELTA_PACKETS, DELTA_PACKET_BYTES)
            };
            for n in 0..count {
                let payload = &mut buf[..len];
                payload.fill(0xaa);
                vp8_descriptor(payload, n == 0, keyframe, self.picture_id);
                let index = self.next_index.1;
                self.next_index.1 += 1;
                write_mark(payload, self.ids.1, index, now, epoch);
                let seq = self.video_seq;
                self.video_seq += 1;
                let last = n + 1 == count;
                self.write(
                    peer,
                    Codec::Vp8,
                    self.video_mid,
                    seq,
                    self.video_ts,
                    last,
                    payload,
                    now,
                );
            }
        }
        peer.drain(epoch, meter);
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        peer: &mut Peer,
        codec: Codec,
        mid: Mid,
        seq: u64,
        ts: u32,
        marker: bool,
        payload: &[u8],
        now: Instant,
    ) {
        let Some(pt) = peer
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return;
        };
        let mut api = peer.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        tx.write_rtp(
            RtpWrite::new(pt, seq.into(), ts, now, payload.to_vec())
                .marker(marker)
                .nackable(codec == Codec::Vp8),
        );
        self.sent += 1;
    }
}

/// A VP8 payload descriptor (RFC 7741 §4.2: X and I set, 15-bit picture id) and, on a frame's
/// first packet, the VP8 frame tag (and the keyframe start code and 640×480 size).
fn vp8_descriptor(payload: &mut [u8], first: bool, keyframe: bool, picture_id: u16) {
    let head: [u8; 4] = [
        0x80 | if first { 0x10 } else { 0 },
        0x80,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
    ];
    payload[..4].copy_from_slice(&head); // every payload is ≥ MARK_AT + MARK_LEN bytes
    if first {
        // Frame tag: P bit (0 = keyframe), version 0, show_frame, first partition size.
        payload[4] = if keyframe { 0x10 } else { 0x11 };
        payload[5] = 0x02;
        payload[6] = 0x00;
        if keyframe {
            payload[7..10].copy_from_slice(&[0x9d, 0x01, 0x2a]);
            payload[10..14].copy_from_slice(&[0x80, 0x02, 0xe0, 0x01]);
        }
    }
}

fn write_mark(payload: &mut [u8], source: u16, index: u64, now: Instant, epoch: Instant) {
    let sent = now.saturating_duration_since(epoch).as_nanos() as u64;
    // Every payload is at least MARK_AT + MARK_LEN bytes (AUDIO_BYTES is the smallest).
    let mark = &mut payload[MARK_AT..MARK_AT + MARK_LEN];
    mark[0..2].copy_from_slice(&source.to_be_bytes());
    mark[2..10].copy_from_slice(&index.to_be_bytes());
    mark[10..18].copy_from_slice(&sent.to_be_bytes());
}
