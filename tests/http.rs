//! HTTP behaviour of a real server on 127.0.0.1, plain and TLS (the HTTP side of Galène;
//! see docs/galene.md).

mod common;

use std::time::Duration;

use common::{Setup, TestServer, header};
use serde_json::{Value, json};

const PUBLIC_GROUP: &str = r#"{"public": true, "displayName": "Pub", "description": "A public group",
    "wildcard-user": {"password": "", "permissions": "present"}}"#;
const PRIVATE_GROUP: &str = r#"{"wildcard-user": {"password": "", "permissions": "present"}}"#;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(body)))
}

#[test]
fn embedded_site_with_mime_types_and_security_headers() {
    let server = TestServer::start(Setup::insecure());
    let (status, headers, body) = server.http_get("/", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    // The landing page lists the public groups through its script.
    assert!(text(&body).contains("/landing.js"));
    let (_, _, script) = server.http_get("/landing.js", &[]);
    assert!(text(&script).contains("/public-groups.json"));
    assert_eq!(
        header(&headers, "content-security-policy"),
        Some(
            "connect-src ws: wss: 'self'; img-src 'self'; media-src blob: 'self'; \
             script-src 'unsafe-eval' 'self'; default-src 'self'"
        )
    );
    assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&headers, "cache-control"), Some("max-age=1800"));
    assert!(header(&headers, "last-modified").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(
        header(&headers, "content-length"),
        Some(body.len().to_string().as_str())
    );

    let (_, headers, _) = server.http_get("/sfubox.css", &[]);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/css; charset=utf-8")
    );
    let (_, headers, _) = server.http_get("/meeting.js", &[]);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
}

#[test]
fn etag_and_last_modified_give_304() {
    let server = TestServer::start(Setup::insecure());
    let (_, headers, _) = server.http_get("/sfubox.css", &[]);
    let etag = header(&headers, "etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let (status, headers, body) = server.http_get("/sfubox.css", &[("If-None-Match", &etag)]);
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
    let (status, _, _) = server.http_get("/sfubox.css", &[("If-None-Match", "\"stale\"")]);
    assert_eq!(status, 200);

    let (_, headers, _) = server.http_get("/sfubox.css", &[]);
    let modified = header(&headers, "last-modified")
        .expect("Last-Modified")
        .to_owned();
    let (status, _, _) = server.http_get("/sfubox.css", &[("If-Modified-Since", &modified)]);
    assert_eq!(status, 304);
    let (status, _, _) = server.http_get(
        "/sfubox.css",
        &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:01 GMT")],
    );
    assert_eq!(status, 200);
}

#[test]
fn head_sends_headers_only() {
    let server = TestServer::start(Setup::insecure().group("pub", PUBLIC_GROUP));
    let (status, headers, body) = server.http_request("HEAD", "/", &[]);
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(header(&headers, "content-length").is_some_and(|n| n != "0"));
    let (status, headers, body) = server.http_request("HEAD", "/group/pub/.status", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert!(body.is_empty());
}

#[test]
fn static_directory_from_disk() {
    let server = TestServer::start(
        Setup::insecure()
            .static_file("index.html", b"<p>disk index</p>")
            .static_file("404.html", b"<p>custom 404</p>")
            .static_file("galene.html", b"<p>meeting page</p>")
            .static_file("docs/index.html", b"docs")
            .static_file("empty/readme.txt", b"readme")
            .static_file("third-party/lib/lib.js", b"lib")
            .static_file("fonts/a.woff2", b"font")
            .static_file("model.tflite", b"model")
            .static_file("code.mjs", b"export {}")
            .static_file("app.wasm", b"\0asm"),
    );
    let (status, _, body) = server.http_get("/", &[]);
    assert_eq!((status, text(&body).as_str()), (200, "<p>disk index</p>"));

    let (status, headers, _) = server.http_get("/docs", &[]);
    assert_eq!(status, 308);
    assert_eq!(header(&headers, "location"), Some("/docs/"));
    let (status, _, body) = server.http_get("/docs/", &[]);
    assert_eq!((status, text(&body).as_str()), (200, "docs"));
    let (status, _, _) = server.http_get("/empty/", &[]);
    assert_eq!(status, 403);

    let (status, headers, body) = server.http_get("/missing.html", &[]);
    assert_eq!(status, 404);
    assert_eq!(text(&body), "<p>custom 404</p>");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );

    let (_, headers, _) = server.http_get("/third-party/lib/lib.js", &[]);
    assert_eq!(header(&headers, "cache-control"), Some("max-age=86400"));
    for (path, mime) in [
        ("/fonts/a.woff2", "font/woff2"),
        ("/model.tflite", "application/octet-stream"),
        ("/code.mjs", "text/javascript; charset=utf-8"),
        ("/app.wasm", "application/wasm"),
        ("/empty/readme.txt", "text/plain; charset=utf-8"),
    ] {
        let (status, headers, _) = server.http_get(path, &[]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "content-type"), Some(mime), "{path}");
    }
}

