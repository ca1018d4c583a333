//! The GStreamer webrtc examples' signalling protocol end to end (the signalling server of
//! GStreamer's gst-examples, webrtc/signalling; see docs/gstreamer.md): a real server on
//! 127.0.0.1, real WebSocket clients on paths other than `/ws`, plain and TLS. Every command,
//! reply, error string and close code of that server, and each deviation listed in the README.

mod common;

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use common::{Setup, TestServer, WsClient};

/// How long a test waits to conclude that nothing more arrives.
const QUIET: Duration = Duration::from_millis(300);

/// Opens a WebSocket on `path` (e.g. `""` for none, as the example clients do).
fn connect_at(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> WsClient {
    let stream = server.connect();
    let scheme = if server.tls { "wss" } else { "ws" };
    let mut request = format!("{scheme}://{}{path}", server.host())
        .into_client_request()
        .expect("a valid WebSocket URL");
    for (name, value) in headers {
        let name = async_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .expect("a valid header name");
        let value = async_tungstenite::tungstenite::http::HeaderValue::from_str(value)
            .expect("a valid header value");
        request.headers_mut().insert(name, value);
    }
    match smol::block_on(async_tungstenite::client_async(request, stream)) {
        Ok((socket, _response)) => WsClient { socket },
        Err(error) => panic!("WebSocket on {path:?} refused: {error}"),
    }
}

fn connect(server: &TestServer) -> WsClient {
    connect_at(server, "", &[])
}

/// A client registered as `uid`.
fn peer(server: &TestServer, uid: &str) -> WsClient {
    let mut ws = connect(server);
    ws.send_text(&format!("HELLO {uid}"));
    assert_eq!(recv_text(&mut ws), "HELLO");
    ws
}

/// The next frame, which must be text.
fn recv_text(ws: &mut WsClient) -> String {
    match ws.recv_message(common::RECV_TIMEOUT) {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends `text` from `from` and expects `reply` as the next text on `from`.
fn ask(ws: &mut WsClient, text: &str, reply: &str) {
    ws.send_text(text);
    assert_eq!(recv_text(ws), reply, "reply to {text:?}");
}

/// Asserts that nothing arrives within [`QUIET`].
fn expect_nothing(ws: &mut WsClient) {
    if let Some(message) = ws.recv_message(QUIET) {
        panic!("expected nothing, got {message:?}");
    }
}

/// The close frame of a connection closed by the server: (code, reason).
fn expect_close(ws: &mut WsClient) -> (u16, String) {
    ws.expect_close()
}

fn registration(setup: Setup) {
    let server = TestServer::start(setup);
    // Any path speaks the protocol. The clients stay connected ("a" is taken below).
    let mut registered = Vec::new();
    for (path, uid) in [("", "a"), ("/", "b"), ("/some/other/path?x=1", "c")] {
        let mut ws = connect_at(&server, path, &[]);
        ask(&mut ws, &format!("HELLO {uid}"), "HELLO");
        registered.push(ws);
    }
    let mut ws = connect(&server);
    ask(&mut ws, "HELLO   spaced", "HELLO");
    let mut ws = connect(&server);
    ask(&mut ws, "HELLO\ttabbed", "HELLO");

    for (first, reason) in [
        ("HI x", "invalid protocol"),
        ("hello x", "invalid protocol"),
        ("SESSION x", "invalid protocol"),
        ("", "invalid protocol"),
        ("HELLO x y", "invalid peer uid"),
        ("HELLO x ", "invalid peer uid"),
        ("HELLO", "invalid peer uid"),
        ("HELLO a", "invalid peer uid"),
    ] {
        let mut ws = connect(&server);
        ws.send_text(first);
        assert_eq!(
            expect_close(&mut ws),
            (1002, reason.to_owned()),
            "{first:?}"
        );
    }
    let mut ws = connect(&server);
    ws.send_message(Message::binary(b"HELLO x".to_vec()));
    assert_eq!(expect_close(&mut ws), (1002, "invalid protocol".to_owned()));
}

#[test]
fn registration_plain() {
    registration(Setup::insecure());
}

#[test]
fn registration_tls() {
    registration(Setup::tls());
}

#[test]
fn health_check() {
    let server = TestServer::start(Setup::insecure());
    let (status, _headers, body) = server.http_get("/health", &[]);
    assert_eq!((status, body.as_slice()), (200, &b"OK\n"[..]));
    // An upgrade on /health gets the same answer, as with the original.
    let (status, _headers, body) = server.http_get(
        "/health",
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert_eq!((status, body.as_slice()), (200, &b"OK\n"[..]));
}

#[test]
fn cross_origin_pages_may_connect() {
    let server = TestServer::start(Setup::insecure());
    let mut ws = connect_at(&server, "", &[("Origin", "http://elsewhere.example:8080")]);
    ask(&mut ws, "HELLO a", "HELLO");
}

fn session(setup: Setup) {
    let server = TestServer::start(setup);
    let mut a = peer(&server, "a");
    let mut b = peer(&server, "b");
    ask(&mut a, "SESSION x", "ERROR peer 'x' not found");
    ask(&mut a, "SESSION b extra", "ERROR peer 'b extra' not found");
    ask(&mut a, "SESSION b", "SESSION_OK");
    // The callee is not told.
    expect_nothing(&mut b);
    for text in [
        "OFFER_REQUEST",
        "",
        "SESSION x",
        "ROOM r",
        "HELLO x",
        "ERROR fake",
        r#"{"sdp": {"type": "offer", "sdp": "v=0\r\n"}}"#,
    ] {
        a.send_text(text);
        assert_eq!(recv_text(&mut b), text);
        b.send_text(text);
        assert_eq!(recv_text(&mut a), text);
    }
    a.send_message(Message::binary(vec![0u8, 1, 2, 255]));
    match b.recv_message(common::RECV_TIMEOUT) {
        Some(Ok(Message::Binary(data))) => assert_eq!(&data[..], &[0u8, 1, 2, 255][..]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    // Busy: a peer in a session cannot be called.
    let mut c = peer(&server, "c");
    ask(&mut c, "SESSION a", "ERROR peer 'a' busy");
    ask(&mut c, "SESSION b", "ERROR peer 'b' busy");
    // The caller leaves: the callee's socket is closed with 1000 and its uid is free at once.
    drop(a);
    assert_eq!(expect_close(&mut b), (1000, String::new()));
    let mut a2 = peer(&server, "a");
    let _b2 = peer(&server, "b");
    ask(&mut a2, "SESSION b", "SESSION_OK");
}

#[test]
fn session_plain() {
    session(Setup::insecure());
}

#[test]
fn session_tls() {
    session(Setup::tls());
}

#[test]
fn callee_leaving_closes_the_caller() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let b = peer(&server, "b");
    ask(&mut a, "SESSION b", "SESSION_OK");
    drop(b);
    assert_eq!(expect_close(&mut a), (1000, String::new()));
}

#[test]
fn cleanup_is_keyed_by_connection() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let b = peer(&server, "b");
    ask(&mut a, "SESSION b", "SESSION_OK");
    // The old "a" is closed by the server, but its client has not finished closing yet
    // (nothing is read on it) when a new connection takes the uid.
    let mut c = peer(&server, "c");
    drop(b);
    std::thread::sleep(QUIET);
    let mut a2 = peer(&server, "a");
    // Now the old connection finishes closing: the new registration must survive.
    assert_eq!(expect_close(&mut a), (1000, String::new()));
    drop(a);
    std::thread::sleep(QUIET);
    ask(&mut c, "SESSION a", "SESSION_OK");
    c.send_text("still there?");
    assert_eq!(recv_text(&mut a2), "still there?");
}

#[test]
fn self_session_echoes() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    ask(&mut a, "SESSION a", "SESSION_OK");
    ask(&mut a, "echo", "echo");
}

#[test]
fn idle_peers_ignore_unknown_texts_and_prefix_lookalikes() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let _b = peer(&server, "b");
    for text in [
        "HELLO again",
        "FOO",
        "OFFER_REQUEST",
        "SESSIONX b",
        "ROOMX r",
    ] {
        a.send_text(text);
    }
    expect_nothing(&mut a);
    ask(&mut a, "SESSION b", "SESSION_OK");
}

#[test]
fn missing_arguments_and_stray_binary_frames_are_errors() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let mut b = peer(&server, "b");
    ask(
        &mut a,
        "SESSION",
        "ERROR invalid msg, SESSION needs a peer id",
    );
    ask(&mut a, "ROOM", "ERROR invalid msg, ROOM needs a room id");
    ask(&mut a, "ROOM_PEER_LIST", "ERROR invalid msg, not in a room");
    ask(
        &mut a,
        "ROOM_PEER_MSG b hi",
        "ERROR invalid msg, not in a room",
    );
    let stray = "ERROR invalid msg, binary messages are only forwarded in a session";
    a.send_message(Message::binary(b"x".to_vec()));
    assert_eq!(recv_text(&mut a), stray);
    ask(&mut a, "ROOM r", "ROOM_OK ");
    ask(&mut b, "ROOM r", "ROOM_OK a");
    assert_eq!(recv_text(&mut a), "ROOM_PEER_JOINED b");
    ask(
        &mut a,
        "ROOM_PEER_MSG b",
        "ERROR invalid msg, ROOM_PEER_MSG needs a peer id and a message",
    );
    a.send_message(Message::binary(b"x".to_vec()));
    assert_eq!(recv_text(&mut a), stray);
    // Nobody left the room: a is still in it.
    expect_nothing(&mut b);
    a.send_text("ROOM_PEER_MSG b hi");
    assert_eq!(recv_text(&mut b), "ROOM_PEER_MSG a hi");
}

fn rooms(setup: Setup) {
    let server = TestServer::start(setup);
    let mut a = peer(&server, "a");
    let mut b = peer(&server, "b");
    let mut c = peer(&server, "c");
    let mut idle = peer(&server, "idle");
    let mut other = peer(&server, "other");
    ask(&mut a, "ROOM session", "ERROR invalid room id 'session'");
    ask(&mut a, "ROOM a b", "ERROR invalid room id 'a b'");
    ask(&mut a, "ROOM r", "ROOM_OK ");
    ask(&mut b, "ROOM r", "ROOM_OK a");
    assert_eq!(recv_text(&mut a), "ROOM_PEER_JOINED b");
    ask(&mut c, "ROOM r", "ROOM_OK a b");
    assert_eq!(recv_text(&mut a), "ROOM_PEER_JOINED c");
    assert_eq!(recv_text(&mut b), "ROOM_PEER_JOINED c");
    ask(&mut other, "ROOM elsewhere", "ROOM_OK ");

    c.send_text(r#"ROOM_PEER_MSG a  {"sdp": "x y  z"}"#);
    assert_eq!(recv_text(&mut a), r#"ROOM_PEER_MSG c {"sdp": "x y  z"}"#);
    ask(&mut a, "ROOM_PEER_MSG a self", "ROOM_PEER_MSG a self");
    ask(&mut a, "ROOM_PEER_MSG x hi", "ERROR peer 'x' not found");
    ask(
        &mut a,
        "ROOM_PEER_MSG idle hi",
        "ERROR peer 'idle' is not in the room",
    );
    ask(
        &mut a,
        "ROOM_PEER_MSG other hi",
        "ERROR peer 'other' is not in the room",
    );
    ask(&mut b, "ROOM_PEER_LIST", "ROOM_PEER_LIST a c");
    for text in ["ROOM x", "SESSION idle", "free text", "ROOM_PEER_MSGX a hi"] {
        ask(&mut a, text, "ERROR invalid msg, already in room");
    }
    // A peer in a room is busy.
    ask(&mut idle, "SESSION a", "ERROR peer 'a' busy");

    drop(b);
    assert_eq!(recv_text(&mut a), "ROOM_PEER_LEFT b");
    assert_eq!(recv_text(&mut c), "ROOM_PEER_LEFT b");
    drop(a);
    assert_eq!(recv_text(&mut c), "ROOM_PEER_LEFT a");
    ask(&mut c, "ROOM_PEER_LIST", "ROOM_PEER_LIST ");
    drop(c);
    std::thread::sleep(QUIET);
    // The room was removed; the next joiner finds it empty.
    ask(&mut idle, "ROOM r", "ROOM_OK ");
}

#[test]
fn rooms_plain() {
    rooms(Setup::insecure());
}

#[test]
fn rooms_tls() {
    rooms(Setup::tls());
}

#[test]
fn message_size_limit() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let mut b = peer(&server, "b");
    ask(&mut a, "SESSION b", "SESSION_OK");
    let largest = "x".repeat(1 << 20);
    a.send_text(&largest);
    assert_eq!(recv_text(&mut b).len(), 1 << 20);
    // The server may stop reading before the frame is fully sent: ignore a write error.
    let _ = smol::block_on(a.socket.send(Message::text("x".repeat((1 << 20) + 1))));
    assert_eq!(expect_close(&mut a), (1009, String::new()));
    // The partner is closed at once.
    assert_eq!(expect_close(&mut b), (1000, String::new()));
}

#[test]
fn shutdown_closes_gst_peers_1001() {
    let mut server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let mut b = connect(&server);
    server.request_stop();
    for ws in [&mut a, &mut b] {
        assert_eq!(
            expect_close(ws),
            (1001, "server is shutting down".to_owned())
        );
    }
}

/// Waits for a ping from the server (tungstenite answers it with a pong as it reads it).
fn wait_for_ping(ws: &mut WsClient, limit: Duration) -> Duration {
    use smol::stream::StreamExt;
    let start = Instant::now();
    smol::block_on(async {
        loop {
            let next = smol::future::or(async { Some(ws.socket.next().await) }, async {
                smol::Timer::at(start + limit).await;
                None
            })
            .await;
            match next {
                Some(Some(Ok(Message::Ping(_)))) => return start.elapsed(),
                Some(Some(Ok(_))) => {}
                other => panic!("no ping within {limit:?}: {other:?}"),
            }
        }
    })
}

/// The timers run in real time (20 to 45 s each), so the three checks run concurrently on
/// threads of one test.
#[test]
fn timers_in_real_time() {
    let checks = [
        std::thread::spawn(keepalive_pings_silent_peers),
        std::thread::spawn(unanswered_ping_closes_1011),
        std::thread::spawn(registration_times_out),
    ];
    for check in checks {
        if let Err(panic) = check.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

fn keepalive_pings_silent_peers() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let first = wait_for_ping(&mut a, Duration::from_secs(25));
    assert!(first >= Duration::from_secs(19), "ping after {first:?}");
    // The pong was sent while reading: the peer stays, and is pinged again later.
    let second = wait_for_ping(&mut a, Duration::from_secs(25));
    assert!(second >= Duration::from_secs(19), "ping after {second:?}");
    ask(&mut a, "ROOM r", "ROOM_OK ");
}

fn unanswered_ping_closes_1011() {
    let server = TestServer::start(Setup::insecure());
    let mut a = peer(&server, "a");
    let mut b = peer(&server, "b");
    ask(&mut a, "SESSION b", "SESSION_OK");
    // a answers pings; b reads nothing (so sends no pong) until a has been closed, which
    // happens together with b's close; b then reads its close within the server's grace.
    let deadline = Instant::now() + Duration::from_secs(45);
    while Instant::now() < deadline {
        if let Some(message) = a.recv_message(Duration::from_secs(1)) {
            match message {
                Ok(Message::Close(frame)) => {
                    // b's timeout ends the session: a is closed with 1000.
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(Instant::now() < deadline, "b was never dropped");
    assert_eq!(
        expect_close(&mut b),
        (1011, "keepalive ping timeout".to_owned())
    );
}

fn registration_times_out() {
    let server = TestServer::start(Setup::insecure());
    let mut ws = connect(&server);
    let start = Instant::now();
    match ws.recv_message(Duration::from_secs(35)) {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1002);
            assert_eq!(frame.reason.as_str(), "registration timeout");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_secs(29));
}
