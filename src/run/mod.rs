//! The runtime: the only code with sockets, TLS, timers and signals.
//!
//! Everything runs on one `smol::LocalExecutor` on the calling thread:
//!
//! - an accept loop on the `-http` listener spawns one task per connection
//!   ([`conn`]): TLS handshake (unless `-insecure`), request head, then an HTTP response or
//!   a WebSocket session;
//! - one media task reads the UDP socket (`udp.rs`) and hands each datagram straight to the
//!   media engine ([`Engine::media_engine`], `Sfu::handle_receive`), sending its transmits
//!   at once in `sendmmsg` batches; the signalling side runs only when the engine reports
//!   events ([`Engine::handle_media_events`]);
//! - one timer task sleeps until [`Engine::poll_timeout`] and calls
//!   [`Engine::handle_timeout`]; it is woken early whenever the engine was touched, since the
//!   deadline may have moved;
//! - on SIGINT/SIGTERM (or the caller's stop future) the engine is told to shut down, the
//!   resulting close frames are flushed, and the server returns within
//!   [`Limits::shutdown_grace`].
//!
//! # Ownership of the engine
//!
//! The sans-IO engine (the [`App`]) lives in an `Rc<RefCell<_>>` shared by all tasks. It is
//! borrowed only for one synchronous call and the drain of its outputs that follows
//! ([`Shared::drain`]), and **never across an `.await`**: a borrow held over a suspension
//! point would make every other task's borrow panic. Outputs go to per-connection queues
//! bounded at [`Limits::queue_frames`]; a client whose queue is full is disconnected rather
//! than letting it slow the engine down.
//!
//! # Configuration files
//!
//! The engine reads group files, `config.json` and the like through a
//! [`FileCache`] ([`Engine::file_cache`]). Before an input that reads them (a Galène `join`,
//! a `.status` request, a WebSocket upgrade: [`prefetch`] has the list), the connection's
//! task has the file worker thread refresh those files and awaits that, then
//! runs the engine call inside the refresh's [`Freshness`]: the executor thread does not
//! wait on the disk, an SD card's slow `stat` stalls only the connection that asked, and a
//! file edited before the request is still seen by it. The connection reads its next frame
//! only after that, so its frames keep their order. The timer task does the same before the
//! 15-minute housekeeping (it reloads the groups in use and purges tokens), which names its
//! files with [`Engine::files_for_timeout`]. Anything [`prefetch`] misses is read inline and
//! counted by [`FileCache::fallback_reads`].
//!
//! # Limits and panics
//!
//! Every accepted connection takes a slot in a [`limits::ConnectionTable`]
//! ([`Limits::max_connections`] in total, [`Limits::max_connections_per_ip`] per address);
//! when the table is full the oldest connection that has not completed its request head is
//! evicted for it, and without a slot it is closed at once. A panic while serving one
//! connection (in the engine or in the connection's own code) unwinds to that connection's
//! task only: the task logs it, the engine is told the connection is gone, and every other
//! meeting goes on. A panic while handling a media datagram is caught the same way for that
//! datagram, and one in the timers for that round of timers. Every caught panic counts: more
//! than [`limits::PanicBudget::MAX_PANICS`] a minute end the process (exit code 70) for the
//! service manager to restart it, since the shared state is then suspect.

mod admin;
mod admin_files;
pub mod check;
mod conn;
pub mod files;
pub mod limits;
mod prefetch;
pub mod record;
pub mod tls;
pub mod udp;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smol::channel::{Receiver, Sender, TrySendError};
use smol::stream::StreamExt;
use smol::{Async, LocalExecutor, Timer};

use crate::app::{App, AppOptions};
use crate::cli::Options;
use crate::config::dir::DiskDirectory;
use crate::config::{FileCache, FileNeed, Freshness, InputScope};
use crate::conn::{ConnId, ConnOutput};
use crate::http::camus::{CamusClient, CamusSource};
use crate::http::files::{EmbeddedSite, FileSource};
use crate::http::route::Signalling;
use crate::media::Sfu;
use crate::record::{RecordCommand, RecordReport, RecordingId};

