//! Connection limits of a real server on 127.0.0.1: the total cap answers 503 (plain HTTP)
//! or closes (TLS), and a freed slot is usable again. The per-address cap is unit-tested in
//! `src/run/limits.rs`: loopback, which every test here uses, is exempt from it.

mod common;

use std::time::Duration;

use common::{Setup, TestServer};

fn two_connections() -> sfubox::run::Limits {
    sfubox::run::Limits {
        max_connections: 2,
        ..common::test_limits()
    }
}

#[test]
fn connections_above_the_total_are_refused_with_503_until_one_closes() {
    let server = TestServer::start(Setup::insecure().limits(two_connections()));
    // Two clients hold their slots by sending half a request head.
    let mut first = server.connect();
    first.write_all_blocking(b"GET / HTTP/1.1\r\n");
    let mut second = server.connect();
    second.write_all_blocking(b"GET / HTTP/1.1\r\n");

    let mut third = server.connect();
    let refused = third.read_to_end_blocking(Duration::from_secs(5));
    let (status, headers, body) = common::parse_response(&refused);
    assert_eq!(status, 503);
    assert_eq!(common::header(&headers, "retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&body).contains("too many open connections"));

    // Finishing one request frees its slot.
    first.write_all_blocking(b"Host: x\r\n\r\n");
    let (status, _, _) =
        common::parse_response(&first.read_to_end_blocking(Duration::from_secs(5)));
    assert_eq!(status, 200);
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
    drop(second);
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
