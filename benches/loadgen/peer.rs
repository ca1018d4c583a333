//! One emulated browser PeerConnection (sfubox's shared str0m test peer,
//! `sfubox::testing::TestPeer`, on its own UDP socket), the synthetic camera that feeds a publishing peer, and the receive-side accounting of a subscribing one.
//!
//! Nothing is encoded or decoded. Every payload carries a trailer at [`MARK_AT`]: the source id
//! (u16), the packet index within that source (u64) and the send time in nanoseconds since the
//! generator's epoch (u64), so a receiver can count, sequence-check and time packets on the
//! generator's one clock. Simulcast video adds a frame mark after it ([`FRAME_AT`]): the layer
//! (1 = `h`, 2 = `l`), the frame number (u32, shared by both layers), the packet's place in
//! its frame and the frame's packet count, so a receiver can tell which layer each packet came
//! from and which frames arrived whole. The low layer's source id is the video's with
//! [`LOW_LAYER`] set.
//!
//! A receiving peer may sit behind an emulated bottleneck ([`Link`]): a FIFO drained at a fixed
//! rate with a bounded queue (tail drop) and random loss, applied before str0m sees the
//! datagram, so the peer's RTCP and transport-wide feedback describe what it really received.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sfubox::testing::{PeerConfig, PeerOutput, ReceivedRtp, TestPeer};
use str0m::Event;
use str0m::format::Codec;
use str0m::media::{Mid, Rid};

/// Where the source id, packet index and send time start in every payload.
pub const MARK_AT: usize = 16;
/// Length of the marker fields.
const MARK_LEN: usize = 18;
/// Where the frame mark of simulcast video starts (layer, frame, packet, count).
pub const FRAME_AT: usize = MARK_AT + MARK_LEN;
/// Length of the frame mark.
const FRAME_LEN: usize = 7;
/// Set in the source id of a simulcast video's low layer.
pub const LOW_LAYER: u16 = 0x8000;
/// Frame-mark layer values.
pub const LAYER_H: u8 = 1;
/// The low layer (`l`).
pub const LAYER_L: u8 = 2;
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
/// Simulcast `h`: a delta frame is three packets of this size (≈ 650 kb/s of payload,
/// ≈ 700 kb/s on the wire with keyframes and headers).
const SIM_H_DELTA_BYTES: usize = 900;
const SIM_H_DELTA_PACKETS: usize = 3;
/// Simulcast `l`: one packet per delta frame (≈ 100 kb/s of payload, ≈ 120 kb/s on the wire),
/// a keyframe of three.
const SIM_L_DELTA_BYTES: usize = 420;
const SIM_L_KEY_BYTES: usize = 800;
const SIM_L_KEY_PACKETS: usize = 3;
/// Bytes an IPv4/UDP datagram costs a link beyond its UDP payload.
const IP_UDP_OVERHEAD: usize = 28;

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
    /// Where each simulcast low layer's window starts (index by the video's source id).
    pub low_window_start: Vec<u64>,
    /// Added latency of first copies received behind an emulated [`Link`], in microseconds
    /// (these are not in `latency_us`).
    pub latency_linked_us: Vec<u32>,
}

/// An emulated bottleneck in front of a receiving peer: datagrams are lost at random with
/// probability `loss`, then queue for a link drained at `rate_bps`; one that would wait more
/// than `max_delay` is dropped (tail drop). Released datagrams reach str0m at the time they
/// leave the link, so its arrival times and feedback describe the emulated path.
#[derive(Debug)]
pub struct Link {
    rate_bps: u64,
    max_delay: Duration,
    loss: f64,
    rng: u64,
    /// When the link has sent everything queued so far.
    free_at: Option<Instant>,
    queue: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    /// Counters (cumulative).
    pub stats: LinkStats,
}

/// What an emulated link did, cumulative.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkStats {
    /// Datagrams offered to the link.
    pub arrived: u64,
    /// Lost at random.
    pub random_drops: u64,
    /// Dropped because the queue was full.
    pub tail_drops: u64,
    /// Handed to the peer.
    pub delivered: u64,
    /// Bytes handed to the peer (UDP payloads).
    pub delivered_bytes: u64,
}