/// What the runtime needs from the sans-IO application. [`App`] implements it; the trait
/// exists so the runtime can be exercised with a small fake.
pub trait Engine: CamusSource + crate::http::whip::WhipSource {
    /// Starts the media engine with this configuration (host candidates: the media socket's
    /// addresses). Engines without media accept and ignore it.
    fn enable_media(&mut self, config: crate::media::SfuConfig) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
    /// The media engine, when there is one: the runtime hands it every datagram of the media
    /// socket ([`Sfu::handle_receive`]) and sends what it transmits, without the signalling
    /// side; after every engine call it drains [`Sfu::poll_transmit`].
    fn media_engine(&mut self) -> Option<&mut Sfu> {
        None
    }
    /// The media engine has events ([`Sfu::has_events`]) for the signalling side.
    fn handle_media_events(&mut self, now: Instant) {
        let _ = now;
    }
    /// Registers a new WebSocket connection.
    fn connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId;
    /// Registers a new WebSocket connection of the GStreamer examples' protocol.
    fn connect_gst(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId;
    /// Registers a new Camus WebSocket connection, admitted to a room before the upgrade.
    fn connect_camus(
        &mut self,
        now: Instant,
        remote: Option<SocketAddr>,
        admission: crate::camus::Admission,
    ) -> ConnId;
    /// A text frame arrived.
    fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str);
    /// A binary frame arrived.
    fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8]);
    /// A pong arrived (the answer to a [`ConnOutput::Ping`]). Ignored unless overridden.
    fn handle_pong(&mut self, now: Instant, conn: ConnId) {
        let _ = (now, conn);
    }
    /// The connection is gone.
    fn handle_disconnect(&mut self, now: Instant, conn: ConnId);
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When [`Engine::handle_timeout`] is due next.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// The next frame to send; called until `None` after every `handle_*`.
    fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)>;
    /// Lock everything and kick every client with `message`.
    fn shutdown(&mut self, now: Instant, message: &str);
    /// The files the timers due at `now` will read, refreshed off the executor thread before
    /// [`Engine::handle_timeout`]. None unless overridden.
    fn files_for_timeout(&self, now: Instant) -> Vec<FileNeed> {
        let _ = now;
        Vec::new()
    }
    /// The cache the engine reads its configuration files through, refreshed by the
    /// runtime before the inputs that read them; `None` (the default): nothing to refresh.
    fn file_cache(&self) -> Option<FileCache> {
        None
    }
    /// The next command for the recording writer; drained after every input like
    /// [`Engine::poll_output`]. None unless overridden.
    fn poll_record_command(&mut self) -> Option<RecordCommand> {
        None
    }
    /// The writer's queue refused a frame of `recording`.
    fn handle_record_overflow(&mut self, now: Instant, recording: RecordingId) {
        let _ = (now, recording);
    }
    /// The writer reports.
    fn handle_record_report(&mut self, now: Instant, report: RecordReport) {
        let _ = (now, report);
    }
}

impl Engine for App {
    fn enable_media(&mut self, config: crate::media::SfuConfig) -> Result<(), String> {
        App::enable_media(self, config).map_err(|e| e.to_string())
    }
    fn media_engine(&mut self) -> Option<&mut Sfu> {
        App::media_engine(self)
    }
    fn handle_media_events(&mut self, now: Instant) {
        App::handle_media_events(self, now)
    }
    fn connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.galene_connect(now, remote)
    }
    fn connect_gst(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.gst_connect(now, remote)
    }
    fn connect_camus(
        &mut self,
        now: Instant,
        remote: Option<SocketAddr>,
        admission: crate::camus::Admission,
    ) -> ConnId {
        self.camus_connect(now, remote, admission)
    }
    fn handle_pong(&mut self, now: Instant, conn: ConnId) {
        App::handle_pong(self, now, conn)
    }
    fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        App::handle_text(self, now, conn, text)
    }
    fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        App::handle_binary(self, now, conn, data)
    }
    fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        App::handle_disconnect(self, now, conn)
    }
    fn handle_timeout(&mut self, now: Instant) {
        App::handle_timeout(self, now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        App::poll_timeout(self)
    }
    fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)> {
        App::poll_output(self)
    }
    fn shutdown(&mut self, now: Instant, message: &str) {
        App::shutdown(self, now, message)
    }
    fn files_for_timeout(&self, now: Instant) -> Vec<FileNeed> {
        App::files_for_timeout(self, now)
    }
    fn file_cache(&self) -> Option<FileCache> {
        self.core().file_cache()
    }
    fn poll_record_command(&mut self) -> Option<RecordCommand> {
        App::poll_record_command(self)
    }
    fn handle_record_overflow(&mut self, now: Instant, recording: RecordingId) {
        App::handle_record_overflow(self, now, recording)
    }
    fn handle_record_report(&mut self, now: Instant, report: RecordReport) {
        App::handle_record_report(self, now, report)
    }
}

/// Builds the application for these options over the `-groups` and `-data` directories.
/// Returns it with whether the built-in default group is in use (no groups directory).
pub fn app_for(options: &Options) -> (App, bool) {
    let directory = DiskDirectory::new(&options.groups_dir, &options.data_dir);
    let embedded = directory.uses_embedded_default();
    let app = App::new(
        Box::new(directory),
        AppOptions {
            relay_only: options.relay_only,
        },
        Instant::now(),
        SystemTime::now(),
    );
    (app, embedded)
}

/// Time and size limits of the runtime. The defaults follow Galène.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time for a client to complete the TLS handshake.
    pub tls_handshake: Duration,
    /// Time for a client to send a complete request head (answered with 408 after it).
    pub request_head: Duration,
    /// While at least half of [`Limits::max_connections`] are open, a connection that has
    /// not completed its TLS handshake and request head this long after it was accepted is
    /// closed as soon as another connection arrives.
    pub opening_under_pressure: Duration,
    /// Time to write one HTTP response.
    pub response_write: Duration,
    /// Time to write one WebSocket frame; a slower client is disconnected.
    pub frame_write: Duration,
    /// Outgoing WebSocket frames queued per connection; a client whose queue is full is
    /// disconnected.
    pub queue_frames: usize,
    /// Largest incoming WebSocket message and frame.
    pub max_message: usize,
    /// How long shutdown waits for connections to close, and how long a connection waits
    /// for the client's answer to our close frame.
    pub shutdown_grace: Duration,
    /// Open TCP connections (HTTP and WebSocket together). One more evicts the oldest
    /// connection that has not completed its request head, or is refused if there is none.
    pub max_connections: usize,
    /// Open TCP connections from one IPv4 address or IPv6 /64, enforced the same way within
    /// the address; loopback is exempt (a reverse proxy on the same machine brings every
    /// client from there).
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            tls_handshake: Duration::from_secs(30),
            request_head: Duration::from_secs(30),
            opening_under_pressure: Duration::from_secs(5),
            response_write: Duration::from_secs(60),
            frame_write: Duration::from_millis(500),
            // Above max_connections: joining a group sends one "user" message per member at once.
            queue_frames: 1024,
            max_message: 1 << 20,
            // Below Galène's 2 s so that the whole shutdown fits in 2 s.
            shutdown_grace: Duration::from_millis(1500),
            max_connections: 1000,
            max_connections_per_ip: 100,
        }
    }
}

