//! The whole App with its media engine, str0m peers in memory and a fake clock: streams
//! come and go, and nothing is left behind; a client that is not a Galène session publishes
//! to one that is.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use str0m::format::Codec;

use super::{Publish, StreamNotice, StreamTables};
use crate::app::{App, AppOptions};
use crate::config::MemoryDirectory;
use crate::conn::{ConnId, ConnOutput};
use crate::core::JoinRequest;
use crate::media::{MediaCounts, SfuConfig};
use crate::testing::{PeerConfig, PeerOutput, TestPeer};

const SERVER: &str = "192.0.2.1:8443";

/// The whole application with its media engine and str0m test peers in memory, on a fake
/// clock (also used by the recorder's tests).
pub(crate) struct World {
    pub(crate) app: App,
    pub(crate) now: Instant,
    pub(crate) peers: Vec<TestPeer>,
    pub(crate) received: Vec<(ConnId, Value)>,
    /// Keyframe requests (PLI/FIR) each peer received.
    pub(crate) keyframe_requests: Vec<usize>,
}

impl World {
    pub(crate) fn new() -> World {
        World::with_group(r#"{"wildcard-user": {"password": "pw", "permissions": "present"}}"#)
    }

    pub(crate) fn with_group(group: &str) -> World {
        let now = Instant::now();
        let mut dir = MemoryDirectory::default();
        dir.set_group_json("g", group).unwrap();
        let mut app = App::new(Box::new(dir), AppOptions::default(), now, SystemTime::now());
        app.enable_media(SfuConfig::new(vec![SERVER.parse().unwrap()]))
            .unwrap();
        World {
            app,
            now,
            peers: Vec::new(),
            received: Vec::new(),
            keyframe_requests: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, conn: ConnId, value: Value) {
        self.app.handle_text(self.now, conn, &value.to_string());
        self.collect();
    }

    pub(crate) fn collect(&mut self) {
        while let Some((conn, output)) = self.app.poll_output() {
            if let ConnOutput::Text(text) = output {
                self.received
                    .push((conn, serde_json::from_str(&text).unwrap()));
            }
        }
    }

    pub(crate) fn client(&mut self, id: &str) -> ConnId {
        let conn = self.app.galene_connect(self.now, None);
        self.send(
            conn,
            json!({"type": "handshake", "version": ["2"], "id": id}),
        );
        self.send(
            conn,
            json!({"type": "join", "kind": "join", "group": "g", "username": id, "password": "pw"}),
        );
        conn
    }

    /// The first message of `kind` for `conn`, taken out of what was received.
    pub(crate) fn take(&mut self, conn: ConnId, kind: &str) -> Option<Value> {
        let i = self
            .received
            .iter()
            .position(|(c, v)| *c == conn && v["type"] == kind)?;
        Some(self.received.remove(i).1)
    }

    pub(crate) fn peer(&mut self, port: u16) -> usize {
        let addr: SocketAddr = format!("198.51.100.1:{port}").parse().unwrap();
        let peer = TestPeer::new(addr, self.now, &PeerConfig::new()).expect("test peer");
        self.peers.push(peer);
        self.keyframe_requests.push(0);
        self.peers.len() - 1
    }

    pub(crate) fn drain_peer(&mut self, i: usize) {
        while let Some(output) = self.peers[i].poll() {
            match output {
                PeerOutput::Transmit(t) => {
                    let data: Vec<u8> = t.contents.into();
                    self.app
                        .handle_datagram(self.now, t.source, t.destination, &data);
                    self.collect();
                    self.deliver();
                }
                PeerOutput::Event(str0m::Event::KeyframeRequest(_)) => {
                    self.keyframe_requests[i] += 1;
                }
                _ => {}
            }
        }
        assert_eq!(self.peers[i].failed, None);
    }

    /// Hands the server's datagrams to the peers.
    pub(crate) fn deliver(&mut self) {
        let mut out = Vec::new();
        while let Some(t) = self.app.poll_transmit() {
            out.push(t);
        }
        for t in out {
            let Some(i) = self.peers.iter().position(|p| p.addr == t.destination) else {
                continue;
            };
            self.peers[i].receive(self.now, t.source, &t.contents);
            self.drain_peer(i);
        }
    }

    pub(crate) fn run(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.now += Duration::from_millis(5);
            if self.app.poll_timeout().is_some_and(|t| t <= self.now) {
                self.app.handle_timeout(self.now);
                self.collect();
            }
            self.deliver();
            for i in 0..self.peers.len() {
                if self.peers[i].timeout_due(self.now) {
                    self.drain_peer(i);
                }
            }
        }
    }

    pub(crate) fn publish(&mut self, conn: ConnId, peer: usize, id: &str) -> String {
        let offer = self.peers[peer].publish_offer(true, true, &[]).unwrap();
        self.send(
            conn,
            json!({"type": "offer", "id": id, "label": "camera", "sdp": offer.sdp}),
        );
        let answer = self.take(conn, "answer").expect("no answer");
        let sdp = answer["sdp"].as_str().unwrap().to_owned();
        self.peers[peer].accept_answer(&sdp).unwrap();
        self.drain_peer(peer);
        sdp
    }

    pub(crate) fn receive(&mut self, conn: ConnId, peer: usize, id: &str) {
        let offer = self.take(conn, "offer").expect("no offer");
        self.answer(conn, peer, id, offer);
    }

    pub(crate) fn answer(&mut self, conn: ConnId, peer: usize, id: &str, offer: Value) {
        assert_eq!(offer["id"], id);
        let answer = self.peers[peer]
            .answer_offer(offer["sdp"].as_str().unwrap())
            .unwrap();
        self.drain_peer(peer);
        self.send(conn, json!({"type": "answer", "id": id, "sdp": answer}));
    }
}

fn empty(tables: StreamTables) -> bool {
    tables
        == StreamTables {
            engine: MediaCounts {
                dropped_transmits: tables.engine.dropped_transmits,
                ..MediaCounts::default()
            },
            ..StreamTables::default()
        }
}

#[test]
fn streams_connect_and_leave_nothing_behind() {
    let mut w = World::new();
    let p = w.client("p");
    let s = w.client("s");
    let t = w.client("t");
    for conn in [s, t] {
        w.send(
            conn,
            json!({"type": "request", "request": {"": ["audio", "video"]}}),
        );
    }
    let (pp, sp, tp) = (w.peer(1), w.peer(2), w.peer(3));
    w.publish(p, pp, "up");
    // Debounced: nothing before 200 ms.
    w.run(Duration::from_millis(150));
    assert!(w.take(s, "offer").is_none());
    w.run(Duration::from_millis(100));
    w.receive(s, sp, "up");
    w.receive(t, tp, "up");
    w.run(Duration::from_secs(2));
    assert!(w.peers[pp].connected && w.peers[sp].connected && w.peers[tp].connected);
    let tables = w.app.streams().tables();
    assert_eq!((tables.ups, tables.downs, tables.engine.streams), (1, 2, 3));

    // Leaving the group (still connected): its down stream closes, it is told so.
    w.send(s, json!({"type": "join", "kind": "leave", "group": "g"}));
    assert_eq!(w.take(s, "close").unwrap()["id"], "up");
    assert_eq!(w.app.streams().tables().downs, 1);
    // A publisher that disconnects takes its streams along; receivers get close.
    w.app.handle_disconnect(w.now, p);
    w.collect();
    assert_eq!(w.take(t, "close").unwrap()["id"], "up");
    w.app.handle_disconnect(w.now, s);
    w.app.handle_disconnect(w.now, t);
    w.collect();
    w.run(Duration::from_secs(1));
    let tables = w.app.streams().tables();
    assert!(empty(tables), "{tables:?}");
}

#[test]
fn group_codecs_queued_changes_and_ice_failure() {
    let mut w = World::with_group(
        r#"{"wildcard-user": {"password": "pw", "permissions": "present"},
            "codecs": ["vp9", "opus"]}"#,
    );
    let p = w.client("p");
    let s = w.client("s");
    w.send(
        s,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    let (pp, sp) = (w.peer(1), w.peer(2));
    // The group's codecs decide what a publisher's offer is answered with.
    let answer = w.publish(p, pp, "up");
    assert!(
        answer.contains("VP9/90000") && !answer.contains("VP8/90000"),
        "{answer}"
    );
    w.run(Duration::from_millis(250));
    let offer = w.take(s, "offer").expect("no offer");
    // A change while our offer is pending waits for the answer, then comes as an offer.
    w.send(s, json!({"type": "request", "request": {"": ["audio"]}}));
    assert!(w.take(s, "offer").is_none());
    w.answer(s, sp, "up", offer);
    let follow_up = w.take(s, "offer").expect("no follow-up offer");
    assert!(
        follow_up["sdp"].as_str().unwrap().contains("a=inactive"),
        "{follow_up}"
    );
    w.answer(s, sp, "up", follow_up);
    w.run(Duration::from_secs(1));
    assert!(w.peers[pp].connected && w.peers[sp].connected);
    // The publisher's path dies: after ICE gives up, the client is asked to renegotiate.
    w.peers[pp].addr = "198.51.100.99:9".parse().unwrap();
    let mut renegotiate = None;
    for _ in 0..60 {
        w.run(Duration::from_secs(1));
        renegotiate = w.take(p, "renegotiate");
        if renegotiate.is_some() {
            break;
        }
    }
    assert_eq!(
        renegotiate,
        Some(json!({"type": "renegotiate", "id": "up"}))
    );
}

#[test]
fn receivers_hear_when_their_video_is_reduced_by_their_network() {
    use crate::media::MediaEvent;

    let mut w = World::new();
    let p = w.client("p");
    let s = w.client("s");
    // A seed-dialect receiver: it has no way to understand the message.
    let q = w.app.galene_connect(w.now, None);
    w.send(q, json!({"type": "handshake", "id": "q"}));
    w.send(
        q,
        json!({"type": "join", "kind": "join", "group": "g", "username": "q", "password": "pw"}),
    );
    w.send(
        s,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    w.send(
        q,
        json!({"type": "request", "request": {"audio": true, "video": true}}),
    );
    let (pp, sp, qp) = (w.peer(1), w.peer(2), w.peer(3));
    w.publish(p, pp, "up");
    w.run(Duration::from_millis(250));
    w.receive(s, sp, "up");
    w.receive(q, qp, "up");
    w.received.clear();
    let media = w.app.streams();
    let (s_down, q_down) = (
        media.down_key(s, "up").unwrap(),
        media.down_key(q, "up").unwrap(),
    );
    let up = media.up_key(p, "up").unwrap();
    let inject = |w: &mut World, stream, reduced| {
        w.app
            .inject_media_event(w.now, MediaEvent::LayerReduced { stream, reduced });
        w.collect();
    };
    let layer = |reduced: bool| {
        json!({"type": "usermessage", "kind": "sfubox-layer", "dest": "s", "privileged": true,
               "value": {"id": "up", "reduced": reduced}})
    };

    // The receiver whose stream it is hears it, about its own stream id; nobody else does.
    inject(&mut w, s_down, true);
    assert_eq!(w.received, [(s, layer(true))]);
    w.received.clear();
    // Only changes are sent.
    inject(&mut w, s_down, true);
    assert_eq!(w.received, []);
    inject(&mut w, s_down, false);
    assert_eq!(w.received, [(s, layer(false))]);
    w.received.clear();
    // Not to the seed dialect; not for an up stream.
    inject(&mut w, q_down, true);
    inject(&mut w, up, true);
    assert_eq!(w.received, []);

    // A stream the client no longer has: nothing.
    w.send(s, json!({"type": "abort", "id": "up"}));
    assert_eq!(w.take(s, "close").unwrap()["id"], "up");
    inject(&mut w, s_down, true);
    assert_eq!(w.received, []);
    // Pushed again, the new down stream starts unreduced: `false` is not news.
    w.send(s, json!({"type": "request", "request": {"": ["audio"]}}));
    w.send(
        s,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    let sp2 = w.peer(4);
    w.receive(s, sp2, "up");
    w.received.clear();
    let again = w.app.streams().down_key(s, "up").unwrap();
    assert_ne!(again, s_down);
    inject(&mut w, again, false);
    assert_eq!(w.received, []);
    inject(&mut w, again, true);
    assert_eq!(w.received, [(s, layer(true))]);
}

#[test]
fn a_client_has_a_bounded_number_of_up_streams() {
    let mut w = World::new();
    let p = w.client("p");
    for n in 0..super::MAX_UP_STREAMS_PER_CLIENT {
        let peer = w.peer(100 + n as u16);
        w.publish(p, peer, &format!("up{n}"));
    }
    let peer = w.peer(99);
    let offer = w.peers[peer].publish_offer(true, false, &[]).unwrap();
    w.send(
        p,
        json!({"type": "offer", "id": "one-more", "label": "camera", "sdp": offer.sdp}),
    );
    assert_eq!(
        w.take(p, "abort"),
        Some(json!({"type": "abort", "id": "one-more"}))
    );
    assert_eq!(
        w.take(p, "usermessage").unwrap()["value"],
        "too many streams"
    );
    assert_eq!(
        w.app.streams().tables().ups,
        super::MAX_UP_STREAMS_PER_CLIENT
    );
    // Closing one makes room again.
    w.send(p, json!({"type": "close", "id": "up0"}));
    let peer = w.peer(98);
    w.publish(p, peer, "again");
}

#[test]
fn a_client_that_is_not_a_galene_session_publishes_to_a_galene_receiver() {
    let mut w = World::new();
    // An in-process client (as a recorder or a WHIP publisher would be): no WebSocket, no
    // Galène message anywhere on its side.
    let local = w.app.attach_client(w.now, "camera-bot");
    let join = JoinRequest {
        group: "g".into(),
        username: Some("camera-bot".into()),
        password: Some("pw".into()),
        token: None,
        data: Default::default(),
    };
    w.app.join_local(w.now, local, join).expect("join");
    let s = w.client("s");
    w.send(
        s,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    // The Galène receiver learns about the in-process member like any other.
    assert!(
        w.received
            .iter()
            .any(|(to, m)| *to == s && m["type"] == "user" && m["username"] == "camera-bot"),
        "{:?}",
        w.received
    );

    let (pp, sp) = (w.peer(1), w.peer(2));
    let offered = w.peers[pp].publish_offer(true, true, &[]).expect("offer");
    let audio = offered.audio.expect("an audio m-line");
    let offer = offered.sdp;
    let now = w.now;
    w.app.with_streams(now, |streams, core| {
        let publish = Publish {
            id: "cam",
            label: "camera",
            track_labels: &[],
            replace: "",
            sdp: &offer,
        };
        streams.publish(now, core, local, publish);
    });
    let Some((to, StreamNotice::Answer { id, sdp })) = w.app.poll_local_notice() else {
        panic!("no answer for the in-process publisher");
    };
    assert_eq!((to, id.as_str()), (local, "cam"));
    w.peers[pp].accept_answer(&sdp).expect("accept");
    w.drain_peer(pp);

    // The stream is pushed to the Galène receiver with the publisher's name on it.
    w.run(Duration::from_millis(250));
    let offer = w
        .take(s, "offer")
        .expect("no offer for the Galène receiver");
    assert_eq!(offer["username"], "camera-bot");
    w.answer(s, sp, "cam", offer);
    w.run(Duration::from_secs(2));
    assert!(w.peers[pp].connected && w.peers[sp].connected);

    // Audio written by the in-process publisher arrives at the Galène receiver.
    for n in 0..50u16 {
        let now = w.now;
        let payload = vec![0xf8; 40];
        let seq = u64::from(n);
        let written = w.peers[pp].write_rtp(
            Codec::Opus,
            audio,
            None,
            seq,
            u32::from(n) * 960,
            now,
            false,
            payload,
        );
        assert!(written);
        w.drain_peer(pp);
        w.run(Duration::from_millis(20));
    }
    assert!(
        w.peers[sp].rtp_received >= 40,
        "received {}",
        w.peers[sp].rtp_received
    );

    // Leaving takes its stream along; the Galène receiver is told.
    w.app.handle_disconnect(w.now, local);
    w.collect();
    assert_eq!(w.take(s, "close").expect("close")["id"], "cam");
}