#[test]
fn no_traversal_out_of_the_static_directory() {
    let server = TestServer::start(Setup::insecure().static_file("index.html", b"index"));
    // A file next to static/, which must never be reachable.
    std::fs::write(server.data_dir().join("../secret.txt"), b"secret").unwrap();
    for (target, location) in [
        ("/../secret.txt", "/secret.txt"),
        ("/%2e%2e/secret.txt", "/secret.txt"),
        ("/%2E%2E%2fsecret.txt", "/secret.txt"),
        ("/a/../../secret.txt", "/secret.txt"),
        ("//secret.txt", "/secret.txt"),
        ("/./index.html", "/index.html"),
    ] {
        let (status, headers, _) = server.http_get(target, &[]);
        assert_eq!(status, 301, "{target}");
        assert_eq!(header(&headers, "location"), Some(location), "{target}");
    }
    let (status, _, body) = server.http_get("/secret.txt", &[]);
    assert_eq!(status, 404);
    assert!(!text(&body).contains("secret"));
    let (status, _, _) = server.http_get("/%zz", &[]);
    assert_eq!(status, 400);
    let (status, _, _) = server.http_get("/a%00", &[]);
    assert_eq!(status, 400);
}

#[test]
fn group_pages_and_redirects() {
    let server = TestServer::start(
        Setup::insecure()
            .group("pub", PUBLIC_GROUP)
            .group("sub/inner", PRIVATE_GROUP)
            .group(
                "moved",
                r#"{"redirect": "https://elsewhere.example/group/x/"}"#,
            )
            .group("broken", "{ this is not json"),
    );
    let (status, headers, body) = server.http_get("/group/pub/?token=abc", &[]);
    assert_eq!(status, 200);
    assert!(text(&body).contains("<html"), "{}", text(&body));
    assert!(header(&headers, "content-security-policy").is_some());
    assert!(header(&headers, "etag").is_some());
    assert_eq!(header(&headers, "cache-control"), Some("max-age=1800"));

    let (status, headers, _) = server.http_get("/group/pub", &[]);
    assert_eq!(status, 308);
    assert_eq!(header(&headers, "location"), Some("/group/pub/"));
    let (status, _, _) = server.http_get("/group/sub/inner/", &[]);
    assert_eq!(status, 200);
    let (status, headers, _) = server.http_get("/group", &[]);
    assert_eq!(status, 301);
    assert_eq!(header(&headers, "location"), Some("/group/"));
    let (status, _, _) = server.http_get("/group/", &[]);
    assert_eq!(status, 404);
    let (status, _, _) = server.http_get("/group/nosuch/", &[]);
    assert_eq!(status, 404);
    let (status, _, _) = server.http_get("/group/nosuch", &[]);
    assert_eq!(status, 404, "unknown groups 404 before the slash redirect");
    let (status, headers, _) = server.http_get("/group/moved/", &[]);
    assert_eq!(status, 308);
    assert_eq!(
        header(&headers, "location"),
        Some("https://elsewhere.example/group/x/")
    );
    let (status, _, _) = server.http_get("/group/broken/", &[]);
    assert_eq!(status, 500);
    let (status, headers, _) = server.http_request("HEAD", "/group/pub/.status.json", &[]);
    assert_eq!(status, 308);
    assert_eq!(header(&headers, "location"), Some("/group/pub/.status"));
    let (status, _, _) = server.http_get("/group/pub/.unknown", &[]);
    assert_eq!(status, 404);
}

