//! The sans-IO hub of the Camus protocol: every Camus connection, the rooms they are in,
//! what ground control answers, relaying, keepalive and limits.
//!
//! # Driving it
//!
//! - Before a WebSocket upgrade, [`Hub::admit`] decides (room exists, pass for a password
//!   room, guest limit). The [`Admission`] it returns goes to [`Hub::handle_connect`] once
//!   the upgrade is done. Room pages ask [`Hub::page`].
//! - Frames go to [`Hub::handle_text`] / [`Hub::handle_binary`], a closed socket to
//!   [`Hub::handle_disconnect`]. When a connection's deadline has passed, the caller takes
//!   it out of the deadlines and calls [`Hub::handle_timeout`] for that connection.
//! - Calls that may send or change a deadline are lent an [`Effects`]: the hub queues what
//!   must be sent in its [`Outbox`] and keeps each of its connections' deadline in its
//!   shared [`Deadlines`]. The hub owns no socket, no queue and no timer heap.
//! - Every call carries `now`; wall-clock times (ping data, TURN credentials, pass expiry)
//!   derive from the [`WallClock`] anchor. The hub never reads a clock.
//!
//! State is keyed by connection. When the hub closes a connection itself (after `bye`,
//! after a keepalive timeout) it forgets it at once, deadline included, so a late
//! `handle_disconnect` is a no-op.
//!
//! # Timers
//!
//! One deadline per connection in the shared [`Deadlines`]: the keepalive ping after
//! [`CAMUS_PING_AFTER`] of silence, the removal [`CAMUS_REAP_AFTER_PING`] after it. A
//! message from a client moves its deadline later without touching the heap; the early
//! wake-up finds the real deadline and sets that instead. So the per-message path never
//! touches the heap.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::limit::{Limiter, Refusal as LimitRefusal};
use super::msg::{self, ClientInfo, GROUND_CONTROL, Incoming, ROOM};
use super::pass::Secrets;
use crate::config::{CamusRoom, Directory};
use crate::conn::{CAMUS_PING_AFTER, CAMUS_REAP_AFTER_PING, ConnId, Deadlines, Effects, Outbox};
use crate::core::WallClock;

/// The most clients in one room, whatever the guest limit says (a full mesh of browsers
/// does not go much further anyway).
pub const MAX_ROOM_MEMBERS: usize = 100;
/// Usernames are cut to this many characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Close code when the hub ends a connection itself (after `bye`, a keepalive timeout).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code on server shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a connection refused after the upgrade (the room filled up meanwhile).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Why a page or a WebSocket is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such room (and no creation on first use).
    NotFound,
    /// `camus-rooms.json` is invalid; the text says why.
    Invalid(String),
    /// The room is at its guest limit.
    Full,
    /// A password room, and no valid pass came with the request.
    PasswordRequired,
}

impl Refusal {
    /// The HTTP status for a refused WebSocket upgrade.
    pub fn upgrade_status(&self) -> u16 {
        match self {
            Refusal::NotFound => 404,
            Refusal::Invalid(_) => 500,
            Refusal::Full | Refusal::PasswordRequired => 403,
        }
    }

    /// The HTTP status for a refused room page.
    pub fn page_status(&self) -> u16 {
        match self {
            Refusal::NotFound => 404,
            Refusal::Invalid(_) => 500,
            Refusal::Full => 418,
            Refusal::PasswordRequired => 401,
        }
    }

    /// A short text for the response body.
    pub fn text(&self) -> &'static str {
        match self {
            Refusal::NotFound => "Room not found",
            Refusal::Invalid(_) => "Internal server error",
            Refusal::Full => "Guest limit already reached",
            Refusal::PasswordRequired => "Forbidden",
        }
    }
}

/// Permission for one WebSocket to join a room, from [`Hub::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    room: CamusRoom,
}

impl Admission {
    /// The room to join.
    pub fn room(&self) -> &CamusRoom {
        &self.room
    }
}

/// What a room page request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Serve the Camus client.
    Client {
        /// The room.
        room: CamusRoom,
        /// A new pass to set as cookie (after a correct password).
        new_pass: Option<String>,
    },
    /// Ask for the room's password.
    PasswordForm {
        /// The room.
        room: CamusRoom,
        /// Whether a wrong password was just posted (then the status is 401).
        wrong: bool,
    },
    /// Refuse with [`Refusal::page_status`].
    Refused(Refusal),
}