/// A bound web server, ready to run.
pub struct Server<E: Engine> {
    listener: Async<TcpListener>,
    tls: Option<futures_rustls::TlsAcceptor>,
    files: Box<dyn FileSource>,
    camus_client: Option<CamusClient>,
    engine: E,
    limits: Limits,
    /// The media socket ([`udp`]), if it could be bound.
    media: Option<udp::MediaSocket>,
    /// `-recordings`: where the recording writer writes and `/recordings/` reads.
    recordings_dir: std::path::PathBuf,
}

impl<E: Engine + 'static> Server<E> {
    /// Binds the `-http` address and prepares TLS (unless `-insecure`) and the static files.
    /// Fails if the address cannot be bound or the certificate files are unusable.
    pub fn bind(options: &Options, mut engine: E) -> io::Result<Server<E>> {
        let listener = bind_listener(options)?;
        let media = bind_media(options, listener.local_addr()?.port(), &mut engine);
        let tls = if options.insecure {
            None
        } else {
            let config = tls::server_config(&options.data_dir)?;
            Some(futures_rustls::TlsAcceptor::from(Arc::new(config)))
        };
        let files: Box<dyn FileSource> = match &options.static_dir {
            Some(dir) => Box::new(files::DiskFiles::new(dir)),
            None => Box::new(EmbeddedSite::new(SystemTime::now())),
        };
        let camus_client = match &options.camus_client {
            None => None,
            Some(dir) => {
                let client =
                    CamusClient::detect(Box::new(files::DiskFiles::new(dir))).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "-camus-client {}: no dist/index.js or dist/chat.js in it \
                                 (give the static/ directory of an unpacked camus-chat wheel)",
                                dir.display()
                            ),
                        )
                    })?;
                log::info!("Camus client: {} ({})", dir.display(), client.script());
                Some(client)
            }
        };
        Ok(Server {
            listener: Async::new(listener)?,
            tls,
            files,
            camus_client,
            engine,
            limits: Limits::default(),
            media,
            recordings_dir: options.recordings_dir.clone(),
        })
    }

    /// The media socket's address, if media runs.
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media.as_ref().map(udp::MediaSocket::local_addr)
    }

    /// Replaces the limits (tests use short timeouts).
    pub fn with_limits(mut self, limits: Limits) -> Server<E> {
        self.limits = limits;
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Serves until SIGINT or SIGTERM, then shuts down.
    pub fn run(self) -> io::Result<()> {
        let mut signals =
            async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])?;
        self.run_until(async move {
            if let Some(Ok(signal)) = signals.next().await {
                log::info!("Got {signal:?}, shutting down");
            }
        })
    }

    /// Serves until `stop` completes, then shuts down: every client is kicked with "server is
    /// shutting down", and the call returns once all connections closed or after
    /// [`Limits::shutdown_grace`].
    pub fn run_until(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let executor = Rc::new(LocalExecutor::new());
        let (kick_sender, kick_receiver) = smol::channel::bounded(1);
        let file_cache = self.engine.file_cache();
        let file_worker = file_cache
            .clone()
            .and_then(|cache| match FileWorker::start(cache) {
                Ok(worker) => Some(worker),
                Err(e) => {
                    log::warn!("no file worker thread ({e}): configuration files are read inline");
                    None
                }
            });
        let admin = file_cache
            .clone()
            .and_then(|cache| match admin::AdminWorker::start(cache) {
                Ok(worker) => Some(worker),
                Err(e) => {
                    log::warn!("no admin thread ({e}): the admin API is not available");
                    None
                }
            });
        let (report_sender, reports) = smol::channel::unbounded();
        let recorder = match record::RecordWriter::start(self.recordings_dir.clone(), report_sender)
        {
            Ok(writer) => Some(writer),
            Err(e) => {
                log::error!("no recording writer thread ({e}): recording is disabled");
                None
            }
        };
        let shared = Rc::new(Shared {
            file_cache,
            file_worker,
            admin,
            recorder: RefCell::new(recorder),
            dropped_recordings: RefCell::new(std::collections::HashSet::new()),
            recordings_dir: self.recordings_dir,
            engine: RefCell::new(self.engine),
            conns: RefCell::new(HashMap::new()),
            timer_kick: kick_sender,
            timer_armed: Cell::new(None),
            files: self.files,
            camus_client: self.camus_client,
            tls: self.tls,
            limits: self.limits,
            panics: RefCell::new(limits::PanicBudget::default()),
            media: self.media.map(Rc::new),
        });
        let listener = self.listener;
        smol::block_on(executor.run(async {
            executor
                .spawn(timer_task(Rc::clone(&shared), kick_receiver))
                .detach();
            executor
                .spawn(record_reports(Rc::clone(&shared), reports))
                .detach();
            if let Some(media) = &shared.media {
                executor
                    .spawn(udp::receive_task(Rc::clone(&shared), Rc::clone(media)))
                    .detach();
            }
            let accept = accept_loop(&listener, &executor, &shared);
            smol::future::or(accept, stop).await;
            shared.shutdown().await;
        }));
        // The recordings the shutdown closed are finished on the writer thread; a file it
        // cannot finish in time still plays (its sizes are "unknown", not wrong).
        if let Some(mut writer) = shared.recorder.borrow_mut().take() {
            writer.finish(Instant::now() + RECORDING_SHUTDOWN_GRACE);
        }
        log::info!("Server stopped");
        Ok(())
    }
}

