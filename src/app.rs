//! The application facade: the one sans-IO object the runtime drives.
//!
//! `App` owns the protocol-neutral core, the media session layer ([`Streams`], which owns
//! the SFU) and every signalling adapter. The runtime (`run/`) feeds it what arrives on
//! sockets and what time it is, and drains what it must send. It never reads the clock and
//! never touches a socket.
//!
//! # Run loop
//!
//! - Signalling: `*_connect`, [`App::handle_text`], [`App::handle_binary`],
//!   [`App::handle_pong`], [`App::handle_disconnect`]; then drain [`App::poll_output`].
//! - Media: datagrams go straight to the engine ([`App::media_engine`] →
//!   `Sfu::handle_receive`, then `Sfu::poll_transmit`); only when `Sfu::has_events` is true
//!   does the runtime call [`App::handle_media_events`], which may produce signalling output.
//! - Time: [`App::handle_timeout`] once [`App::poll_timeout`] has passed.
//! - In-process clients (a recorder, a WHIP publisher, a test) use the media session layer
//!   without a connection: [`App::attach_client`], [`App::join_local`], [`App::with_streams`],
//!   [`App::poll_local_notice`].
//!
//! Every connection of every protocol has at most one deadline, all in one [`Deadlines`]
//! heap, and everything any protocol sends goes to one [`Outbox`]. The facade lends both to
//! the protocol hubs ([`Effects`]); when a connection's deadline passes it calls the
//! `handle_timeout` of that connection's protocol for that connection. A deadline may be
//! early (traffic moved it later since it was set), which costs one early wake-up at most.
//! The core's housekeeping has a deadline of its own next to the heap. Binary WebSocket
//! frames are refused with close code 1003 (unsupported data): Galène clients send only text.
//!
//! Connections of the GStreamer examples' protocol ([`crate::gst`]) get their ids from the
//! same counter and live in a [`Hub`] of their own; there, binary frames are forwarded
//! within a session.
//!
//! Camus connections ([`crate::camus`]) likewise live in a hub of their own; the HTTP layer
//! asks the facade about Camus room pages and upgrades, and the hub reads rooms and ICE
//! servers through the core's configuration directory.
//!
//! WHIP and WHEP sessions ([`crate::whip`]) are in-process clients created by HTTP requests
//! ([`App::whip_create`], [`App::whip_patch`], [`App::whip_delete`]): their stream notices go
//! to the WHIP hub rather than to [`App::poll_local_notice`], their connect deadlines share the
//! one heap, and when the hub says a session ended (DELETE, a failed stream, a kick, the
//! server's shutdown) the facade takes its client out of the group.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::camus;
use crate::config::{ConfigError, Directory, FileNeed, GlobalConfig};
pub use crate::conn::{ConnId, ConnOutput, Outbox};
use crate::conn::{Deadlines, Effects};
use crate::core::{
    Core, Event, JoinFailure, JoinRequest, JoinedKind, RECORDER_USERNAME, ServiceRequest,
    StreamRequest, TrackSelection, WallClock,
};
pub use crate::core::{GroupLookup, GroupStatus};
use crate::galene::Session;
use crate::gst::Hub;
use crate::media::{MediaError, Sfu, SfuConfig, Transmit};
use crate::record::{RecordCommand, RecordOutput, RecordReport, Recorders, RecordingId};
use crate::streams::{StreamNotice, Streams};
use crate::whip::{self, CreateRequest, Created, Kind, Resource, WhipError};

/// How often the core does its housekeeping (idle groups, reloads).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Options fixed at start-up.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// `-relay-only`: tell clients `iceTransportPolicy: "relay"`.
    pub relay_only: bool,
}

/// A Galène connection (its deadline is in [`App`]'s `deadlines`).
#[derive(Debug)]
struct Connection {
    session: Session,
}

