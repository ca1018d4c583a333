//! The media input target's world and input format.
//!
//! A [`World`] is an `Sfu` with established streams, over the in-memory network of
//! `sfubox::media::sim`: a publisher (audio, simulcast video with layers `h` and `l`) and two
//! subscribers, one receiving everything at the high layer, one audio and the low layer. Their
//! ICE, DTLS and SRTP are up before the first input, which takes a real handshake (tens of
//! milliseconds): the world is therefore built once and kept from input to input (like a
//! long-running server), and rebuilt when a stream has died, after [`REBUILD_AFTER`] inputs or
//! once the engine has sent [`DATAGRAM_BUDGET`] datagrams, so that a run does not drift far
//! from the established state. A crash found this way may depend on the inputs before it; the
//! crashing input is replayed on a fresh world first.
//!
//! Simulated time is what costs: the engine's down streams pace and probe, so the engine and
//! its peers wake every few milliseconds (about 3 µs of work per simulated millisecond,
//! instrumented). Time therefore passes event by event for at most 254 ms per operation, and
//! longer gaps are jumps; the world's clock keeps running from input to input, so its
//! long timers (reports, keep-alives, keyframe requests) still fire.
//!
//! # Input format
//!
//! A sequence of operations, each an opcode byte, a length byte `n` and `n` bytes of argument
//! (fewer at the end of the input). After every operation the network runs (datagrams are
//! delivered, due timers fire) and the engine's invariants are checked.
//!
//! | opcode % 12 | operation |
//! |---|---|
//! | 0, 1, 2 | the argument as a raw datagram from the publisher, subscriber 1 or 2 |
//! | 3 | the rest as a raw datagram from an unknown address (port from the first two bytes) |
//! | 4 | a STUN binding request with valid `MESSAGE-INTEGRITY` and `FINGERPRINT` for one of the streams (byte 0), from its client's address or a new one (byte 1), with fuzzed priority, tie-breaker, `USE-CANDIDATE` and extra attributes (the rest, as raw bytes) |
//! | 5 | the argument after a STUN header (binding request, magic cookie), from a client |
//! | 6 | the argument after a DTLS record header (content type and version from byte 0) |
//! | 7 | an unauthenticated RTP-looking datagram (payload type and marker from byte 0) |
//! | 8 | an unauthenticated RTCP-looking datagram (packet type 200–206 from byte 0) |
//! | 9 | a valid SRTP packet from the publisher: m-line and layer from byte 0, sequence number and timestamp steps from bytes 1–3, the rest as the payload (VP8 descriptors, Opus) |
//! | 10 | time passes: byte 0 below 128, 0–254 ms (× 2 ms) with every event on the way handled; otherwise the clock jumps 0–2.54 s (low 7 bits × 20 ms) at once, as on a stalled host, and what is due then fires |
//! | 11 | subscriber 1 switches layer or stops video (byte 0) |

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfubox::media::sim::{LinkConfig, Sim};
use sfubox::media::{LinkKey, Selection, StreamKey, VideoChoice};
use str0m::format::Codec;
use str0m::media::{Mid, Rid};

/// Inputs a world serves before it is rebuilt.
pub const REBUILD_AFTER: u64 = 20_000;

/// Datagrams the engine may send in a world's life before it is rebuilt. An established world
/// sends a few a simulated second; one where the fuzzer's publisher has pushed megabits with
/// little time passing sends tens of thousands a second (apparently the down streams probing
/// towards the publisher's measured rate), and every simulated millisecond of it
/// costs a hundred times more to run.
pub const DATAGRAM_BUDGET: u64 = 50_000;

const SERVER: ([u8; 4], u16) = ([10, 0, 0, 1], 8443);
const PUBLISHER: ([u8; 4], u16) = ([10, 0, 0, 2], 5000);
const SUBSCRIBER_1: ([u8; 4], u16) = ([10, 0, 0, 3], 5000);
const SUBSCRIBER_2: ([u8; 4], u16) = ([10, 0, 0, 4], 5000);

const UP: StreamKey = StreamKey(1);
const DOWN_1: StreamKey = StreamKey(2);
const DOWN_2: StreamKey = StreamKey(3);

/// One stream's client and the server's ICE credentials for it.
struct Stream {
    client: usize,
    ufrag: String,
    pwd: String,
}