/// A public room as `/public` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRoom {
    /// Display name.
    pub name: String,
    /// URL element.
    pub slug: String,
    /// Clients connected now.
    pub clients: usize,
    /// The guest limit (0 for none).
    pub guest_limit: usize,
}

/// One connection in a room.
#[derive(Debug)]
struct Member {
    /// The client id (32 hex digits).
    id: String,
    /// The room's slug.
    room: String,
    username: String,
    /// When the last frame (of any kind) arrived.
    last_heard: Instant,
    /// When the unanswered keepalive ping went out.
    pinged_at: Option<Instant>,
    limiter: Limiter,
    /// Whether the last message was refused by the rate limit (one `error` per streak).
    throttled: bool,
}

impl Member {
    fn deadline(&self) -> Instant {
        match self.pinged_at {
            Some(pinged_at) => pinged_at + CAMUS_REAP_AFTER_PING,
            None => self.last_heard + CAMUS_PING_AFTER,
        }
    }
}

/// How a member leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// The socket is gone: nothing to send to it.
    Disconnected,
    /// Tell it `bye`, then close with this reason.
    Farewell(&'static str),
}

/// The Camus hub. See the module documentation.
#[derive(Debug)]
pub struct Hub {
    members: HashMap<ConnId, Member>,
    /// Client id → connection.
    by_id: HashMap<String, ConnId>,
    /// Non-empty rooms, by slug, with their members in joining order.
    rooms: HashMap<String, Vec<ConnId>>,
    secrets: Secrets,
    wall: WallClock,
}

impl Hub {
    /// An empty hub. `key` is the secret behind client ids and room passes (random in
    /// production); `wall` anchors wall-clock time.
    pub fn new(key: [u8; 32], wall: WallClock) -> Hub {
        Hub {
            members: HashMap::new(),
            by_id: HashMap::new(),
            rooms: HashMap::new(),
            secrets: Secrets::new(key),
            wall,
        }
    }

    /// Whether the hub has this connection (it forgets connections it closed).
    pub fn contains(&self, conn: ConnId) -> bool {
        self.members.contains_key(&conn)
    }

    /// The client id of a connection.
    pub fn client_id(&self, conn: ConnId) -> Option<&str> {
        self.members.get(&conn).map(|m| m.id.as_str())
    }

    /// Number of connections.
    pub fn connection_count(&self) -> usize {
        self.members.len()
    }

    /// Number of clients connected to the room `slug`.
    pub fn room_size(&self, slug: &str) -> usize {
        self.rooms.get(slug).map_or(0, Vec::len)
    }

