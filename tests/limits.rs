//! Connection limits of a real server on 127.0.0.1: when the table is full, the oldest
//! connection that has not finished its request head (or TLS handshake) is evicted for a new
//! one, so 2,000 half-open connections do not keep a real user from joining; established
//! connections are never evicted, and a table full of them answers 503 (plain HTTP) or closes
//! (TLS); a freed slot is usable again. The per-address cap is unit-tested in
//! `src/run/limits.rs`: loopback, which every test here uses, is exempt from it.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Setup, TestServer};
use serde_json::json;

fn two_connections() -> sfubox::run::Limits {
    sfubox::run::Limits {
        max_connections: 2,
        ..common::test_limits()
    }
}

#[test]
fn a_table_full_of_sessions_refuses_with_503_until_one_closes() {
    let server = TestServer::start(Setup::insecure().limits(two_connections()));
    // Two WebSocket sessions hold both slots: established connections are never evicted.
    let first = server.ws_connect();
    let _second = server.ws_connect();

    let mut third = server.connect();
    let refused = third.read_to_end_blocking(Duration::from_secs(5));
    let (status, headers, body) = common::parse_response(&refused);
    assert_eq!(status, 503);
    assert_eq!(common::header(&headers, "retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&body).contains("too many open connections"));

    // Closing one session frees its slot.
    drop(first);
    let mut served = None;
    for _ in 0..50 {
        let (status, _, _) =
            common::parse_response(&server.raw_exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        if status == 200 {
            served = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(served, Some(200), "the freed slot was not given back");
}

#[test]
fn a_full_table_evicts_the_oldest_half_open_connection_for_a_new_one() {
    let server = TestServer::start(Setup::insecure().limits(two_connections()));
    let mut oldest = server.connect();
    oldest.write_all_blocking(b"GET / HTTP/1.1\r\n");
    let mut younger = server.connect();
    younger.write_all_blocking(b"GET / HTTP/1.1\r\n");

    // A third client is served at once; the oldest half-open one is closed to make room.
    let (status, _, _) =
        common::parse_response(&server.raw_exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!(status, 200);
    assert!(
        oldest
            .read_to_end_blocking(Duration::from_secs(5))
            .is_empty(),
        "the evicted connection is closed without an answer"
    );
    // The younger one was not touched: it can still finish its request.
    younger.write_all_blocking(b"Host: x\r\n\r\n");
    let (status, _, _) =
        common::parse_response(&younger.read_to_end_blocking(Duration::from_secs(5)));
    assert_eq!(status, 200);
}

#[test]
fn websockets_count_against_the_total_and_tls_refusals_just_close() {
    let server = TestServer::start(Setup::tls().limits(two_connections()));
    let _one = server.ws_connect();
    let two = server.ws_connect();
    // The third connection is closed before any TLS is spoken.
    assert!(!server.tls_handshake_succeeds());
    drop(two);
    let mut admitted = false;
    for _ in 0..50 {
        if server.tls_handshake_succeeds() {
            admitted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        admitted,
        "the slot of the closed WebSocket was not given back"
    );
}

/// Half-open connections the flood tests hold: twice the server's connection cap.
const FLOOD: usize = 2000;

/// Makes sure this process may hold `needed` open files (raising the soft limit towards the
/// hard one); the flood tests hold both ends of every connection.
fn raise_open_file_limit(needed: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, needed.min(hard), hard).expect("setrlimit");
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        soft >= needed,
        "this test needs {needed} open files; the hard limit is {hard}"
    );
}

const OPEN_GROUP: &str = r#"{"wildcard-user": {"password": "", "permissions": "present"}}"#;

/// Handshakes and joins group `g` as `name`; returns the `joined` message.
fn join(ws: &mut common::WsClient, name: &str) -> serde_json::Value {
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": name}));
    ws.send_json(json!({"type": "join", "kind": "join", "group": "g",
                        "username": name, "password": ""}));
    ws.recv_type("joined")
}

/// Holds `FLOOD` connections that each sent `opening` and then nothing, starting while a
/// joined session exists; then a new client must join within 2 s, the early session must
/// still work, and the oldest flood connections must have been closed by the server.
fn flood_then_join(setup: Setup, opening: &[u8]) {
    // Both ends of every flood connection, the server's cap of them, and some spare.
    raise_open_file_limit(2 * FLOOD as u64 + 512);
    // The production head timeout (the test default, 2 s, would answer the oldest with 408
    // before the flood is complete).
    let limits = sfubox::run::Limits {
        shutdown_grace: Duration::from_secs(1),
        ..sfubox::run::Limits::default()
    };
    let server = TestServer::start(setup.group("g", OPEN_GROUP).limits(limits));
    let mut early = server.ws_connect();
    assert_eq!(join(&mut early, "early")["kind"], "join");

    let flood_started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        common::write_ignoring_errors(&mut stream, opening);
        flood.push(stream);
    }

    eprintln!(
        "{FLOOD} connections opened in {:?}",
        flood_started.elapsed()
    );
    let started = Instant::now();
    let mut late = server.ws_connect();
    let joined = join(&mut late, "late");
    let took = started.elapsed();
    eprintln!("joined in {took:?} with {FLOOD} half-open connections held");
    assert_eq!(joined["kind"], "join", "{joined}");
    assert!(
        took < Duration::from_secs(2),
        "joining took {took:?} while {FLOOD} half-open connections were held"
    );

    // The session opened before the flood was kept: it sees the late user's chat.
    late.send_json(json!({"type": "chat", "source": "late", "username": "late",
                          "value": "still here?"}));
    loop {
        let message = early.recv_json();
        if message["type"] == "chat" {
            assert_eq!(message["value"], "still here?");
            break;
        }
    }
    // The oldest half-open connection was closed; the newest is still held open.
    let mut oldest = flood.remove(0);
    oldest
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a timeout");
    let mut byte = [0u8; 1];
    assert!(
        matches!(oldest.read(&mut byte), Ok(0) | Err(_)),
        "the oldest half-open connection is still open"
    );
    let mut newest = flood.pop().expect("a flood connection");
    newest
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a timeout");
    let still_open = newest.read(&mut byte).map_err(|e| e.kind());
    assert!(
        matches!(
            still_open,
            Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "the newest half-open connection was closed: {still_open:?}"
    );
}

#[test]
fn two_thousand_incomplete_request_heads_do_not_keep_a_user_from_joining() {
    flood_then_join(Setup::insecure(), b"GET /ws HTTP/1.1\r\nHost: x\r\n");
}

#[test]
fn two_thousand_unfinished_tls_handshakes_do_not_keep_a_user_from_joining() {
    // The header of a ClientHello record announcing 512 bytes, and nothing more.
    flood_then_join(Setup::tls(), &[0x16, 0x03, 0x01, 0x02, 0x00]);
}
