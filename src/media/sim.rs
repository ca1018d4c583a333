//! An in-memory network for driving a [`Sfu`] with real str0m client peers on a fake clock.
//!
//! Used by the engine's tests and by `benches/forward.rs`. Each [`Client`] is the shared test
//! peer ([`crate::testing::TestPeer`]: a full-ICE str0m `Rtc` in RTP mode) with its own
//! address; its link to the server has a latency and a loss rate (seeded, so runs repeat). [`Sim::run_until`] jumps time to the next event (a datagram's
//! arrival, a deadline, a media source's next packet) and handles it, so seconds of media run in
//! milliseconds. Nothing here reads the clock: the caller supplies the start instant.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::bwe::BweKind;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Rid};

use super::{LinkKey, MediaCodec, MediaError, MediaEvent, Selection, Sfu, SfuConfig, StreamKey};
use crate::testing::{PeerConfig, PeerError, PeerOutput, ReceivedRtp, TestPeer, write_vp8_start};

/// Byte 2 of every simulated video payload names the layer it was sent on.
pub const LAYER_TAG_OFFSET: usize = 2;
/// Where the layer tag is in payloads with full VP8 descriptors (after the descriptor and the
/// VP8 payload header byte).
pub const TEMPORAL_TAG_OFFSET: usize = 8;
/// The first bytes of a payload kept per received packet.
pub const HEAD_LEN: usize = 12;

/// Loss, delay and capacity of the path between one client and the server.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// One-way delay.
    pub latency: Duration,
    /// Probability in `[0, 1]` that a datagram is lost, each direction.
    pub loss: f64,
    /// Capacity from the server to the client in bits per second (`None`: unlimited). Excess
    /// traffic waits in a queue, as behind a `tbf` shaper.
    pub down_rate: Option<u64>,
    /// The longest a datagram waits in that queue at `down_rate` (`tbf latency`): the queue
    /// holds that much data plus `down_burst`; datagrams that do not fit are dropped.
    pub down_queue: Duration,
    /// The shaper's token bucket in bytes (`tbf burst`): after a quiet spell this much leaves
    /// at once, at line rate. 0: every datagram waits for its own tokens (a plain rate limit).
    pub down_burst: u64,
}

impl LinkConfig {
    /// A 10 ms, loss-free, unlimited link.
    pub const CLEAN: LinkConfig = LinkConfig {
        latency: Duration::from_millis(10),
        loss: 0.0,
        down_rate: None,
        down_queue: Duration::from_millis(300),
        down_burst: 0,
    };

    /// A clean link behind `tbf rate RATE burst BURST latency QUEUE` toward the client, as
    /// `tc` shapes it: tokens fill at `rate` up to `burst` bytes, a datagram leaves when its
    /// tokens are there, and the queue holds `rate × queue + burst` bytes.
    pub const fn token_bucket(rate: u64, burst: u64, queue: Duration) -> LinkConfig {
        LinkConfig {
            down_rate: Some(rate),
            down_queue: queue,
            down_burst: burst,
            ..LinkConfig::CLEAN
        }
    }
}

/// The downlink shaper's state: the datagrams still queued and the token bucket.
#[derive(Debug)]
struct Shaper {
    /// When each queued datagram leaves, and its size in bytes, in order.
    queued: std::collections::VecDeque<(Instant, u64)>,
    /// Their sizes added up.
    backlog: u64,
    /// When the last datagram left (or now, when none did yet).
    last_departure: Instant,
    /// Tokens in the bucket right after that departure, bytes.
    tokens: f64,
}

/// One RTP packet a client received.
#[derive(Debug, Clone, Copy)]
pub struct SeenRtp {
    /// The m-line it arrived on.
    pub mid: Mid,
    /// Audio or video (from the m-line).
    pub kind: MediaKind,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// Payload type.
    pub pt: u8,
    /// The layer tag of the payload (see [`LAYER_TAG_OFFSET`]).
    pub layer_tag: u8,
    /// The payload's first [`HEAD_LEN`] bytes (zero-padded).
    pub head: [u8; HEAD_LEN],
    /// The RTP marker bit.
    pub marker: bool,
    /// When it arrived.
    pub at: Instant,
}