/// The engine with its three established streams.
pub struct World {
    sim: Sim,
    streams: Vec<Stream>,
    audio: Mid,
    video: Mid,
    seq: u64,
    ts: u32,
    inputs: u64,
}

fn addr((ip, port): ([u8; 4], u16)) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP.
fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let find = |prefix: &str| {
        sdp.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    Some((find("a=ice-ufrag:")?, find("a=ice-pwd:")?))
}

impl World {
    /// Builds the world and runs it until every stream is connected; `None` if that fails
    /// (it does not, with a working crypto provider).
    pub fn new() -> Option<World> {
        let mut sim = Sim::new(Instant::now(), addr(SERVER), 7).ok()?;
        let publisher = sim.add_client(addr(PUBLISHER), LinkConfig::CLEAN);
        let published = sim.publish(publisher, UP, true, true, &["h", "l"]).ok()?;
        let (ufrag, pwd) = ice_credentials(&published.answer)?;
        let mut streams = vec![Stream {
            client: publisher,
            ufrag,
            pwd,
        }];
        let audio = published.audio?;
        let video = published.video?;
        // The publisher connects and announces its tracks before anyone subscribes.
        sim.run_for(Duration::from_millis(500));
        let low = Selection {
            audio: true,
            video: VideoChoice::Low,
        };
        for (address, key, selection) in [
            (SUBSCRIBER_1, DOWN_1, Selection::ALL),
            (SUBSCRIBER_2, DOWN_2, low),
        ] {
            let client = sim.add_client(addr(address), LinkConfig::CLEAN);
            let offer = sim.engine(|sfu, now| {
                sfu.create_down(now, key, UP, LinkKey(client as u64), selection)
            });
            let offer = offer.ok()?;
            let (ufrag, pwd) = ice_credentials(&offer)?;
            sim.answer_offer(client, key, offer).ok()?;
            streams.push(Stream { client, ufrag, pwd });
        }
        let mut world = World {
            sim,
            streams,
            audio,
            video,
            seq: 1,
            ts: 0,
            inputs: 0,
        };
        for _ in 0..40 {
            world.sim.run_for(Duration::from_millis(50));
            if world.healthy() {
                return Some(world);
            }
        }
        None
    }

    /// The world has sent its [`DATAGRAM_BUDGET`].
    fn spent(&self) -> bool {
        self.sim.server_datagrams >= DATAGRAM_BUDGET
    }

    /// Every stream's client is connected and none has failed.
    fn healthy(&self) -> bool {
        self.sim
            .clients
            .iter()
            .all(|c| c.peer.connected && c.peer.failed.is_none())
            && self.sim.sfu.counts().streams == self.streams.len()
    }

    fn client_addr(&self, stream: usize) -> SocketAddr {
        let client = self.streams[stream % self.streams.len()].client;
        self.sim.clients[client].peer.addr
    }

    fn inject(&mut self, from: SocketAddr, datagram: Vec<u8>) {
        self.sim.inject(from, datagram, Duration::ZERO);
    }