impl Link {
    /// A link of `rate_bps` holding at most `max_delay` of queue, losing `loss` at random.
    pub fn new(rate_bps: u64, max_delay: Duration, loss: f64, seed: u64) -> Link {
        Link {
            rate_bps: rate_bps.max(1000),
            max_delay,
            loss,
            rng: 0x2545_f491_4f6c_dd1d ^ seed,
            free_at: None,
            queue: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    fn lose(&mut self) -> bool {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((x % 1_000_000) as f64) < self.loss * 1_000_000.0
    }

    /// Offers a datagram that arrived at `now`; it is queued or dropped.
    fn offer(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.arrived += 1;
        if self.lose() {
            self.stats.random_drops += 1;
            return;
        }
        let start = self.free_at.map_or(now, |f| f.max(now));
        if start.saturating_duration_since(now) > self.max_delay {
            self.stats.tail_drops += 1;
            return;
        }
        let bits = ((data.len() + IP_UDP_OVERHEAD) * 8) as u64;
        let leaves = start + Duration::from_nanos(bits * 1_000_000_000 / self.rate_bps);
        self.free_at = Some(leaves);
        self.queue.push_back((leaves, from, data.to_vec()));
    }

    /// When the next queued datagram leaves the link.
    pub fn next_release(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| *at)
    }
}

/// A browser stand-in.
pub struct Peer {
    /// The PeerConnection (its address is the socket's).
    pub peer: TestPeer,
    /// Its socket (127.0.0.1 or the address given).
    pub socket: UdpSocket,
    /// Fraction of incoming RTP dropped once connected.
    pub loss: f64,
    rng: u64,
    /// An emulated bottleneck on the way in, once connected.
    pub link: Option<Link>,
    /// Keyframe requests (PLI/FIR) received, for a publisher (the `h` layer, or no layer).
    pub keyframe_requests: u64,
    /// Keyframe requests for the simulcast layer `l`.
    pub keyframe_requests_low: u64,
    /// When the subscription was asked for (join time starts).
    pub joined_at: Option<Instant>,
    /// Time from `joined_at` to the first RTP packet.
    pub join_time: Option<Duration>,
    /// Per-source receive tracks in the measured window.
    pub tracks: Vec<Track>,
    /// Simulcast video received in the measured window (frame-marked packets only).
    pub video: Option<VideoTally>,
    /// NACKs this peer sent (cumulative, from str0m's stats, summed over its media).
    pub nacks: u64,
    nacks_by_mid: Vec<(Mid, u64)>,
}

impl Peer {
    /// A peer bound to an ephemeral port on `ip`; `config` should ask for statistics (the
    /// NACK count comes from them).
    pub fn new(config: &PeerConfig, ip: std::net::IpAddr) -> std::io::Result<Peer> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let peer = TestPeer::new(addr, Instant::now(), config).map_err(std::io::Error::other)?;
        Ok(Peer {
            peer,
            socket,
            loss: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(addr.port()),
            link: None,
            keyframe_requests: 0,
            keyframe_requests_low: 0,
            joined_at: None,
            join_time: None,
            tracks: Vec::new(),
            video: None,
            nacks: 0,
            nacks_by_mid: Vec::new(),
        })
    }

    /// ICE + DTLS done.
    pub fn connected(&self) -> bool {
        self.peer.connected
    }

    /// RTP packets received in total (any time).
    pub fn packets(&self) -> u64 {
        self.peer.rtp_received
    }

    fn drop_this_one(&mut self) -> bool {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((x % 10_000) as f64) < self.loss * 10_000.0
    }

