//! WHIP and WHEP through the HTTP layer into the whole App, with real str0m peers in memory
//! and a fake clock: a WHIP client publishes to a Galène receiver, a WHEP client follows the
//! group's streams, sessions end on DELETE, on an operator's kick, at shutdown and when they
//! never connect, and every refusal has its status.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use str0m::format::Codec;
use str0m::media::Mid;

use crate::app::{App, AppOptions};
use crate::config::{IceServer, MemoryDirectory, Permission, Permissions, StatefulToken};
use crate::conn::{ConnId, ConnOutput};
use crate::http::files::EmbeddedSite;
use crate::http::{Request, Response, whip};
use crate::media::SfuConfig;
use crate::testing::{PeerConfig, PeerOutput, TestPeer, write_vp8_start};

use super::CONNECT_TIMEOUT;

const SERVER: &str = "192.0.2.1:8443";

/// A group where the `whip` user may publish without a password and `whep` may watch,
/// everybody else with password `pw`.
const GROUP: &str = r#"{"users": {"whip": {"password": "", "permissions": "present"},
                                  "whep": {"password": "", "permissions": "observe"},
                                  "boss": {"password": "pw", "permissions": "op"}},
                        "wildcard-user": {"password": "pw", "permissions": "present"}}"#;

/// A received RTP packet: its m-line and its payload's first byte (the sender's tag).
type Seen = (Option<Mid>, u8);

struct World {
    app: App,
    now: Instant,
    peers: Vec<TestPeer>,
    seen: Vec<Vec<Seen>>,
    /// The next RTP sequence number of each peer's sources (an SRTP receiver drops repeats).
    next_seq: Vec<u64>,
    received: Vec<(ConnId, Value)>,
    files: EmbeddedSite,
}

impl World {
    fn new() -> World {
        let mut dir = MemoryDirectory::new();
        dir.set_group_json("g", GROUP).expect("valid group");
        dir.set_ice_servers(&[
            IceServer {
                urls: vec!["stun:stun.example.org:3478".into()],
                username: None,
                credential: None,
                credential_type: None,
            },
            IceServer {
                urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
                username: Some("u\"ser".into()),
                credential: Some("se\\cret".into()),
                credential_type: None,
            },
        ]);
        let mut permissions = Permissions::new();
        permissions.add(Permission::Present);
        dir.insert_token(StatefulToken {
            token: "tok".into(),
            group: "g".into(),
            include_subgroups: false,
            username: Some("camera-1".into()),
            permissions: Some(permissions),
            expires: Some(SystemTime::now() + Duration::from_secs(3600)),
            not_before: None,
            issued_at: None,
            issued_by: None,
        });
        let now = Instant::now();
        let mut app = App::new(Box::new(dir), AppOptions::default(), now, SystemTime::now());
        app.enable_media(SfuConfig::new(vec![SERVER.parse().expect("address")]))
            .expect("media engine");
        World {
            app,
            now,
            peers: Vec::new(),
            seen: Vec::new(),
            next_seq: Vec::new(),
            received: Vec::new(),
            files: EmbeddedSite::new(SystemTime::UNIX_EPOCH),
        }
    }

    /// Sends an HTTP request to the WHIP routes.
    fn http(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let request = Request {
            method: method.into(),
            target: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            tls: false,
        };
        let response = whip::route(
            &request,
            body.as_bytes(),
            &self.files,
            &mut self.app,
            None,
            self.now,
        )
        .expect("a WHIP path");
        self.collect();
        self.deliver();
        response
    }

    fn post(&mut self, target: &str, offer: &str) -> Response {
        self.http(
            "POST",
            target,
            &[("Content-Type", "application/sdp")],
            offer,
        )
    }

    fn send(&mut self, conn: ConnId, value: Value) {
        self.app.handle_text(self.now, conn, &value.to_string());
        self.collect();
        self.deliver();
    }

    fn collect(&mut self) {
        while let Some((conn, output)) = self.app.poll_output() {
            if let ConnOutput::Text(text) = output {
                self.received
                    .push((conn, serde_json::from_str(&text).expect("JSON")));
            }
        }
    }