    /// What a room page request gets. `passes` are the pass cookies sent with the request;
    /// `password` the password posted with the form, if any.
    pub fn page<'a>(
        &self,
        now: Instant,
        slug: &str,
        mut passes: impl Iterator<Item = &'a str>,
        password: Option<&str>,
        directory: &mut dyn Directory,
    ) -> Page {
        let room = match lookup(slug, directory) {
            Ok(room) => room,
            Err(refusal) => return Page::Refused(refusal),
        };
        if self.is_full(&room) {
            return Page::Refused(Refusal::Full);
        }
        let Some(stored) = &room.password else {
            return Page::Client {
                room,
                new_pass: None,
            };
        };
        let wall = self.wall.at(now);
        match password {
            Some(given) if stored.matches(given) => {
                log::info!("camus: correct password for room {:?}", room.slug);
                let new_pass = Some(self.secrets.issue_pass(&room, wall));
                Page::Client { room, new_pass }
            }
            Some(_) => {
                log::info!("camus: wrong password for room {:?}", room.slug);
                Page::PasswordForm { room, wrong: true }
            }
            None if passes.any(|pass| self.secrets.check_pass(&room, pass, wall)) => Page::Client {
                room,
                new_pass: None,
            },
            None => Page::PasswordForm { room, wrong: false },
        }
    }

    /// Decides a WebSocket upgrade for the room `slug`: the room must exist, a password room
    /// needs a valid pass among `passes`, and the room must not be full.
    pub fn admit<'a>(
        &self,
        now: Instant,
        slug: &str,
        mut passes: impl Iterator<Item = &'a str>,
        directory: &mut dyn Directory,
    ) -> Result<Admission, Refusal> {
        let room = lookup(slug, directory)?;
        if room.password.is_some() {
            let wall = self.wall.at(now);
            if !passes.any(|pass| self.secrets.check_pass(&room, pass, wall)) {
                return Err(Refusal::PasswordRequired);
            }
        }
        if self.is_full(&room) {
            return Err(Refusal::Full);
        }
        Ok(Admission { room })
    }

    /// A WebSocket admitted by [`Hub::admit`] is open; `conn` must be new. The client gets
    /// its id and the greeting; the others learn of it from its `profile` (as in Camus). If
    /// the room filled up since the admission, the connection is closed with 1013. Its
    /// keepalive deadline is set.
    pub fn handle_connect(
        &mut self,
        now: Instant,
        conn: ConnId,
        admission: Admission,
        fx: &mut Effects<'_>,
    ) {
        let room = admission.room;
        if self.is_full(&room) {
            log::info!("camus {conn:?}: room {:?} filled up meanwhile", room.slug);
            fx.out
                .close(conn, CLOSE_TRY_AGAIN_LATER, Refusal::Full.text());
            return;
        }
        let id = self.secrets.next_client_id();
        log::info!("camus {conn:?}: client {id} joined room {:?}", room.slug);
        fx.out.text(
            conn,
            msg::from_ground_control_text(&id, "greeting", msg::GREETING),
        );
        self.by_id.insert(id.clone(), conn);
        self.rooms.entry(room.slug.clone()).or_default().push(conn);
        self.members.insert(
            conn,
            Member {
                id,
                room: room.slug,
                username: msg::DEFAULT_USERNAME.to_owned(),
                last_heard: now,
                pinged_at: None,
                limiter: Limiter::new(now),
                throttled: false,
            },
        );
        self.reschedule(conn, fx.deadlines);
    }

    /// A text frame arrived. Malformed frames (not one JSON object, no string receiver)
    /// are dropped without reply; they still count as a sign of life (the deadline moves
    /// later, so it is left for the next wake-up to find).
    pub fn handle_text(
        &mut self,
        now: Instant,
        conn: ConnId,
        text: &str,
        directory: &mut dyn Directory,
        fx: &mut Effects<'_>,
    ) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        member.last_heard = now;
        member.pinged_at = None;
        match member.limiter.check(now, text.len()) {
            Ok(()) => member.throttled = false,
            Err(LimitRefusal::TooLarge) => {
                log::debug!("camus {conn:?}: {} bytes, too large, dropped", text.len());
                let reply = msg::from_ground_control_text(&member.id, "error", "Message too large");
                fx.out.text(conn, reply);
                return;
            }
            Err(LimitRefusal::RateLimited) => {
                if !member.throttled {
                    log::info!("camus {conn:?}: rate limit reached, dropping messages");
                    member.throttled = true;
                    let reply =
                        msg::from_ground_control_text(&member.id, "error", "Rate limit exceeded");
                    fx.out.text(conn, reply);
                }
                return;
            }
        }
        let Some(incoming) = Incoming::parse(text) else {
            log::debug!("camus {conn:?}: not a JSON object, dropped");
            return;
        };
        let Some(receiver) = incoming.receiver() else {
            log::debug!("camus {conn:?}: no string receiver, dropped");
            return;
        };
        match receiver.as_ref() {
            GROUND_CONTROL => self.ground_control(now, conn, &incoming, directory, fx),
            ROOM => self.broadcast(conn, &incoming, fx.out),
            id => self.relay(conn, id, &incoming, fx.out),
        }
    }

    /// A binary frame arrived: Camus speaks text only, so it is dropped (the original
    /// ignores it too); it still counts as a sign of life.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, len: usize) {
        if let Some(member) = self.members.get_mut(&conn) {
            log::debug!("camus {conn:?}: binary frame of {len} bytes dropped");
            member.last_heard = now;
            member.pinged_at = None;
        }
    }

    /// The socket is gone: the client leaves its room at once and the rest of the room gets
    /// `room-info` (the original only noticed a minute later).
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId, fx: &mut Effects<'_>) {
        self.remove(now, conn, Leaving::Disconnected, fx);
    }

    /// `conn`'s deadline has passed (the caller took it out of the deadlines): a ping after
    /// [`CAMUS_PING_AFTER`] of silence, removal [`CAMUS_REAP_AFTER_PING`] after an
    /// unanswered ping. An early wake-up (traffic moved the deadline later) only sets the
    /// real deadline; an unknown connection is ignored.
    pub fn handle_timeout(&mut self, now: Instant, conn: ConnId, fx: &mut Effects<'_>) {
        let epoch_ms = self.epoch_ms(now);
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        if member.deadline() > now {
            self.reschedule(conn, fx.deadlines);
        } else if member.pinged_at.is_none() {
            log::debug!("camus {conn:?}: silent for {CAMUS_PING_AFTER:?}, pinging");
            member.pinged_at = Some(now);
            let ping = msg::from_ground_control_int(&member.id, "ping", epoch_ms);
            fx.out.text(conn, ping);
            self.reschedule(conn, fx.deadlines);
        } else {
            log::info!("camus {conn:?}: no answer to the keepalive ping, removing");
            self.remove(now, conn, Leaving::Farewell("keepalive timeout"), fx);
        }
    }

    /// The configured public rooms, in file order, with their occupancy.
    pub fn public_rooms(
        &self,
        directory: &mut dyn Directory,
    ) -> Result<Vec<PublicRoom>, crate::config::ConfigError> {
        let rooms = directory.camus_rooms()?;
        Ok(rooms
            .rooms
            .iter()
            .filter(|room| room.public)
            .map(|room| PublicRoom {
                name: room.name.clone(),
                slug: room.slug.clone(),
                clients: self.room_size(&room.slug),
                guest_limit: room.guest_limit,
            })
            .collect())
    }

    /// Server shutdown: every connection is closed with 1001 and `message`, and forgotten,
    /// deadlines included.
    pub fn shutdown(&mut self, message: &str, fx: &mut Effects<'_>) {
        let mut conns: Vec<ConnId> = self.members.keys().copied().collect();
        conns.sort();
        for conn in conns {
            fx.out.close(conn, CLOSE_GOING_AWAY, message);
            fx.deadlines.cancel(conn);
        }
        self.members.clear();
        self.by_id.clear();
        self.rooms.clear();
    }

    fn is_full(&self, room: &CamusRoom) -> bool {
        let limit = match room.guest_limit {
            0 => MAX_ROOM_MEMBERS,
            limit => limit.min(MAX_ROOM_MEMBERS),
        };
        self.room_size(&room.slug) >= limit
    }

    fn epoch_ms(&self, now: Instant) -> u64 {
        let wall: SystemTime = self.wall.at(now);
        wall.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Messages to ground control.
    fn ground_control(
        &mut self,
        now: Instant,
        conn: ConnId,
        incoming: &Incoming<'_>,
        directory: &mut dyn Directory,
        fx: &mut Effects<'_>,
    ) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        let kind = incoming.kind();
        log::debug!(
            "camus {conn:?}: {} to ground control",
            incoming.kind_for_error()
        );
        let reply = match kind.as_deref() {
            Some("ping") => msg::from_ground_control_raw(&member.id, "pong", incoming.data()),
            Some("pong") | Some("greeting") => return,
            Some("get-room-info") => {
                let room = member.room.clone();
                let data = self.room_info(&room);
                let Some(member) = self.members.get(&conn) else {
                    return;
                };
                msg::from_ground_control_raw(&member.id, "room-info", Some(&data))
            }
            Some("get-ice-servers") => {
                let servers = directory.ice_servers(self.wall.at(now));
                let data = msg::ice_servers_data(&servers);
                msg::from_ground_control_raw(&member.id, "ice-servers", Some(&data))
            }
            Some("profile") => {
                // Camus answers nothing when `data` is not an object.
                let Some(username) = incoming.profile_username() else {
                    return;
                };
                if let Some(username) = username {
                    member.username = username.chars().take(MAX_USERNAME_CHARS).collect();
                }
                let room = member.room.clone();
                self.broadcast_room_info(&room, fx.out);
                return;
            }
            Some("bye") => {
                self.remove(now, conn, Leaving::Farewell("bye"), fx);
                return;
            }
            _ => msg::from_ground_control_text(
                &member.id,
                "error",
                &msg::unknown_type(&incoming.kind_for_error()),
            ),
        };
        fx.out.text(conn, reply);
    }

    /// A message to `room`: to every member of the sender's room, the sender included,
    /// with `receiver` left as `room` (Camus 0.2.3).
    fn broadcast(&self, conn: ConnId, incoming: &Incoming<'_>, out: &mut Outbox) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let Some(conns) = self.rooms.get(&member.room) else {
            return;
        };
        let text = msg::relayed(&member.id, ROOM, incoming);
        log::debug!(
            "camus {conn:?}: {} to room {:?} ({} members)",
            incoming.kind_for_error(),
            member.room,
            conns.len()
        );
        for to in conns {
            out.text(*to, text.clone());
        }
    }

    /// A message to one client id: delivered only if that client is in the sender's room.
    fn relay(&self, conn: ConnId, receiver: &str, incoming: &Incoming<'_>, out: &mut Outbox) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let target = self
            .by_id
            .get(receiver)
            .copied()
            .filter(|to| self.members.get(to).is_some_and(|m| m.room == member.room));
        let Some(to) = target else {
            log::debug!("camus {conn:?}: no receiver {receiver:?} in the room, dropped");
            return;
        };
        log::debug!("camus {conn:?} -> {to:?}: {}", incoming.kind_for_error());
        let text = msg::relayed(&member.id, receiver, incoming);
        out.text(to, text);
    }

    /// The `data` of the room's `room-info`.
    fn room_info(&self, slug: &str) -> Box<serde_json::value::RawValue> {
        let clients: Vec<ClientInfo<'_>> = self
            .rooms
            .get(slug)
            .into_iter()
            .flatten()
            .filter_map(|conn| self.members.get(conn))
            .map(|m| ClientInfo {
                id: &m.id,
                username: &m.username,
            })
            .collect();
        msg::room_info_data(slug, &clients)
    }

    /// `room-info` to every member of the room, each copy addressed to its recipient.
    fn broadcast_room_info(&self, slug: &str, out: &mut Outbox) {
        let Some(conns) = self.rooms.get(slug) else {
            return;
        };
        let data = self.room_info(slug);
        for to in conns {
            if let Some(member) = self.members.get(to) {
                let text = msg::from_ground_control_raw(&member.id, "room-info", Some(&data));
                out.text(*to, text);
            }
        }
    }

    /// Takes a member out of its room and the hub, deadline included; the rest of the room
    /// gets `room-info`.
    fn remove(&mut self, now: Instant, conn: ConnId, leaving: Leaving, fx: &mut Effects<'_>) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        fx.deadlines.cancel(conn);
        self.by_id.remove(&member.id);
        if let Some(conns) = self.rooms.get_mut(&member.room) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                self.rooms.remove(&member.room);
            }
        }
        log::info!(
            "camus {conn:?}: client {} left room {:?} ({leaving:?})",
            member.id,
            member.room
        );
        if let Leaving::Farewell(reason) = leaving {
            let bye = msg::from_ground_control_int(&member.id, "bye", self.epoch_ms(now));
            fx.out.text(conn, bye);
            fx.out.close(conn, CLOSE_NORMAL, reason);
        }
        self.broadcast_room_info(&member.room, fx.out);
    }

    /// Sets `conn`'s deadline unless it already has an earlier one.
    fn reschedule(&self, conn: ConnId, deadlines: &mut Deadlines<ConnId>) {
        if let Some(member) = self.members.get(&conn) {
            deadlines.schedule_earlier(conn, member.deadline());
        }
    }
}

/// The room for `slug`, configured or created on first use.
fn lookup(slug: &str, directory: &mut dyn Directory) -> Result<CamusRoom, Refusal> {
    let rooms = directory.camus_rooms().map_err(|err| {
        log::warn!("camus-rooms.json: {err}");
        Refusal::Invalid(err.to_string())
    })?;
    rooms.resolve(slug).ok_or(Refusal::NotFound)
}