/// The sans-IO application.
pub struct App {
    core: Core,
    connections: HashMap<ConnId, Connection>,
    next_conn: u64,
    out: Outbox,
    /// One deadline per connection, every protocol's (handshake, keepalive, delayed reply).
    deadlines: Deadlines<ConnId>,
    /// When the core's housekeeping is due. A field of its own rather than a key in
    /// `deadlines`: the hubs are lent `deadlines` keyed by connection only, so the one timer
    /// that belongs to no connection needs no made-up id they could collide with, and being
    /// periodic and never cancelled it needs no heap.
    maintenance_at: Instant,
    gst: Hub,
    camus: camus::Hub,
    /// Every client's streams and the media engine ([`App::enable_media`]).
    streams: Streams,
    /// Stream notices for in-process clients ([`App::attach_client`]), which have no
    /// connection to render them on.
    local_notices: VecDeque<(ConnId, StreamNotice)>,
    /// The in-process clients.
    local_clients: HashSet<ConnId>,
    /// WHIP and WHEP sessions (in-process clients whose notices go to the hub).
    whip: whip::Hub,
    /// The recorders (in-process clients) and their recordings.
    recorders: Recorders,
    /// Work for the runtime's recording writer.
    record_commands: VecDeque<RecordCommand>,
}

/// What a WHIP or WHEP `PATCH` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhipPatched {
    /// Candidates were added.
    Trickled,
    /// ICE restarted: the resource's new entity tag and the fragment of the answer.
    Restarted {
        /// The new entity tag (quoted).
        etag: String,
        /// Our new ICE credentials and candidates (`application/trickle-ice-sdpfrag`).
        fragment: String,
    },
}

impl App {
    /// Creates the application over a configuration directory. `now` and `wall` are the same
    /// moment on the monotonic and the wall clock; all wall times derive from them.
    pub fn new(
        directory: Box<dyn Directory>,
        options: AppOptions,
        now: Instant,
        wall: SystemTime,
    ) -> App {
        App {
            core: Core::new(directory, options.relay_only, WallClock::new(now, wall)),
            connections: HashMap::new(),
            next_conn: 0,
            out: Outbox::default(),
            deadlines: Deadlines::default(),
            maintenance_at: now + MAINTENANCE_INTERVAL,
            gst: Hub::new(),
            camus: camus::Hub::new(random_key(wall), WallClock::new(now, wall)),
            streams: Streams::new(),
            local_notices: VecDeque::new(),
            local_clients: HashSet::new(),
            whip: whip::Hub::new(),
            recorders: Recorders::new(WallClock::new(now, wall)),
            record_commands: VecDeque::new(),
        }
    }

    /// Starts the media engine: clients may publish and receive from now on. The
    /// configuration names the media socket's addresses (host candidates).
    pub fn enable_media(&mut self, config: SfuConfig) -> Result<(), MediaError> {
        self.streams.enable(config)
    }

    /// The media engine, for the runtime's datagram path: a datagram goes straight to
    /// [`Sfu::handle_receive`] and its transmits straight back from [`Sfu::poll_transmit`];
    /// only when [`Sfu::has_events`] says so does the runtime call
    /// [`App::handle_media_events`]. `None` until [`App::enable_media`].
    pub fn media_engine(&mut self) -> Option<&mut Sfu> {
        self.streams.engine_mut()
    }

    /// The media engine reported events (after datagrams given to [`App::media_engine`]):
    /// the media session layer acts on them, clients hear what concerns them, and the packets
    /// of the recorders' sinks go to the recorders.
    pub fn handle_media_events(&mut self, now: Instant) {
        self.streams.handle_engine_events(now, &mut self.core);
        if let Some(sfu) = self.streams.engine_mut() {
            while let Some(packet) = sfu.poll_sink_packet() {
                self.recorders.handle_packet(packet);
            }
        }
        self.flush(now);
    }

    // ------------------------------------------------------------------ recording

    /// The next piece of work for the recording writer (open a file, write a frame, close
    /// it), in order. Drain after every call, like [`App::poll_output`].
    pub fn poll_record_command(&mut self) -> Option<RecordCommand> {
        self.record_commands.pop_front()
    }