/// Binds the media socket and starts the engine's media side; logs and goes on without
/// media when either fails.
fn bind_media<E: Engine>(
    options: &Options,
    http_port: u16,
    engine: &mut E,
) -> Option<udp::MediaSocket> {
    let socket = match udp::MediaSocket::bind(
        options.http.host.as_deref(),
        options.udp_ports,
        http_port,
        &options.public_ips,
    ) {
        Ok(socket) => socket,
        Err(e) => {
            log::error!("Cannot bind the media socket: {e}; publishing is disabled");
            return None;
        }
    };
    let mut config = crate::media::SfuConfig::new(socket.candidates().to_vec());
    config.downlink_estimation = options.downlink_estimation;
    if let Err(e) = engine.enable_media(config) {
        log::error!("Cannot start the media engine: {e}; publishing is disabled");
        return None;
    }
    log::info!(
        "Media on UDP {}, announced as {:?}",
        socket.local_addr(),
        socket.candidates()
    );
    if !options.downlink_estimation {
        log::info!("Downlink estimation is off: every receiver gets the layer it asked for");
    }
    Some(socket)
}

fn bind_listener(options: &Options) -> io::Result<TcpListener> {
    let listener = bind_listener_address(options)?;
    // The standard library listens with a queue of 128; a burst of connections (a flood the
    // connection table copes with, or a meeting's browsers reconnecting together) would
    // overflow it and each dropped SYN costs its client a second. Listening again only
    // changes the queue size, up to the system's `somaxconn`.
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::MAXCONN) {
        log::warn!("cannot enlarge the listen queue: {e}");
    }
    Ok(listener)
}

fn bind_listener_address(options: &Options) -> io::Result<TcpListener> {
    let port = options.http.port;
    match &options.http.host {
        // All interfaces: the IPv6 wildcard is dual-stack on most systems; fall back to IPv4.
        None => TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port))),
        Some(host) => {
            let mut last_error = io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{host}: no address"),
            );
            for addr in (host.as_str(), port).to_socket_addrs()? {
                match TcpListener::bind(addr) {
                    Ok(listener) => return Ok(listener),
                    Err(e) => last_error = e,
                }
            }
            Err(last_error)
        }
    }
}

/// One connection's outgoing queue, as the engine's outputs see it.
struct ConnQueue {
    frames: Sender<ConnOutput>,
    /// Set when the connection must stop now (queue overflow), without sending what is left.
    killed: Rc<Cell<bool>>,
}

/// A refresh the file worker is asked for, and where its answer goes.
type FileJob = (Vec<FileNeed>, smol::channel::Sender<Freshness>);

/// One thread, started with the server, that refreshes the configuration file cache. One
/// thread rather than a pool: refreshes are rare and short, and a pool's threads come and
/// go, each leaving the allocator an arena of its own (the soak test saw the resident size
/// creep as they did). It ends when the server's state is dropped.
struct FileWorker {
    jobs: std::sync::mpsc::Sender<FileJob>,
}

impl FileWorker {
    fn start(cache: FileCache) -> io::Result<FileWorker> {
        let (jobs, requests) = std::sync::mpsc::channel::<FileJob>();
        std::thread::Builder::new()
            .name("sfubox-files".into())
            .spawn(move || {
                for (needs, reply) in requests {
                    // The asker may have gone (its connection closed): nothing to do then.
                    let _ = reply.send_blocking(cache.refresh(&needs));
                }
            })?;
        Ok(FileWorker { jobs })
    }

    /// Refreshes the files behind `needs`; `None` if the worker is gone.
    async fn refresh(&self, needs: Vec<FileNeed>) -> Option<Freshness> {
        let (reply, answer) = smol::channel::bounded(1);
        self.jobs.send((needs, reply)).ok()?;
        answer.recv().await.ok()
    }
}

/// How long the server waits, when stopping, for the recording writer to finish its files.
const RECORDING_SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Hands the recording writer's reports to the engine.
async fn record_reports<E: Engine>(shared: Rc<Shared<E>>, reports: Receiver<RecordReport>) {
    while let Ok(report) = reports.recv().await {
        shared.with_engine(|engine| engine.handle_record_report(Instant::now(), report));
    }
}