    /// Reads every waiting datagram (through the emulated link, if any), then runs str0m's
    /// timers if due.
    pub fn pump(&mut self, buf: &mut [u8], epoch: Instant, meter: &mut Meter) {
        // Bounded: the socket buffer holds a finite number of datagrams.
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            let Some(data) = buf.get(..n) else { break };
            let rtp = data.first().is_some_and(|b| (128..192).contains(b));
            if self.peer.connected && rtp && self.loss > 0.0 {
                meter.lossy_arrived += 1;
                if self.drop_this_one() {
                    meter.dropped += 1;
                    continue;
                }
            }
            let now = Instant::now();
            if self.peer.connected
                && let Some(link) = &mut self.link
            {
                link.offer(now, from, data);
                continue;
            }
            self.receive(now, from, data, epoch, meter);
        }
        self.release(Instant::now(), epoch, meter);
        self.tick(Instant::now(), epoch, meter);
    }

    /// Hands one datagram to str0m at `at` (not before its latest input).
    fn receive(
        &mut self,
        at: Instant,
        from: SocketAddr,
        data: &[u8],
        epoch: Instant,
        meter: &mut Meter,
    ) {
        if self.peer.receive(at, from, data) {
            self.drain(epoch, meter);
        }
    }

    /// When the emulated link releases its next datagram, if it holds one.
    pub fn next_release(&self) -> Option<Instant> {
        self.link.as_ref().and_then(Link::next_release)
    }

    /// Hands str0m every datagram the emulated link has released by `now`, each at the time it
    /// left the link.
    pub fn release(&mut self, now: Instant, epoch: Instant, meter: &mut Meter) {
        loop {
            let Some(link) = &mut self.link else { return };
            let due = link.queue.front().is_some_and(|(at, _, _)| *at <= now);
            if !due {
                return;
            }
            let Some((at, from, data)) = link.queue.pop_front() else {
                return;
            };
            link.stats.delivered += 1;
            link.stats.delivered_bytes += data.len() as u64;
            self.receive(at, from, &data, epoch, meter);
        }
    }

    /// Runs str0m's timers if due.
    pub fn tick(&mut self, now: Instant, epoch: Instant, meter: &mut Meter) {
        if self.peer.timeout_due(now) {
            self.drain(epoch, meter);
        }
    }

    /// Sends what str0m has to send and handles its events, until it asks for a timeout.
    pub fn drain(&mut self, epoch: Instant, meter: &mut Meter) {
        let mut due_rounds = 0;
        loop {
            while let Some(out) = self.peer.poll() {
                match out {
                    PeerOutput::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination);
                    }
                    PeerOutput::Rtp(rtp) => self.rtp(rtp, epoch, meter),
                    PeerOutput::Event(e) => self.event(e),
                }
            }
            if self.peer.failed.is_some() {
                // A dead Rtc: look again in a second rather than spin.
                self.peer.deadline = Instant::now() + Duration::from_secs(1);
                return;
            }
            // str0m releases queued RTP on a timeout that is already due: run it now rather
            // than at the next housekeeping tick (a few rounds at most).
            let now = Instant::now();
            if self.peer.deadline > now || due_rounds >= 4 {
                return;
            }
            due_rounds += 1;
            self.peer.handle_timeout(now);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::KeyframeRequest(r) => {
                if r.rid.is_some_and(|rid| &*rid == "l") {
                    self.keyframe_requests_low += 1;
                } else {
                    self.keyframe_requests += 1;
                }
            }
            Event::MediaIngressStats(s) => {
                match self.nacks_by_mid.iter_mut().find(|(m, _)| *m == s.mid) {
                    Some((_, n)) => *n = s.nacks,
                    None => self.nacks_by_mid.push((s.mid, s.nacks)),
                }
                self.nacks = self.nacks_by_mid.iter().map(|(_, n)| n).sum();
            }
            _ => {}
        }
    }

    fn rtp(&mut self, rtp: ReceivedRtp, epoch: Instant, meter: &mut Meter) {
        let p = rtp.packet;
        let now = Instant::now();
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
        let frame = read_frame(&p.payload);
        let new = if source & LOW_LAYER != 0 {
            let Some(&start) = meter.low_window_start.get(usize::from(source & !LOW_LAYER)) else {
                return;
            };
            let tally = self.video.get_or_insert_with(VideoTally::default);
            if tally.low.bits.is_empty() {
                tally.low.source = source;
                tally.low.start = start;
            }
            tally.low.mark(index)
        } else {
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
            track.mark(index)
        };
        if let Some(frame) = frame {
            let tally = self.video.get_or_insert_with(VideoTally::default);
            tally.seen(*p.seq_no, frame, index, new);
        }
        if new {
            let now_ns = now.saturating_duration_since(epoch).as_nanos() as u64;
            let us = now_ns.saturating_sub(sent_ns) / 1000;
            let us = us.min(u64::from(u32::MAX)) as u32;
            if self.link.is_some() {
                meter.latency_linked_us.push(us);
            } else {
                meter.latency_us.push(us);
            }
        }
    }

    /// An offer to publish one Opus and one VP8 track (simulcast: layers `h` and `l`, as a
    /// browser offers them), with their mids.
    pub fn publish_offer(&mut self, simulcast: bool) -> Result<(String, Mid, Mid), String> {
        let rids: &[&str] = if simulcast { &["h", "l"] } else { &[] };
        let offer = self
            .peer
            .publish_offer(true, true, rids)
            .map_err(|e| e.to_string())?;
        let (Some(audio), Some(video)) = (offer.audio, offer.video) else {
            return Err("an offer without audio or video".into());
        };
        Ok((offer.sdp, audio, video))
    }

    /// Applies the answer to our offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), String> {
        self.peer.accept_answer(sdp).map_err(|e| e.to_string())
    }

    /// Answers a remote offer.
    pub fn answer_offer(&mut self, sdp: &str) -> Result<String, String> {
        self.peer.answer_offer(sdp).map_err(|e| e.to_string())
    }
}