#[test]
fn auth_server_goes_into_the_group_page_csp() {
    let server = TestServer::start(Setup::insecure().group(
        "auth",
        r#"{"authServer": "https://auth.example/token", "authKeys": []}"#,
    ));
    let (status, headers, _) = server.http_get("/group/auth/", &[]);
    assert_eq!(status, 200);
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(
        csp.starts_with("connect-src https://auth.example/token ws: wss: 'self';"),
        "{csp}"
    );
}

#[test]
fn status_json_fields() {
    let server = TestServer::start(
        Setup::insecure()
            .group("pub", PUBLIC_GROUP)
            .group("priv", PRIVATE_GROUP)
            .group(
                "moved",
                r#"{"redirect": "https://elsewhere.example/", "displayName": "Moved"}"#,
            ),
    );
    let host = server.host();
    let (status, headers, body) = server.http_get("/group/pub/.status", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    assert!(body.ends_with(b"}\n"));
    assert_eq!(
        json_body(&body),
        json!({
            "name": "pub",
            "location": format!("http://{host}/group/pub/"),
            "endpoint": format!("ws://{host}/ws"),
            "displayName": "Pub",
            "description": "A public group",
            "clientCount": 0,
        })
    );
    let (_, _, body) = server.http_get("/group/priv/.status", &[]);
    assert_eq!(
        json_body(&body),
        json!({
            "name": "priv",
            "location": format!("http://{host}/group/priv/"),
            "endpoint": format!("ws://{host}/ws"),
        })
    );
    let (_, _, body) = server.http_get("/group/moved/.status", &[]);
    assert_eq!(
        json_body(&body),
        json!({"name": "moved", "redirect": "https://elsewhere.example/", "displayName": "Moved"})
    );
    let (status, _, _) = server.http_get("/group/nosuch/.status", &[]);
    assert_eq!(status, 404);

    // The Host header and proxyURL decide the base URL.
    let (_, _, body) = server.http_get("/group/priv/.status", &[("Host", "meet.example")]);
    assert_eq!(json_body(&body)["endpoint"], "ws://meet.example/ws");
    server.write_config(r#"{"proxyURL": "https://proxy.example/base/"}"#);
    let (_, _, body) = server.http_get("/group/priv/.status", &[]);
    assert_eq!(
        json_body(&body)["location"],
        "https://proxy.example/base/group/priv/"
    );
    assert_eq!(json_body(&body)["endpoint"], "wss://proxy.example/base/ws");
}

#[test]
fn public_groups_list() {
    let server = TestServer::start(
        Setup::insecure()
            .group("zeta", PUBLIC_GROUP)
            .group("alpha", PUBLIC_GROUP)
            .group("hidden", PRIVATE_GROUP),
    );
    let (status, headers, body) = server.http_get("/public-groups.json", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let list = json_body(&body);
    let names: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(list[0]["clientCount"], 0);
    assert_eq!(
        list[0]["location"],
        format!("http://{}/group/alpha/", server.host())
    );
}

#[test]
fn public_groups_is_an_empty_array_without_public_groups() {
    let server = TestServer::start(Setup::insecure().group("hidden", PRIVATE_GROUP));
    let (status, _, body) = server.http_get("/public-groups.json", &[]);
    assert_eq!((status, text(&body).as_str()), (200, "[]\n"));
}

#[test]
fn builtin_group_without_groups_directory() {
    let server = TestServer::start(Setup::insecure().without_groups_dir());
    let (_, _, body) = server.http_get("/public-groups.json", &[]);
    assert_eq!(json_body(&body)[0]["name"], "public");
    let (status, _, _) = server.http_get("/group/public/", &[]);
    assert_eq!(status, 200);
}

#[test]
fn canonical_host_redirect() {
    let server = TestServer::start(
        Setup::insecure()
            .group("pub", PUBLIC_GROUP)
            .config(r#"{"canonicalHost": "main.example:8443"}"#),
    );
    let (status, headers, _) = server.http_get("/sfubox.css?x=1", &[]);
    assert_eq!(status, 301);
    assert_eq!(
        header(&headers, "location"),
        Some("https://main.example:8443/sfubox.css")
    );
    let (status, headers, _) = server.http_get("/group/pub/.status", &[]);
    assert_eq!(status, 301);
    assert_eq!(
        header(&headers, "location"),
        Some("https://main.example:8443/group/pub/.status")
    );
    let (status, _, _) = server.http_get("/group/pub/", &[("Host", "MAIN.example:8443")]);
    assert_eq!(status, 200);
    // Not applied to the public list nor to /ws.
    let (status, _, _) = server.http_get("/public-groups.json", &[]);
    assert_eq!(status, 200);
    assert!(server.ws_connect_with(&[]).is_ok());
}

#[test]
fn websocket_origin_rule() {
    let server = TestServer::start(Setup::insecure());
    let same = format!("http://{}", server.host());
    assert!(server.ws_connect_with(&[("Origin", &same)]).is_ok());
    assert!(server.ws_connect_with(&[]).is_ok());
    assert_eq!(
        server
            .ws_connect_with(&[("Origin", "https://evil.example")])
            .err(),
        Some(403)
    );
    server.write_config(r#"{"allowOrigin": ["https://Friend.example"]}"#);
    assert!(
        server
            .ws_connect_with(&[("Origin", "https://friend.example")])
            .is_ok()
    );
    assert_eq!(
        server
            .ws_connect_with(&[("Origin", "https://evil.example")])
            .err(),
        Some(403)
    );
}

#[test]
fn ws_path_without_upgrade_is_a_bad_request() {
    let server = TestServer::start(Setup::insecure());
    let (status, _, _) = server.http_get("/ws", &[]);
    assert_eq!(status, 400);
}

#[test]
fn websocket_handshake_reaches_the_application() {
    let server = TestServer::start(Setup::insecure());
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": "client-1"}));
    let reply = ws.recv_type("handshake");
    assert_eq!(reply["version"], json!(["2"]));
}

#[test]
fn oversized_websocket_message_ends_the_connection() {
    let server = TestServer::start(Setup::insecure());
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": "big"}));
    ws.recv_type("handshake");
    let huge = format!(
        "{{\"type\":\"chat\",\"value\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    // The server may close while we are still writing: ignore write errors.
    let _ = smol::block_on(
        ws.socket
            .send(async_tungstenite::tungstenite::Message::text(huge)),
    );
    assert!(ws.closed_within(Duration::from_secs(5)));
}

#[test]
fn shutdown_closes_websockets() {
    let mut server = TestServer::start(Setup::insecure());
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": "s"}));
    ws.recv_type("handshake");
    server.request_stop();
    assert!(ws.closed_within(Duration::from_secs(3)));
}

#[test]
fn oversized_head_gets_431() {
    let server = TestServer::start(Setup::insecure());
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 20 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let (status, _, _) = common::parse_response(&server.raw_exchange(&request));
    assert_eq!(status, 431);
}

#[test]
fn malformed_head_gets_400() {
    let server = TestServer::start(Setup::insecure());
    let (status, _, _) = common::parse_response(&server.raw_exchange(b"GARBAGE\0\r\n\r\n"));
    assert_eq!(status, 400);
}

#[test]
fn slow_head_is_answered_408_and_closed() {
    let limits = sfubox::run::Limits {
        request_head: Duration::from_millis(300),
        ..common::test_limits()
    };
    let server = TestServer::start(Setup::insecure().limits(limits));
    let mut stream = server.connect();
    stream.write_all_blocking(b"GET / HTTP/1.1\r\nHost: x\r\n");
    let started = std::time::Instant::now();
    let bytes = stream.read_to_end_blocking(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(3));
    let (status, _, _) = common::parse_response(&bytes);
    assert_eq!(status, 408);

    // A client that sends nothing is simply disconnected.
    let mut idle = server.connect();
    assert!(idle.closed_within(Duration::from_secs(3)));
}

fn self_signed(name: &str) -> (String, String, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

#[test]
fn tls_serves_pages_and_wss_endpoints() {
    let server = TestServer::start(Setup::tls().group("pub", PUBLIC_GROUP));
    let (status, _, body) = server.http_get("/", &[]);
    assert_eq!(status, 200);
    assert!(text(&body).contains("sfubox"));
    let (_, _, body) = server.http_get("/group/pub/.status", &[]);
    let status = json_body(&body);
    assert_eq!(
        status["location"],
        format!("https://{}/group/pub/", server.host())
    );
    assert_eq!(status["endpoint"], format!("wss://{}/ws", server.host()));
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": "tls"}));
    ws.recv_type("handshake");
}

#[test]
fn tls_uses_the_certificate_files_and_reloads_them() {
    let (cert, key, der) = self_signed("first.example");
    let server = TestServer::start(
        Setup::tls()
            .data_file("cert.pem", cert.as_bytes())
            .data_file("key.pem", key.as_bytes()),
    );
    assert_eq!(server.peer_certificate(), der);

    let (cert, key, der) = self_signed("second.example");
    // Make sure the modification time or the size differs.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(server.data_dir().join("key.pem"), key).unwrap();
    std::fs::write(server.data_dir().join("cert.pem"), cert).unwrap();
    assert_eq!(server.peer_certificate(), der);

    // Only one file left: handshakes fail (and the server keeps running).
    std::fs::remove_file(server.data_dir().join("key.pem")).unwrap();
    assert!(!server.tls_handshake_succeeds());
    std::fs::remove_file(server.data_dir().join("cert.pem")).unwrap();
    assert!(
        server.tls_handshake_succeeds(),
        "back to a self-signed certificate"
    );
}

#[test]
fn cert_without_key_is_a_clear_startup_error() {
    let (cert, _, _) = self_signed("x.example");
    let error = TestServer::try_start(Setup::tls().data_file("cert.pem", cert.as_bytes()))
        .err()
        .expect("the server must refuse to start");
    assert!(
        error.contains("only one of cert.pem and key.pem exists"),
        "{error}"
    );
}

/// The embedded web client's text files are stored gzipped: a browser-like request gets them
/// with `Content-Encoding: gzip` and the right length, a request without `Accept-Encoding`
/// (curl, scripts) gets the plain file, and both inflate to the file under `static/`.
#[test]
fn embedded_files_go_out_gzipped_to_clients_that_accept_gzip() {
    let server = TestServer::start(Setup::insecure());
    for file in ["meeting.js", "protocol.js", "meeting.css", "galene.html"] {
        let source =
            std::fs::read(format!("{}/static/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let path = format!("/{file}");

        let (status, headers, body) =
            server.http_get(&path, &[("Accept-Encoding", "gzip, deflate, br, zstd")]);
        assert_eq!(status, 200, "{file}");
        assert_eq!(header(&headers, "content-encoding"), Some("gzip"), "{file}");
        assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"), "{file}");
        assert_eq!(
            header(&headers, "content-length"),
            Some(body.len().to_string().as_str())
        );
        assert!(
            body.len() < source.len() / 2,
            "{file}: {} of {}",
            body.len(),
            source.len()
        );
        assert_eq!(&body[..3], b"\x1f\x8b\x08", "{file}: a gzip member");
        let inflated = miniz_oxide::inflate::decompress_to_vec(&body[10..body.len() - 8]).unwrap();
        assert_eq!(inflated, source, "{file}");

        let (status, headers, body) = server.http_get(&path, &[]);
        assert_eq!(status, 200, "{file}");
        assert_eq!(header(&headers, "content-encoding"), None, "{file}");
        assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"), "{file}");
        assert_eq!(body, source, "{file}");

        let (_, headers, body) = server.http_request("HEAD", &path, &[("Accept-Encoding", "gzip")]);
        assert!(body.is_empty());
        assert_eq!(header(&headers, "content-encoding"), Some("gzip"), "{file}");
    }
}
