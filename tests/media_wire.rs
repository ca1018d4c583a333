//! Media through sfubox end to end: str0m peers over real UDP on 127.0.0.1, speaking Galène's
//! protocol over the real WebSocket (offers, answers, ICE, stream requests and statistics as
//! Galène defines them; see docs/galene.md). No mocks: the server is the
//! production runtime, the peers are full-ICE str0m `Rtc`s in RTP mode with their own
//! sockets, sending fake VP8 and Opus RTP (a packet index in every payload, so receivers
//! can count what arrived).

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Setup, TestServer, WsClient};
use serde_json::{Value, json};
use sfubox::app::{App, ConnId, ConnOutput, GroupLookup, GroupStatus};
use sfubox::config::{ConfigError, FileCache, FileNeed, GlobalConfig};
use sfubox::http::camus::CamusSource;
use sfubox::http::route::GroupSource;
use sfubox::media::{Sfu, SfuConfig};
use sfubox::run::Engine;
use sfubox::testing::{PeerConfig, PeerOutput, TestPeer, write_vp8_start};
use str0m::Event;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Rid};

const GROUP: &str = r#"{"wildcard-user": {"password": "pw", "permissions": "present"},
                        "users": {"boss": {"password": "boss", "permissions": "op"}}}"#;

/// Where in a payload the sending source writes its tag and packet index.
const TAG_AT: usize = 2;
const INDEX_AT: usize = 4;

// ---------------------------------------------------------------------------- peers

/// One RTP packet a peer received.
#[derive(Debug, Clone, Copy)]
struct Seen {
    kind: MediaKind,
    tag: u8,
    index: u64,
}

/// A browser stand-in: the shared test peer (one str0m `Rtc`) on its own UDP socket.
struct Peer {
    peer: TestPeer,
    socket: UdpSocket,
    /// Fraction of incoming RTP/RTCP datagrams dropped once connected.
    loss: f64,
    rng: u64,
    received: Vec<Seen>,
    keyframe_requests: usize,
}

impl Peer {
    fn new(config: &PeerConfig) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let peer = TestPeer::new(addr, Instant::now(), config).unwrap();
        let mut peer = Peer {
            peer,
            socket,
            loss: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15,
            received: Vec::new(),
            keyframe_requests: 0,
        };
        peer.drain();
        peer
    }

    fn connected(&self) -> bool {
        self.peer.connected
    }

    fn candidate_json(&self) -> Value {
        json!({"candidate": self.peer.candidate_line(), "sdpMid": "0", "sdpMLineIndex": 0})
    }

    fn drop_this_one(&mut self) -> bool {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x % 10_000) as f64 / 10_000.0 < self.loss
    }

    fn pump(&mut self) {
        let mut buf = [0u8; 2000];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            let data = &buf[..n];
            let rtp = n > 0 && (128..192).contains(&data[0]);
            if self.connected() && rtp && self.loss > 0.0 && self.drop_this_one() {
                continue;
            }
            if self.peer.receive(Instant::now(), from, data) {
                self.drain();
            }
        }
        if self.peer.timeout_due(Instant::now()) {
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.peer.poll() {
            match out {
                PeerOutput::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                PeerOutput::Event(Event::KeyframeRequest(_)) => self.keyframe_requests += 1,
                PeerOutput::Event(_) => {}
                PeerOutput::Rtp(rtp) => {
                    let payload = &rtp.packet.payload;
                    let index = payload
                        .get(INDEX_AT..INDEX_AT + 8)
                        .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
                        .unwrap_or(u64::MAX);
                    self.received.push(Seen {
                        kind: rtp.kind.unwrap_or(MediaKind::Audio),
                        tag: payload.get(TAG_AT).copied().unwrap_or(0),
                        index,
                    });
                }
            }
        }
    }

    /// An offer to publish audio and/or video (simulcast with `rids`).
    fn publish_offer(&mut self, audio: bool, video: bool, rids: &[&str]) -> (String, Vec<Mid>) {
        let offer = self.peer.publish_offer(audio, video, rids).unwrap();
        self.drain();
        let mids = offer.audio.into_iter().chain(offer.video).collect();
        (offer.sdp, mids)
    }

    fn accept_answer(&mut self, sdp: &str) {
        self.peer.accept_answer(sdp).unwrap();
        self.drain();
    }

    fn answer_offer(&mut self, sdp: &str) -> String {
        let answer = self.peer.answer_offer(sdp).unwrap();
        self.drain();
        answer
    }

    fn distinct(&self, kind: MediaKind, tag: u8) -> BTreeSet<u64> {
        self.received
            .iter()
            .filter(|s| s.kind == kind && s.tag == tag)
            .map(|s| s.index)
            .collect()
    }
}