/// A simulated browser: one test peer (one PeerConnection) behind a simulated link.
pub struct Client {
    /// Its str0m peer: the `Rtc`, its address, whether DTLS is up.
    pub peer: TestPeer,
    /// Its path to the server.
    pub link: LinkConfig,
    /// RTP packets received, in arrival order.
    pub received: Vec<SeenRtp>,
    /// Keyframe requests received (PLI/FIR from the server).
    pub keyframe_requests: usize,
    /// The last rate limit (REMB) the server sent this client, bits per second.
    pub remb: Option<u64>,
    /// Its downlink shaper (used when `link.down_rate` is set).
    shaper: Shaper,
    /// Datagrams the shaper dropped (its queue was full).
    pub shaper_drops: u64,
}

/// A periodic RTP sender on a client: a fake VP8 camera or Opus microphone.
#[derive(Debug, Clone)]
pub struct Source {
    /// The client sending.
    pub client: usize,
    /// Its m-line.
    pub mid: Mid,
    /// Simulcast rid, if any.
    pub rid: Option<Rid>,
    /// Audio (Opus) or video (VP8).
    pub kind: MediaKind,
    /// Time between frames: 20 ms for audio, 1/30 s for video unless changed.
    pub frame_interval: Duration,
    /// Packets per video frame.
    pub packets_per_frame: usize,
    /// Payload bytes per packet.
    pub payload_len: usize,
    /// Written into every payload at [`LAYER_TAG_OFFSET`].
    pub layer_tag: u8,
    /// Packets written so far.
    pub sent: u64,
    /// Video: write full VP8 descriptors (15-bit picture ID, TL0PICIDX, TID and layer sync)
    /// with three temporal layers in libwebrtc's pattern (TIDs 0, 2, 1, 2). The layer tag then
    /// moves to [`TEMPORAL_TAG_OFFSET`].
    pub temporal_layers: bool,
    picture_id: u16,
    tl0_pic_idx: u8,
    frames_since_keyframe: u64,
    next_at: Instant,
    seq: u64,
    ts: u32,
    keyframe_due: bool,
}

struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    // Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl Shaper {
    /// Queues a datagram of `bytes` (headers included) arriving `now`; returns when it leaves,
    /// or `None` when the queue has no room for it.
    fn enqueue(
        &mut self,
        now: Instant,
        link: &LinkConfig,
        rate: u64,
        bytes: u64,
    ) -> Option<Instant> {
        let byte_rate = rate.max(1) as f64 / 8.0;
        while let Some(&(_, size)) = self.queued.front().filter(|&&(at, _)| at <= now) {
            self.queued.pop_front();
            self.backlog -= size;
        }
        let limit = (byte_rate * link.down_queue.as_secs_f64()) as u64 + link.down_burst;
        if self.backlog + bytes > limit {
            return None;
        }
        // FIFO: it starts waiting for tokens once the one before it left.
        let start = self.last_departure.max(now);
        let refill = start
            .saturating_duration_since(self.last_departure)
            .as_secs_f64()
            * byte_rate;
        let tokens = (self.tokens + refill).min(link.down_burst as f64);
        let size = bytes as f64;
        let (departure, left) = if tokens >= size {
            (start, tokens - size)
        } else {
            (
                start + Duration::from_secs_f64((size - tokens) / byte_rate),
                0.0,
            )
        };
        self.last_departure = departure;
        self.tokens = left;
        self.queued.push_back((departure, bytes));
        self.backlog += bytes;
        Some(departure)
    }
}

/// A small seeded generator (xorshift64*), enough for loss decisions.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a simulated publisher's offer contained, and the server's answer.
#[derive(Debug, Clone)]
pub struct Published {
    /// The audio m-line, if any.
    pub audio: Option<Mid>,
    /// The video m-line, if any.
    pub video: Option<Mid>,
    /// The engine's answer (its ICE credentials, for tests that write their own STUN).
    pub answer: String,
}

