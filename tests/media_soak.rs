//! A soak with media flowing: the real `sfubox` binary (a child process) under a churn of
//! publishers and subscribers that join and leave every few seconds while RTP flows, with
//! renegotiations, layer switches and abrupt disconnects. Run by `tests/soak/media.sh`
//! (ignored by a plain `cargo test`):
//!
//! ```text
//! MEDIA_SOAK_SECONDS=600 SFUBOX_BIN=target/release/sfubox tests/soak/media.sh
//! ```
//!
//! Every participant is a str0m test peer (`sfubox::testing::TestPeer`) on its own UDP socket
//! and a Galène client on its own WebSocket, all pumped by one thread. Two publisher slots
//! (one simulcast with layers `h` and `l`, one plain) and three subscriber slots each run a
//! participant for 3–12 s, then start a new one after a short pause. During its life a
//! publisher may renegotiate (an offer for the same stream adding a track), a subscriber may
//! switch to the low layer and back (`requestStream`) and ask for a renegotiation (an ICE
//! restart). A life ends cleanly (close, leave, close frame) or abruptly (a TCP reset and the
//! UDP socket dropped without a word).
//!
//! The verdict: media reached subscribers in every 10 s window; the server's RSS at the end of
//! the churn is within 10 % of its value after the first minute (for runs of 5 minutes or
//! more; shorter runs, made for CI, allow 50 % as the allocator may still be warming up); once
//! everyone has left, its open file descriptors are back at the baseline; it logged no panic
//! and still answers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message, WebSocket};
use serde_json::{Value, json};
use sfubox::testing::{PeerConfig, PeerOutput, TestPeer, write_vp8_start};
use str0m::Event;
use str0m::format::Codec;
use str0m::media::{Mid, Rid};

const GROUP: &str = r#"{"wildcard-user": {"password": "", "permissions": "present"}}"#;

/// A small deterministic random source (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

// ------------------------------------------------------------------------------ the server

/// The binary under test, with its log scanned for panics.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    panics: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let binary = std::env::var("SFUBOX_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_sfubox")));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sfubox-media-soak-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("groups")).expect("groups directory");
        std::fs::create_dir_all(dir.join("data")).expect("data directory");
        std::fs::write(dir.join("groups/soak.json"), GROUP).expect("group file");
        let mut child = Command::new(&binary)
            .args(["-insecure", "-http", "127.0.0.1:0"])
            .arg("-groups")
            .arg(dir.join("groups"))
            .arg("-data")
            .arg(dir.join("data"))
            // As the systemd unit runs it.
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .env("MALLOC_TRIM_THRESHOLD_", "131072")
            .env("RUST_LOG", "warn,sfubox=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (address, listening) = std::sync::mpsc::channel();
        let panics = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&panics);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Listening on http://").nth(1) {
                    let _ = address.send(rest.trim_end_matches('/').to_owned());
                }
                if line.contains("panic")
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.push(line);
                }
            }
        });
        let addr = listening
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs where it listens")
            .parse()
            .expect("an address");
        Server {
            child,
            addr,
            dir,
            panics,
        }
    }

    /// (RSS in KiB, open file descriptors) of the server now.
    fn sample(&self) -> (u64, usize) {
        let pid = self.child.id();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0);
        (rss, fds)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------------------------------------ clients

/// A non-blocking Galène WebSocket.
struct Ws {
    socket: WebSocket<TcpStream>,
}