/// A periodic RTP writer on a peer: Opus every 20 ms, VP8 at 30 frames/s of 3 packets.
struct Source {
    peer: usize,
    mid: Mid,
    rid: Option<Rid>,
    kind: MediaKind,
    tag: u8,
    next_at: Instant,
    seq: u64,
    ts: u32,
    index: u64,
    keyframe_requests_seen: usize,
    keyframe_due: bool,
}

impl Source {
    fn new(peer: usize, mid: Mid, rid: Option<&str>, kind: MediaKind, tag: u8) -> Source {
        Source {
            peer,
            mid,
            rid: rid.map(Rid::from),
            kind,
            tag,
            next_at: Instant::now(),
            seq: 1000,
            ts: 0,
            index: 0,
            keyframe_requests_seen: 0,
            keyframe_due: true,
        }
    }
}

/// Peers and sources, pumped in real time.
struct World {
    config: PeerConfig,
    peers: Vec<Peer>,
    sources: Vec<Source>,
}

impl World {
    fn new() -> World {
        World {
            config: PeerConfig::new(),
            peers: Vec::new(),
            sources: Vec::new(),
        }
    }

    fn add_peer(&mut self) -> usize {
        let peer = Peer::new(&self.config);
        self.peers.push(peer);
        self.peers.len() - 1
    }

    /// Pumps everything for `d`.
    fn run(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.step();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Pumps until `done` holds (panics after `limit`).
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) {
        let until = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < until,
                "condition not reached within {limit:?}"
            );
            self.step();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn step(&mut self) {
        for peer in &mut self.peers {
            peer.pump();
        }
        let now = Instant::now();
        for i in 0..self.sources.len() {
            if self.sources[i].next_at <= now {
                self.send(i, now);
            }
        }
    }

    fn send(&mut self, i: usize, now: Instant) {
        let s = &mut self.sources[i];
        let (interval, ts_step, codec, count, len) = match s.kind {
            MediaKind::Audio => (Duration::from_millis(20), 960, Codec::Opus, 1, 100),
            MediaKind::Video => (Duration::from_micros(33_333), 3000, Codec::Vp8, 3, 900),
        };
        s.next_at += interval;
        if s.next_at < now {
            s.next_at = now + interval;
        }
        let peer = &mut self.peers[s.peer];
        if !peer.connected() {
            return;
        }
        if peer.keyframe_requests > s.keyframe_requests_seen {
            s.keyframe_requests_seen = peer.keyframe_requests;
            s.keyframe_due = true;
        }
        if peer.peer.payload_type(codec).is_none() {
            return;
        }
        let keyframe = std::mem::take(&mut s.keyframe_due);
        s.ts = s.ts.wrapping_add(ts_step);
        for n in 0..count {
            let mut payload = vec![0u8; len];
            if s.kind == MediaKind::Video {
                // VP8 payload descriptor (S bit on a frame's first packet), then the VP8
                // header's P bit: clear on keyframes.
                write_vp8_start(&mut payload, n == 0, keyframe);
            }
            payload[TAG_AT] = s.tag;
            payload[INDEX_AT..INDEX_AT + 8].copy_from_slice(&s.index.to_be_bytes());
            s.index += 1;
            let seq = s.seq;
            s.seq += 1;
            let marker = n + 1 == count;
            if !peer
                .peer
                .write_rtp(codec, s.mid, s.rid, seq, s.ts, now, marker, payload)
            {
                return;
            }
            peer.drain();
        }
    }
}

// ---------------------------------------------------------------------------- signalling