/// A simulcast video packet's frame mark (the packet's place in its frame is not needed: the
/// packet index already tells copies apart).
#[derive(Debug, Clone, Copy)]
struct FrameMark {
    layer: u8,
    frame: u32,
    count: u8,
}

fn read_frame(payload: &[u8]) -> Option<FrameMark> {
    let mark = payload.get(FRAME_AT..FRAME_AT + FRAME_LEN)?;
    let layer = *mark.first()?;
    if layer != LAYER_H && layer != LAYER_L {
        return None;
    }
    Some(FrameMark {
        layer,
        frame: u32::from_be_bytes(mark.get(1..5)?.try_into().ok()?),
        count: *mark.get(6)?,
    })
}

/// What one receiver got of simulcast video in the measured window.
#[derive(Debug, Default)]
pub struct VideoTally {
    /// Distinct low-layer indices (the `h` layer is in the peer's tracks).
    pub low: Track,
    /// Distinct packets per layer (`h`, `l`), any frame.
    pub packets: [u64; 2],
    /// Per (layer, frame): distinct packets received and the frame's packet count.
    frames: HashMap<(u8, u32), (u8, u8)>,
    /// Every copy received: the down stream's RTP sequence number (its own numbering: gaps
    /// are losses the subscriber saw, after any retransmission), the layer and the packet
    /// index within it.
    copies: Vec<(u64, u8, u64)>,
}

impl VideoTally {
    fn seen(&mut self, seq: u64, frame: FrameMark, index: u64, new: bool) {
        self.copies.push((seq, frame.layer, index));
        if !new {
            return;
        }
        let layer = usize::from(frame.layer == LAYER_L);
        self.packets[layer] += 1; // layer is 0 or 1
        let entry = self
            .frames
            .entry((frame.layer, frame.frame))
            .or_insert((0, frame.count));
        entry.0 = entry.0.saturating_add(1);
    }

    /// The sequence numbers the down stream spent on packets sent in the window (per layer,
    /// `[start, end)` of packet indices: `h`, then `l`), and how many of those arrived.
    pub fn seq_span(&self, high: (u64, u64), low: (u64, u64)) -> (u64, u64) {
        let in_window = |layer: u8, index: u64| {
            let (start, end) = if layer == LAYER_L { low } else { high };
            (start..end).contains(&index)
        };
        let mut bounds: Option<(u64, u64)> = None;
        for &(seq, layer, index) in &self.copies {
            if in_window(layer, index) {
                bounds = Some(bounds.map_or((seq, seq), |(a, b)| (a.min(seq), b.max(seq))));
            }
        }
        let Some((first, last)) = bounds else {
            return (0, 0);
        };
        let arrived: HashSet<u64> = self
            .copies
            .iter()
            .map(|c| c.0)
            .filter(|s| (first..=last).contains(s))
            .collect();
        (last - first + 1, arrived.len() as u64)
    }