    /// A Galène client that joined `g` and asked for audio and video.
    fn client(&mut self, name: &str, password: &str) -> ConnId {
        let conn = self.app.galene_connect(self.now, None);
        self.send(
            conn,
            json!({"type": "handshake", "version": ["2"], "id": name}),
        );
        self.send(
            conn,
            json!({"type": "join", "kind": "join", "group": "g", "username": name,
                   "password": password}),
        );
        self.send(
            conn,
            json!({"type": "request", "request": {"": ["audio", "video"]}}),
        );
        conn
    }

    fn take(&mut self, conn: ConnId, kind: &str) -> Option<Value> {
        let i = self
            .received
            .iter()
            .position(|(c, v)| *c == conn && v["type"] == kind)?;
        Some(self.received.remove(i).1)
    }

    /// The `user` messages `conn` got, as (kind, username).
    fn users(&mut self, conn: ConnId) -> Vec<(String, String)> {
        let mut users = Vec::new();
        while let Some(m) = self.take(conn, "user") {
            let field = |f: &str| m[f].as_str().unwrap_or_default().to_owned();
            users.push((field("kind"), field("username")));
        }
        users
    }

    fn peer(&mut self, port: u16) -> usize {
        let addr: SocketAddr = format!("198.51.100.1:{port}").parse().expect("address");
        let peer = TestPeer::new(addr, self.now, &PeerConfig::new()).expect("test peer");
        self.peers.push(peer);
        self.seen.push(Vec::new());
        self.next_seq.push(1);
        self.peers.len() - 1
    }

    fn drain_peer(&mut self, i: usize) {
        while let Some(output) = self.peers[i].poll() {
            match output {
                PeerOutput::Transmit(t) => {
                    let data: Vec<u8> = t.contents.into();
                    self.app
                        .handle_datagram(self.now, t.source, t.destination, &data);
                    self.collect();
                    self.deliver();
                }
                PeerOutput::Rtp(rtp) => {
                    let tag = rtp.packet.payload.first().copied().unwrap_or(0);
                    self.seen[i].push((rtp.mid, tag));
                }
                PeerOutput::Event(_) => {}
            }
        }
    }