fn server() -> TestServer {
    TestServer::start(Setup::insecure().group("g", GROUP))
}

/// A joined client of the given dialect.
fn client(server: &TestServer, id: &str, seed: bool) -> WsClient {
    let mut ws = server.ws_connect();
    if seed {
        ws.send_json(json!({"type": "handshake", "id": id}));
    } else {
        ws.send_json(json!({"type": "handshake", "version": ["2"], "id": id}));
    }
    ws.recv_type("handshake");
    ws.send_json(json!({"type": "join", "kind": "join", "group": "g",
                        "username": id, "password": "pw"}));
    let joined = ws.recv_type("joined");
    assert_eq!(joined["kind"], "join", "{joined}");
    ws
}

/// The next message that is about streams (offer, answer, close, abort, renegotiate, ice or
/// an error), skipping membership traffic.
#[track_caller]
fn next_media(ws: &mut WsClient) -> Value {
    next_media_within(ws, Duration::from_secs(5)).expect("no media message within 5 s")
}

fn next_media_within(ws: &mut WsClient, limit: Duration) -> Option<Value> {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let value = ws.recv_json_within(left)?;
        match value["type"].as_str() {
            Some("offer" | "answer" | "close" | "abort" | "renegotiate" | "ice") => {
                return Some(value);
            }
            Some("usermessage") if value["kind"] == "error" => return Some(value),
            _ => {}
        }
    }
}