/// The server, its clients, the links between them and the clock.
pub struct Sim {
    /// The engine under test.
    pub sfu: Sfu,
    /// The server's address.
    pub sfu_addr: SocketAddr,
    /// The clients, by index.
    pub clients: Vec<Client>,
    /// Media sources.
    pub sources: Vec<Source>,
    /// Events the engine produced.
    pub events: Vec<MediaEvent>,
    /// Packets the engine delivered to local sinks.
    pub sink_packets: Vec<super::SinkPacket>,
    /// Current simulated time.
    pub now: Instant,
    /// When false, datagrams from the server to clients are dropped unread (benchmarks
    /// measuring the server alone); they are still counted.
    pub deliver_to_clients: bool,
    /// Datagrams the server sent.
    pub server_datagrams: u64,
    probe: Option<fn(bool)>,
    by_addr: HashMap<SocketAddr, usize>,
    outgoing: Vec<super::Transmit>,
    in_flight: BinaryHeap<InFlight>,
    order: u64,
    rng: Rng,
    /// The clients' crypto and their one shared DTLS certificate.
    peer_config: PeerConfig,
}

impl Sim {
    /// A server at `sfu_addr` starting at `start`; `seed` drives the loss decisions.
    pub fn new(start: Instant, sfu_addr: SocketAddr, seed: u64) -> Result<Sim, MediaError> {
        let sfu = Sfu::new(SfuConfig::new(vec![sfu_addr]))?;
        let peer_config = PeerConfig::new()
            .with_shared_cert()
            .ok_or(MediaError::Crypto)?;
        Ok(Sim {
            sfu,
            sfu_addr,
            clients: Vec::new(),
            sources: Vec::new(),
            events: Vec::new(),
            sink_packets: Vec::new(),
            now: start,
            deliver_to_clients: true,
            server_datagrams: 0,
            probe: None,
            by_addr: HashMap::new(),
            outgoing: Vec::new(),
            in_flight: BinaryHeap::new(),
            order: 0,
            rng: Rng(seed | 1),
            peer_config,
        })
    }

    /// Calls `probe(true)` before and `probe(false)` after every call into the engine, so a
    /// benchmark can time it or count its allocations. Draining the engine's output counts as
    /// part of the call.
    pub fn set_engine_probe(&mut self, probe: fn(bool)) {
        self.probe = Some(probe);
    }

    /// Adds a client at `addr` behind `link`. Returns its index.
    pub fn add_client(&mut self, addr: SocketAddr, link: LinkConfig) -> usize {
        let mut peer = TestPeer::without_candidate(addr, self.now, &self.peer_config);
        // An address str0m refuses as a candidate makes a client that never connects.
        let _ = peer.add_host_candidate();
        self.clients.push(Client {
            peer,
            link,
            received: Vec::new(),
            keyframe_requests: 0,
            remb: None,
            shaper: Shaper {
                queued: std::collections::VecDeque::new(),
                backlog: 0,
                last_departure: self.now,
                tokens: link.down_burst as f64,
            },
            shaper_drops: 0,
        });
        let index = self.clients.len() - 1;
        self.by_addr.insert(addr, index);
        self.drain_client(index);
        index
    }

    /// Client `client` publishes stream `key` (audio and/or video, video optionally simulcast
    /// with `rids`, best first). Does the offer/answer; connection follows in
    /// [`Sim::run_until`].
    pub fn publish(
        &mut self,
        client: usize,
        key: StreamKey,
        audio: bool,
        video: bool,
        rids: &[&str],
    ) -> Result<Published, MediaError> {
        let offer = self.clients[client]
            .peer
            .publish_offer(audio, video, rids)
            .map_err(media_error)?;
        let answer =
            self.engine(|sfu, now| sfu.accept_offer(now, key, &offer.sdp, MediaCodec::DEFAULT))?;
        self.clients[client]
            .peer
            .accept_answer(&answer)
            .map_err(media_error)?;
        self.drain_client(client);
        Ok(Published {
            audio: offer.audio,
            video: offer.video,
            answer,
        })
    }

    /// Client `client` receives `source` as down stream `key` with `selection`.
    pub fn subscribe(
        &mut self,
        client: usize,
        key: StreamKey,
        source: StreamKey,
        selection: Selection,
    ) -> Result<(), MediaError> {
        let offer = self.engine(|sfu, now| {
            sfu.create_down(now, key, source, LinkKey(client as u64), selection)
        })?;
        self.answer_offer(client, key, offer)
    }

