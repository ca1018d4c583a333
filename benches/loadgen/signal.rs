//! The generator's signalling clients: Galène's protocol (sfubox and the null SFU) and Janus's
//! VideoRoom JSON API, both over non-blocking WebSockets polled from the generator's one thread.
//!
//! A [`Client`] is one emulated browser tab: one WebSocket, one publishing peer at most, and a
//! peer per received stream. It creates peers in the shared [`Env`] and advances its state
//! machine on every message.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::{self, Message, WebSocket};
use serde_json::{Value, json};
use str0m::media::Mid;

use sfubox::testing::PeerConfig;

use crate::peer::Peer;

/// What clients share: the peers, and how to make new ones.
pub struct Env<'a> {
    /// Every peer of the generator.
    pub peers: &'a mut Vec<Peer>,
    /// How new peers are built.
    pub peer_config: &'a PeerConfig,
    /// The address peers bind to.
    pub ip: IpAddr,
}

impl Env<'_> {
    fn new_peer(&mut self) -> Result<usize, String> {
        let peer = Peer::new(self.peer_config, self.ip).map_err(|e| format!("peer socket: {e}"))?;
        self.peers.push(peer);
        Ok(self.peers.len() - 1)
    }
}

/// A negotiated publication: the peer and its audio and video mids.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// Index of the publishing peer.
    pub peer: usize,
    /// The audio mid.
    pub audio: Mid,
    /// The video mid.
    pub video: Mid,
    /// The target's id for the feed (Janus), 0 for Galène.
    pub feed: u64,
}

/// One emulated browser tab on one target.
pub trait Client {
    /// Reads and handles every waiting message.
    fn poll(&mut self, env: &mut Env) -> Result<(), String>;
    /// Starts publishing a camera (`simulcast`: video layers `h` and `l`; Galène only).
    fn publish(&mut self, env: &mut Env, simulcast: bool) -> Result<(), String>;
    /// Starts receiving `feeds` (Janus needs them named; Galène receives everything).
    fn subscribe(&mut self, env: &mut Env, feeds: &[u64]) -> Result<(), String>;
    /// The publication, once answered.
    fn published(&self) -> Option<Published>;
    /// Peers created to receive streams.
    fn receivers(&self) -> Vec<usize>;
    /// Sends a keepalive if the protocol needs one.
    fn keepalive(&mut self, now: Instant) -> Result<(), String>;
}

/// A non-blocking WebSocket.
pub struct Ws {
    socket: WebSocket<TcpStream>,
}