    fn deliver(&mut self) {
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

    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.now += Duration::from_millis(10);
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

    /// Audio packets tagged `tag` from peer `from` on `mid`, one every 20 ms for `d`, and a
    /// VP8 keyframe and frames on `video` if given.
    fn send_media(&mut self, from: usize, audio: Mid, video: Option<Mid>, tag: u8, d: Duration) {
        let packets = d.as_millis() / 20;
        for n in 0..packets as u64 {
            let now = self.now;
            // Below 2^16: an SRTP receiver assumes a new stream's rollover counter is 0.
            let seq = self.next_seq[from];
            self.next_seq[from] += 1;
            let written = self.peers[from].write_rtp(
                Codec::Opus,
                audio,
                None,
                seq,
                (seq as u32).wrapping_mul(960),
                now,
                false,
                vec![tag; 40],
            );
            assert!(written);
            if let Some(video) = video {
                let mut payload = vec![tag; 200];
                write_vp8_start(&mut payload, true, n % 25 == 0);
                // The descriptor's first byte is not the tag: the tag sits after it.
                self.peers[from].write_rtp(
                    Codec::Vp8,
                    video,
                    None,
                    seq,
                    (seq as u32).wrapping_mul(3000),
                    now,
                    true,
                    payload,
                );
            }
            self.drain_peer(from);
            self.run(Duration::from_millis(20));
        }
    }

    /// A Galène client publishes audio and video from a new peer; returns (peer, audio mid,
    /// video mid).
    fn galene_publish(&mut self, conn: ConnId, port: u16, id: &str) -> (usize, Mid, Mid) {
        let peer = self.peer(port);
        let offer = self.peers[peer]
            .publish_offer(true, true, &[])
            .expect("offer");
        self.send(
            conn,
            json!({"type": "offer", "id": id, "label": "camera", "sdp": offer.sdp}),
        );
        let answer = self.take(conn, "answer").expect("answer");
        self.peers[peer]
            .accept_answer(answer["sdp"].as_str().expect("sdp"))
            .expect("accept");
        self.drain_peer(peer);
        (
            peer,
            offer.audio.expect("audio"),
            offer.video.expect("video"),
        )
    }

    /// Answers the offer `conn` got for stream `id` from a new peer.
    fn galene_receive(&mut self, conn: ConnId, port: u16) -> (usize, Value) {
        let offer = self.take(conn, "offer").expect("an offer");
        let peer = self.peer(port);
        let answer = self.peers[peer]
            .answer_offer(offer["sdp"].as_str().expect("sdp"))
            .expect("answer");
        self.drain_peer(peer);
        self.send(
            conn,
            json!({"type": "answer", "id": offer["id"], "sdp": answer}),
        );
        (peer, offer)
    }

    /// A WHEP viewer: a peer offering to receive audio and video, posted to `target`.
    fn whep(&mut self, port: u16, target: &str) -> (usize, Response, Mid, Mid) {
        let peer = self.peer(port);
        let offer = self.peers[peer].receive_offer(true, true).expect("offer");
        let response = self.post(target, &offer.sdp);
        if response.status == 201 {
            let answer = String::from_utf8_lossy(&response.body).into_owned();
            self.peers[peer].accept_answer(&answer).expect("accept");
            self.drain_peer(peer);
        }
        (
            peer,
            response,
            offer.audio.expect("audio"),
            offer.video.expect("video"),
        )
    }
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.header(name)
}

/// The audio tags peer `i` received since `from` (an index into its packets).
fn audio_tags(w: &World, i: usize, mid: Mid, from: usize) -> Vec<u8> {
    let mut tags: Vec<u8> = w.seen[i][from..]
        .iter()
        .filter(|(m, _)| *m == Some(mid))
        .map(|(_, tag)| *tag)
        .collect();
    tags.dedup();
    tags
}

#[test]
fn a_whip_client_publishes_to_the_group_and_delete_takes_it_out() {
    let mut w = World::new();
    let s = w.client("s", "pw");
    w.received.clear();
    let p = w.peer(1);
    let offer = w.peers[p].publish_offer(true, true, &[]).expect("offer");
    let response = w.post("/group/g/.whip", &offer.sdp);
    assert_eq!(response.status, 201, "{response:?}");
    assert_eq!(header(&response, "content-type"), Some("application/sdp"));
    let location = header(&response, "location").expect("Location").to_owned();
    let resource = location
        .strip_prefix("/group/g/.whip/")
        .expect("the resource under the endpoint")
        .to_owned();
    assert_eq!(resource.len(), 22, "16 bytes of base64url: {resource}");
    let etag = header(&response, "etag").expect("ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(
        header(&response, "access-control-expose-headers"),
        Some("Location, Content-Type, Link, ETag")
    );
    let links: Vec<&str> = response
        .headers
        .iter()
        .filter(|(n, _)| *n == "Link")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        links,
        [
            "<stun:stun.example.org:3478>; rel=\"ice-server\"",
            "<turn:turn.example.org:3478?transport=udp>; rel=\"ice-server\"; \
             username=\"u\\\"ser\"; credential=\"se\\\\cret\"; credential-type=\"password\""
        ]
    );
    let answer = String::from_utf8_lossy(&response.body).into_owned();
    assert!(answer.contains("a=candidate:"), "gathered: {answer}");
    w.peers[p].accept_answer(&answer).expect("accept");
    w.drain_peer(p);

    // The group sees a user `whip` join, and its stream is pushed like any other.
    assert_eq!(w.users(s), [("add".to_owned(), "whip".to_owned())]);
    w.run(Duration::from_millis(300));
    let (sp, pushed) = w.galene_receive(s, 2);
    assert_eq!(pushed["username"], "whip");
    // The stream label is empty, as Galène's WHIP streams have (and then left out).
    assert!(pushed.get("label").is_none_or(|l| l == ""), "{pushed}");
    w.run(Duration::from_secs(1));
    assert!(w.peers[p].connected && w.peers[sp].connected);
    let (audio, video) = (offer.audio.expect("audio"), offer.video.expect("video"));
    w.send_media(p, audio, Some(video), 7, Duration::from_secs(1));
    let audio_in = w.seen[sp].iter().filter(|(_, tag)| *tag == 7).count();
    assert!(audio_in >= 40, "{audio_in} audio packets");
    assert!(
        w.seen[sp].iter().any(|(_, tag)| *tag != 7),
        "video (the VP8 descriptor first) arrives too"
    );