impl Ws {
    /// Connects, handshakes and joins `soak` as `name` (blocking until joined).
    fn join(addr: SocketAddr, name: &str) -> Result<Ws, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (socket, _) =
            tungstenite::client(format!("ws://{addr}/ws"), stream).map_err(|e| e.to_string())?;
        let mut ws = Ws { socket };
        ws.send(&json!({"type": "handshake", "version": ["2"], "id": name}));
        ws.send(&json!({"type": "join", "kind": "join", "group": "soak",
                        "username": name, "password": ""}));
        loop {
            match ws.socket.read() {
                Ok(Message::Text(text)) => {
                    let m: Value =
                        serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                    if m["type"] == "joined" {
                        if m["kind"] != "join" {
                            return Err(format!("join refused: {m}"));
                        }
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        ws.socket
            .get_ref()
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }

    fn send(&mut self, value: &Value) {
        // A full socket buffer would only delay; errors end the participant at its next read.
        let _ = self.socket.send(Message::text(value.to_string()));
    }

    /// The next waiting message; `Err` when the connection is gone.
    fn recv(&mut self) -> Result<Option<Value>, String> {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(|e| e.to_string());
                }
                Ok(Message::Close(_)) => return Err("closed by the server".into()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    let _ = self.socket.flush();
                    return Ok(None);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Leaves and closes properly.
    fn leave(mut self, name: &str) {
        self.send(&json!({"type": "join", "kind": "leave", "group": "soak", "username": name}));
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    /// Vanishes: a TCP reset instead of a close handshake.
    fn vanish(self) {
        use nix::sys::socket::{setsockopt, sockopt::Linger};
        let stream = self.socket.get_ref();
        let _ = setsockopt(
            stream,
            Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
    }
}

/// A str0m peer on its own UDP socket.
struct Peer {
    peer: TestPeer,
    socket: UdpSocket,
    keyframe_requested: bool,
}

impl Peer {
    fn new(config: &PeerConfig) -> Result<Peer, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = socket.local_addr().map_err(|e| e.to_string())?;
        let peer = TestPeer::new(addr, Instant::now(), config).map_err(|e| e.to_string())?;
        let mut peer = Peer {
            peer,
            socket,
            keyframe_requested: false,
        };
        peer.drain();
        Ok(peer)
    }

    fn drain(&mut self) {
        while let Some(out) = self.peer.poll() {
            match out {
                PeerOutput::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                PeerOutput::Event(Event::KeyframeRequest(_)) => self.keyframe_requested = true,
                _ => {}
            }
        }
    }

    fn pump(&mut self, buf: &mut [u8]) {
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            let data = buf.get(..n).unwrap_or_default();
            if self.peer.receive(Instant::now(), from, data) {
                self.drain();
            }
        }
        if self.peer.timeout_due(Instant::now()) {
            self.drain();
        }
    }

    fn candidate(&self) -> Value {
        json!({"candidate": self.peer.candidate_line(), "sdpMid": "0", "sdpMLineIndex": 0})
    }
}

/// What one simulated camera sends: audio every 20 ms, video at 30 frames/s (simulcast: a
/// high layer of two packets and a low one of one), a keyframe every 3 s and when asked.
struct Camera {
    audio: Mid,
    video: Mid,
    simulcast: bool,
    next_audio: Instant,
    next_frame: Instant,
    frame: u64,
    seqs: HashMap<(Mid, Option<&'static str>), u64>,
}

impl Camera {
    fn run(&mut self, peer: &mut Peer, now: Instant) {
        if !peer.peer.connected {
            return;
        }
        if now >= self.next_audio {
            self.next_audio = (self.next_audio + Duration::from_millis(20)).max(now);
            let seq = self.next_seq(self.audio, None);
            let ts = (seq * 960) as u32;
            let payload = vec![0x55; 100];
            peer.peer
                .write_rtp(Codec::Opus, self.audio, None, seq, ts, now, false, payload);
            peer.drain();
        }
        if now >= self.next_frame {
            self.next_frame = (self.next_frame + Duration::from_micros(33_333)).max(now);
            self.frame += 1;
            let keyframe = self.frame % 90 == 1 || std::mem::take(&mut peer.keyframe_requested);
            let ts = (self.frame * 3000) as u32;
            let layers: &[(Option<&'static str>, usize, usize)] = if self.simulcast {
                &[(Some("h"), 2, 900), (Some("l"), 1, 300)]
            } else {
                &[(None, 2, 900)]
            };
            for &(rid, packets, len) in layers {
                for n in 0..packets {
                    let mut payload = vec![0u8; len];
                    write_vp8_start(&mut payload, n == 0, keyframe);
                    let seq = self.next_seq(self.video, rid);
                    let marker = n + 1 == packets;
                    peer.peer.write_rtp(
                        Codec::Vp8,
                        self.video,
                        rid.map(Rid::from),
                        seq,
                        ts,
                        now,
                        marker,
                        payload,
                    );
                    peer.drain();
                }
            }
        }
    }

    fn next_seq(&mut self, mid: Mid, rid: Option<&'static str>) -> u64 {
        let seq = self.seqs.entry((mid, rid)).or_insert(1);
        *seq += 1;
        *seq
    }
}

/// What a participant does.
enum Role {
    Publisher {
        peer: Box<Peer>,
        camera: Camera,
        answered: bool,
        renegotiated: bool,
    },
    Subscriber {
        /// Down stream id → its peer.
        down: HashMap<String, Peer>,
        low: bool,
    },
}

/// One simulated browser tab.
struct Participant {
    name: String,
    ws: Ws,
    role: Role,
    ends_at: Instant,
    next_action: Instant,
    abrupt: bool,
}

/// What the run counted.
#[derive(Default, Debug)]
struct Counts {
    sessions: u64,
    publications: u64,
    down_streams: u64,
    publisher_renegotiations: u64,
    layer_switches: u64,
    ice_restarts: u64,
    clean_leaves: u64,
    abrupt_disconnects: u64,
    ended_by_server: u64,
    rtp_sent: u64,
    rtp_received: u64,
}

struct Soak {
    addr: SocketAddr,
    config: PeerConfig,
    rng: Rng,
    counts: Counts,
    next_name: u64,
    buf: Vec<u8>,
}

impl Soak {
    fn spawn(&mut self, publisher: Option<bool>, now: Instant) -> Result<Participant, String> {
        self.next_name += 1;
        let name = format!("p{}", self.next_name);
        let mut ws = Ws::join(self.addr, &name)?;
        self.counts.sessions += 1;
        let role = match publisher {
            Some(simulcast) => {
                let mut peer = Peer::new(&self.config)?;
                let rids: &[&str] = if simulcast { &["h", "l"] } else { &[] };
                let offer = peer
                    .peer
                    .publish_offer(true, true, rids)
                    .map_err(|e| e.to_string())?;
                peer.drain();
                let (Some(audio), Some(video)) = (offer.audio, offer.video) else {
                    return Err("offer without audio or video".into());
                };
                ws.send(&json!({"type": "offer", "id": name, "label": "camera",
                                "sdp": offer.sdp}));
                ws.send(&json!({"type": "ice", "id": name, "candidate": peer.candidate()}));
                self.counts.publications += 1;
                Role::Publisher {
                    peer: Box::new(peer),
                    camera: Camera {
                        audio,
                        video,
                        simulcast,
                        next_audio: now,
                        next_frame: now,
                        frame: 0,
                        seqs: HashMap::new(),
                    },
                    answered: false,
                    renegotiated: false,
                }
            }
            None => {
                ws.send(&json!({"type": "request", "request": {"": ["audio", "video"]}}));
                Role::Subscriber {
                    down: HashMap::new(),
                    low: false,
                }
            }
        };
        Ok(Participant {
            name,
            ws,
            role,
            ends_at: now + self.rng.millis(3000, 12_000),
            next_action: now + self.rng.millis(1000, 4000),
            abrupt: self.rng.chance(35),
        })
    }

    /// Pumps a participant once; `Err` when the server ended it.
    fn pump(&mut self, p: &mut Participant, now: Instant) -> Result<(), String> {
        while let Some(m) = p.ws.recv()? {
            self.handle(p, m)?;
        }
        match &mut p.role {
            Role::Publisher { peer, camera, .. } => {
                peer.pump(&mut self.buf);
                let before: u64 = camera.seqs.values().sum();
                camera.run(peer, now);
                let after: u64 = camera.seqs.values().sum();
                self.counts.rtp_sent += after.saturating_sub(before);
            }
            Role::Subscriber { down, .. } => {
                for peer in down.values_mut() {
                    let before = peer.peer.rtp_received;
                    peer.pump(&mut self.buf);
                    self.counts.rtp_received += peer.peer.rtp_received - before;
                }
            }
        }
        if now >= p.next_action {
            p.next_action = now + self.rng.millis(1500, 4000);
            self.act(p)?;
        }
        Ok(())
    }

    fn handle(&mut self, p: &mut Participant, m: Value) -> Result<(), String> {
        let id = m["id"].as_str().unwrap_or("").to_owned();
        match m["type"].as_str().unwrap_or("") {
            "ping" => p.ws.send(&json!({"type": "pong"})),
            "usermessage" if m["kind"] == "error" => return Err(format!("error: {m}")),
            "answer" => {
                if let Role::Publisher { peer, answered, .. } = &mut p.role {
                    let sdp = m["sdp"].as_str().ok_or("answer without sdp")?;
                    peer.peer.accept_answer(sdp).map_err(|e| e.to_string())?;
                    peer.drain();
                    *answered = true;
                }
            }
            "offer" => {
                if let Role::Subscriber { down, .. } = &mut p.role {
                    let sdp = m["sdp"].as_str().ok_or("offer without sdp")?;
                    if !down.contains_key(&id) {
                        down.insert(id.clone(), Peer::new(&self.config)?);
                        self.counts.down_streams += 1;
                    }
                    let Some(peer) = down.get_mut(&id) else {
                        return Ok(());
                    };
                    let answer = peer.peer.answer_offer(sdp).map_err(|e| e.to_string())?;
                    peer.drain();
                    let candidate = peer.candidate();
                    p.ws.send(&json!({"type": "ice", "id": id, "candidate": candidate}));
                    p.ws.send(&json!({"type": "answer", "id": id, "sdp": answer}));
                }
            }
            "close" => {
                if let Role::Subscriber { down, .. } = &mut p.role {
                    down.remove(&id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A mid-life action: renegotiate, switch layer, restart ICE.
    fn act(&mut self, p: &mut Participant) -> Result<(), String> {
        match &mut p.role {
            Role::Publisher {
                peer,
                answered,
                renegotiated,
                ..
            } => {
                if *answered && !*renegotiated && self.rng.chance(50) {
                    // Renegotiation of the same stream: one more audio track.
                    let offer = peer
                        .peer
                        .publish_offer(true, false, &[])
                        .map_err(|e| e.to_string())?;
                    peer.drain();
                    p.ws.send(&json!({"type": "offer", "id": p.name, "label": "camera",
                                      "kind": "renegotiate", "sdp": offer.sdp}));
                    *renegotiated = true;
                    *answered = false;
                    self.counts.publisher_renegotiations += 1;
                }
            }
            Role::Subscriber { down, low } => {
                let Some(id) = down.keys().next().cloned() else {
                    return Ok(());
                };
                if self.rng.chance(70) {
                    *low = !*low;
                    let video = if *low { "video-low" } else { "video" };
                    p.ws.send(
                        &json!({"type": "requestStream", "id": id, "request": ["audio", video]}),
                    );
                    self.counts.layer_switches += 1;
                } else {
                    p.ws.send(&json!({"type": "renegotiate", "id": id}));
                    self.counts.ice_restarts += 1;
                }
            }
        }
        Ok(())
    }

    fn end(&mut self, p: Participant) {
        if p.abrupt {
            self.counts.abrupt_disconnects += 1;
            p.ws.vanish();
        } else {
            self.counts.clean_leaves += 1;
            let mut ws = p.ws;
            if let Role::Publisher { .. } = p.role {
                ws.send(&json!({"type": "close", "id": p.name}));
            }
            ws.leave(&p.name);
        }
        // The role's UDP sockets are dropped without a word.
    }
}

/// One slot: a participant, or the time the next one starts.
struct Slot {
    publisher: Option<bool>,
    participant: Option<Participant>,
    restart_at: Instant,
}

fn seconds_from_env() -> u64 {
    std::env::var("MEDIA_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90)
}

#[test]
#[ignore = "a long run with a server process; tests/soak/media.sh runs it"]
fn media_soak() {
    let seconds = seconds_from_env();
    let server = Server::start();
    std::thread::sleep(Duration::from_millis(500));
    let (idle_rss, baseline_fds) = server.sample();
    let mut soak = Soak {
        addr: server.addr,
        config: PeerConfig::new()
            .with_shared_cert()
            .expect("a DTLS certificate"),
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        counts: Counts::default(),
        next_name: 0,
        buf: vec![0; 2048],
    };
    let start = Instant::now();
    let mut slots: Vec<Slot> = [Some(true), Some(false), None, None, None]
        .into_iter()
        .map(|publisher| Slot {
            publisher,
            participant: None,
            restart_at: start,
        })
        .collect();
    let reference_at = if seconds >= 300 { 60 } else { seconds / 3 };
    let mut samples: Vec<(u64, u64, usize)> = Vec::new();
    let mut next_sample = start;
    let mut window_received = 0u64;
    let mut stalled_windows = Vec::new();
    let mut next_window = start + Duration::from_secs(10);
    let until = start + Duration::from_secs(seconds);

    while Instant::now() < until {
        let now = Instant::now();
        for slot in &mut slots {
            match slot.participant.take() {
                Some(mut p) => {
                    if now >= p.ends_at {
                        soak.end(p);
                        slot.restart_at = now + soak.rng.millis(300, 2000);
                    } else if let Err(why) = soak.pump(&mut p, now) {
                        eprintln!("{}: ended by the server: {why}", p.name);
                        soak.counts.ended_by_server += 1;
                        slot.restart_at = now + soak.rng.millis(300, 2000);
                    } else {
                        slot.participant = Some(p);
                    }
                }
                None if now >= slot.restart_at => match soak.spawn(slot.publisher, now) {
                    Ok(p) => slot.participant = Some(p),
                    Err(why) => panic!("a participant could not start: {why}"),
                },
                None => {}
            }
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            let (rss, fds) = server.sample();
            samples.push((now.duration_since(start).as_secs(), rss, fds));
        }
        if now >= next_window {
            next_window += Duration::from_secs(10);
            if soak.counts.rtp_received == window_received {
                stalled_windows.push(now.duration_since(start).as_secs());
            }
            window_received = soak.counts.rtp_received;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (end_rss, _) = server.sample();
    for slot in &mut slots {
        if let Some(p) = slot.participant.take() {
            soak.end(p);
        }
    }
    // Everyone left: the server's descriptors settle back to the baseline.
    let settle_until = Instant::now() + Duration::from_secs(30);
    let mut settled = server.sample();
    while settled.1 > baseline_fds && Instant::now() < settle_until {
        std::thread::sleep(Duration::from_millis(200));
        settled = server.sample();
    }
    let reference_rss = samples
        .iter()
        .find(|(t, _, _)| *t >= reference_at)
        .map_or(end_rss, |(_, rss, _)| *rss);
    let peak_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let peak_fds = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let still_answers = TcpStream::connect(server.addr).is_ok();
    let panics = server.panics.lock().map(|p| p.clone()).unwrap_or_default();

    let allowed = if seconds >= 300 { 1.10 } else { 1.50 };
    let rss_every_30s: Vec<String> = samples
        .iter()
        .filter(|(t, _, _)| t % 30 == 0)
        .map(|(t, rss, _)| format!("{t}s {:.1}", *rss as f64 / 1024.0))
        .collect();
    let summary = json!({
        "seconds": seconds,
        "counts": format!("{:?}", soak.counts),
        "rss_mib": {
            "idle": idle_rss as f64 / 1024.0,
            "reference_at_s": reference_at,
            "reference": reference_rss as f64 / 1024.0,
            "peak": peak_rss as f64 / 1024.0,
            "end_of_churn": end_rss as f64 / 1024.0,
            "after_everyone_left": settled.0 as f64 / 1024.0,
            "end_over_reference": end_rss as f64 / reference_rss.max(1) as f64,
        },
        "fds": {"baseline": baseline_fds, "peak": peak_fds, "after_everyone_left": settled.1},
        "rss_every_30s": rss_every_30s,
        "stalled_windows_s": stalled_windows,
    });
    println!("{summary:#}");

    assert!(panics.is_empty(), "the server logged panics: {panics:?}");
    assert!(still_answers, "the server no longer accepts connections");
    assert!(
        soak.counts.rtp_received > seconds * 100,
        "too little media arrived: {:?}",
        soak.counts
    );
    assert!(
        stalled_windows.is_empty(),
        "no media arrived in the 10 s windows ending at {stalled_windows:?}"
    );
    assert_eq!(
        settled.1, baseline_fds,
        "open descriptors after everyone left"
    );
    assert!(
        end_rss as f64 <= reference_rss as f64 * allowed,
        "RSS grew from {reference_rss} KiB at {reference_at} s to {end_rss} KiB at the end \
         (allowed ×{allowed})"
    );
}