    /// Client `client` offers to receive audio and video and the server answers with down
    /// stream `key` carrying `codecs` ([`Sfu::answer_down`], as for a WHEP viewer), with no
    /// source yet.
    pub fn view(
        &mut self,
        client: usize,
        key: StreamKey,
        codecs: &[MediaCodec],
    ) -> Result<Published, MediaError> {
        let offer = self.clients[client]
            .peer
            .receive_offer(true, true)
            .map_err(media_error)?;
        let link = LinkKey(client as u64);
        let answer = self.engine(|sfu, now| sfu.answer_down(now, key, link, &offer.sdp, codecs))?;
        self.clients[client]
            .peer
            .accept_answer(&answer)
            .map_err(media_error)?;
        self.drain_client(client);
        Ok(Published {
            audio: offer.audio,
            video: offer.video,
            answer,
        })
    }

    /// Client `client` answers the server's `offer` for down stream `key` (and any follow-up).
    pub fn answer_offer(
        &mut self,
        client: usize,
        key: StreamKey,
        offer: String,
    ) -> Result<(), MediaError> {
        let mut offer = Some(offer);
        while let Some(sdp) = offer.take() {
            let answer = self.clients[client]
                .peer
                .answer_offer(&sdp)
                .map_err(media_error)?;
            self.drain_client(client);
            offer = self.engine(|sfu, now| sfu.accept_answer(now, key, &answer))?;
        }
        Ok(())
    }

    /// Adds a media source on `client`'s m-line `mid` (and simulcast `rid`), starting now.
    pub fn add_source(
        &mut self,
        client: usize,
        mid: Mid,
        rid: Option<&str>,
        kind: MediaKind,
        layer_tag: u8,
    ) -> usize {
        let (packets_per_frame, payload_len) = match kind {
            MediaKind::Audio => (1, 120),
            MediaKind::Video => (3, 1000),
        };
        self.sources.push(Source {
            client,
            mid,
            rid: rid.map(Rid::from),
            kind,
            frame_interval: match kind {
                MediaKind::Audio => Duration::from_millis(20),
                MediaKind::Video => Duration::from_micros(33_333),
            },
            packets_per_frame,
            payload_len,
            layer_tag,
            sent: 0,
            next_at: self.now,
            seq: 1000 * (self.sources.len() as u64 + 1),
            ts: 0,
            keyframe_due: true,
            temporal_layers: false,
            picture_id: 0x7ff0,
            tl0_pic_idx: 250,
            frames_since_keyframe: 0,
        });
        self.sources.len() - 1
    }

    /// Runs the engine call `f`, then moves its output into the network.
    pub fn engine<T>(&mut self, f: impl FnOnce(&mut Sfu, Instant) -> T) -> T {
        if let Some(probe) = self.probe {
            probe(true);
        }
        let result = f(&mut self.sfu, self.now);
        let mut outgoing = std::mem::take(&mut self.outgoing);
        while let Some(t) = self.sfu.poll_transmit() {
            outgoing.push(t);
        }
        while let Some(e) = self.sfu.poll_event() {
            self.events.push(e);
        }
        while let Some(p) = self.sfu.poll_sink_packet() {
            self.sink_packets.push(p);
        }
        if let Some(probe) = self.probe {
            probe(false);
        }
        for t in outgoing.drain(..) {
            self.server_datagrams += 1;
            if self.deliver_to_clients {
                self.send(t.source, t.destination, t.contents);
            }
        }
        self.outgoing = outgoing;
        result
    }