/// State shared by every task on the executor.
struct Shared<E> {
    /// The engine's configuration files, refreshed off the executor thread before the inputs
    /// that read them (see the module docs).
    file_cache: Option<FileCache>,
    /// The thread that refreshes `file_cache`.
    file_worker: Option<FileWorker>,
    /// The thread that answers the admin API (`/galene-api/`).
    admin: Option<admin::AdminWorker>,
    /// The recording writer thread (taken when the server stops).
    recorder: RefCell<Option<record::RecordWriter>>,
    /// Recordings whose frames the writer's queue refused: their later frames are dropped
    /// too (a file with a hole would not decode) until their `Close` goes through.
    dropped_recordings: RefCell<std::collections::HashSet<RecordingId>>,
    /// `-recordings`.
    recordings_dir: std::path::PathBuf,
    /// The engine; see the module docs: never borrowed across an `.await`.
    engine: RefCell<E>,
    /// Open WebSocket connections. Whoever removes an entry calls `handle_disconnect`.
    conns: RefCell<HashMap<ConnId, ConnQueue>>,
    /// Wakes the timer task after the engine was touched.
    timer_kick: Sender<()>,
    /// The deadline the timer task sleeps until (`None`: no deadline).
    timer_armed: Cell<Option<Instant>>,
    files: Box<dyn FileSource>,
    /// The Camus client bundle (`-camus-client`), if any.
    camus_client: Option<CamusClient>,
    tls: Option<futures_rustls::TlsAcceptor>,
    limits: Limits,
    /// Panics caught in connection tasks and timers.
    panics: RefCell<limits::PanicBudget>,
    /// The media socket: every engine call is followed by sending its datagrams.
    media: Option<Rc<udp::MediaSocket>>,
}

impl<E: Engine> Shared<E> {
    /// Moves every pending output of the engine to the connection queues, disconnects
    /// clients whose queue overflowed, and wakes the timer task. Synchronous by design.
    fn drain(&self) {
        self.drain_outputs();
        // A recording the writer refuses produces warnings (outputs) and a `Close`.
        while self.drain_recording() {
            self.drain_outputs();
        }
        if let Some(media) = &self.media {
            let mut engine = self.engine.borrow_mut();
            if let Some(sfu) = engine.media_engine() {
                while let Some(transmit) = sfu.poll_transmit() {
                    media.send(transmit);
                }
            }
            media.flush();
        }
        self.kick_timer_if_sooner();
    }

