//! Shared helpers for integration tests: a real sfubox server on 127.0.0.1 and clients.
//!
//! ```ignore
//! mod common;
//! use common::{Setup, TestServer};
//!
//! let server = TestServer::start(Setup::insecure().group("g", r#"{"wildcard-user": {"password": "", "permissions": "present"}}"#));
//! let (status, _headers, body) = server.http_get("/group/g/.status", &[]);
//! let mut ws = server.ws_connect();
//! ws.send_json(serde_json::json!({"type": "handshake", "version": ["2"], "id": "c1"}));
//! let reply = ws.recv_json();          // the next text frame, as JSON (5 s timeout)
//! let (code, reason) = ws.expect_close();
//! ```
//!
//! Every server gets fresh `groups/` and `data/` directories under Cargo's temporary
//! directory for integration tests (removed when the server is dropped). Group files and
//! `config.json` may be written before or after the start: the server re-reads them. The
//! server runs on its own thread (the application is not `Send`, so it is built there) and
//! stops, like on SIGTERM, when the `TestServer` is dropped.
//!
//! Plain (`Setup::insecure()`) and TLS (`Setup::tls()`) servers are supported; the TLS
//! clients accept any certificate. All client calls are blocking.

#![allow(dead_code)] // Each test binary uses a different part of these helpers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use sfubox::app::App;
use sfubox::cli::Options;
use sfubox::run::{Engine, Limits, Server};
use smol::Async;
use smol::io::{AsyncRead, AsyncWrite};
use smol::stream::StreamExt;

/// How long `recv_json` and friends wait by default.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// How a test server is configured before it starts.
#[derive(Debug, Clone)]
pub struct Setup {
    tls: bool,
    groups: Vec<(String, String)>,
    config: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    create_groups_dir: bool,
    static_dir: bool,
    camus_client: bool,
    limits: Limits,
    relay_only: bool,
}

impl Setup {
    /// Plain HTTP (`-insecure`).
    pub fn insecure() -> Setup {
        Setup {
            tls: false,
            groups: Vec::new(),
            config: None,
            files: Vec::new(),
            create_groups_dir: true,
            static_dir: false,
            camus_client: false,
            limits: test_limits(),
            relay_only: false,
        }
    }

    /// HTTPS with whatever certificate `data/` holds (self-signed when none).
    pub fn tls() -> Setup {
        Setup {
            tls: true,
            ..Setup::insecure()
        }
    }

    /// Writes `groups/<name>.json` before the start.
    pub fn group(mut self, name: &str, json: &str) -> Setup {
        self.groups.push((name.to_owned(), json.to_owned()));
        self
    }

    /// Writes `data/config.json` before the start.
    pub fn config(mut self, json: &str) -> Setup {
        self.config = Some(json.to_owned());
        self
    }

    /// Writes `data/<path>` (e.g. `cert.pem`) before the start.
    pub fn data_file(mut self, path: &str, content: &[u8]) -> Setup {
        self.files.push((format!("data/{path}"), content.to_vec()));
        self
    }

    /// Serves `static/` from disk (`-static`) instead of the embedded site, with these
    /// files in it.
    pub fn static_file(mut self, path: &str, content: &[u8]) -> Setup {
        self.static_dir = true;
        self.files
            .push((format!("static/{path}"), content.to_vec()));
        self
    }

    /// Serves a Camus client directory (`-camus-client`) with these files in it (it needs a
    /// `dist/chat.js` or `dist/index.js`).
    pub fn camus_client_file(mut self, path: &str, content: &[u8]) -> Setup {
        self.camus_client = true;
        self.files.push((format!("camus/{path}"), content.to_vec()));
        self
    }

    /// Does not create `groups/`, so the built-in default group is served.
    pub fn without_groups_dir(mut self) -> Setup {
        self.create_groups_dir = false;
        self
    }

    /// `-relay-only`.
    pub fn relay_only(mut self) -> Setup {
        self.relay_only = true;
        self
    }

    /// Replaces the runtime limits (defaults: [`test_limits`]).
    pub fn limits(mut self, limits: Limits) -> Setup {
        self.limits = limits;
        self
    }
}

/// The production limits with a shorter head timeout (2 s) and shutdown grace (1 s).
pub fn test_limits() -> Limits {
    Limits {
        request_head: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(1),
        ..Limits::default()
    }
}

/// A fresh empty directory under Cargo's temporary directory for integration tests.
pub fn fresh_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sfubox-{label}-{}-{n}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("create a test directory");
    dir
}