    // Trickled candidates: 204, with the entity tag or without; a stale tag is refused.
    let fragment = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na={}\r\n",
        super::sdpfrag::credentials(&offer.sdp).expect("ufrag").0,
        super::sdpfrag::credentials(&offer.sdp).expect("pwd").1,
        w.peers[p].candidate_line()
    );
    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let patch = w.http("PATCH", &location, &[frag, ("If-Match", &etag)], &fragment);
    assert_eq!(patch.status, 204);
    let patch = w.http(
        "PATCH",
        &location,
        &[frag, ("If-Match", "\"stale\"")],
        &fragment,
    );
    assert_eq!(patch.status, 412);
    let patch = w.http("PATCH", &location, &[frag], "garbage");
    assert_eq!(patch.status, 400);
    let patch = w.http(
        "PATCH",
        &location,
        &[("Content-Type", "text/plain")],
        &fragment,
    );
    assert_eq!(
        (patch.status, header(&patch, "accept")),
        (415, Some("application/trickle-ice-sdpfrag"))
    );
    let options = w.http("OPTIONS", &location, &[], "");
    assert_eq!(
        header(&options, "access-control-allow-methods"),
        Some("OPTIONS, DELETE, PATCH")
    );
    let get = w.http("GET", &location, &[], "");
    assert_eq!(
        (get.status, header(&get, "allow")),
        (405, Some("OPTIONS, DELETE, PATCH"))
    );
    // Not a WHEP resource.
    let whep = w.http("DELETE", &format!("/group/g/.whep/{resource}"), &[], "");
    assert_eq!(whep.status, 404);

    // DELETE: the stream closes for the receiver and the user leaves.
    w.received.clear();
    let delete = w.http("DELETE", &location, &[], "");
    assert_eq!(delete.status, 200);
    assert!(w.take(s, "close").is_some());
    assert_eq!(w.users(s), [("delete".to_owned(), "whip".to_owned())]);
    assert_eq!(w.http("DELETE", &location, &[], "").status, 404);
    assert!(w.app.whip().is_empty());
    assert_eq!(w.app.streams().tables().ups, 0);
}

#[test]
fn an_ice_restart_through_patch_reconnects_the_publisher() {
    let mut w = World::new();
    let s = w.client("s", "pw");
    let p = w.peer(1);
    let offer = w.peers[p].publish_offer(true, false, &[]).expect("offer");
    let audio = offer.audio.expect("audio");
    let response = w.post("/group/g/.whip", &offer.sdp);
    assert_eq!(response.status, 201);
    let answer = String::from_utf8_lossy(&response.body).into_owned();
    let location = header(&response, "location").expect("Location").to_owned();
    let etag = header(&response, "etag").expect("ETag").to_owned();
    w.peers[p].accept_answer(&answer).expect("accept");
    w.drain_peer(p);
    w.run(Duration::from_millis(300));
    let (sp, _) = w.galene_receive(s, 2);
    w.run(Duration::from_secs(1));
    assert!(w.peers[p].connected && w.peers[sp].connected);

    // The client restarts ICE: new credentials in a fragment, If-Match: *.
    let restart = w.peers[p].ice_restart_offer().expect("restart offer");
    let (ufrag, pwd) = super::sdpfrag::credentials(&restart).expect("credentials");
    let fragment = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let patch = w.http("PATCH", &location, &[frag, ("If-Match", "*")], &fragment);
    assert_eq!(patch.status, 200, "{patch:?}");
    assert_eq!(
        header(&patch, "content-type"),
        Some("application/trickle-ice-sdpfrag")
    );
    let new_etag = header(&patch, "etag").expect("a new ETag").to_owned();
    assert_ne!(new_etag, etag);
    let reply = String::from_utf8_lossy(&patch.body).into_owned();
    let (new_ufrag, new_pwd) = super::sdpfrag::credentials(&reply).expect("credentials");
    let (old_ufrag, _) = super::sdpfrag::credentials(&answer).expect("credentials");
    assert_ne!(new_ufrag, old_ufrag);
    assert!(reply.contains("a=candidate:"), "{reply}");
    // The old tag no longer matches.
    assert_eq!(
        w.http("DELETE", &location, &[("If-Match", &etag)], "")
            .status,
        412
    );

    // The client applies it as whip.js does (the old answer with the new credentials) and
    // its media flows again, through the new ICE session only.
    let candidates = super::sdpfrag::parse(&reply)
        .expect("a fragment")
        .candidates;
    let restarted = super::sdpfrag::restarted_offer(&answer, (&new_ufrag, &new_pwd), &candidates);
    w.peers[p]
        .accept_answer(&restarted)
        .expect("restart answer");
    w.drain_peer(p);
    w.run(Duration::from_secs(2));
    let before = w.seen[sp].len();
    w.send_media(p, audio, None, 9, Duration::from_secs(1));
    let after = w.seen[sp][before..].iter().filter(|(_, t)| *t == 9).count();
    assert!(after >= 40, "{after} packets after the restart");
    assert_eq!(w.app.whip().len(), 1);
}