    /// The recording writer reports (a file opened or closed, or writing failed).
    pub fn handle_record_report(&mut self, now: Instant, report: RecordReport) {
        self.recorders.handle_report(report);
        self.flush(now);
    }

    /// The recording writer's queue refused a frame of `recording` (the disk cannot keep
    /// up): that recording stops, its operators are warned.
    pub fn handle_record_overflow(&mut self, now: Instant, recording: RecordingId) {
        self.recorders.handle_overflow(recording);
        self.flush(now);
    }

    /// Whether HTTP Basic credentials may use `group`'s recordings (`/recordings/`).
    pub fn recording_access(
        &mut self,
        now: Instant,
        group: &str,
        username: &str,
        password: &str,
    ) -> crate::core::RecordingAccess {
        let access = self.core.recording_access(now, group, username, password);
        self.flush(now);
        access
    }

    /// The recorders and their recordings (read-only), for tests.
    pub fn recorders(&self) -> &Recorders {
        &self.recorders
    }

    /// A datagram arrived on the media socket (`destination`: the local address it was
    /// sent to): [`App::media_engine`] and [`App::handle_media_events`] in one call.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Some(sfu) = self.streams.engine_mut() else {
            return;
        };
        if let Err(e) = sfu.handle_receive(now, source, destination, data) {
            log::trace!("datagram from {source}: {e}");
        }
        if sfu.has_events() {
            self.handle_media_events(now);
        }
    }

    /// The next datagram to send on the media socket. Call until `None` after every
    /// `handle_*`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.streams.engine_mut()?.poll_transmit()
    }

    /// Every client's streams (read-only), for statistics and tests.
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Test hook: the media session layer acts on `event` as if the engine had reported it.
    #[cfg(test)]
    pub(crate) fn inject_media_event(&mut self, now: Instant, event: crate::media::MediaEvent) {
        self.streams.inject_event(now, &mut self.core, event);
        self.flush(now);
    }

    /// The JSON of `/galene-api/v0/.stats`, in Galène's layout.
    pub fn stats_json(&self) -> String {
        crate::galene::stats::stats_json(&self.streams.stats(&self.core))
    }

    // ------------------------------------------------------------ in-process clients

    /// Registers a client that lives in this process rather than behind a WebSocket (a
    /// recorder, a WHIP publisher, a test). It joins groups with [`App::join_local`], uses
    /// the media session layer through [`App::with_streams`], and reads what it is told
    /// from [`App::poll_local_notice`]. It leaves with [`App::handle_disconnect`]. Like
    /// Galène's non-WebSocket clients it reads no chat (`this user doesn't chat`) and
    /// operators cannot change its permissions (`this is not a real user`).
    pub fn attach_client(&mut self, now: Instant, id: &str) -> ConnId {
        let _ = now;
        self.attach(None, id)
    }

    /// Registers an in-process client that came from `remote` (a WHIP client's address).
    fn attach(&mut self, remote: Option<SocketAddr>, id: &str) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.core.add_client(conn, remote);
        self.core.set_client_id(conn, id.to_owned());
        self.core.mark_local(conn);
        self.local_clients.insert(conn);
        conn
    }

    /// An in-process client joins a group with the same rules as any other client.
    pub fn join_local(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: JoinRequest,
    ) -> Result<(), JoinFailure> {
        let joined = self.core.join(now, conn, request);
        self.flush(now);
        joined
    }

    /// Runs `f` on the media session layer for an in-process client, then delivers what
    /// it produced.
    pub fn with_streams<T>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Streams, &mut Core) -> T,
    ) -> T {
        let result = f(&mut self.streams, &mut self.core);
        self.flush(now);
        result
    }

    /// The next stream notice for an in-process client.
    pub fn poll_local_notice(&mut self) -> Option<(ConnId, StreamNotice)> {
        self.local_notices.pop_front()
    }

    // ------------------------------------------------------------ WHIP and WHEP

    /// A WHIP or WHEP session is asked for (`POST` with an offer; see [`crate::whip`]). Its
    /// client is attached like any in-process client and joins the group; the answer comes
    /// back, or why not.
    pub fn whip_create(
        &mut self,
        now: Instant,
        request: CreateRequest<'_>,
        remote: Option<SocketAddr>,
    ) -> Result<Created, WhipError> {
        let conn = self.attach(remote, &whip::Hub::new_client_id());
        let started = self.whip.create(
            now,
            conn,
            request,
            &mut self.core,
            &mut self.streams,
            &mut self.deadlines,
        );
        self.flush(now);
        let created = match started {
            Ok(()) => self.whip.outcome(conn),
            Err(e) => {
                self.remove_local(now, conn);
                Err(e)
            }
        };
        self.flush(now);
        created
    }

    /// The WHIP (or WHEP) session at `resource` in `group`, if there is one.
    pub fn whip_resource(&self, kind: Kind, group: &str, resource: &str) -> Option<Resource> {
        self.whip.resource(kind, group, resource)
    }

    /// A `PATCH` on a session (found with [`App::whip_resource`]) with a trickle ICE fragment.
    pub fn whip_patch(
        &mut self,
        now: Instant,
        conn: ConnId,
        fragment: &str,
    ) -> Result<WhipPatched, WhipError> {
        let patched = self.whip.patch(
            now,
            conn,
            fragment,
            &mut self.core,
            &mut self.streams,
            &mut self.deadlines,
        );
        self.flush(now);
        let result = match patched {
            Ok(whip::Patched::Trickled) => Ok(WhipPatched::Trickled),
            Ok(whip::Patched::Restarting) => {
                self.whip
                    .outcome(conn)
                    .map(|created| WhipPatched::Restarted {
                        etag: created.etag,
                        fragment: whip::sdpfrag::answer_fragment(&created.answer),
                    })
            }
            Err(e) => Err(e),
        };
        self.flush(now);
        result
    }

    /// A `DELETE` on a session: it ends and its client leaves the group.
    pub fn whip_delete(&mut self, now: Instant, conn: ConnId) {
        self.whip.delete(conn);
        self.flush(now);
    }

    /// The WHIP and WHEP sessions (read-only), for statistics and tests.
    pub fn whip(&self) -> &whip::Hub {
        &self.whip
    }

    /// The ICE servers clients are given (WHIP's `Link` headers).
    pub fn ice_servers(&mut self, now: Instant) -> Vec<crate::config::IceServer> {
        let wall = self.core.wall(now);
        self.core.directory().ice_servers(wall)
    }

    /// Takes an in-process client out: its streams end and it leaves its group.
    fn remove_local(&mut self, now: Instant, conn: ConnId) {
        self.deadlines.cancel(conn);
        self.local_clients.remove(&conn);
        self.streams.remove_client(now, &mut self.core, conn, false);
        self.core.remove_client(now, conn);
    }

    /// Registers a new Galène WebSocket connection (after the upgrade).
    pub fn galene_connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.core.add_client(conn, remote);
        self.connections.insert(
            conn,
            Connection {
                session: Session::new(conn, now),
            },
        );
        self.reschedule(now, conn);
        conn
    }

    /// Registers a new connection of the GStreamer examples' protocol (after the upgrade).
    pub fn gst_connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        log::debug!("{conn:?}: GStreamer signalling connection from {remote:?}");
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        self.gst.handle_connect(now, conn, &mut fx);
        conn
    }

    /// Registers a new Camus connection (after an upgrade [`App::camus_admit`] allowed).
    pub fn camus_connect(
        &mut self,
        now: Instant,
        remote: Option<SocketAddr>,
        admission: camus::Admission,
    ) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        log::debug!("{conn:?}: Camus connection from {remote:?}");
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        self.camus.handle_connect(now, conn, admission, &mut fx);
        conn
    }

    /// What a Camus room page request gets (see [`camus::Hub::page`]).
    pub fn camus_page(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
        password: Option<&str>,
    ) -> camus::Page {
        self.camus.page(
            now,
            slug,
            passes.iter().copied(),
            password,
            self.core.directory(),
        )
    }

    /// Decides a Camus WebSocket upgrade (see [`camus::Hub::admit`]).
    pub fn camus_admit(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
    ) -> Result<camus::Admission, camus::Refusal> {
        self.camus
            .admit(now, slug, passes.iter().copied(), self.core.directory())
    }

    /// The public Camus rooms.
    pub fn camus_public_rooms(&mut self) -> Result<Vec<camus::PublicRoom>, ConfigError> {
        self.camus.public_rooms(self.core.directory())
    }

    /// A text frame arrived on a connection.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.session.handle_text(
                now,
                text,
                &mut self.core,
                &mut self.streams,
                &mut self.out,
            );
        } else {
            let mut fx = Effects {
                out: &mut self.out,
                deadlines: &mut self.deadlines,
            };
            if self.camus.contains(conn) {
                self.camus
                    .handle_text(now, conn, text, self.core.directory(), &mut fx);
            } else {
                self.gst.handle_text(now, conn, text, &mut fx);
            }
        }
        self.reschedule(now, conn);
        self.flush(now);
    }

    /// A binary frame arrived on a connection: Galène speaks text only, so the connection is
    /// closed with 1003 (unsupported data); the GStreamer protocol forwards it in a session.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection
                .session
                .close(1003, "binary messages are not supported", &mut self.out);
        } else if self.camus.contains(conn) {
            self.camus.handle_binary(now, conn, data.len());
        } else {
            let mut fx = Effects {
                out: &mut self.out,
                deadlines: &mut self.deadlines,
            };
            self.gst.handle_binary(now, conn, data, &mut fx);
        }
        self.flush(now);
    }

    /// A pong arrived on a connection (GStreamer protocol keepalive; Galène uses text pings).
    pub fn handle_pong(&mut self, now: Instant, conn: ConnId) {
        self.gst.handle_pong(now, conn);
    }

    /// The connection is gone (closed by the peer, an I/O error, or after our own `Close`).
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        self.gst.handle_disconnect(now, conn, &mut fx);
        self.camus.handle_disconnect(now, conn, &mut fx);
        self.deadlines.cancel(conn);
        self.connections.remove(&conn);
        self.local_clients.remove(&conn);
        self.streams.remove_client(now, &mut self.core, conn, false);
        self.core.remove_client(now, conn);
        self.flush(now);
    }

    /// Time passed; run whatever timers are due: the media engine's, then the core's
    /// housekeeping and every connection whose deadline has passed, earliest first (the
    /// housekeeping first on a tie), each dispatched to its own protocol.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.streams.handle_timeout(now, &mut self.core);
        self.flush(now);
        loop {
            let conn_due = self.deadlines.earliest().filter(|at| *at <= now);
            // On a tie the housekeeping goes first, as when it shared a heap with sessions.
            if self.maintenance_at <= now && conn_due.is_none_or(|at| self.maintenance_at <= at) {
                self.core.maintenance(now);
                self.maintenance_at = now + MAINTENANCE_INTERVAL;
            } else if let Some(conn) = self.deadlines.pop_due(now) {
                self.connection_timeout(now, conn);
            } else {
                break;
            }
            self.flush(now);
        }
    }

    /// The files the timers due at `now` will read: the runtime refreshes them off the
    /// executor thread first. Only the core's housekeeping reads files (every group in
    /// memory and the tokens file); connection timers read none.
    pub fn files_for_timeout(&self, now: Instant) -> Vec<FileNeed> {
        if self.maintenance_at > now {
            return Vec::new();
        }
        let mut needs = vec![FileNeed::Tokens];
        needs.extend(self.core.group_names().into_iter().map(FileNeed::Group));
        needs
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let own = match self.deadlines.earliest() {
            Some(conn) => conn.min(self.maintenance_at),
            None => self.maintenance_at,
        };
        Some(match self.streams.poll_timeout() {
            Some(media) => own.min(media),
            None => own,
        })
    }

    /// The next thing to send. Call until `None` after every `handle_*`.
    pub fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)> {
        self.out.pop()
    }

    /// Looks a group up for the HTTP layer (page, `.status`).
    pub fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup {
        let lookup = self.core.group_status(now, name);
        self.flush(now);
        lookup
    }

    /// Status of every public group, sorted by name.
    pub fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus> {
        let groups = self.core.public_groups(now);
        self.flush(now);
        groups
    }

    /// The global configuration.
    pub fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        self.core.global_config()
    }

    /// Server shutdown: lock every group with `message` and kick every client with it.
    pub fn shutdown(&mut self, now: Instant, message: &str) {
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        self.gst.shutdown(now, &mut fx);
        self.camus.shutdown(message, &mut fx);
        self.core.shutdown(now, message);
        self.flush(now);
    }

    /// The protocol-neutral core (read-only), for statistics and tests.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The GStreamer signalling hub (read-only), for statistics and tests.
    pub fn gst(&self) -> &Hub {
        &self.gst
    }

    /// The Camus hub (read-only), for statistics and tests.
    pub fn camus(&self) -> &camus::Hub {
        &self.camus
    }

    /// `conn`'s deadline has passed (it was taken out of `deadlines`): runs the timers of
    /// that connection in its own protocol.
    fn connection_timeout(&mut self, now: Instant, conn: ConnId) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.session.handle_timeout(
                now,
                &mut self.core,
                &mut self.streams,
                &mut self.out,
            );
            self.reschedule(now, conn);
            return;
        }
        if self.whip.contains(conn) {
            self.whip.handle_timeout(conn, &self.streams);
            return;
        }
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        if self.camus.contains(conn) {
            self.camus.handle_timeout(now, conn, &mut fx);
        } else {
            self.gst.handle_timeout(now, conn, &mut fx);
        }
    }

    /// Sets a Galène connection's deadline if it is earlier than the one it has (a later
    /// deadline is found when the earlier one passes), or clears it once the session has
    /// none. The hubs keep their connections' deadlines themselves.
    fn reschedule(&mut self, now: Instant, conn: ConnId) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let Some(deadline) = connection.session.next_deadline() else {
            self.deadlines.cancel(conn);
            return;
        };
        // A deadline in the past would spin; the session has just run its timers.
        let deadline = deadline.max(now + Duration::from_millis(1));
        self.deadlines.schedule_earlier(conn, deadline);
    }

    /// Renders every pending core event, runs what the core asked for (recorders), hands
    /// stream notices to their clients and the recorders' work to whom it concerns, and takes
    /// closed connections out of the core (which may produce more of all that), until nothing
    /// is left.
    fn flush(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some((to, event)) = self.core.poll_event() {
                progress = true;
                if let Some(connection) = self.connections.get_mut(&to) {
                    connection.session.render(&event, &mut self.out);
                }
                // Leaving a group, losing `present` or being kicked ends streams.
                match &event {
                    Event::Joined(joined) if joined.kind == JoinedKind::Leave => {
                        self.streams.remove_client(now, &mut self.core, to, true);
                        self.whip.client_left(to);
                    }
                    Event::Joined(joined) if joined.kind == JoinedKind::Change => {
                        self.streams.permissions_changed(now, &mut self.core, to);
                    }
                    Event::Kicked { .. } if self.recorders.is_recorder(to) => {
                        // A kicked recorder (shutdown, autokick, an operator) is gone.
                        self.remove_recorder(now, to);
                    }
                    Event::Kicked { .. } => {
                        self.streams.remove_client(now, &mut self.core, to, false);
                        self.whip.client_left(to);
                    }
                    _ => {}
                }
                self.render_stream_notices(now);
            }
            self.render_stream_notices(now);
            while let Some(request) = self.core.poll_request() {
                progress = true;
                match request {
                    ServiceRequest::StartRecording { group } => self.start_recorder(now, &group),
                    ServiceRequest::StopRecording { group } => {
                        for recorder in self.recorders.recorders_of(&group) {
                            self.remove_recorder(now, recorder);
                        }
                    }
                }
            }
            while let Some(output) = self.recorders.poll_output() {
                progress = true;
                self.recorder_output(now, output);
            }
            let closed = self.out.take_closed();
            let ended = self.whip.take_ended();
            for conn in &closed {
                self.deadlines.cancel(*conn);
                self.streams
                    .remove_client(now, &mut self.core, *conn, false);
                self.core.remove_client(now, *conn);
            }
            if !progress && closed.is_empty() && ended.is_empty() {
                break;
            }
            for conn in ended {
                self.remove_local(now, conn);
            }
        }
    }

    /// A recorder joins `group` (the core checked that it may, and that none is there):
    /// an in-process client named `RECORDING` with the permission `system`, receiving every
    /// stream of the group through local sinks.
    fn start_recorder(&mut self, now: Instant, group: &str) {
        let id = random_client_id();
        let conn = self.attach_client(now, &id);
        if let Err(e) = self.core.join_system(now, conn, group, RECORDER_USERNAME) {
            log::warn!("Recorder for {group:?}: {}", e.text());
            self.local_clients.remove(&conn);
            self.core.remove_client(now, conn);
            return;
        }
        log::info!("Recording group {group:?}");
        self.recorders.start(conn, group);
        self.streams.receive_locally(conn);
        let everything = StreamRequest::ByStreamLabel(
            [(
                String::new(),
                TrackSelection {
                    audio: true,
                    video: true,
                    video_low: false,
                },
            )]
            .into_iter()
            .collect(),
        );
        if self.core.set_request(conn, everything).is_ok() {
            self.streams.request_changed(now, &mut self.core, conn);
        }
    }

    /// A recorder leaves: its recordings are finished, its sinks closed, and the group sees
    /// it go.
    fn remove_recorder(&mut self, now: Instant, conn: ConnId) {
        self.recorders.remove(now, conn);
        self.streams.remove_client(now, &mut self.core, conn, false);
        self.core.remove_client(now, conn);
        self.local_clients.remove(&conn);
    }

    /// Does what a recorder needs done.
    fn recorder_output(&mut self, now: Instant, output: RecordOutput) {
        match output {
            RecordOutput::Command(command) => self.record_commands.push_back(command),
            RecordOutput::Keyframe(sink) => {
                if let Some(sfu) = self.streams.engine_mut() {
                    sfu.request_sink_keyframe(now, sink);
                }
            }
            RecordOutput::WallOps { group, text } => self.core.wall_ops(&group, &text),
            RecordOutput::StopReceiving { recorder, id } => {
                self.streams
                    .stop_receiving(now, &mut self.core, recorder, &id);
            }
        }
    }

    /// Renders what the media session layer has for clients through their sessions, hands
    /// the recorders theirs, and queues the rest for in-process clients.
    fn render_stream_notices(&mut self, now: Instant) {
        while let Some((to, notice)) = self.streams.poll_notice() {
            if let Some(connection) = self.connections.get_mut(&to) {
                connection.session.render_stream(&notice, &mut self.out);
            } else if self.whip.contains(to) {
                self.whip.handle_notice(to, notice);
            } else if self.recorders.is_recorder(to) {
                self.recorders.handle_notice(now, to, notice);
            } else if self.local_clients.contains(&to) {
                self.local_notices.push_back((to, notice));
            }
        }
    }
}