fn write_file(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent directory");
    }
    std::fs::write(path, content).expect("write test file");
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    root: PathBuf,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The cache the server reads its configuration files through.
    file_cache: Option<sfubox::config::FileCache>,
}

impl TestServer {
    /// Starts a server; panics if it cannot start.
    pub fn start(setup: Setup) -> TestServer {
        match TestServer::try_start(setup) {
            Ok(server) => server,
            Err(error) => panic!("test server did not start: {error}"),
        }
    }

    /// Starts a server, or returns why `Server::bind` refused to.
    pub fn try_start(setup: Setup) -> Result<TestServer, String> {
        TestServer::try_start_with(setup, |app| app)
    }

    /// Starts a server whose runtime drives `wrap(app)` instead of the application itself
    /// (a test's wrapper around it); panics if it cannot start.
    pub fn start_with<E, W>(setup: Setup, wrap: W) -> TestServer
    where
        E: Engine + 'static,
        W: FnOnce(App) -> E + Send + 'static,
    {
        match TestServer::try_start_with(setup, wrap) {
            Ok(server) => server,
            Err(error) => panic!("test server did not start: {error}"),
        }
    }

    fn try_start_with<E, W>(setup: Setup, wrap: W) -> Result<TestServer, String>
    where
        E: Engine + 'static,
        W: FnOnce(App) -> E + Send + 'static,
    {
        let _ = env_logger::builder().is_test(true).try_init();
        let root = fresh_dir("server");
        if setup.create_groups_dir {
            std::fs::create_dir_all(root.join("groups")).expect("create groups/");
        }
        std::fs::create_dir_all(root.join("data")).expect("create data/");
        for (name, json) in &setup.groups {
            write_file(&root.join(format!("groups/{name}.json")), json.as_bytes());
        }
        if let Some(config) = &setup.config {
            write_file(&root.join("data/config.json"), config.as_bytes());
        }
        for (path, content) in &setup.files {
            write_file(&root.join(path), content);
        }
        let options = Options {
            http: sfubox::cli::parse_http_address("127.0.0.1:0").map_err(|e| e.to_string())?,
            insecure: !setup.tls,
            static_dir: setup.static_dir.then(|| root.join("static")),
            data_dir: root.join("data"),
            groups_dir: root.join("groups"),
            recordings_dir: root.join("recordings"),
            relay_only: setup.relay_only,
            camus_client: setup.camus_client.then(|| root.join("camus")),
            ..Options::default()
        };
        let limits = setup.limits;
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sfubox-test-server".into())
            .spawn(move || {
                let (app, _) = sfubox::run::app_for(&options);
                let file_cache = app.core().file_cache();
                let server = match Server::bind(&options, wrap(app)) {
                    Ok(server) => server.with_limits(limits),
                    Err(error) => {
                        let _ = address_sender.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = address_sender.send(
                    server
                        .local_addr()
                        .map(|addr| (addr, file_cache))
                        .map_err(|e| e.to_string()),
                );
                let result = server.run_until(async move {
                    let _ = stopped.recv().await;
                });
                if let Err(error) = result {
                    panic!("server failed: {error}");
                }
            })
            .expect("spawn the server thread");
        let (addr, file_cache) = match address_receiver.recv() {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => {
                let _ = thread.join();
                let _ = std::fs::remove_dir_all(&root);
                return Err(error);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(
                    "the server thread panicked while starting (is App implemented?)".into(),
                );
            }
        };
        Ok(TestServer {
            addr,
            tls: setup.tls,
            root,
            stop: Some(stop),
            thread: Some(thread),
            file_cache,
        })
    }

    /// How many times the server looked at a configuration file on its executor thread
    /// because nothing refreshed it for the input at hand (see `sfubox::config::FileCache`).
    pub fn fallback_reads(&self) -> u64 {
        self.file_cache
            .as_ref()
            .map_or(0, sfubox::config::FileCache::fallback_reads)
    }

    /// The `groups/` directory.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    /// The `data/` directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Writes (or replaces) `groups/<name>.json`.
    pub fn write_group(&self, name: &str, json: &str) {
        write_file(
            &self.groups_dir().join(format!("{name}.json")),
            json.as_bytes(),
        );
    }

    /// Writes (or replaces) `data/config.json`.
    pub fn write_config(&self, json: &str) {
        write_file(&self.data_dir().join("config.json"), json.as_bytes());
    }

    /// `host:port` of the server, as a `Host` header.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Connects a raw stream (TLS if the server uses TLS).
    pub fn connect(&self) -> ClientStream {
        smol::block_on(async {
            let tcp = Async::<TcpStream>::connect(self.addr)
                .await
                .expect("connect to the test server");
            if self.tls {
                let connector = futures_rustls::TlsConnector::from(Arc::new(tls_client_config()));
                let name = ServerName::try_from("localhost").expect("a valid DNS name");
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .expect("TLS handshake with the test server");
                ClientStream::Tls(Box::new(tls))
            } else {
                ClientStream::Plain(tcp)
            }
        })
    }

    /// Sends one request (`Host` is added unless given) and reads the response until the
    /// server closes the connection. Returns (status, headers, body).
    pub fn http_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let bytes = self.raw_exchange(head.as_bytes());
        parse_response(&bytes)
    }

    /// Sends one request with a body (`Content-Length` is added) and reads the response
    /// until the server closes the connection. Returns (status, headers, body).
    pub fn http_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        parse_response(&self.raw_exchange(&bytes))
    }