/// Publishes from `peer` as stream `id` and applies the answer.
fn publish(
    world: &mut World,
    ws: &mut WsClient,
    peer: usize,
    id: &str,
    audio: bool,
    rids: &[&str],
    extra: Value,
) -> Vec<Mid> {
    let (sdp, mids) = world.peers[peer].publish_offer(audio, true, rids);
    let mut offer = json!({"type": "offer", "id": id, "label": "camera", "sdp": sdp});
    if let (Some(o), Some(e)) = (offer.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    ws.send_json(offer);
    let answer = next_media(ws);
    assert_eq!(answer["type"], "answer", "{answer}");
    assert_eq!(answer["id"], id);
    world.peers[peer].accept_answer(answer["sdp"].as_str().unwrap());
    mids
}

/// Answers a server offer from `peer`, trickling its candidate first.
fn answer(world: &mut World, ws: &mut WsClient, peer: usize, offer: &Value) {
    let id = offer["id"].as_str().unwrap();
    let sdp = world.peers[peer].answer_offer(offer["sdp"].as_str().unwrap());
    ws.send_json(json!({"type": "ice", "id": id, "candidate": world.peers[peer].candidate_json()}));
    ws.send_json(json!({"type": "answer", "id": id, "sdp": sdp}));
}

#[track_caller]
fn expect_offer(ws: &mut WsClient, id: &str) -> Value {
    let offer = next_media(ws);
    assert_eq!(offer["type"], "offer", "{offer}");
    assert_eq!(offer["id"], id, "{offer}");
    offer
}

fn fraction(got: &BTreeSet<u64>) -> f64 {
    let (Some(first), Some(last)) = (got.first(), got.last()) else {
        return 0.0;
    };
    got.len() as f64 / (last - first + 1) as f64
}

// ---------------------------------------------------------------------------- tests

#[test]
fn one_publisher_three_subscribers_and_a_late_one_gets_a_keyframe() {
    let server = server();
    let mut world = World::new();
    let mut subs = Vec::new();
    for n in 0..3 {
        let mut ws = client(&server, &format!("s{n}"), false);
        ws.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
        let peer = world.add_peer();
        subs.push((ws, peer));
    }
    let mut p = client(&server, "p", false);
    let publisher = world.add_peer();
    let mids = publish(&mut world, &mut p, publisher, "up1", true, &[], json!({}));
    world
        .sources
        .push(Source::new(publisher, mids[0], None, MediaKind::Audio, 1));
    world
        .sources
        .push(Source::new(publisher, mids[1], None, MediaKind::Video, 2));
    for (ws, peer) in &mut subs {
        let offer = expect_offer(ws, "up1");
        assert_eq!(offer["label"], "camera");
        assert_eq!(offer["source"], "p");
        assert_eq!(offer["username"], "p");
        answer(&mut world, ws, *peer, &offer);
    }
    world.run_until(Duration::from_secs(10), |w| {
        subs.iter().all(|(_, peer)| w.peers[*peer].connected())
    });
    world.run(Duration::from_secs(3));
    let requests_before_late = world.peers[publisher].keyframe_requests;

    // A late subscriber: its attachment makes the server ask the publisher for a keyframe.
    let mut late = client(&server, "late", false);
    late.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let late_peer = world.add_peer();
    let offer = expect_offer(&mut late, "up1");
    answer(&mut world, &mut late, late_peer, &offer);
    world.run_until(Duration::from_secs(10), |w| {
        w.peers[publisher].keyframe_requests > requests_before_late
            && !w.peers[late_peer].distinct(MediaKind::Video, 2).is_empty()
    });
    world.run(Duration::from_secs(1));
    world.sources.clear();
    world.run(Duration::from_millis(500));

    for (_, peer) in &subs {
        let audio = world.peers[*peer].distinct(MediaKind::Audio, 1);
        let video = world.peers[*peer].distinct(MediaKind::Video, 2);
        assert!(audio.len() > 150, "audio packets: {}", audio.len());
        assert!(video.len() > 300, "video packets: {}", video.len());
        assert!(fraction(&audio) >= 0.99, "audio {}", fraction(&audio));
        assert!(fraction(&video) >= 0.99, "video {}", fraction(&video));
    }
    assert!(fraction(&world.peers[late_peer].distinct(MediaKind::Video, 2)) >= 0.99);
}

#[test]
fn nack_repairs_video_on_a_lossy_subscriber_path() {
    let server = server();
    let mut world = World::new();
    let mut sub = client(&server, "s", false);
    sub.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let lossy = world.add_peer();
    world.peers[lossy].loss = 0.05;
    let mut p = client(&server, "p", false);
    let publisher = world.add_peer();
    let mids = publish(&mut world, &mut p, publisher, "up1", true, &[], json!({}));
    world
        .sources
        .push(Source::new(publisher, mids[0], None, MediaKind::Audio, 1));
    world
        .sources
        .push(Source::new(publisher, mids[1], None, MediaKind::Video, 2));
    let offer = expect_offer(&mut sub, "up1");
    answer(&mut world, &mut sub, lossy, &offer);
    world.run_until(Duration::from_secs(10), |w| w.peers[lossy].connected());
    world.run(Duration::from_secs(5));
    world.sources.clear();
    world.run(Duration::from_secs(1));
    let audio = world.peers[lossy].distinct(MediaKind::Audio, 1);
    let video = world.peers[lossy].distinct(MediaKind::Video, 2);
    assert!(video.len() > 300, "video packets: {}", video.len());
    // Audio is not repaired (as in Galène): the loss shows. Video is.
    assert!(
        fraction(&audio) < 0.985,
        "audio {} (loss not injected?)",
        fraction(&audio)
    );
    assert!(fraction(&video) >= 0.99, "video {}", fraction(&video));
}

#[test]
fn simulcast_low_layer_goes_to_video_low_and_high_to_video() {
    let server = server();
    let mut world = World::new();
    let mut high = client(&server, "hi", false);
    high.send_json(json!({"type": "request", "request": {"camera": ["video"]}}));
    let mut low = client(&server, "lo", true); // seed dialect cannot ask for video-low...
    low.send_json(json!({"type": "request", "request": {"video": true}}));
    let mut low2 = client(&server, "lo2", false);
    low2.send_json(json!({"type": "request", "request": {"": ["video-low"]}}));
    let (hp, lp, l2p) = (world.add_peer(), world.add_peer(), world.add_peer());
    let mut p = client(&server, "p", false);
    let publisher = world.add_peer();
    let mids = publish(
        &mut world,
        &mut p,
        publisher,
        "sim",
        false,
        &["h", "l"],
        json!({}),
    );
    world.sources.push(Source::new(
        publisher,
        mids[0],
        Some("h"),
        MediaKind::Video,
        7,
    ));
    world.sources.push(Source::new(
        publisher,
        mids[0],
        Some("l"),
        MediaKind::Video,
        8,
    ));
    let offer = expect_offer(&mut high, "sim");
    answer(&mut world, &mut high, hp, &offer);
    // ...so the seed client gets the high layer, and sees `labels` instead of `label`.
    let offer = expect_offer(&mut low, "sim");
    assert!(offer.get("label").is_none(), "{offer}");
    assert_eq!(
        offer["labels"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap(),
        "video"
    );
    answer(&mut world, &mut low, lp, &offer);
    let offer = expect_offer(&mut low2, "sim");
    answer(&mut world, &mut low2, l2p, &offer);
    world.run_until(Duration::from_secs(10), |w| {
        !w.peers[hp].received.is_empty()
            && !w.peers[lp].received.is_empty()
            && !w.peers[l2p].received.is_empty()
    });
    world.run(Duration::from_secs(1));
    let tags = |peer: usize| -> BTreeSet<u8> {
        world.peers[peer].received.iter().map(|s| s.tag).collect()
    };
    assert_eq!(tags(hp), BTreeSet::from([7]));
    assert_eq!(tags(lp), BTreeSet::from([7]));
    assert_eq!(tags(l2p), BTreeSet::from([8]));

    // requestStream switches one receiver's layer without a new offer.
    low2.send_json(json!({"type": "requestStream", "id": "sim", "request": ["video"]}));
    let before = world.peers[l2p].received.len();
    world.run_until(Duration::from_secs(5), |w| {
        w.peers[l2p].received[before..].iter().any(|s| s.tag == 7)
    });
    assert!(next_media_within(&mut low2, Duration::from_millis(100)).is_none());
    // An empty selection ends the stream: the receiver gets close.
    low2.send_json(json!({"type": "requestStream", "id": "sim", "request": []}));
    let close = next_media(&mut low2);
    assert_eq!(close, json!({"type": "close", "id": "sim"}));
    // Unknown ids are fatal (1011).
    low2.send_json(json!({"type": "requestStream", "id": "nope", "request": ["video"]}));
    assert_eq!(low2.expect_close().0, 1011);
}

#[test]
fn replace_close_abort_renegotiate_and_disconnect() {
    let server = server();
    let mut world = World::new();
    let mut r = client(&server, "r", false);
    r.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let mut p = client(&server, "p", false);
    let (publisher, publisher2, receiver) = (world.add_peer(), world.add_peer(), world.add_peer());
    let mids = publish(&mut world, &mut p, publisher, "a", true, &[], json!({}));
    world
        .sources
        .push(Source::new(publisher, mids[1], None, MediaKind::Video, 1));
    let offer = expect_offer(&mut r, "a");
    answer(&mut world, &mut r, receiver, &offer);
    world.run_until(Duration::from_secs(10), |w| {
        !w.peers[receiver].received.is_empty()
    });

    // Renegotiation of the same up stream: a new answer, nothing for the receiver.
    let sdp = world.peers[publisher].publish_offer(true, false, &[]).0;
    p.send_json(
        json!({"type": "offer", "id": "a", "label": "camera", "kind": "renegotiate", "sdp": sdp}),
    );
    let answer_msg = next_media(&mut p);
    assert_eq!(answer_msg["type"], "answer");
    world.peers[publisher].accept_answer(answer_msg["sdp"].as_str().unwrap());

    // `renegotiate` from the receiver: a new offer with an ICE restart.
    r.send_json(json!({"type": "renegotiate", "id": "a"}));
    let offer = expect_offer(&mut r, "a");
    assert!(offer["sdp"].as_str().unwrap().contains("a=ice-lite"));
    answer(&mut world, &mut r, receiver, &offer);

    // `replace`: the receiver gets the new stream with `replace`, never a close for the old.
    world.sources.clear();
    let (sdp, mids2) = world.peers[publisher2].publish_offer(true, true, &[]);
    p.send_json(json!({"type": "offer", "id": "b", "label": "camera", "replace": "a", "sdp": sdp}));
    let answer_msg = next_media(&mut p);
    assert_eq!(answer_msg["id"], "b");
    world.peers[publisher2].accept_answer(answer_msg["sdp"].as_str().unwrap());
    world
        .sources
        .push(Source::new(publisher2, mids2[1], None, MediaKind::Video, 2));
    let offer = expect_offer(&mut r, "b");
    assert_eq!(offer["replace"], "a");
    let receiver2 = world.add_peer();
    answer(&mut world, &mut r, receiver2, &offer);
    world.run_until(Duration::from_secs(10), |w| {
        w.peers[receiver2].received.iter().any(|s| s.tag == 2)
    });

    // `abort` by the receiver: it is told close.
    r.send_json(json!({"type": "abort", "id": "b"}));
    assert_eq!(next_media(&mut r), json!({"type": "close", "id": "b"}));
    // A new request brings it back; `close` by the publisher ends it for the receiver.
    r.send_json(json!({"type": "request", "request": {"": ["video"]}}));
    let offer = expect_offer(&mut r, "b");
    let receiver3 = world.add_peer();
    answer(&mut world, &mut r, receiver3, &offer);
    world.run_until(Duration::from_secs(10), |w| w.peers[receiver3].connected());
    p.send_json(json!({"type": "close", "id": "b"}));
    assert_eq!(next_media(&mut r), json!({"type": "close", "id": "b"}));

    // Disconnect: a publisher that goes away takes its streams with it.
    world.sources.clear();
    let mut q = client(&server, "q", false);
    let qpeer = world.add_peer();
    let (sdp, _) = world.peers[qpeer].publish_offer(true, true, &[]);
    q.send_json(json!({"type": "offer", "id": "c", "label": "camera", "sdp": sdp}));
    assert_eq!(next_media(&mut q)["type"], "answer");
    let offer = expect_offer(&mut r, "c");
    assert_eq!(offer["source"], "q");
    drop(q);
    assert_eq!(next_media(&mut r), json!({"type": "close", "id": "c"}));

    // Answers and aborts for unknown streams get close.
    r.send_json(json!({"type": "answer", "id": "zz", "sdp": "v=0"}));
    assert_eq!(next_media(&mut r), json!({"type": "close", "id": "zz"}));
}

#[test]
fn offers_need_present_and_valid_sdp_and_losing_present_kills_streams() {
    let server = server();
    let mut world = World::new();
    let peer = world.add_peer();
    let mut r = client(&server, "r", true);
    r.send_json(json!({"type": "request", "request": {"audio": true, "video": true}}));
    let mut p = client(&server, "p", false);
    // Garbage SDP: abort and an error, the connection stays.
    p.send_json(json!({"type": "offer", "id": "x", "label": "camera", "sdp": "garbage"}));
    assert_eq!(next_media(&mut p), json!({"type": "abort", "id": "x"}));
    assert_eq!(next_media(&mut p)["kind"], "error");
    // A valid offer reaches the seed-dialect receiver with per-mid labels.
    let (sdp, _) = world.peers[peer].publish_offer(true, true, &[]);
    p.send_json(json!({"type": "offer", "id": "y", "label": "camera", "sdp": sdp}));
    assert_eq!(next_media(&mut p)["type"], "answer");
    let offer = expect_offer(&mut r, "y");
    let mut labels: Vec<&str> = offer["labels"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    labels.sort();
    assert_eq!(labels, ["audio", "video"]);
    // An id taken by one of the receiver's down streams cannot be published by it.
    let rpeer = world.add_peer();
    let (sdp, _) = world.peers[rpeer].publish_offer(true, false, &[]);
    r.send_json(json!({"type": "offer", "id": "y", "labels": {"0": "audio"}, "sdp": sdp}));
    assert_eq!(next_media(&mut r), json!({"type": "abort", "id": "y"}));
    assert_eq!(next_media(&mut r)["value"], "adding duplicate connection");

    // An operator takes `present` away: abort + error to the publisher, close to receivers.
    let mut op = server.ws_connect();
    op.send_json(json!({"type": "handshake", "version": ["2"], "id": "op"}));
    op.send_json(json!({"type": "join", "kind": "join", "group": "g",
                        "username": "boss", "password": "boss"}));
    op.recv_type("joined");
    op.send_json(json!({"type": "useraction", "kind": "unpresent", "dest": "p"}));
    assert_eq!(next_media(&mut p), json!({"type": "abort", "id": "y"}));
    assert_eq!(next_media(&mut p)["value"], "permission denied");
    assert_eq!(next_media(&mut r), json!({"type": "close", "id": "y"}));
    // Without `present`: abort + not authorised.
    let (sdp, _) = world.peers[peer].publish_offer(true, true, &[]);
    p.send_json(json!({"type": "offer", "id": "z", "label": "camera", "sdp": sdp}));
    assert_eq!(next_media(&mut p), json!({"type": "abort", "id": "z"}));
    assert_eq!(next_media(&mut p)["value"], "not authorised");
    // A null candidate is a protocol error.
    p.send_json(json!({"type": "ice", "id": "z"}));
    assert_eq!(next_media(&mut p)["value"], "null candidate");
    assert_eq!(p.expect_close().0, 1002);
}

#[test]
fn stats_need_the_global_admin_and_show_streams_and_bitrates() {
    let server = TestServer::start(Setup::insecure().group("g", GROUP).config(
        r#"{"users": {"root": {"password": "secret", "permissions": "admin"},
                                  "op": {"password": "secret", "permissions": "op"}}}"#,
    ));
    let mut world = World::new();
    let mut sub = client(&server, "s", false);
    sub.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let receiver = world.add_peer();
    let mut p = client(&server, "p", false);
    let publisher = world.add_peer();
    let mids = publish(&mut world, &mut p, publisher, "up1", true, &[], json!({}));
    world
        .sources
        .push(Source::new(publisher, mids[0], None, MediaKind::Audio, 1));
    world
        .sources
        .push(Source::new(publisher, mids[1], None, MediaKind::Video, 2));
    let offer = expect_offer(&mut sub, "up1");
    answer(&mut world, &mut sub, receiver, &offer);
    world.run_until(Duration::from_secs(10), |w| w.peers[receiver].connected());
    world.run(Duration::from_millis(2500));

    let basic = |credentials: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    };
    for auth in [None, Some(basic("op:secret")), Some(basic("root:wrong"))] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let (status, headers, body) = server.http_get("/galene-api/v0/.stats", &headers);
        assert_eq!(status, 401);
        assert_eq!(
            common::header(&headers, "www-authenticate"),
            Some("basic realm=\"/galene-api/\"")
        );
        assert_eq!(String::from_utf8_lossy(&body).trim(), "Haha!");
    }
    let auth = basic("root:secret");
    let (status, headers, body) =
        server.http_get("/galene-api/v0/.stats", &[("Authorization", auth.as_str())]);
    assert_eq!(status, 200);
    assert_eq!(
        common::header(&headers, "content-type"),
        Some("application/json")
    );
    let stats: Value = serde_json::from_slice(&body).unwrap();
    let group = &stats[0];
    assert_eq!(group["name"], "g");
    let clients = group["clients"].as_array().unwrap();
    let ids: Vec<&str> = clients.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["p", "s"]);
    let up = &clients[0]["up"][0];
    assert_eq!(up["id"], "up1");
    let up_rates: Vec<u64> = up["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["bitrate"].as_u64().unwrap())
        .collect();
    assert_eq!(up_rates.len(), 2, "{up}");
    assert!(up_rates.iter().all(|r| *r > 10_000), "{up}");
    let down = &clients[1]["down"][0];
    assert_eq!(down["id"], "up1");
    assert!(
        down["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["bitrate"].as_u64().unwrap() > 100_000),
        "{down}"
    );
}

// ---------------------------------------------------------------------------- a panic on the datagram path

/// The application with a fault injected on the datagram path: while `armed` is above zero,
/// [`Engine::handle_media_events`] (which the runtime calls only from its media receive
/// loop, when the engine reports events for the signalling side) panics before doing
/// anything, once per count. Test code only: nothing in sfubox can reach it.
struct PanicOnMediaEvents {
    app: App,
    armed: Arc<AtomicUsize>,
}

impl GroupSource for PanicOnMediaEvents {
    fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup {
        self.app.group_status(now, name)
    }
    fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus> {
        self.app.public_groups(now)
    }
    fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        self.app.global_config()
    }
}

