//! HTTP behaviour of a real server on 127.0.0.1, plain and TLS (galene.md §1.2, §2.1–2.7).

mod common;

use common::{Setup, TestServer, header};

#[test]
fn index_is_served_over_plain_http() {
    let server = TestServer::start(Setup::insecure());
    let (status, headers, body) = server.http_get("/", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&body).contains("/public-groups.json"));
}