    /// The root of the server's directories (`groups/`, `data/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `GET path` with extra headers; see [`TestServer::http_request`].
    pub fn http_get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.http_request("GET", path, headers)
    }

    /// Writes `bytes`, then reads everything until the server closes (at most 10 s).
    pub fn raw_exchange(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all_blocking(bytes);
        stream.read_to_end_blocking(Duration::from_secs(10))
    }

    /// Opens a WebSocket on `/ws` (no `Origin`); panics if refused.
    pub fn ws_connect(&self) -> WsClient {
        match self.ws_connect_with(&[]) {
            Ok(client) => client,
            Err(status) => panic!("WebSocket refused with HTTP {status}"),
        }
    }

    /// Opens a WebSocket on `/ws` with extra request headers (e.g. `Origin`); `Err(status)`
    /// when the server answers with an HTTP error instead of upgrading.
    pub fn ws_connect_with(&self, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        self.ws_connect_at("/ws", headers)
    }

    /// Opens a WebSocket on `path` with extra request headers; `Err(status)` when the
    /// server answers with an HTTP error instead of upgrading.
    pub fn ws_connect_at(&self, path: &str, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        let stream = self.connect();
        let scheme = if self.tls { "wss" } else { "ws" };
        let mut request = format!("{scheme}://{}{path}", self.host())
            .into_client_request()
            .expect("a valid WebSocket URL");
        for (name, value) in headers {
            let name =
                async_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("a valid header name");
            let value = async_tungstenite::tungstenite::http::HeaderValue::from_str(value)
                .expect("a valid header value");
            request.headers_mut().insert(name, value);
        }
        match smol::block_on(async_tungstenite::client_async(request, stream)) {
            Ok((socket, _response)) => Ok(WsClient { socket }),
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(error) => panic!("WebSocket handshake failed: {error}"),
        }
    }

    /// Asks the server to shut down (as on SIGTERM) without waiting for it; dropping the
    /// `TestServer` waits.
    pub fn request_stop(&mut self) {
        drop(self.stop.take());
    }

    /// The DER of the certificate the server presents now.
    pub fn peer_certificate(&self) -> Vec<u8> {
        match self.connect() {
            ClientStream::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.as_ref().to_vec())
                .expect("the server sent a certificate"),
            ClientStream::Plain(_) => panic!("not a TLS server"),
        }
    }

    /// Whether a TLS handshake with the server succeeds now.
    pub fn tls_handshake_succeeds(&self) -> bool {
        smol::block_on(async {
            let Ok(tcp) = Async::<TcpStream>::connect(self.addr).await else {
                return false;
            };
            let connector = futures_rustls::TlsConnector::from(Arc::new(tls_client_config()));
            let name = ServerName::try_from("localhost").expect("a valid DNS name");
            connector.connect(name, tcp).await.is_ok()
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Dropping the sender completes the server's stop future.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A client connection, plain or TLS.
pub enum ClientStream {
    /// Plain TCP.
    Plain(Async<TcpStream>),
    /// TLS over TCP.
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
}

impl ClientStream {
    /// Writes all bytes (blocking).
    pub fn write_all_blocking(&mut self, bytes: &[u8]) {
        use smol::io::AsyncWriteExt;
        smol::block_on(async {
            self.write_all(bytes).await.expect("write to the server");
            self.flush().await.expect("flush to the server");
        });
    }

    /// Reads until end of stream, an error, or `limit`; returns what arrived.
    pub fn read_to_end_blocking(&mut self, limit: Duration) -> Vec<u8> {
        use smol::io::AsyncReadExt;
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        smol::block_on(async {
            let mut chunk = [0u8; 8192];
            loop {
                let read = smol::future::or(async { Some(self.read(&mut chunk).await) }, async {
                    smol::Timer::at(deadline).await;
                    None
                })
                .await;
                match read {
                    Some(Ok(n)) if n > 0 => out.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
        });
        out
    }

    /// Whether the server closed the connection within `limit` (reads and discards data).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        use smol::io::AsyncReadExt;
        let deadline = Instant::now() + limit;
        smol::block_on(async {
            let mut chunk = [0u8; 8192];
            loop {
                let read = smol::future::or(async { Some(self.read(&mut chunk).await) }, async {
                    smol::Timer::at(deadline).await;
                    None
                })
                .await;
                match read {
                    None => return false,
                    Some(Ok(0)) | Some(Err(_)) => return true,
                    Some(Ok(_)) => {}
                }
            }
        })
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => std::pin::Pin::new(s).poll_close(cx),
            ClientStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// Parses a complete HTTP response (head and body up to the end of `bytes`).
pub fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not an HTTP response ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    (
        response.code.unwrap_or(0),
        headers,
        bytes[head_len..].to_vec(),
    )
}

/// The first header with this name (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A WebSocket client (blocking calls).
pub struct WsClient {
    /// The underlying socket, for tests that need raw frames.
    pub socket: WebSocketStream<ClientStream>,
}

impl WsClient {
    /// Sends one text frame containing `value`.
    pub fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string());
    }

    /// Sends one text frame.
    pub fn send_text(&mut self, text: &str) {
        smol::block_on(self.socket.send(Message::text(text.to_owned())))
            .expect("send a WebSocket frame");
    }

    /// Sends one raw message (binary, ping, close, ...).
    pub fn send_message(&mut self, message: Message) {
        smol::block_on(self.socket.send(message)).expect("send a WebSocket message");
    }

    /// The next message other than ping/pong, or `None` when nothing came within `timeout`
    /// (also `None` with a panic-free check when the stream ended: see `Err`).
    pub fn recv_message(&mut self, timeout: Duration) -> Option<Result<Message, WsError>> {
        let deadline = Instant::now() + timeout;
        smol::block_on(async {
            loop {
                let next = smol::future::or(async { Some(self.socket.next().await) }, async {
                    smol::Timer::at(deadline).await;
                    None
                })
                .await;
                match next {
                    None => return None,
                    Some(None) => return Some(Err(WsError::ConnectionClosed)),
                    Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                    Some(Some(other)) => return Some(other),
                }
            }
        })
    }

    /// The next text frame as JSON; panics on timeout ([`RECV_TIMEOUT`]), close or non-JSON.
    pub fn recv_json(&mut self) -> Value {
        match self.recv_json_within(RECV_TIMEOUT) {
            Some(value) => value,
            None => panic!("no message within {RECV_TIMEOUT:?}"),
        }
    }

    /// The next text frame as JSON, or `None` if nothing arrived within `timeout`; panics on
    /// close or non-JSON.
    pub fn recv_json_within(&mut self, timeout: Duration) -> Option<Value> {
        match self.recv_message(timeout)? {
            Ok(Message::Text(text)) => Some(
                serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
            ),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Receives JSON messages until one has `"type": kind` (returning it); panics if none
    /// comes within [`RECV_TIMEOUT`] in total.
    pub fn recv_type(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_json_within(left) {
                Some(value) if value["type"] == kind => return value,
                Some(_) => {}
                None => panic!("no {kind:?} message within {RECV_TIMEOUT:?}"),
            }
        }
    }

    /// Expects a close frame next (skipping nothing): returns (code, reason). Panics on a
    /// data frame, a timeout, or a connection dropped without a close frame.
    pub fn expect_close(&mut self) -> (u16, String) {
        match self.recv_message(RECV_TIMEOUT) {
            Some(Ok(Message::Close(Some(frame)))) => {
                (u16::from(frame.code), frame.reason.as_str().to_owned())
            }
            Some(Ok(Message::Close(None))) => (1005, String::new()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Whether the connection ends (close frame or EOF) within `timeout`, ignoring data.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_message(left) {
                None => return false,
                Some(Ok(Message::Close(_))) | Some(Err(_)) => return true,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// A client configuration that accepts any server certificate (the test server's is
/// self-signed), still checking the handshake signatures.
pub fn tls_client_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads a blocking std stream to the end (for tests that use `std::net` directly).
pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Writes to a blocking std stream, ignoring errors (the server may have closed already).
pub fn write_ignoring_errors(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}
