//! SIGTERM against the real `sfubox` binary: an idle server exits at once (a few
//! milliseconds; the bound asserted is 1 s, generous for a loaded CI machine), a busy one
//! (joined clients chatting, one client that never answers the close frame, a publisher whose
//! media a subscriber receives) within the 1.5 s shutdown grace (asserted: 3 s; the client
//! that never answers its close frame is what holds it that long), and every client that
//! reads gets a close frame saying the server is shutting down.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message, WebSocket};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use sfubox::testing::{PeerConfig, PeerOutput, TestPeer, write_vp8_start};
use str0m::format::Codec;

mod binary;
use binary::spawn_sfubox;

const GROUP: &str = r#"{"wildcard-user": {"password": "", "permissions": "present"}}"#;

/// The binary, running on loopback with a group `g`.
struct Running {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    _log: Receiver<String>,
}

impl Running {
    fn start(label: &str) -> Running {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sfubox-shutdown-{label}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("groups")).expect("groups directory");
        std::fs::create_dir_all(dir.join("data")).expect("data directory");
        std::fs::write(dir.join("groups/g.json"), GROUP).expect("group file");
        let (child, log) = spawn_sfubox(&dir, &[]);
        let addr = loop {
            let line = log
                .recv_timeout(Duration::from_secs(30))
                .expect("the server logs where it listens");
            if let Some(rest) = line.split("Listening on http://").nth(1) {
                break rest.trim_end_matches('/').parse().expect("an address");
            }
        };
        Running {
            child,
            addr,
            dir,
            _log: log,
        }
    }

    /// Sends SIGTERM and returns how long the process took to exit, and its exit status.
    fn terminate(&mut self) -> (Duration, Option<i32>) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let started = Instant::now();
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        let status = self.child.wait().expect("wait for the server");
        (started.elapsed(), status.code())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking Galène client that has joined `g`.
fn join(addr: SocketAddr, name: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}/ws"), stream).expect("WebSocket upgrade");
    send(
        &mut ws,
        json!({"type": "handshake", "version": ["2"], "id": name}),
    );
    send(
        &mut ws,
        json!({"type": "join", "kind": "join", "group": "g", "username": name, "password": ""}),
    );
    loop {
        let message = recv(&mut ws).expect("a message");
        if message["type"] == "joined" {
            assert_eq!(message["kind"], "join", "{message}");
            return ws;
        }
    }
}

fn send(ws: &mut WebSocket<TcpStream>, value: Value) {
    ws.send(Message::text(value.to_string())).expect("send");
}