    /// Frames in `[first, end)` received whole on some layer, and how many of those whole on
    /// `h`.
    pub fn whole_frames(&self, first: u64, end: u64) -> (u64, u64) {
        let mut whole: HashMap<u32, bool> = HashMap::new();
        for (&(layer, frame), &(got, count)) in &self.frames {
            let f = u64::from(frame);
            if f < first || f >= end || got < count {
                continue;
            }
            let high = whole.entry(frame).or_insert(false);
            *high |= layer == LAYER_H;
        }
        let high = whole.values().filter(|&&h| h).count() as u64;
        (whole.len() as u64, high)
    }
}

fn read_mark(payload: &[u8]) -> Option<(u16, u64, u64)> {
    let mark = payload.get(MARK_AT..MARK_AT + MARK_LEN)?;
    let source = u16::from_be_bytes(mark.get(0..2)?.try_into().ok()?);
    let index = u64::from_be_bytes(mark.get(2..10)?.try_into().ok()?);
    let sent = u64::from_be_bytes(mark.get(10..18)?.try_into().ok()?);
    Some((source, index, sent))
}

/// A synthetic ≈ 500 kb/s camera (VP8 + Opus) on a publishing peer; with simulcast, two
/// video layers on one m-line: `h` (≈ 700 kb/s) and `l` (≈ 120 kb/s), frame-marked.
pub struct Camera {
    /// The publishing peer (index into the generator's peers).
    pub peer: usize,
    audio_mid: Mid,
    video_mid: Mid,
    /// Source ids: audio, video (the low layer's is the video's with [`LOW_LAYER`]).
    pub ids: (u16, u16),
    next_audio: Instant,
    next_video: Instant,
    audio_seq: u64,
    audio_ts: u32,
    video_ts: u32,
    /// Next packet index per source (audio, video or `h`).
    pub next_index: (u64, u64),
    /// Frames sent so far (both layers share the numbering).
    pub frames: u64,
    /// The video (or `h` layer).
    high: VideoLayer,
    /// The simulcast `l` layer.
    low: Option<VideoLayer>,
    /// Packets written (audio + video).
    pub sent: u64,
}

/// One encoding of the camera's video.
struct VideoLayer {
    rid: Option<Rid>,
    /// Frame-mark layer value (0: no frame mark).
    tag: u8,
    source: u16,
    seq: u64,
    picture_id: u16,
    keyframe_requests_seen: u64,
    next_index: u64,
    /// (packets, bytes) of a delta frame and of a keyframe.
    delta: (usize, usize),
    key: (usize, usize),
}

impl Camera {
    /// A camera on `peer`, whose negotiated media are `mids` (audio, video); `simulcast`: the
    /// video m-line carries layers `h` and `l`.
    pub fn new(
        peer: usize,
        audio_mid: Mid,
        video_mid: Mid,
        ids: (u16, u16),
        simulcast: bool,
    ) -> Camera {
        let now = Instant::now();
        let layer = |rid: Option<&str>, tag, source, seq, delta, key| VideoLayer {
            rid: rid.map(Rid::from),
            tag,
            source,
            seq,
            picture_id: 0,
            keyframe_requests_seen: 0,
            next_index: 0,
            delta,
            key,
        };
        let (high, low) = if simulcast {
            (
                layer(
                    Some("h"),
                    LAYER_H,
                    ids.1,
                    5000,
                    (SIM_H_DELTA_PACKETS, SIM_H_DELTA_BYTES),
                    (KEY_PACKETS, KEY_PACKET_BYTES),
                ),
                Some(layer(
                    Some("l"),
                    LAYER_L,
                    ids.1 | LOW_LAYER,
                    20_000,
                    (1, SIM_L_DELTA_BYTES),
                    (SIM_L_KEY_PACKETS, SIM_L_KEY_BYTES),
                )),
            )
        } else {
            (
                layer(
                    None,
                    0,
                    ids.1,
                    5000,
                    (DELTA_PACKETS, DELTA_PACKET_BYTES),
                    (KEY_PACKETS, KEY_PACKET_BYTES),
                ),
                None,
            )
        };
        Camera {
            peer,
            audio_mid,
            video_mid,
            ids,
            next_audio: now,
            next_video: now,
            audio_seq: 1000,
            audio_ts: 0,
            video_ts: 0,
            next_index: (0, 0),
            frames: 0,
            high,
            low,
            sent: 0,
        }
    }