    /// Advances time to `until`, handling every event on the way.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next = self.next_event();
            let Some(next) = next.filter(|n| *n <= until) else {
                self.now = until;
                return;
            };
            // Never stand still: an engine asking for "now" again gets a tick later.
            self.now = next.max(self.now);
            self.step();
        }
    }

    /// Runs for `d` from now.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn next_event(&mut self) -> Option<Instant> {
        let mut next = self.in_flight.peek().map(|p| p.at);
        let mut fold = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.sfu.poll_timeout() {
            fold(t);
        }
        for c in &self.clients {
            fold(c.peer.deadline);
        }
        for s in &self.sources {
            fold(s.next_at);
        }
        next
    }

    fn step(&mut self) {
        let now = self.now;
        while self.in_flight.peek().is_some_and(|p| p.at <= now) {
            let Some(p) = self.in_flight.pop() else {
                break;
            };
            self.deliver(p);
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.engine(|sfu, now| sfu.handle_timeout(now));
        }
        for i in 0..self.clients.len() {
            if self.clients[i].peer.deadline <= now {
                self.clients[i].peer.handle_timeout(now);
                self.drain_client(i);
                let peer = &mut self.clients[i].peer;
                if peer.deadline <= now {
                    peer.deadline = now + Duration::from_millis(1);
                }
            }
        }
        for i in 0..self.sources.len() {
            if self.sources[i].next_at <= now {
                self.send_from_source(i);
            }
        }
    }

    fn deliver(&mut self, p: InFlight) {
        if p.to == self.sfu_addr {
            // Garbage and strays are the engine's problem: it must say no, not panic.
            let _ = self.engine(|sfu, now| sfu.handle_receive(now, p.from, p.to, &p.data));
            return;
        }
        let Some(&i) = self.by_addr.get(&p.to) else {
            return;
        };
        if self.clients[i].peer.receive(self.now, p.from, &p.data) {
            self.drain_client(i);
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let client_addr = if from == self.sfu_addr { to } else { from };
        let Some(&i) = self.by_addr.get(&client_addr) else {
            return;
        };
        let link = self.clients[i].link;
        if link.loss > 0.0 && self.rng.next_f64() < link.loss {
            return;
        }
        let mut at = self.now + link.latency;
        if let Some(rate) = link.down_rate.filter(|_| from == self.sfu_addr) {
            let now = self.now;
            let client = &mut self.clients[i];
            let Some(departure) = client
                .shaper
                .enqueue(now, &link, rate, data.len() as u64 + 28)
            else {
                client.shaper_drops += 1;
                return; // the queue is full: tail drop
            };
            at = departure + link.latency;
        }
        self.order += 1;
        self.in_flight.push(InFlight {
            at,
            order: self.order,
            from,
            to,
            data,
        });
    }

    /// Client `client` writes one RTP packet now (see [`TestPeer::write_rtp`]) and sends
    /// what that produces; says whether it was written (false before negotiation).
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp(
        &mut self,
        client: usize,
        codec: Codec,
        mid: Mid,
        rid: Option<Rid>,
        seq: u64,
        ts: u32,
        marker: bool,
        payload: Vec<u8>,
    ) -> bool {
        let now = self.now;
        let Some(c) = self.clients.get_mut(client) else {
            return false;
        };
        let written = c
            .peer
            .write_rtp(codec, mid, rid, seq, ts, now, marker, payload);
        if written {
            self.drain_client(client);
        }
        written
    }

    /// Injects a raw datagram to the server, arriving after `delay`.
    pub fn inject(&mut self, from: SocketAddr, data: Vec<u8>, delay: Duration) {
        self.order += 1;
        self.in_flight.push(InFlight {
            at: self.now + delay,
            order: self.order,
            from,
            to: self.sfu_addr,
            data,
        });
    }

    fn drain_client(&mut self, i: usize) {
        while let Some(out) = self.clients[i].peer.poll() {
            match out {
                PeerOutput::Transmit(t) => self.send(t.source, t.destination, t.contents.into()),
                PeerOutput::Rtp(rtp) => self.client_rtp(i, rtp),
                PeerOutput::Event(e) => self.client_event(i, e),
            }
        }
    }

    fn client_rtp(&mut self, i: usize, rtp: ReceivedRtp) {
        let ReceivedRtp {
            mid,
            kind,
            packet: p,
        } = rtp;
        let Some(mid) = mid else {
            return;
        };
        self.clients[i].received.push(SeenRtp {
            mid,
            kind: kind.unwrap_or(MediaKind::Audio),
            seq: *p.seq_no,
            ts: p.header.timestamp,
            pt: *p.header.payload_type,
            layer_tag: p.payload.get(LAYER_TAG_OFFSET).copied().unwrap_or(0),
            head: {
                let mut head = [0; HEAD_LEN];
                let n = p.payload.len().min(HEAD_LEN);
                head[..n].copy_from_slice(&p.payload[..n]);
                head
            },
            marker: p.header.marker,
            at: p.timestamp,
        });
    }

    fn client_event(&mut self, i: usize, event: Event) {
        let c = &mut self.clients[i];
        match event {
            Event::EgressBitrateEstimate(BweKind::Remb { estimate, .. }) => {
                c.remb = Some(estimate.as_u64());
            }
            Event::KeyframeRequest(r) => {
                c.keyframe_requests += 1;
                for s in &mut self.sources {
                    if s.client == i && s.mid == r.mid && (r.rid.is_none() || r.rid == s.rid) {
                        s.keyframe_due = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn send_from_source(&mut self, i: usize) {
        let now = self.now;
        let s = &mut self.sources[i];
        let (clock_rate, codec) = match s.kind {
            MediaKind::Audio => (48_000.0, Codec::Opus),
            MediaKind::Video => (90_000.0, Codec::Vp8),
        };
        let interval = s.frame_interval;
        let ts_step = (interval.as_secs_f64() * clock_rate).round() as u32;
        s.next_at = now + interval;
        let client = s.client;
        if !self.clients[client].peer.connected {
            return;
        }
        if self.clients[client].peer.payload_type(codec).is_none() {
            return;
        }
        let s = &mut self.sources[i];
        let keyframe = std::mem::take(&mut s.keyframe_due);
        // Temporal layers: TIDs 0, 2, 1, 2; layer sync on the first TL1 and TL2 frames of
        // each cycle (they refer to TL0 only).
        if keyframe {
            s.frames_since_keyframe = 0;
        }
        let phase = s.frames_since_keyframe % 4;
        let tid: u8 = [0, 2, 1, 2][phase as usize];
        let layer_sync = phase == 1 || phase == 2;
        s.frames_since_keyframe += 1;
        s.picture_id = (s.picture_id + 1) & 0x7fff;
        if tid == 0 {
            s.tl0_pic_idx = s.tl0_pic_idx.wrapping_add(1);
        }
        let (temporal, picture_id, tl0) = (s.temporal_layers, s.picture_id, s.tl0_pic_idx);
        s.ts = s.ts.wrapping_add(ts_step);
        let (mid, rid, count, len, tag, ts) = (
            s.mid,
            s.rid,
            s.packets_per_frame,
            s.payload_len,
            s.layer_tag,
            s.ts,
        );
        for n in 0..count {
            let s = &mut self.sources[i];
            let mut payload = vec![0u8; len.max(LAYER_TAG_OFFSET + 1)];
            if s.kind == MediaKind::Video && temporal {
                payload.resize(payload.len().max(TEMPORAL_TAG_OFFSET + 1), 0);
                // X, S on the first packet; I, L, T; 15-bit picture ID; TL0PICIDX; TID and Y;
                // then the VP8 payload header (P bit clear on keyframes).
                payload[0] = 0x80 | if n == 0 { 0x10 } else { 0x00 };
                payload[1] = 0xe0;
                payload[2] = 0x80 | (picture_id >> 8) as u8;
                payload[3] = picture_id as u8;
                payload[4] = tl0;
                payload[5] = (tid << 6) | if layer_sync { 0x20 } else { 0 };
                payload[6] = if keyframe { 0x00 } else { 0x01 };
                payload[TEMPORAL_TAG_OFFSET] = tag;
            } else if s.kind == MediaKind::Video {
                // VP8 descriptor: S bit on the first packet; P bit clear on keyframes.
                write_vp8_start(&mut payload, n == 0, keyframe);
                payload[LAYER_TAG_OFFSET] = tag;
            } else {
                payload[LAYER_TAG_OFFSET] = tag;
            }
            let seq = s.seq;
            s.seq += 1;
            s.sent += 1;
            let peer = &mut self.clients[client].peer;
            if !peer.write_rtp(codec, mid, rid, seq, ts, now, n + 1 == count, payload) {
                return;
            }
            self.drain_client(client);
        }
    }
}

/// The engine's error for a test peer's failure.
fn media_error(e: PeerError) -> MediaError {
    match e {
        PeerError::NothingToOffer => MediaError::NothingSelected,
        PeerError::BadSdp(e) => MediaError::BadSdp(e),
        PeerError::Negotiation(e) => MediaError::Negotiation(e),
        e => MediaError::Negotiation(e.to_string()),
    }
}