impl CamusSource for PanicOnMediaEvents {}

// WHIP is not used here: the trait's defaults (no media for WHIP) do.
impl sfubox::http::whip::WhipSource for PanicOnMediaEvents {}

impl Engine for PanicOnMediaEvents {
    fn enable_media(&mut self, config: SfuConfig) -> Result<(), String> {
        Engine::enable_media(&mut self.app, config)
    }
    fn media_engine(&mut self) -> Option<&mut Sfu> {
        self.app.media_engine()
    }
    fn handle_media_events(&mut self, now: Instant) {
        let fire = self
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fire {
            panic!("injected panic on the datagram path");
        }
        self.app.handle_media_events(now)
    }
    fn connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.app.galene_connect(now, remote)
    }
    fn connect_gst(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.app.gst_connect(now, remote)
    }
    fn connect_camus(
        &mut self,
        now: Instant,
        remote: Option<SocketAddr>,
        admission: sfubox::camus::Admission,
    ) -> ConnId {
        self.app.camus_connect(now, remote, admission)
    }
    fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        self.app.handle_text(now, conn, text)
    }
    fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.app.handle_binary(now, conn, data)
    }
    fn handle_pong(&mut self, now: Instant, conn: ConnId) {
        self.app.handle_pong(now, conn)
    }
    fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        self.app.handle_disconnect(now, conn)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.app.handle_timeout(now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.app.poll_timeout()
    }
    fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)> {
        self.app.poll_output()
    }
    fn shutdown(&mut self, now: Instant, message: &str) {
        self.app.shutdown(now, message)
    }
    fn files_for_timeout(&self, now: Instant) -> Vec<FileNeed> {
        self.app.files_for_timeout(now)
    }
    fn file_cache(&self) -> Option<FileCache> {
        self.app.core().file_cache()
    }
}