#[test]
fn a_whep_client_follows_the_newest_stream_of_the_group() {
    let mut w = World::new();
    let alice = w.client("alice", "pw");
    let bob = w.client("bob", "pw");
    // A viewer before anything is published: it waits.
    let (v, response, v_audio, v_video) = w.whep(10, "/group/g/.whep");
    assert_eq!(response.status, 201, "{response:?}");
    let location = header(&response, "location").expect("Location").to_owned();
    assert!(location.starts_with("/group/g/.whep/"), "{location}");
    assert_eq!(
        w.users(alice).last(),
        Some(&("add".to_owned(), "whep".to_owned()))
    );
    w.run(Duration::from_secs(1));
    assert!(w.peers[v].connected);
    assert!(w.seen[v].is_empty());

    // Alice publishes: the viewer gets her audio and video.
    let (a, a_audio, a_video) = w.galene_publish(alice, 1, "a-cam");
    w.run(Duration::from_millis(300));
    w.send_media(a, a_audio, Some(a_video), 1, Duration::from_secs(1));
    assert!(audio_tags(&w, v, v_audio, 0).contains(&1), "alice's audio");
    let video_in = w.seen[v]
        .iter()
        .filter(|(m, _)| *m == Some(v_video))
        .count();
    assert!(video_in >= 20, "{video_in} video packets");

    // Bob publishes later: the viewer moves to him (audio at once, video at a keyframe).
    let mark = w.seen[v].len();
    let (b, b_audio, b_video) = w.galene_publish(bob, 2, "b-cam");
    w.run(Duration::from_millis(300));
    w.send_media(b, b_audio, Some(b_video), 2, Duration::from_secs(1));
    w.send_media(a, a_audio, Some(a_video), 1, Duration::from_millis(500));
    assert_eq!(audio_tags(&w, v, v_audio, mark), [2]);

    // Bob stops: back to Alice, the newest left.
    w.send(bob, json!({"type": "close", "id": "b-cam"}));
    let mark = w.seen[v].len();
    w.send_media(a, a_audio, Some(a_video), 1, Duration::from_millis(500));
    assert_eq!(audio_tags(&w, v, v_audio, mark), [1]);

    // A viewer that names Alice keeps her even when Bob publishes again.
    let (named, response, n_audio, _) = w.whep(11, "/group/g/.whep?user=alice");
    assert_eq!(response.status, 201);
    let (b, b_audio, b_video) = w.galene_publish(bob, 3, "b-cam-2");
    w.run(Duration::from_millis(300));
    let (mark_v, mark_n) = (w.seen[v].len(), w.seen[named].len());
    // (A switch happens at the new stream's first packet that can start a decoder: until
    // then the old one flows. Bob speaks first.)
    w.send_media(b, b_audio, Some(b_video), 2, Duration::from_millis(600));
    w.send_media(a, a_audio, Some(a_video), 1, Duration::from_millis(600));
    assert_eq!(audio_tags(&w, named, n_audio, mark_n), [1]);
    assert_eq!(audio_tags(&w, v, v_audio, mark_v), [2]);
    // Nobody shares a screen: a viewer of screens waits, connected, with nothing.
    let (screens, response, _, _) = w.whep(12, "/group/g/.whep?label=screenshare");
    assert_eq!(response.status, 201);
    w.send_media(a, a_audio, Some(a_video), 1, Duration::from_millis(400));
    assert!(w.peers[screens].connected);
    assert!(w.seen[screens].is_empty());

    // DELETE ends a viewer; the other still watches.
    w.received.clear();
    assert_eq!(w.http("DELETE", &location, &[], "").status, 200);
    assert_eq!(w.users(alice), [("delete".to_owned(), "whep".to_owned())]);
    assert_eq!(w.app.whip().len(), 2);
    assert_eq!(w.app.streams().tables().followers, 2);
}