impl Ws {
    /// Connects (blocking) to `url` on `host:port`, then switches to non-blocking.
    pub fn connect(url: &str, subprotocol: Option<&str>) -> Result<Ws, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(p) = subprotocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).map_err(|e| e.to_string())?,
            );
        }
        let authority = request
            .uri()
            .authority()
            .ok_or("url without host")?
            .to_string();
        let stream = TcpStream::connect(&authority).map_err(|e| format!("{authority}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (socket, _) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
        socket
            .get_ref()
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        Ok(Ws { socket })
    }

    /// Queues and flushes a JSON message.
    pub fn send(&mut self, value: &Value) -> Result<(), String> {
        match self.socket.send(Message::text(value.to_string())) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next waiting JSON message, if any.
    pub fn recv(&mut self) -> Result<Option<Value>, String> {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(&text)
                        .map(Some)
                        .map_err(|e| e.to_string());
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    let _ = self.socket.flush();
                    return Ok(None);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Waits (polling) up to `limit` for a message.
    pub fn recv_within(&mut self, limit: Duration) -> Result<Option<Value>, String> {
        let until = Instant::now() + limit;
        loop {
            if let Some(v) = self.recv()? {
                return Ok(Some(v));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

// ------------------------------------------------------------------------------ Galène

/// A Galène client (sfubox or the null SFU).
pub struct Galene {
    ws: Ws,
    id: String,
    publishing: Option<(usize, Mid, Mid)>,
    published: Option<Published>,
    /// Down stream id → peer.
    down: HashMap<String, usize>,
    subscribed_at: Option<Instant>,
}

impl Galene {
    /// Connects, says hello and joins `group` as `id` (blocking until joined).
    pub fn join(url: &str, group: &str, id: &str) -> Result<Galene, String> {
        let mut ws = Ws::connect(url, None)?;
        ws.send(&json!({"type": "handshake", "version": ["2"], "id": id}))?;
        ws.send(&json!({"type": "join", "kind": "join", "group": group,
                        "username": id, "password": "pw"}))?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Some(m) = ws.recv_within(left)? else {
                return Err(format!("{id}: not joined within 10 s"));
            };
            if m["type"] == "joined" {
                if m["kind"] != "join" {
                    return Err(format!("{id}: join refused: {m}"));
                }
                break;
            }
        }
        Ok(Galene {
            ws,
            id: id.to_owned(),
            publishing: None,
            published: None,
            down: HashMap::new(),
            subscribed_at: None,
        })
    }

    /// Sends a group action (`record`, `unrecord`, ...).
    pub fn group_action(&mut self, kind: &str) -> Result<(), String> {
        self.ws
            .send(&json!({"type": "groupaction", "source": self.id, "kind": kind}))
    }

    fn up_id(&self) -> String {
        format!("up-{}", self.id)
    }

    fn handle(&mut self, m: Value, env: &mut Env) -> Result<(), String> {
        let kind = m["type"].as_str().unwrap_or("");
        let id = m["id"].as_str().unwrap_or("");
        match kind {
            "ping" => self.ws.send(&json!({"type": "pong"}))?,
            "answer" if id == self.up_id() => {
                let Some((peer, audio, video)) = self.publishing else {
                    return Ok(());
                };
                let sdp = m["sdp"].as_str().ok_or("answer without sdp")?;
                env.peers[peer].accept_answer(sdp)?;
                self.published = Some(Published {
                    peer,
                    audio,
                    video,
                    feed: 0,
                });
            }
            "offer" => {
                let sdp = m["sdp"].as_str().ok_or("offer without sdp")?;
                let peer = match self.down.get(id) {
                    Some(&p) => p,
                    None => {
                        let p = env.new_peer()?;
                        env.peers[p].joined_at = self.subscribed_at;
                        self.down.insert(id.to_owned(), p);
                        p
                    }
                };
                let answer = env.peers[peer].answer_offer(sdp)?;
                let candidate = env.peers[peer].peer.candidate_line();
                self.ws.send(&json!({"type": "ice", "id": id, "candidate":
                    {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}))?;
                self.ws
                    .send(&json!({"type": "answer", "id": id, "sdp": answer}))?;
            }
            "ice" => {
                let peer = if id == self.up_id() {
                    self.publishing.map(|p| p.0)
                } else {
                    self.down.get(id).copied()
                };
                if let (Some(p), Some(line)) = (peer, m["candidate"]["candidate"].as_str()) {
                    env.peers[p].peer.add_remote_candidate(line);
                }
            }
            "usermessage" if m["kind"] == "error" => {
                return Err(format!("{}: error from server: {m}", self.id));
            }
            _ => {}
        }
        Ok(())
    }
}

impl Client for Galene {
    fn poll(&mut self, env: &mut Env) -> Result<(), String> {
        while let Some(m) = self.ws.recv()? {
            self.handle(m, env)?;
        }
        Ok(())
    }

    fn publish(&mut self, env: &mut Env, simulcast: bool) -> Result<(), String> {
        let peer = env.new_peer()?;
        let (sdp, audio, video) = env.peers[peer].publish_offer(simulcast)?;
        self.publishing = Some((peer, audio, video));
        let candidate = env.peers[peer].peer.candidate_line();
        let id = self.up_id();
        self.ws
            .send(&json!({"type": "offer", "id": id, "label": "camera",
                             "source": self.id, "username": self.id, "sdp": sdp}))?;
        self.ws.send(&json!({"type": "ice", "id": id, "candidate":
            {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}))
    }

    fn subscribe(&mut self, _env: &mut Env, _feeds: &[u64]) -> Result<(), String> {
        self.subscribed_at = Some(Instant::now());
        self.ws
            .send(&json!({"type": "request", "request": {"": ["audio", "video"]}}))
    }

    fn published(&self) -> Option<Published> {
        self.published
    }

    fn receivers(&self) -> Vec<usize> {
        self.down.values().copied().collect()
    }

    fn keepalive(&mut self, _now: Instant) -> Result<(), String> {
        Ok(())
    }
}

// ------------------------------------------------------------------------------ Janus

/// What a pending Janus transaction was for.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Attach { subscribe_to: Option<u64> },
    JoinPublisher,
    Publish,
    JoinSubscriber,
    Start,
}

/// A Janus VideoRoom client (spec part B4): one session, a publisher handle and one
/// subscriber handle per feed.
pub struct Janus {
    ws: Ws,
    session: u64,
    room: u64,
    transactions: HashMap<String, (Pending, u64)>,
    next_tx: u64,
    publisher: Option<(u64, usize, Mid, Mid)>,
    feed: Option<u64>,
    published: Option<Published>,
    /// Subscriber handle → peer.
    down: HashMap<u64, usize>,
    subscribed_at: Option<Instant>,
    last_keepalive: Instant,
}

impl Janus {
    /// Connects and creates a session (blocking).
    pub fn connect(url: &str, room: u64) -> Result<Janus, String> {
        let mut ws = Ws::connect(url, Some("janus-protocol"))?;
        ws.send(&json!({"janus": "create", "transaction": "create"}))?;
        let reply = wait_transaction(&mut ws, "create")?;
        let session = reply["data"]["id"]
            .as_u64()
            .ok_or("create: no session id")?;
        Ok(Janus {
            ws,
            session,
            room,
            transactions: HashMap::new(),
            next_tx: 0,
            publisher: None,
            feed: None,
            published: None,
            down: HashMap::new(),
            subscribed_at: None,
            last_keepalive: Instant::now(),
        })
    }

    /// Creates room `room` for `publishers` (blocking), on a throwaway handle.
    pub fn create_room(&mut self, room: u64, publishers: u64) -> Result<(), String> {
        self.ws.send(
            &json!({"janus": "attach", "plugin": "janus.plugin.videoroom",
                             "session_id": self.session, "transaction": "attach-admin"}),
        )?;
        let reply = wait_transaction(&mut self.ws, "attach-admin")?;
        let handle = reply["data"]["id"].as_u64().ok_or("attach: no handle id")?;
        self.ws
            .send(&json!({"janus": "message", "session_id": self.session,
            "handle_id": handle, "transaction": "create-room",
            "body": {"request": "create", "room": room, "publishers": publishers,
                     "bitrate": 2_000_000, "videocodec": "vp8", "audiocodec": "opus",
                     "fir_freq": 10, "permanent": false}}))?;
        let reply = wait_transaction(&mut self.ws, "create-room")?;
        let data = &reply["plugindata"]["data"];
        if data["videoroom"] != "created" {
            return Err(format!("room create: {reply}"));
        }
        Ok(())
    }

    fn send_tx(&mut self, mut body: Value, pending: Pending, handle: u64) -> Result<(), String> {
        self.next_tx += 1;
        let tx = format!("t{}", self.next_tx);
        if let Some(o) = body.as_object_mut() {
            o.insert("transaction".into(), json!(tx));
            o.insert("session_id".into(), json!(self.session));
            if handle != 0 {
                o.insert("handle_id".into(), json!(handle));
            }
        }
        self.transactions.insert(tx, (pending, handle));
        self.ws.send(&body)
    }

    fn attach(&mut self, subscribe_to: Option<u64>) -> Result<(), String> {
        self.send_tx(
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
            Pending::Attach { subscribe_to },
            0,
        )
    }

    fn trickle_done(&mut self, handle: u64) -> Result<(), String> {
        self.ws
            .send(&json!({"janus": "trickle", "session_id": self.session,
            "handle_id": handle, "transaction": "trickle", "candidate": {"completed": true}}))
    }

    fn handle(&mut self, m: Value, env: &mut Env) -> Result<(), String> {
        let kind = m["janus"].as_str().unwrap_or("");
        if kind == "error" {
            return Err(format!("janus error: {m}"));
        }
        if kind == "ack" {
            return Ok(());
        }
        let Some(tx) = m["transaction"].as_str() else {
            return Ok(()); // webrtcup, media, slowlink, announcements: nothing to do
        };
        let Some(&(pending, handle)) = self.transactions.get(tx) else {
            return Ok(());
        };
        self.transactions.remove(tx);
        let data = &m["plugindata"]["data"];
        if data.get("error").is_some() {
            return Err(format!("videoroom error: {m}"));
        }
        match pending {
            Pending::Attach { subscribe_to } => {
                let h = m["data"]["id"].as_u64().ok_or("attach: no handle")?;
                match subscribe_to {
                    None => self.send_tx(
                        json!({"janus": "message", "body": {"request": "join",
                            "ptype": "publisher", "room": self.room, "display": "loadgen"}}),
                        Pending::JoinPublisher,
                        h,
                    )?,
                    Some(feed) => self.send_tx(
                        json!({"janus": "message", "body": {"request": "join",
                            "ptype": "subscriber", "room": self.room,
                            "streams": [{"feed": feed}]}}),
                        Pending::JoinSubscriber,
                        h,
                    )?,
                }
            }
            Pending::JoinPublisher => {
                self.feed = data["id"].as_u64();
                let peer = env.new_peer()?;
                let (sdp, audio, video) = env.peers[peer].publish_offer(false)?;
                self.publisher = Some((handle, peer, audio, video));
                self.send_tx(
                    json!({"janus": "message",
                           "body": {"request": "publish", "audio": true, "video": true},
                           "jsep": {"type": "offer", "sdp": sdp}}),
                    Pending::Publish,
                    handle,
                )?;
            }
            Pending::Publish => {
                let sdp = m["jsep"]["sdp"].as_str().ok_or("publish: no answer")?;
                let Some((h, peer, audio, video)) = self.publisher else {
                    return Ok(());
                };
                env.peers[peer].accept_answer(sdp)?;
                self.trickle_done(h)?;
                self.published = Some(Published {
                    peer,
                    audio,
                    video,
                    feed: self.feed.unwrap_or(0),
                });
            }
            Pending::JoinSubscriber => {
                let sdp = m["jsep"]["sdp"]
                    .as_str()
                    .ok_or("subscriber join: no offer")?;
                let peer = env.new_peer()?;
                env.peers[peer].joined_at = self.subscribed_at;
                let answer = env.peers[peer].answer_offer(sdp)?;
                self.down.insert(handle, peer);
                self.send_tx(
                    json!({"janus": "message", "body": {"request": "start"},
                           "jsep": {"type": "answer", "sdp": answer}}),
                    Pending::Start,
                    handle,
                )?;
            }
            Pending::Start => self.trickle_done(handle)?,
        }
        Ok(())
    }
}

fn wait_transaction(ws: &mut Ws, tx: &str) -> Result<Value, String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Some(m) = ws.recv_within(left)? else {
            return Err(format!("janus: no reply to {tx}"));
        };
        if m["transaction"] == tx && m["janus"] != "ack" {
            if m["janus"] == "error" {
                return Err(format!("janus: {m}"));
            }
            return Ok(m);
        }
    }
}

impl Client for Janus {
    fn poll(&mut self, env: &mut Env) -> Result<(), String> {
        while let Some(m) = self.ws.recv()? {
            self.handle(m, env)?;
        }
        Ok(())
    }

    fn publish(&mut self, _env: &mut Env, simulcast: bool) -> Result<(), String> {
        if simulcast {
            return Err("the Janus client does not publish simulcast".into());
        }
        self.attach(None)
    }

    fn subscribe(&mut self, _env: &mut Env, feeds: &[u64]) -> Result<(), String> {
        self.subscribed_at = Some(Instant::now());
        for &feed in feeds {
            if Some(feed) != self.feed {
                self.attach(Some(feed))?;
            }
        }
        Ok(())
    }

    fn published(&self) -> Option<Published> {
        self.published
    }

    fn receivers(&self) -> Vec<usize> {
        self.down.values().copied().collect()
    }

    fn keepalive(&mut self, now: Instant) -> Result<(), String> {
        if now.saturating_duration_since(self.last_keepalive) > Duration::from_secs(20) {
            self.last_keepalive = now;
            self.ws
                .send(&json!({"janus": "keepalive", "session_id": self.session,
                                 "transaction": "keepalive"}))?;
        }
        Ok(())
    }
}