#[test]
fn a_panic_on_the_datagram_path_does_not_stop_forwarding() {
    let armed = Arc::new(AtomicUsize::new(0));
    let server = {
        let armed = Arc::clone(&armed);
        TestServer::start_with(Setup::insecure().group("g", GROUP), move |app| {
            PanicOnMediaEvents { app, armed }
        })
    };
    let mut world = World::new();
    let mut s1 = client(&server, "s1", false);
    s1.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let first = world.add_peer();
    let mut p = client(&server, "p", false);
    let publisher = world.add_peer();
    let mids = publish(&mut world, &mut p, publisher, "up1", true, &[], json!({}));
    world
        .sources
        .push(Source::new(publisher, mids[1], None, MediaKind::Video, 2));
    let offer = expect_offer(&mut s1, "up1");
    answer(&mut world, &mut s1, first, &offer);
    world.run_until(Duration::from_secs(10), |w| {
        w.peers[first].distinct(MediaKind::Video, 2).len() > 30
    });

    // Two panics on the datagram path, within the budget: a second subscriber's arrival
    // makes the engine report events, and their handling panics twice before it goes through.
    armed.store(2, Ordering::SeqCst);
    let mut s2 = client(&server, "s2", false);
    s2.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    let second = world.add_peer();
    let offer = expect_offer(&mut s2, "up1");
    answer(&mut world, &mut s2, second, &offer);
    world.run_until(Duration::from_secs(10), |_| {
        armed.load(Ordering::SeqCst) == 0
    });
    let before = world.peers[first].distinct(MediaKind::Video, 2).len();

    // Forwarding goes on for the first subscriber, and the second one gets media too.
    world.run_until(Duration::from_secs(10), |w| {
        w.peers[first].distinct(MediaKind::Video, 2).len() > before + 150
            && w.peers[second].distinct(MediaKind::Video, 2).len() > 30
    });
    // Signalling still works as well.
    s1.send_json(json!({"type": "chat", "source": "s1", "username": "s1", "value": "hi"}));
    assert_eq!(p.recv_type("chat")["value"], "hi");
}