#[test]
fn refusals_have_galenes_status_codes() {
    let mut w = World::new();
    let p = w.peer(1);
    let offer = w.peers[p]
        .publish_offer(true, true, &[])
        .expect("offer")
        .sdp;
    let sdp = ("Content-Type", "application/sdp");

    let options = w.http("OPTIONS", "/group/g/.whip", &[], "");
    assert_eq!(options.status, 200);
    assert_eq!(
        header(&options, "access-control-allow-methods"),
        Some("OPTIONS, POST")
    );
    assert_eq!(
        header(&options, "access-control-allow-headers"),
        Some("Authorization, Content-Type")
    );
    assert_eq!(
        header(&options, "access-control-expose-headers"),
        Some("Link")
    );
    assert_eq!(
        options.headers.iter().filter(|(n, _)| *n == "Link").count(),
        2
    );
    assert_eq!(header(&options, "vary"), Some("Origin"));
    // CORS: the origin of the page's own host is allowed, another is not.
    let same = w.http(
        "OPTIONS",
        "/group/g/.whip",
        &[("Host", "sfu.example"), ("Origin", "https://sfu.example")],
        "",
    );
    assert_eq!(
        header(&same, "access-control-allow-origin"),
        Some("https://sfu.example")
    );
    let other = w.http(
        "OPTIONS",
        "/group/g/.whip",
        &[("Host", "sfu.example"), ("Origin", "https://evil.example")],
        "",
    );
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    let get = w.http("GET", "/group/g/.whip", &[], "");
    assert_eq!(
        (get.status, header(&get, "allow")),
        (405, Some("OPTIONS, POST"))
    );
    let untyped = w.http("POST", "/group/g/.whip", &[], &offer);
    assert_eq!(
        (untyped.status, header(&untyped, "accept")),
        (415, Some("application/sdp"))
    );
    let json = w.http(
        "POST",
        "/group/g/.whip",
        &[("Content-Type", "application/json")],
        &offer,
    );
    assert_eq!(json.status, 415);
    assert_eq!(w.post("/group/g/.whip", "").status, 400);
    assert_eq!(w.post("/group/g/.whip", "v=0\r\nnonsense\r\n").status, 400);
    let big = "a".repeat(whip::MAX_SDP_BODY + 1);
    assert_eq!(w.http("POST", "/group/g/.whip", &[sdp], &big).status, 413);
    assert_eq!(w.post("/group/nowhere/.whip", &offer).status, 404);
    assert_eq!(w.post("/group/nowhere/.whep", &offer).status, 404);

    // Tokens: a valid one publishes under its username; a wrong one is 401.
    let bad = w.http(
        "POST",
        "/group/g/.whip",
        &[sdp, ("Authorization", "Bearer nope")],
        &offer,
    );
    assert_eq!(bad.status, 401);
    let watcher = w.client("watcher", "pw");
    w.received.clear();
    let good = w.http(
        "POST",
        "/group/g/.whip",
        &[sdp, ("Authorization", "Basic x, Bearer tok")],
        &offer,
    );
    assert_eq!(good.status, 201, "{good:?}");
    assert_eq!(
        w.users(watcher),
        [("add".to_owned(), "camera-1".to_owned())]
    );
    let location = header(&good, "location").expect("Location").to_owned();
    // The resource wants the same token, even for a preflight (Galène's order).
    assert_eq!(w.http("OPTIONS", &location, &[], "").status, 403);
    let wrong = w.http("DELETE", &location, &[("Authorization", "Bearer tok2")], "");
    assert_eq!(wrong.status, 403);
    let right = w.http("DELETE", &location, &[("Authorization", "Bearer tok")], "");
    assert_eq!(right.status, 200);
    assert_eq!(
        w.users(watcher),
        [("delete".to_owned(), "camera-1".to_owned())]
    );

    // Resources: not 16 bytes of base64url is 500 (as Galène), unknown is 404.
    assert_eq!(w.http("DELETE", "/group/g/.whip/xyz", &[], "").status, 500);
    let unknown = "/group/g/.whip/AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(w.http("DELETE", unknown, &[], "").status, 404);
    assert_eq!(w.http("PATCH", unknown, &[], "").status, 404);

    // A group whose `whip` user may not present: 403; one without a `whip` user: 401.
    let mut dir = MemoryDirectory::new();
    dir.set_group_json(
        "watch",
        r#"{"users": {"whip": {"password": "", "permissions": "observe"}}}"#,
    )
    .expect("valid");
    dir.set_group_json("closed", r#"{"wildcard-user": {"password": "secret"}}"#)
        .expect("valid");
    let now = w.now;
    w.app = App::new(Box::new(dir), AppOptions::default(), now, SystemTime::now());
    w.app
        .enable_media(SfuConfig::new(vec![SERVER.parse().expect("address")]))
        .expect("media");
    assert_eq!(w.post("/group/watch/.whip", &offer).status, 403);
    assert_eq!(w.post("/group/closed/.whip", &offer).status, 401);
    assert!(w.app.whip().is_empty());
    assert_eq!(w.app.core().members("watch").len(), 0);

    // Without a media engine: 503.
    let mut dir = MemoryDirectory::new();
    dir.set_group_json("g", GROUP).expect("valid");
    w.app = App::new(Box::new(dir), AppOptions::default(), now, SystemTime::now());
    assert_eq!(w.post("/group/g/.whip", &offer).status, 503);
}

#[test]
fn sessions_end_when_never_connected_when_kicked_and_at_shutdown() {
    let mut w = World::new();
    let boss = w.client("boss", "pw");
    // A client that never answers ICE: gone after the connect timeout.
    let p = w.peer(1);
    let offer = w.peers[p]
        .publish_offer(true, true, &[])
        .expect("offer")
        .sdp;
    let silent = w.post("/group/g/.whip", &offer);
    assert_eq!(silent.status, 201);
    let silent_location = header(&silent, "location").expect("Location").to_owned();
    w.peers[p].addr = "198.51.100.99:9".parse().expect("address");
    w.received.clear();
    w.run(Duration::from_secs(1));
    assert_eq!(w.app.whip().len(), 1);
    // (ICE gives up first here, after 10 s without a path; the connect deadline would
    // catch a session whose ICE stays up without DTLS.)
    w.run(CONNECT_TIMEOUT);
    assert!(w.app.whip().is_empty());
    assert_eq!(w.users(boss), [("delete".to_owned(), "whip".to_owned())]);
    assert_eq!(w.http("DELETE", &silent_location, &[], "").status, 404);

    // An operator kicks a WHIP user: its session and stream end.
    let (v, response, _, _) = w.whep(2, "/group/g/.whep");
    assert_eq!(response.status, 201);
    let q = w.peer(3);
    let offer = w.peers[q]
        .publish_offer(true, true, &[])
        .expect("offer")
        .sdp;
    let kicked = w.post("/group/g/.whip", &offer);
    let answer = String::from_utf8_lossy(&kicked.body).into_owned();
    w.peers[q].accept_answer(&answer).expect("accept");
    w.drain_peer(q);
    w.run(Duration::from_secs(1));
    assert!(w.peers[q].connected && w.peers[v].connected);
    assert_eq!(w.app.whip().len(), 2);
    let whip_id = w
        .app
        .core()
        .members("g")
        .iter()
        .filter_map(|c| w.app.core().client(*c))
        .find(|c| c.username() == Some("whip"))
        .map(|c| c.id().to_owned())
        .expect("the whip user");
    w.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": whip_id, "source": "boss",
               "value": "enough"}),
    );
    assert_eq!(w.app.whip().len(), 1);
    assert_eq!(w.app.streams().tables().ups, 0);

    // Shutdown: the WHEP session ends with everything else.
    w.app.shutdown(w.now, "server shutting down");
    w.collect();
    assert!(w.app.whip().is_empty());
    assert_eq!(w.app.streams().tables().followers, 0);
}