    /// Applies one operation.
    fn apply(&mut self, opcode: u8, arg: &[u8]) {
        let byte = |i: usize| arg.get(i).copied().unwrap_or(0);
        match opcode % 12 {
            op @ 0..=2 => self.inject(self.client_addr(usize::from(op)), arg.to_vec()),
            3 => {
                let port = u16::from_be_bytes([byte(0), byte(1)]);
                let from = SocketAddr::from(([192, 0, 2, 77], port));
                self.inject(from, arg.get(2..).unwrap_or_default().to_vec());
            }
            4 => self.stun(arg),
            5 => {
                let mut datagram = vec![0x00, 0x01];
                datagram.extend_from_slice(&(arg.len() as u16).to_be_bytes());
                datagram.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
                datagram.extend_from_slice(&[7; 12]);
                datagram.extend_from_slice(arg);
                self.inject(self.client_addr(usize::from(byte(0))), datagram);
            }
            6 => {
                // Content types 20-25 (change_cipher_spec ... ack), DTLS 1.2 or 1.0.
                let version = if byte(0) & 0x80 == 0 { 0xfd } else { 0xff };
                let mut datagram = vec![20 + byte(0) % 6, 0xfe, version];
                datagram.extend_from_slice(&[0, byte(1) & 1, 0, 0, 0, 0, 0, byte(2)]);
                datagram.extend_from_slice(&(arg.len() as u16).to_be_bytes());
                datagram.extend_from_slice(arg);
                self.inject(self.client_addr(usize::from(byte(1) >> 1)), datagram);
            }
            7 => {
                let mut datagram = vec![0x80, byte(0)];
                datagram.extend_from_slice(arg.get(1..).unwrap_or_default());
                datagram.resize(datagram.len().max(12), 0);
                self.inject(self.client_addr(0), datagram);
            }
            8 => {
                let mut datagram = vec![0x80 | (byte(1) & 0x1f), 200 + byte(0) % 7];
                datagram.extend_from_slice(arg.get(2..).unwrap_or_default());
                datagram.resize(datagram.len().max(8), 0);
                self.inject(self.client_addr(1 + usize::from(byte(1) >> 7)), datagram);
            }
            9 => self.rtp(arg),
            10 => {
                let steps = u64::from(byte(0) & 0x7f);
                if byte(0) & 0x80 == 0 {
                    // Every event on the way is handled, as in a real run.
                    self.sim.run_for(Duration::from_millis(2 * steps));
                } else {
                    // A stalled host: the clock jumps, then everything due fires once.
                    self.sim.now += Duration::from_millis(20 * steps);
                    self.sim.run_for(Duration::ZERO);
                }
            }
            _ => {
                let video = match byte(0) % 3 {
                    0 => VideoChoice::High,
                    1 => VideoChoice::Low,
                    _ => VideoChoice::None,
                };
                let selection = Selection {
                    audio: byte(0) & 0x80 == 0,
                    video,
                };
                let offer = self
                    .sim
                    .engine(|sfu, now| sfu.set_selection(now, DOWN_1, selection));
                if let Ok(Some(offer)) = offer {
                    let client = self.streams[1].client;
                    // A refused renegotiation leaves the stream to die; the world is rebuilt.
                    let _ = self.sim.answer_offer(client, DOWN_1, offer);
                }
            }
        }
    }

    /// A STUN binding request with valid integrity for a stream, fuzzed around it.
    fn stun(&mut self, arg: &[u8]) {
        let byte = |i: usize| arg.get(i).copied().unwrap_or(0);
        let stream = usize::from(byte(0)) % self.streams.len();
        let from = if byte(1) & 1 == 0 {
            self.client_addr(stream)
        } else {
            SocketAddr::from(([10, 0, 1, byte(1)], 6000 + u16::from(byte(2))))
        };
        let (ufrag, pwd) = {
            let s = &self.streams[stream];
            (s.ufrag.clone(), s.pwd.clone())
        };
        // The server's ufrag first, the client's (whatever it is) second.
        let username = format!("{ufrag}:fz{:02x}", byte(3));
        let mut priority = [0u8; 4];
        let mut tie_breaker = [0u8; 8];
        for (i, b) in priority.iter_mut().enumerate() {
            *b = byte(4 + i);
        }
        for (i, b) in tie_breaker.iter_mut().enumerate() {
            *b = byte(8 + i);
        }
        let extra = arg.get(16..).unwrap_or_default();
        let datagram = stun_request(
            &username,
            &pwd,
            priority,
            tie_breaker,
            byte(1) & 2 != 0,
            byte(1) & 4 != 0,
            extra,
        );
        self.inject(from, datagram);
    }

    /// A valid SRTP packet from the publisher with a fuzzed payload.
    fn rtp(&mut self, arg: &[u8]) {
        let byte = |i: usize| arg.get(i).copied().unwrap_or(0);
        let (codec, mid, rid) = match byte(0) % 3 {
            0 => (Codec::Opus, self.audio, None),
            1 => (Codec::Vp8, self.video, Some(Rid::from("h"))),
            _ => (Codec::Vp8, self.video, Some(Rid::from("l"))),
        };
        // Mostly forward, sometimes back or far ahead.
        self.seq = match byte(1) {
            0xff => self.seq.saturating_sub(100),
            0xfe => self.seq + 30_000,
            step => self.seq + u64::from(step % 4),
        };
        self.ts = self
            .ts
            .wrapping_add(u32::from(u16::from_be_bytes([byte(2), byte(3)])));
        let marker = byte(0) & 0x80 != 0;
        let payload = arg.get(4..).unwrap_or_default().to_vec();
        let publisher = self.streams[0].client;
        self.sim.write_rtp(
            publisher, codec, mid, rid, self.seq, self.ts, marker, payload,
        );
    }