/// A client id for a recorder: 32 hexadecimal digits, as Galène's, from the system's random
/// source (a counter-derived id should that fail: ids only need to be unique).
fn random_client_id() -> String {
    use ring::rand::SecureRandom as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let n = FALLBACK.fetch_add(1, Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh secret for the Camus hub (client ids, room passes) from the system's random
/// source. Should that ever fail, the key is derived from the start time instead, with an
/// error in the log: ids stay unique, but passes become guessable.
fn random_key(wall: SystemTime) -> [u8; 32] {
    use ring::rand::SecureRandom as _;
    let mut key = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut key).is_err() {
        log::error!("no system randomness: Camus room passes are weak until restart");
        let nanos = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let digest = ring::digest::digest(&ring::digest::SHA256, &nanos.to_le_bytes());
        // A SHA-256 digest is exactly 32 bytes.
        key.copy_from_slice(digest.as_ref());
    }
    key
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::config::MemoryDirectory;
    use crate::config::camus::parse_camus_rooms;

    fn drain(app: &mut App) -> Vec<(ConnId, ConnOutput)> {
        std::iter::from_fn(|| app.poll_output()).collect()
    }

    /// Runs every timer up to `t`, at its exact time.
    fn advance_to(app: &mut App, t: Instant) {
        while let Some(due) = app.poll_timeout().filter(|due| *due <= t) {
            app.handle_timeout(due);
        }
    }

    #[test]
    fn housekeeping_names_the_files_it_will_read_before_it_runs() {
        let t0 = Instant::now();
        let mut dir = MemoryDirectory::new();
        dir.set_group_json("g", r#"{"wildcard-user": {"password": "pw"}}"#)
            .expect("valid group");
        let mut app = App::new(Box::new(dir), AppOptions::default(), t0, UNIX_EPOCH);
        // A group in memory (its status was looked at).
        assert!(matches!(app.group_status(t0, "g"), GroupLookup::Found(_)));
        assert_eq!(app.files_for_timeout(t0), []);
        let due = t0 + MAINTENANCE_INTERVAL;
        assert_eq!(
            app.files_for_timeout(due),
            [FileNeed::Tokens, FileNeed::Group("g".into())]
        );
        app.handle_timeout(due);
        assert_eq!(app.files_for_timeout(due), []);
    }

    #[test]
    fn one_heap_dispatches_every_protocols_deadlines() {
        let t0 = Instant::now();
        let mut dir = MemoryDirectory::new();
        let rooms = parse_camus_rooms(r#"{"rooms": [{"name": "Lobby"}]}"#);
        dir.set_camus_rooms(rooms.expect("valid rooms").resolve(false));
        let mut app = App::new(Box::new(dir), AppOptions::default(), t0, UNIX_EPOCH);
        let galene = app.galene_connect(t0, None);
        let gst = app.gst_connect(t0, None);
        let admission = app.camus_admit(t0, "lobby", &[]).expect("open room");
        let camus = app.camus_connect(t0, None, admission);
        assert_eq!(drain(&mut app).len(), 1); // the Camus greeting
        let secs = |s| t0 + Duration::from_secs(s);

        // Galène's handshake timeout comes first.
        assert_eq!(app.poll_timeout(), Some(secs(15)));
        advance_to(&mut app, secs(15));
        let close = |code, reason: &str| ConnOutput::Close {
            code,
            reason: reason.to_owned(),
        };
        assert_eq!(
            drain(&mut app),
            [(galene, close(1002, "you must handshake first"))]
        );

        // At 30 s, the GStreamer registration timeout and the Camus keepalive ping.
        assert_eq!(app.poll_timeout(), Some(secs(30)));
        advance_to(&mut app, secs(30));
        let out = drain(&mut app);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], (gst, close(1002, "registration timeout")));
        let camus_ping = |(conn, output): &(ConnId, ConnOutput)| {
            *conn == camus
                && matches!(output, ConnOutput::Text(text) if text.contains(r#""type":"ping""#))
        };
        assert!(camus_ping(&out[1]), "{out:?}");

        // 30 s later the silent Camus client is removed; then only housekeeping is left.
        assert_eq!(app.poll_timeout(), Some(secs(60)));
        advance_to(&mut app, secs(60));
        let out = drain(&mut app);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1], (camus, close(1000, "keepalive timeout")));
        assert_eq!(app.poll_timeout(), Some(t0 + MAINTENANCE_INTERVAL));
    }
}
