//! Security review of the HTTP surface, as black-box tests against a real server on
//! 127.0.0.1: path traversal (including backslashes and the Camus client directory), open
//! redirects, what an unauthenticated client can learn, the failed-login delay over a real
//! socket, and TLS (no plaintext answers, only TLS 1.2 and 1.3). Traversal with `..` and
//! percent-escapes and the WebSocket Origin rule are covered in `tests/http.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{Setup, TestServer, header};
use serde_json::{Value, json};

const PRIVATE_GROUP: &str = r#"{"displayName": "Board", "description": "Secret plans",
    "users": {"ceo": {"password": "hunter2", "permissions": "op"}}}"#;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// Every way of spelling a path outside the web root gets a redirect to a path inside it, a
/// 400 or a 404, and never the secret file.
#[test]
fn backslashes_and_encoded_separators_do_not_escape_the_web_roots() {
    let server = TestServer::start(
        Setup::insecure()
            .static_file("index.html", b"index")
            .camus_client_file("dist/chat.js", b"// camus"),
    );
    std::fs::write(server.data_dir().join("../secret.txt"), b"TOPSECRET").unwrap();
    for target in [
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/..%5c..%5csecret.txt",
        "/static/..%2f..%2fsecret.txt",
        "/static/..\\..\\secret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/dist/../../../secret.txt",
        "/group/..%2f..%2fsecret.txt/",
        "/group/%2e%2e/.status.json",
    ] {
        let (status, headers, body) = server.http_get(target, &[]);
        assert!(
            matches!(status, 301 | 400 | 404),
            "{target}: status {status}"
        );
        assert!(!text(&body).contains("TOPSECRET"), "{target}");
        if let Some(location) = header(&headers, "location") {
            let (status, _, body) = server.http_get(location, &[]);
            assert!(
                !text(&body).contains("TOPSECRET"),
                "{target} -> {location}: {status}"
            );
        }
    }
}

/// Redirects stay on this server: no `//host` or `/\host` Location a browser would follow
/// to another site.
#[test]
fn redirects_never_leave_the_site() {
    let server = TestServer::start(Setup::insecure().group("g", r#"{"public": true}"#));
    for target in [
        "//evil.example/",
        "//evil.example/%2e%2e",
        "/%2f%2fevil.example/",
        "/%2F/evil.example",
        "/\\evil.example/",
        "/%5cevil.example/",
        "/group/g",
        "/group//evil.example/",
        "/./evil.example",
    ] {
        let (status, headers, _) = server.http_get(target, &[]);
        if let Some(location) = header(&headers, "location") {
            assert!(location.starts_with('/'), "{target} -> {location}");
            assert!(
                !location.starts_with("//") && !location.starts_with("/\\"),
                "{target} -> {location} ({status})"
            );
        }
    }
}

/// Without credentials a client learns a group's name and public texts, never its members,
/// its users or its lock state unless the group is public; broken files are not quoted.
#[test]
fn unauthenticated_clients_learn_only_what_galene_publishes() {
    let server = TestServer::start(Setup::insecure().group("board", PRIVATE_GROUP).group(
        "broken",
        r#"{"users": {"x": {"password": "leaked-secret"}}, "oops": 1}"#,
    ));
    let (status, headers, body) = server.http_get("/group/board/.status", &[]);
    assert_eq!(status, 200);
    let status_json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status_json["name"], "board");
    assert!(status_json.get("clientCount").is_none(), "{status_json}");
    assert!(status_json.get("locked").is_none(), "{status_json}");
    assert!(!text(&body).contains("ceo") && !text(&body).contains("hunter2"));
    assert_eq!(header(&headers, "server"), None, "no server banner");

    let (_, _, body) = server.http_get("/public-groups.json", &[]);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!([]));

    let (status, _, body) = server.http_get("/group/broken/", &[]);
    assert_eq!(status, 500);
    let body = text(&body);
    assert!(
        !body.contains("leaked-secret") && !body.contains("oops"),
        "{body}"
    );

    // Unknown and invalid names look alike.
    let (unknown, _, _) = server.http_get("/group/nope/.status", &[]);
    let (invalid, _, _) = server.http_get("/group/a%5cb/.status", &[]);
    assert_eq!((unknown, invalid), (404, 404));
}

/// A wrong password is answered no sooner than 200 ms after the join, over a real socket.
#[test]
fn a_failed_login_is_answered_after_the_delay() {
    let server = TestServer::start(Setup::insecure().group("board", PRIVATE_GROUP));
    let mut client = server.ws_connect();
    client.send_json(json!({"type": "handshake", "version": ["2"], "id": "c1"}));
    assert_eq!(client.recv_json()["type"], "handshake");
    let sent = Instant::now();
    client.send_json(json!({"type": "join", "kind": "join", "group": "board",
        "username": "ceo", "password": "guess"}));
    let reply = client.recv_json();
    let waited = sent.elapsed();
    assert_eq!(reply["kind"], "fail", "{reply}");
    assert!(
        waited >= Duration::from_millis(190),
        "answered after {waited:?}"
    );
}

/// The TLS port never answers in clear text, and negotiates TLS 1.2 or 1.3 only (rustls
/// has nothing older).
#[test]
fn tls_port_speaks_only_tls_1_2_or_1_3() {
    let server = TestServer::start(Setup::tls());
    let plain = smol::block_on(async {
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = smol::Async::<std::net::TcpStream>::connect(server.addr)
            .await
            .unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = smol::future::or(
            async {
                let _ = tcp.read_to_end(&mut answer).await;
            },
            async {
                smol::Timer::after(Duration::from_secs(3)).await;
            },
        )
        .await;
        answer
    });
    assert!(!plain.starts_with(b"HTTP/"), "{}", text(&plain));

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let negotiated = smol::block_on(async {
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(std::sync::Arc::new(TrustAnyCertificate(
                    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
                )))
                .with_no_client_auth();
            let tcp = smol::Async::<std::net::TcpStream>::connect(server.addr)
                .await
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = futures_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
                .unwrap();
            tls.get_ref().1.protocol_version()
        });
        assert_eq!(negotiated, Some(version.version));
    }
}

/// A client-side verifier for the test server's self-signed certificate: signatures are
/// checked, the certificate chain is not.
#[derive(Debug)]
struct TrustAnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TrustAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