    /// What must hold after every operation.
    fn check(&mut self) {
        let counts = self.sim.sfu.counts();
        assert!(counts.streams <= self.streams.len(), "{counts:?}");
        // A peer keeps at most four addresses; the ufrag map holds one per stream.
        assert!(counts.routes <= 4 * self.streams.len(), "{counts:?}");
        assert!(counts.ufrags <= self.streams.len(), "{counts:?}");
        assert!(counts.queued_transmits <= 4096, "{counts:?}");
        while self.sim.sfu.poll_event().is_some() {}
    }
}

/// A STUN binding request: `USERNAME`, `PRIORITY`, `ICE-CONTROLLING`, optionally
/// `USE-CANDIDATE`, `extra` as raw attribute bytes (padded), then `MESSAGE-INTEGRITY` with
/// `pwd` (or a corrupted one) and `FINGERPRINT`.
fn stun_request(
    username: &str,
    pwd: &str,
    priority: [u8; 4],
    tie_breaker: [u8; 8],
    use_candidate: bool,
    corrupt: bool,
    extra: &[u8],
) -> Vec<u8> {
    fn attribute(message: &mut Vec<u8>, kind: u16, value: &[u8]) {
        message.extend_from_slice(&kind.to_be_bytes());
        message.extend_from_slice(&(value.len() as u16).to_be_bytes());
        message.extend_from_slice(value);
        while message.len() % 4 != 0 {
            message.push(0);
        }
    }
    fn set_length(message: &mut [u8], attributes: usize) {
        let length = (attributes as u16).to_be_bytes();
        message[2] = length[0];
        message[3] = length[1];
    }
    let mut message = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    message.extend_from_slice(&[0x5a; 12]);
    attribute(&mut message, 0x0006, username.as_bytes());
    attribute(&mut message, 0x0024, &priority);
    attribute(&mut message, 0x802a, &tie_breaker);
    if use_candidate {
        attribute(&mut message, 0x0025, &[]);
    }
    message.extend_from_slice(extra);
    while message.len() % 4 != 0 {
        message.push(0);
    }
    // MESSAGE-INTEGRITY covers the message with the length counting itself.
    let length = message.len() - 20 + 24;
    set_length(&mut message, length);
    let crypto = str0m::crypto::from_feature_flags();
    let mut mac = crypto
        .sha1_hmac_provider
        .sha1_hmac(pwd.as_bytes(), &[&message]);
    if corrupt {
        mac[0] ^= 1;
    }
    attribute(&mut message, 0x0008, &mac);
    // FINGERPRINT covers everything before it, with the length counting it too.
    let length = message.len() - 20 + 8;
    set_length(&mut message, length);
    let fingerprint = crc32(&message) ^ 0x5354_554e;
    attribute(&mut message, 0x8028, &fingerprint.to_be_bytes());
    message
}

/// CRC-32 (IEEE), as STUN's `FINGERPRINT` uses.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

thread_local! {
    static WORLD: std::cell::RefCell<Option<World>> = const { std::cell::RefCell::new(None) };
}

/// Runs one input against the kept world (built or rebuilt as needed).
pub fn run(data: &[u8]) {
    WORLD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stale = slot
            .as_ref()
            .is_none_or(|w| w.inputs >= REBUILD_AFTER || w.spent() || !w.healthy());
        if stale {
            // Building cannot fail with a working crypto provider; if it does, the target
            // is broken, not the engine.
            *slot = Some(World::new().expect("an established media world"));
        }
        let Some(world) = slot.as_mut() else {
            return;
        };
        world.inputs += 1;
        let mut rest = data;
        while let [opcode, len, tail @ ..] = rest {
            if world.spent() {
                // The rest of the input would only flood; the next input gets a new world.
                break;
            }
            let n = usize::from(*len).min(tail.len());
            let (arg, after) = tail.split_at(n);
            world.apply(*opcode, arg);
            world.sim.run_for(Duration::ZERO);
            world.check();
            rest = after;
        }
        // What the input started (retransmissions, feedback, keyframe requests) happens when
        // a later operation lets time pass.
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn stun_fingerprint_matches_a_known_crc() {
        assert_eq!(super::crc32(b"123456789"), 0xcbf4_3926);
    }
}
