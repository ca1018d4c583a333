//! The sans-IO hub of the GStreamer signalling protocol: every connection's registration,
//! 1-1 sessions and rooms.
//!
//! The runtime (through the facade, `App`) tells the hub about connections and frames with
//! `handle_*` calls that carry `now` and lend it an [`Effects`]: the hub queues what must be
//! sent in its [`Outbox`] and keeps each of its connections' deadline in its shared
//! [`Deadlines`]. When a connection's deadline has passed, the caller takes it out of the
//! deadlines and calls [`Hub::handle_timeout`] for that connection. The hub owns no socket,
//! no queue and no timer heap, and never reads the clock.
//!
//! A deadline is set when it moves earlier (connecting, registering) and left alone when
//! traffic moves it later: the early wake-up finds the real deadline and sets that instead,
//! so frames never push onto the heap.
//!
//! State is keyed by connection, never by uid: when the hub closes a connection (bad
//! registration, timeout, a session partner gone, an oversize message) it forgets that
//! connection at once, deadline included, so a late [`Hub::handle_disconnect`] for it is a
//! no-op and cannot touch a newer connection that registered the same uid.
//!
//! Wire behaviour follows gst-examples' `simple_server.py`, with the differences listed in
//! `docs/gstreamer.md`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::msg::{self, Reply};
use super::parse::{self, Command, HelloError};
use crate::conn::{ConnId, Deadlines, Effects, GST_PING_AFTER, GST_PONG_TIMEOUT, Outbox};

/// A connection that has not sent `HELLO <uid>` within this time is closed.
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest accepted message in bytes (the original's websockets default); larger closes 1009.
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Where a connection is in the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for `HELLO <uid>`.
    Unregistered,
    /// Registered, in no session or room.
    Idle,
    /// In a 1-1 session with this connection (possibly itself).
    Session(ConnId),
    /// In this room.
    Room(String),
}

/// One connection.
#[derive(Debug)]
struct Peer {
    /// The registered uid; empty before registration.
    uid: String,
    state: State,
    connected_at: Instant,
    /// When the last frame (of any kind, pongs included) arrived.
    last_heard: Instant,
    /// When the unanswered ping was sent, if one is outstanding.
    pinged_at: Option<Instant>,
}

impl Peer {
    /// When the connection's timer must run next (keepalive: [`GST_PING_AFTER`],
    /// [`GST_PONG_TIMEOUT`]).
    fn deadline(&self) -> Instant {
        match (&self.state, self.pinged_at) {
            (State::Unregistered, _) => self.connected_at + REGISTRATION_TIMEOUT,
            (_, Some(pinged_at)) => pinged_at + GST_PONG_TIMEOUT,
            (_, None) => self.last_heard + GST_PING_AFTER,
        }
    }

    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged_at = None;
    }
}

/// The signalling hub. See the module documentation.
#[derive(Debug, Default)]
pub struct Hub {
    peers: HashMap<ConnId, Peer>,
    /// Registered uids.
    uids: HashMap<String, ConnId>,
    /// Non-empty rooms and their members in joining order.
    rooms: HashMap<String, Vec<ConnId>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Number of open connections (registered or not).
    pub fn connection_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether the hub knows this connection (it forgets a connection once it closed it).
    pub fn contains(&self, conn: ConnId) -> bool {
        self.peers.contains_key(&conn)
    }

    /// The uid a connection registered, if it did.
    pub fn uid(&self, conn: ConnId) -> Option<&str> {
        self.peers
            .get(&conn)
            .map(|peer| peer.uid.as_str())
            .filter(|uid| !uid.is_empty())
    }

    /// A WebSocket connection for this protocol was opened; `conn` must be new. Its
    /// registration deadline is set.
    pub fn handle_connect(&mut self, now: Instant, conn: ConnId, fx: &mut Effects<'_>) {
        self.peers.insert(
            conn,
            Peer {
                uid: String::new(),
                state: State::Unregistered,
                connected_at: now,
                last_heard: now,
                pinged_at: None,
            },
        );
        self.reschedule(conn, fx.deadlines);
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str, fx: &mut Effects<'_>) {
        let Some(state) = self.heard(now, conn, text.len(), fx) else {
            return;
        };
        match state {
            State::Unregistered => self.register(conn, text, fx),
            State::Session(partner) => {
                log::debug!("gst {conn:?} -> {partner:?}: text, {} bytes", text.len());
                fx.out.text(partner, text.to_owned());
            }
            State::Idle => self.idle_command(conn, text, fx),
            State::Room(room) => self.room_command(conn, &room, text, fx.out),
        }
        self.reschedule(conn, fx.deadlines);
    }