    /// Moves the engine's outputs to the connection queues (see [`Shared::drain`]).
    fn drain_outputs(&self) {
        let mut overflowed = Vec::new();
        loop {
            let next = self.engine.borrow_mut().poll_output();
            let Some((id, output)) = next else {
                if overflowed.is_empty() {
                    break;
                }
                let now = Instant::now();
                for id in overflowed.drain(..) {
                    self.engine.borrow_mut().handle_disconnect(now, id);
                }
                continue;
            };
            let mut conns = self.conns.borrow_mut();
            let Some(queue) = conns.get(&id) else {
                continue;
            };
            // The channel is unbounded so that it allocates as frames come (a bounded one
            // allocates all its slots up front: 40 kB per connection); the bound is kept here.
            let sent = if queue.frames.len() >= self.limits.queue_frames {
                Err(TrySendError::Full(output))
            } else {
                queue.frames.try_send(output)
            };
            match sent {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    log::warn!(
                        "{id:?}: {} frames queued, disconnecting the slow client",
                        self.limits.queue_frames
                    );
                    if let Some(queue) = conns.remove(&id) {
                        queue.killed.set(true);
                        queue.frames.close();
                    }
                    overflowed.push(id);
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Moves the engine's recording commands to the writer. A frame the writer's queue
    /// refuses stops its recording (the engine hears of it, and closes it). Returns whether
    /// that happened.
    fn drain_recording(&self) -> bool {
        let mut refused = false;
        loop {
            let next = self.engine.borrow_mut().poll_record_command();
            let Some(command) = next else {
                return refused;
            };
            let recording = command.recording();
            let closing = matches!(command, RecordCommand::Close { .. });
            if self.dropped_recordings.borrow().contains(&recording) {
                if !closing {
                    continue;
                }
                self.dropped_recordings.borrow_mut().remove(&recording);
            }
            let submitted = match self.recorder.borrow().as_ref() {
                Some(writer) => writer.submit(command),
                None => Err(record::QueueFull),
            };
            if submitted.is_err() && !closing {
                log::warn!("recording {}: the writer's queue is full", recording.0);
                refused = true;
                self.dropped_recordings.borrow_mut().insert(recording);
                self.engine
                    .borrow_mut()
                    .handle_record_overflow(Instant::now(), recording);
            }
        }
    }

    /// Wakes the timer task when the engine's next deadline moved before the one it sleeps
    /// on.
    fn kick_timer_if_sooner(&self) {
        // Wake the timer task only when the engine's next deadline moved before the one it
        // sleeps on (a datagram rarely does that; waking it for each one cost a task switch
        // per packet). Full means a wake-up is already pending.
        let next = self.engine.borrow_mut().poll_timeout();
        let sooner = match (next, self.timer_armed.get()) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if sooner {
            let _ = self.timer_kick.try_send(());
        }
    }

    /// Registers a new WebSocket connection with the engine.
    fn open(
        &self,
        remote: SocketAddr,
        signalling: Signalling,
    ) -> (ConnId, Receiver<ConnOutput>, Rc<Cell<bool>>) {
        let id = {
            let mut engine = self.engine.borrow_mut();
            match signalling {
                Signalling::Galene => engine.connect(Instant::now(), Some(remote)),
                Signalling::Gst => engine.connect_gst(Instant::now(), Some(remote)),
                Signalling::Camus(admission) => {
                    engine.connect_camus(Instant::now(), Some(remote), admission)
                }
            }
        };
        let (frames, receiver) = smol::channel::unbounded();
        let killed = Rc::new(Cell::new(false));
        self.conns.borrow_mut().insert(
            id,
            ConnQueue {
                frames,
                killed: Rc::clone(&killed),
            },
        );
        self.drain();
        (id, receiver, killed)
    }

    /// A connection ended: tell the engine, unless the overflow path already did.
    fn close(&self, id: ConnId) {
        #[cfg(feature = "leak-injection")]
        inject_leak();
        let removed = self.conns.borrow_mut().remove(&id);
        if removed.is_some() {
            self.engine
                .borrow_mut()
                .handle_disconnect(Instant::now(), id);
            self.drain();
        }
    }

    /// Runs one engine input and drains.
    fn with_engine(&self, f: impl FnOnce(&mut E)) {
        f(&mut self.engine.borrow_mut());
        self.drain();
    }

    /// Looks at the configuration files behind `needs` on the file worker thread; the engine
    /// input that reads them then runs in [`Shared::files_for_input`] with the result.
    /// `None` when there is nothing to refresh (or no worker: the engine then reads inline).
    async fn refresh_files(&self, needs: Vec<FileNeed>) -> Option<Freshness> {
        if needs.is_empty() {
            return None;
        }
        self.file_worker.as_ref()?.refresh(needs).await
    }

    /// While the returned scope lives, the engine reads the files refreshed at `freshness`
    /// from the cache; anything else it reads synchronously.
    fn files_for_input(&self, freshness: Option<Freshness>) -> Option<InputScope<'_>> {
        Some(self.file_cache.as_ref()?.enter(freshness?))
    }

    /// Logs a panic caught while doing `what`; exits the process when the panic budget is
    /// spent (the service manager restarts it).
    fn caught_panic(&self, what: &str, payload: &(dyn std::any::Any + Send)) {
        log::error!("panic while {what}: {}", limits::panic_message(payload));
        if !self.panics.borrow_mut().record(Instant::now()) {
            log::error!(
                "more than {} panics within {:?}: exiting to be restarted",
                limits::PanicBudget::MAX_PANICS,
                limits::PanicBudget::WINDOW
            );
            std::process::exit(70);
        }
    }

    async fn shutdown(&self) {
        log::debug!("Shutting down the engine");
        self.with_engine(|engine| engine.shutdown(Instant::now(), "server is shutting down"));
        log::debug!(
            "Waiting for {} connections to close",
            self.conns.borrow().len()
        );
        let deadline = Instant::now() + self.limits.shutdown_grace;
        while !self.conns.borrow().is_empty() && Instant::now() < deadline {
            Timer::after(Duration::from_millis(10)).await;
        }
    }
}

/// Leaks `SFUBOX_INJECTED_LEAK_KIB` KiB (default 64), written so that it is resident, each
/// time a WebSocket connection ends. Only in builds with the `leak-injection` feature, which
/// exists to prove that the soak test (`tests/soak/run.sh`) fails on a leak.
#[cfg(feature = "leak-injection")]
fn inject_leak() {
    let kib = std::env::var("SFUBOX_INJECTED_LEAK_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64);
    std::mem::forget(vec![0xa5u8; kib * 1024]);
}

async fn accept_loop<E: Engine + 'static>(
    listener: &Async<TcpListener>,
    executor: &LocalExecutor<'_>,
    shared: &Rc<Shared<E>>,
) {
    let table = Rc::new(RefCell::new(limits::ConnectionTable::new(
        shared.limits.max_connections,
        shared.limits.max_connections_per_ip,
        shared.limits.opening_under_pressure,
    )));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let now = Instant::now();
                let permit = match limits::ConnectionPermit::acquire(&table, now, peer.ip()) {
                    Ok((permit, evicted)) => {
                        if evicted > 0
                            && let Some(line) = table.borrow_mut().eviction_log_line(now, peer)
                        {
                            log::warn!("{line}");
                        }
                        permit
                    }
                    Err(refusal) => {
                        if let Some(line) = table.borrow_mut().refusal_log_line(now, peer, refusal)
                        {
                            log::warn!("{line}");
                        }
                        if shared.tls.is_none() {
                            // One non-blocking attempt; a client that cannot take 200 bytes
                            // now just sees the connection close.
                            use std::io::Write as _;
                            let _ = stream.get_ref().write(limits::REFUSAL_RESPONSE);
                        }
                        continue;
                    }
                };
                let shared = Rc::clone(shared);
                executor
                    .spawn(async move {
                        use futures_util::FutureExt as _;
                        // Each stage is boxed and freed when it ends: the task itself stays a
                        // few pointers, and a WebSocket session (which may last for hours)
                        // does not keep the memory of the TLS handshake, the request and the
                        // response futures (6 kB of the 9 kB they took together).
                        let opening = std::panic::AssertUnwindSafe(Box::pin(conn::open(
                            &shared, stream, peer, &permit,
                        )));
                        let what = || format!("serving {peer} (only that connection was dropped)");
                        let session = match opening.catch_unwind().await {
                            Ok(session) => session,
                            Err(payload) => {
                                shared.caught_panic(&what(), payload.as_ref());
                                None
                            }
                        };
                        if let Some(session) = session {
                            let running = std::panic::AssertUnwindSafe(Box::pin(conn::session(
                                &shared, session, peer,
                            )));
                            if let Err(payload) = running.catch_unwind().await {
                                shared.caught_panic(&what(), payload.as_ref());
                            }
                        }
                        drop(permit);
                    })
                    .detach();
            }
            Err(e) => {
                // Typically out of file descriptors: wait instead of spinning.
                log::warn!("accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn timer_task<E: Engine>(shared: Rc<Shared<E>>, kicks: Receiver<()>) {
    loop {
        let deadline = shared.engine.borrow_mut().poll_timeout();
        shared.timer_armed.set(deadline);
        let due = async {
            match deadline {
                Some(deadline) => {
                    Timer::at(deadline).await;
                    true
                }
                None => std::future::pending().await,
            }
        };
        let kicked = async {
            // The sender lives in `shared`, which this task holds: `recv` cannot fail.
            let _ = kicks.recv().await;
            false
        };
        if smol::future::or(due, kicked).await {
            // Housekeeping reads group and token files: refresh them on a blocking thread
            // first, so that the timers below find them in the cache.
            let needs = shared.engine.borrow().files_for_timeout(Instant::now());
            let freshness = if needs.is_empty() {
                None
            } else {
                shared.refresh_files(needs).await
            };
            let run = std::panic::AssertUnwindSafe(|| {
                let _files = shared.files_for_input(freshness);
                shared.with_engine(|engine| engine.handle_timeout(Instant::now()))
            });
            if let Err(payload) = std::panic::catch_unwind(run) {
                shared.caught_panic("running timers", payload.as_ref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, GlobalConfig};
    use crate::core::{GroupLookup, GroupStatus};
    use crate::http::route::GroupSource;
    use std::collections::VecDeque;
    use std::sync::mpsc;

    /// What the fake engine saw, reported to the test thread.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Connect(ConnId),
        Text(ConnId, String),
        Disconnect(ConnId),
        Timeout,
        Shutdown,
    }

    /// Echoes text frames; `flood N` answers with N frames of 64 KiB; `timer` arms a
    /// deadline 50 ms ahead.
    struct FakeEngine {
        next_id: u64,
        outputs: VecDeque<(ConnId, ConnOutput)>,
        open: Vec<ConnId>,
        deadline: Option<Instant>,
        seen: mpsc::Sender<Seen>,
    }

    impl GroupSource for FakeEngine {
        fn group_status(&mut self, _now: Instant, _name: &str) -> GroupLookup {
            GroupLookup::Found(GroupStatus::default())
        }
        fn public_groups(&mut self, _now: Instant) -> Vec<GroupStatus> {
            Vec::new()
        }
        fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
            Ok(Arc::default())
        }
    }

    impl CamusSource for FakeEngine {}
    impl crate::http::whip::WhipSource for FakeEngine {}

    impl Engine for FakeEngine {
        fn connect(&mut self, _now: Instant, _remote: Option<SocketAddr>) -> ConnId {
            self.next_id += 1;
            let id = ConnId(self.next_id);
            self.open.push(id);
            let _ = self.seen.send(Seen::Connect(id));
            id
        }
        fn connect_camus(
            &mut self,
            now: Instant,
            remote: Option<SocketAddr>,
            _admission: crate::camus::Admission,
        ) -> ConnId {
            self.connect(now, remote)
        }
        fn connect_gst(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
            self.connect(now, remote)
        }
        fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
            let _ = self.seen.send(Seen::Text(conn, text.to_owned()));
            if let Some(count) = text.strip_prefix("flood ") {
                let frame = "x".repeat(64 * 1024);
                for _ in 0..count.parse::<usize>().unwrap_or(0) {
                    self.outputs
                        .push_back((conn, ConnOutput::Text(frame.clone())));
                }
            } else if text == "timer" {
                self.deadline = Some(now + Duration::from_millis(50));
            } else if text == "panic" {
                panic!("the fake engine panics on request");
            } else {
                self.outputs
                    .push_back((conn, ConnOutput::Text(text.to_owned())));
            }
        }
        fn handle_binary(&mut self, _now: Instant, _conn: ConnId, _data: &[u8]) {}
        fn handle_disconnect(&mut self, _now: Instant, conn: ConnId) {
            self.open.retain(|c| *c != conn);
            let _ = self.seen.send(Seen::Disconnect(conn));
        }
        fn handle_timeout(&mut self, now: Instant) {
            if self.deadline.is_some_and(|d| d <= now) {
                self.deadline = None;
                let _ = self.seen.send(Seen::Timeout);
            }
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            self.deadline
        }
        fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)> {
            self.outputs.pop_front()
        }
        fn shutdown(&mut self, _now: Instant, message: &str) {
            let _ = self.seen.send(Seen::Shutdown);
            for conn in &self.open {
                self.outputs.push_back((
                    *conn,
                    ConnOutput::Close {
                        code: 1000,
                        reason: message.to_owned(),
                    },
                ));
            }
        }
    }

    struct Running {
        addr: SocketAddr,
        seen: mpsc::Receiver<Seen>,
        stop: Option<smol::channel::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn start() -> Running {
        start_with(Limits::default())
    }

    fn start_with(limits: Limits) -> Running {
        let (seen_sender, seen) = mpsc::channel();
        let (addr_sender, addr_receiver) = mpsc::channel();
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let options = Options {
                http: crate::cli::parse_http_address("127.0.0.1:0").unwrap(),
                insecure: true,
                ..Options::default()
            };
            let engine = FakeEngine {
                next_id: 0,
                outputs: VecDeque::new(),
                open: Vec::new(),
                deadline: None,
                seen: seen_sender,
            };
            let server = Server::bind(&options, engine).unwrap().with_limits(limits);
            addr_sender.send(server.local_addr().unwrap()).unwrap();
            server
                .run_until(async move {
                    let _ = stopped.recv().await;
                })
                .unwrap();
        });
        Running {
            addr: addr_receiver.recv().unwrap(),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    type Client = async_tungstenite::WebSocketStream<Async<std::net::TcpStream>>;

    fn connect(addr: SocketAddr) -> Client {
        smol::block_on(async {
            let tcp = Async::<std::net::TcpStream>::connect(addr).await.unwrap();
            let (socket, _) = async_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
                .await
                .unwrap();
            socket
        })
    }

    fn next_seen(running: &Running) -> Seen {
        running.seen.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn frames_go_both_ways_and_disconnect_is_reported_once() {
        let running = start();
        let mut client = connect(running.addr);
        assert_eq!(next_seen(&running), Seen::Connect(ConnId(1)));
        smol::block_on(client.send(async_tungstenite::tungstenite::Message::text("hi"))).unwrap();
        assert_eq!(next_seen(&running), Seen::Text(ConnId(1), "hi".into()));
        let echo = smol::block_on(client.next()).unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), "hi");
        smol::block_on(client.close(None)).unwrap();
        assert_eq!(next_seen(&running), Seen::Disconnect(ConnId(1)));
        assert!(
            running
                .seen
                .recv_timeout(Duration::from_millis(200))
                .is_err()
        );
    }

    #[test]
    fn timer_task_follows_the_engine_deadline() {
        let running = start();
        let mut client = connect(running.addr);
        next_seen(&running);
        smol::block_on(client.send(async_tungstenite::tungstenite::Message::text("timer")))
            .unwrap();
        assert_eq!(next_seen(&running), Seen::Text(ConnId(1), "timer".into()));
        assert_eq!(next_seen(&running), Seen::Timeout);
    }

    #[test]
    fn a_client_that_does_not_read_is_disconnected() {
        let running = start();
        let mut client = connect(running.addr);
        next_seen(&running);
        // 1000 frames of 64 KiB: more than the socket buffers; writing stalls past
        // `frame_write`.
        smol::block_on(client.send(async_tungstenite::tungstenite::Message::text("flood 1000")))
            .unwrap();
        assert_eq!(
            next_seen(&running),
            Seen::Text(ConnId(1), "flood 1000".into())
        );
        assert_eq!(next_seen(&running), Seen::Disconnect(ConnId(1)));
        drop(client);
    }

    #[test]
    fn a_full_queue_disconnects_at_once() {
        // A write may stall for a minute, but the queue holds 8 frames: the 9th disconnects.
        let running = start_with(Limits {
            queue_frames: 8,
            frame_write: Duration::from_secs(60),
            ..Limits::default()
        });
        let mut client = connect(running.addr);
        next_seen(&running);
        smol::block_on(client.send(async_tungstenite::tungstenite::Message::text("flood 100")))
            .unwrap();
        assert_eq!(
            next_seen(&running),
            Seen::Text(ConnId(1), "flood 100".into())
        );
        assert_eq!(next_seen(&running), Seen::Disconnect(ConnId(1)));
        drop(client);
    }

    #[test]
    fn a_panic_for_one_client_drops_only_that_client() {
        use async_tungstenite::tungstenite::Message;
        let running = start();
        let mut victim = connect(running.addr);
        assert_eq!(next_seen(&running), Seen::Connect(ConnId(1)));
        let mut bystander = connect(running.addr);
        assert_eq!(next_seen(&running), Seen::Connect(ConnId(2)));

        smol::block_on(victim.send(Message::text("panic"))).unwrap();
        assert_eq!(next_seen(&running), Seen::Text(ConnId(1), "panic".into()));
        assert_eq!(next_seen(&running), Seen::Disconnect(ConnId(1)));
        // The victim's socket is closed; it gets no more frames.
        let after = smol::block_on(victim.next());
        assert!(!matches!(after, Some(Ok(Message::Text(_)))), "{after:?}");

        smol::block_on(bystander.send(Message::text("still here"))).unwrap();
        assert_eq!(
            next_seen(&running),
            Seen::Text(ConnId(2), "still here".into())
        );
        let echo = smol::block_on(bystander.next()).unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), "still here");
        // New connections are still accepted.
        let _late = connect(running.addr);
        assert_eq!(next_seen(&running), Seen::Connect(ConnId(3)));
    }

    #[test]
    fn stopping_shuts_the_engine_down_and_closes_clients() {
        let mut running = start();
        let mut client = connect(running.addr);
        next_seen(&running);
        drop(running.stop.take());
        assert_eq!(next_seen(&running), Seen::Shutdown);
        let close = smol::block_on(client.next()).unwrap().unwrap();
        let async_tungstenite::tungstenite::Message::Close(Some(frame)) = close else {
            panic!("expected a close frame, got {close:?}");
        };
        assert_eq!(frame.reason.as_str(), "server is shutting down");
        assert_eq!(next_seen(&running), Seen::Disconnect(ConnId(1)));
    }
}