    /// The low layer's next packet index, if the camera sends simulcast.
    pub fn next_low_index(&self) -> Option<u64> {
        self.low.as_ref().map(|l| l.next_index)
    }

    /// The next time this camera has something to send.
    pub fn next_due(&self) -> Instant {
        self.next_audio.min(self.next_video)
    }

    /// Sends whatever is due at `now` on `peer`.
    pub fn run(&mut self, peer: &mut Peer, now: Instant, epoch: Instant, meter: &mut Meter) {
        if !peer.peer.connected {
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
            let sent = write(
                peer,
                Codec::Opus,
                self.audio_mid,
                None,
                seq,
                self.audio_ts,
                true,
                payload,
                now,
            );
            self.sent += u64::from(sent);
        }
        while self.next_video <= now {
            self.next_video += VIDEO_INTERVAL;
            self.video_ts = self.video_ts.wrapping_add(3000);
            let periodic = self.frames.is_multiple_of(KEYFRAME_EVERY);
            let frame = self.frames;
            self.frames += 1;
            let asked = peer.keyframe_requests;
            self.sent += self.high.frame(
                peer,
                self.video_mid,
                (frame, self.video_ts),
                periodic,
                asked,
                now,
                epoch,
            );
            if let Some(low) = &mut self.low {
                let asked = peer.keyframe_requests_low;
                self.sent += low.frame(
                    peer,
                    self.video_mid,
                    (frame, self.video_ts),
                    periodic,
                    asked,
                    now,
                    epoch,
                );
            }
            self.next_index.1 = self.high.next_index;
        }
        peer.drain(epoch, meter);
    }
}

impl VideoLayer {
    /// Sends frame `frame` (number, RTP time) of this layer; a keyframe if `periodic` or if
    /// the count of keyframe requests `asked` grew. Returns the packets written.
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        peer: &mut Peer,
        mid: Mid,
        (frame, ts): (u64, u32),
        periodic: bool,
        asked: u64,
        now: Instant,
        epoch: Instant,
    ) -> u64 {
        let keyframe = periodic || asked > self.keyframe_requests_seen;
        self.keyframe_requests_seen = asked;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let (count, len) = if keyframe { self.key } else { self.delta };
        let mut buf = [0u8; KEY_PACKET_BYTES];
        let mut written = 0;
        for n in 0..count {
            let payload = &mut buf[..len.min(KEY_PACKET_BYTES)];
            payload.fill(0xaa);
            vp8_descriptor(payload, n == 0, keyframe, self.picture_id);
            let index = self.next_index;
            self.next_index += 1;
            write_mark(payload, self.source, index, now, epoch);
            if self.tag != 0 {
                // FRAME_AT + FRAME_LEN is below every video payload's length.
                let mark = &mut payload[FRAME_AT..FRAME_AT + FRAME_LEN];
                mark[0] = self.tag;
                mark[1..5].copy_from_slice(&(frame as u32).to_be_bytes());
                mark[5] = n as u8;
                mark[6] = count as u8;
            }
            let seq = self.seq;
            self.seq += 1;
            let last = n + 1 == count;
            let sent = write(peer, Codec::Vp8, mid, self.rid, seq, ts, last, payload, now);
            written += u64::from(sent);
        }
        written
    }
}

/// Writes one RTP packet on `mid` (and simulcast `rid`); says whether it was written.
#[allow(clippy::too_many_arguments)]
fn write(
    peer: &mut Peer,
    codec: Codec,
    mid: Mid,
    rid: Option<Rid>,
    seq: u64,
    ts: u32,
    marker: bool,
    payload: &[u8],
    now: Instant,
) -> bool {
    peer.peer
        .write_rtp(codec, mid, rid, seq, ts, now, marker, payload.to_vec())
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