    /// A binary frame arrived: forwarded in a session, answered with an `ERROR` when
    /// registered otherwise, and an invalid registration before `HELLO`.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8], fx: &mut Effects<'_>) {
        let Some(state) = self.heard(now, conn, data.len(), fx) else {
            return;
        };
        match state {
            State::Unregistered => {
                self.close(conn, msg::CLOSE_PROTOCOL_ERROR, msg::INVALID_PROTOCOL, fx);
            }
            State::Session(partner) => {
                log::debug!("gst {conn:?} -> {partner:?}: binary, {} bytes", data.len());
                fx.out.binary(partner, data.to_vec());
            }
            State::Idle | State::Room(_) => reply(fx.out, conn, Reply::StrayBinary),
        }
        self.reschedule(conn, fx.deadlines);
    }

    /// A pong (or any other sign of life without content) arrived. The deadline only moves
    /// later, so it is left for the next wake-up to find.
    pub fn handle_pong(&mut self, now: Instant, conn: ConnId) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.heard(now);
        }
    }

    /// The connection is gone. Its session partner is closed with 1000 and its room is told
    /// `ROOM_PEER_LEFT`. A connection the hub closed itself was forgotten already.
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId, fx: &mut Effects<'_>) {
        let _ = now;
        self.forget(conn, fx);
    }

    /// `conn`'s deadline has passed (the caller took it out of the deadlines): closes it if
    /// it did not register or answer the ping in time, pings it after silence, and sets its
    /// next deadline. An early wake-up (traffic moved the deadline later) only sets the real
    /// deadline; an unknown connection is ignored.
    pub fn handle_timeout(&mut self, now: Instant, conn: ConnId, fx: &mut Effects<'_>) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if now < peer.deadline() {
            // Activity moved the deadline since it was set.
        } else if peer.state == State::Unregistered {
            log::info!("gst {conn:?}: no HELLO in time");
            self.close(
                conn,
                msg::CLOSE_PROTOCOL_ERROR,
                msg::REGISTRATION_TIMEOUT,
                fx,
            );
            return;
        } else if peer.pinged_at.is_some() {
            log::info!("gst {conn:?} ({}): no answer to ping", peer.uid);
            self.close(conn, msg::CLOSE_INTERNAL_ERROR, msg::KEEPALIVE_TIMEOUT, fx);
            return;
        } else {
            peer.pinged_at = Some(now);
            fx.out.ping(conn);
        }
        self.reschedule(conn, fx.deadlines);
    }

    /// Server shutdown: every connection is closed with 1001 and forgotten, deadlines
    /// included.
    pub fn shutdown(&mut self, now: Instant, fx: &mut Effects<'_>) {
        let _ = now;
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            fx.out
                .close(conn, msg::CLOSE_GOING_AWAY, msg::SHUTTING_DOWN);
            fx.deadlines.cancel(conn);
        }
        self.peers.clear();
        self.uids.clear();
        self.rooms.clear();
    }

    /// Records a frame of `len` bytes; returns the connection's state, or `None` when the
    /// connection is unknown or was just closed for an oversize message.
    fn heard(
        &mut self,
        now: Instant,
        conn: ConnId,
        len: usize,
        fx: &mut Effects<'_>,
    ) -> Option<State> {
        let peer = self.peers.get_mut(&conn)?;
        peer.heard(now);
        if len > MAX_MESSAGE_SIZE {
            log::info!("gst {conn:?}: message of {len} bytes, closing");
            self.close(conn, msg::CLOSE_TOO_BIG, msg::MESSAGE_TOO_BIG, fx);
            return None;
        }
        Some(peer.state.clone())
    }

    /// The first message: `HELLO <uid>` or the connection is closed with 1002.
    fn register(&mut self, conn: ConnId, text: &str, fx: &mut Effects<'_>) {
        let uid = match parse::hello(text) {
            Ok(uid) if !self.uids.contains_key(uid) => uid,
            Ok(_) | Err(HelloError::BadUid) => {
                log::info!("gst {conn:?}: invalid peer uid");
                self.close(conn, msg::CLOSE_PROTOCOL_ERROR, msg::INVALID_PEER_UID, fx);
                return;
            }
            Err(HelloError::NotHello) => {
                log::info!("gst {conn:?}: no HELLO");
                self.close(conn, msg::CLOSE_PROTOCOL_ERROR, msg::INVALID_PROTOCOL, fx);
                return;
            }
        };
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        uid.clone_into(&mut peer.uid);
        peer.state = State::Idle;
        self.uids.insert(uid.to_owned(), conn);
        log::info!("gst {conn:?}: registered as {uid:?}");
        reply(fx.out, conn, Reply::Hello);
    }

    fn idle_command(&mut self, conn: ConnId, text: &str, fx: &mut Effects<'_>) {
        match parse::command(text) {
            Command::Session { peer } => self.start_session(conn, peer, fx.out),
            Command::Room { room } => self.join_room(conn, room, fx.out),
            Command::Missing(verb) => reply(fx.out, conn, Reply::MissingArgument(verb)),
            Command::RoomPeerMsg { .. } | Command::RoomPeerList => {
                reply(fx.out, conn, Reply::NotInRoom);
            }
            Command::Hello | Command::Other => {
                log::debug!("gst {conn:?}: ignoring {} bytes while idle", text.len());
            }
        }
    }

    fn start_session(&mut self, conn: ConnId, callee_uid: &str, out: &mut Outbox) {
        let Some(&callee) = self.uids.get(callee_uid) else {
            reply(out, conn, Reply::PeerNotFound(callee_uid));
            return;
        };
        if self
            .peers
            .get(&callee)
            .is_none_or(|peer| peer.state != State::Idle)
        {
            reply(out, conn, Reply::PeerBusy(callee_uid));
            return;
        }
        for (one, other) in [(conn, callee), (callee, conn)] {
            if let Some(peer) = self.peers.get_mut(&one) {
                peer.state = State::Session(other);
            }
        }
        log::info!("gst {conn:?}: session with {callee_uid:?} ({callee:?})");
        reply(out, conn, Reply::SessionOk);
    }

    fn join_room(&mut self, conn: ConnId, room: &str, out: &mut Outbox) {
        if !parse::valid_room_id(room) {
            reply(out, conn, Reply::InvalidRoomId(room));
            return;
        }
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let members = self.rooms.entry(room.to_owned()).or_default();
        let uids: Vec<&str> = members
            .iter()
            .filter_map(|member| self.peers.get(member))
            .map(|member| member.uid.as_str())
            .collect();
        out.text(conn, Reply::RoomOk(&uids).to_string());
        let joined = Reply::RoomPeerJoined(&peer.uid).to_string();
        for &member in members.iter() {
            out.text(member, joined.clone());
        }
        log::info!("gst {conn:?} ({}): joined room {room:?}", peer.uid);
        members.push(conn);
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.state = State::Room(room.to_owned());
        }
    }

    fn room_command(&mut self, conn: ConnId, room: &str, text: &str, out: &mut Outbox) {
        match parse::command(text) {
            Command::RoomPeerMsg { peer, msg } => self.room_message(conn, room, peer, msg, out),
            Command::RoomPeerList => {
                let members = self.rooms.get(room).map(Vec::as_slice).unwrap_or_default();
                let uids: Vec<&str> = members
                    .iter()
                    .filter(|&&member| member != conn)
                    .filter_map(|member| self.peers.get(member))
                    .map(|member| member.uid.as_str())
                    .collect();
                out.text(conn, Reply::RoomPeerList(&uids).to_string());
            }
            Command::Missing(verb @ msg::Verb::RoomPeerMsg) => {
                reply(out, conn, Reply::MissingArgument(verb));
            }
            _ => reply(out, conn, Reply::AlreadyInRoom),
        }
    }

    fn room_message(
        &mut self,
        conn: ConnId,
        room: &str,
        to_uid: &str,
        text: &str,
        out: &mut Outbox,
    ) {
        let Some(&to) = self.uids.get(to_uid) else {
            reply(out, conn, Reply::PeerNotFound(to_uid));
            return;
        };
        let same_room = self
            .peers
            .get(&to)
            .is_some_and(|peer| matches!(&peer.state, State::Room(r) if r == room));
        let Some(from) = self.peers.get(&conn).filter(|_| same_room) else {
            reply(out, conn, Reply::PeerNotInRoom(to_uid));
            return;
        };
        log::debug!(
            "gst {conn:?} -> {to:?} in room {room:?}: {} bytes",
            text.len()
        );
        let forwarded = Reply::RoomPeerMsg {
            from: &from.uid,
            msg: text,
        };
        out.text(to, forwarded.to_string());
    }

    /// Queues a close for `conn` and forgets it (which may close its session partner).
    fn close(&mut self, conn: ConnId, code: u16, reason: &str, fx: &mut Effects<'_>) {
        if !self.peers.contains_key(&conn) {
            return;
        }
        fx.out.close(conn, code, reason);
        self.forget(conn, fx);
    }

    /// Removes every trace of `conn`: its deadline, its uid, its room membership (telling the
    /// others), and its session (closing the partner with 1000, as `simple_server.py` does).
    fn forget(&mut self, conn: ConnId, fx: &mut Effects<'_>) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        fx.deadlines.cancel(conn);
        if !peer.uid.is_empty() {
            self.uids.remove(&peer.uid);
            log::info!("gst {conn:?}: {:?} left", peer.uid);
        }
        match peer.state {
            State::Unregistered | State::Idle => {}
            State::Session(partner) => {
                if partner != conn {
                    self.close(partner, msg::CLOSE_NORMAL, "", fx);
                }
            }
            State::Room(room) => {
                let Some(members) = self.rooms.get_mut(&room) else {
                    return;
                };
                members.retain(|&member| member != conn);
                if members.is_empty() {
                    self.rooms.remove(&room);
                    return;
                }
                let left = Reply::RoomPeerLeft(&peer.uid).to_string();
                for &member in members.iter() {
                    fx.out.text(member, left.clone());
                }
            }
        }
    }

    /// Sets `conn`'s deadline unless it already has one at or before it.
    fn reschedule(&self, conn: ConnId, deadlines: &mut Deadlines<ConnId>) {
        if let Some(peer) = self.peers.get(&conn) {
            deadlines.schedule_earlier(conn, peer.deadline());
        }
    }
}

/// Queues a reply to `conn`.
fn reply(out: &mut Outbox, conn: ConnId, reply: Reply<'_>) {
    out.text(conn, reply.to_string());
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