/// The next JSON message (`None` on close, error or timeout).
fn recv(ws: &mut WebSocket<TcpStream>) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Reads until the close frame; returns its reason (`None` if the connection ended without
/// one).
fn close_reason(ws: &mut WebSocket<TcpStream>) -> Option<String> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                return Some(frame.map(|f| f.reason.to_string()).unwrap_or_default());
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[test]
fn an_idle_server_exits_at_once_on_sigterm() {
    let mut server = Running::start("idle");
    // Something happened before it went idle: a request and a session that left.
    let mut ws = join(server.addr, "visitor");
    ws.close(None).expect("close");
    let _ = close_reason(&mut ws);
    drop(ws);
    std::thread::sleep(Duration::from_millis(500));
    let (took, code) = server.terminate();
    eprintln!("idle server exited {took:?} after SIGTERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
}

/// A str0m peer on its own UDP socket, pumped from a thread.
struct UdpPeer {
    peer: TestPeer,
    socket: UdpSocket,
}

impl UdpPeer {
    fn new(config: &PeerConfig) -> UdpPeer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("non-blocking");
        let addr = socket.local_addr().expect("address");
        let peer = TestPeer::new(addr, Instant::now(), config).expect("peer");
        let mut peer = UdpPeer { peer, socket };
        peer.drain();
        peer
    }

    fn drain(&mut self) {
        while let Some(out) = self.peer.poll() {
            if let PeerOutput::Transmit(t) = out {
                let _ = self.socket.send_to(&t.contents, t.destination);
            }
        }
    }

    fn pump(&mut self) {
        let mut buf = [0u8; 2000];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if self.peer.receive(Instant::now(), from, &buf[..n]) {
                        self.drain();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
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

#[test]
fn a_busy_server_exits_within_the_shutdown_grace_on_sigterm() {
    let mut server = Running::start("busy");
    let addr = server.addr;
    let config = PeerConfig::new();

    // A publisher and a subscriber with media flowing.
    let mut subscriber_ws = join(addr, "subscriber");
    send(
        &mut subscriber_ws,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    let mut publisher_ws = join(addr, "publisher");
    let mut publisher = UdpPeer::new(&config);
    let offer = publisher
        .peer
        .publish_offer(false, true, &[])
        .expect("an offer");
    publisher.drain();
    let video = offer.video.expect("a video m-line");
    send(
        &mut publisher_ws,
        json!({"type": "offer", "id": "cam", "label": "camera", "sdp": offer.sdp}),
    );
    send(
        &mut publisher_ws,
        json!({"type": "ice", "id": "cam", "candidate": publisher.candidate()}),
    );
    loop {
        let message = recv(&mut publisher_ws).expect("an answer");
        if message["type"] == "answer" {
            let sdp = message["sdp"].as_str().expect("sdp");
            publisher.peer.accept_answer(sdp).expect("answer");
            publisher.drain();
            break;
        }
    }
    let mut subscriber = UdpPeer::new(&config);
    loop {
        let message = recv(&mut subscriber_ws).expect("an offer");
        if message["type"] == "offer" {
            let answer = subscriber
                .peer
                .answer_offer(message["sdp"].as_str().expect("sdp"))
                .expect("answer");
            subscriber.drain();
            send(
                &mut subscriber_ws,
                json!({"type": "ice", "id": "cam", "candidate": subscriber.candidate()}),
            );
            send(
                &mut subscriber_ws,
                json!({"type": "answer", "id": "cam", "sdp": answer}),
            );
            break;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let media = {
        let (stop, received) = (Arc::clone(&stop), Arc::clone(&received));
        std::thread::spawn(move || {
            let mut seq = 1u64;
            let mut next_frame = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                publisher.pump();
                subscriber.pump();
                received.store(subscriber.peer.rtp_received, Ordering::Relaxed);
                if publisher.peer.connected && Instant::now() >= next_frame {
                    next_frame += Duration::from_millis(33);
                    let mut payload = vec![0u8; 800];
                    write_vp8_start(&mut payload, true, seq % 90 == 1);
                    let now = Instant::now();
                    let ts = (seq * 3000) as u32;
                    publisher
                        .peer
                        .write_rtp(Codec::Vp8, video, None, seq, ts, now, true, payload);
                    publisher.drain();
                    seq += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let until = Instant::now() + Duration::from_secs(15);
    while received.load(Ordering::Relaxed) < 30 {
        assert!(Instant::now() < until, "no media reached the subscriber");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Clients that read and answer, chatting; and one that never reads again.
    let mut chatters: Vec<WebSocket<TcpStream>> =
        (0..4).map(|n| join(addr, &format!("chatter{n}"))).collect();
    let _deaf = join(addr, "deaf");
    for (n, ws) in chatters.iter_mut().enumerate() {
        let name = format!("chatter{n}");
        send(
            ws,
            json!({"type": "chat", "source": name, "username": name, "value": "hi"}),
        );
    }

    let (took, code) = server.terminate();
    eprintln!("busy server exited {took:?} after SIGTERM");
    stop.store(true, Ordering::Relaxed);
    let _ = media.join();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    for ws in chatters
        .iter_mut()
        .chain([&mut subscriber_ws, &mut publisher_ws])
    {
        let reason = close_reason(ws);
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("server is shutting down")),
            "{reason:?}"
        );
    }
}
