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
mod tests {
    use super::*;
    use crate::conn::ConnOutput;

    /// A hub with a fake clock starting at `t0`, and the outbox and deadlines the facade
    /// would lend it.
    struct Fixture {
        hub: Hub,
        out: Outbox,
        deadlines: Deadlines<ConnId>,
        t0: Instant,
        now: Instant,
        next_conn: u64,
    }

    impl Fixture {
        fn new() -> Fixture {
            let t0 = Instant::now();
            Fixture {
                hub: Hub::new(),
                out: Outbox::default(),
                deadlines: Deadlines::default(),
                t0,
                now: t0,
                next_conn: 0,
            }
        }

        /// The hub, and the effects it is lent for one call.
        fn parts(&mut self) -> (&mut Hub, Effects<'_>) {
            let fx = Effects {
                out: &mut self.out,
                deadlines: &mut self.deadlines,
            };
            (&mut self.hub, fx)
        }

        fn connect(&mut self) -> ConnId {
            self.next_conn += 1;
            let conn = ConnId(self.next_conn);
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.handle_connect(now, conn, &mut fx);
            conn
        }

        /// A connection registered as `uid`, its `HELLO` reply drained.
        fn register(&mut self, uid: &str) -> ConnId {
            let conn = self.connect();
            self.text(conn, &format!("HELLO {uid}"));
            assert_eq!(self.drain(), [(conn, text("HELLO"))], "registering {uid}");
            conn
        }

        fn text(&mut self, conn: ConnId, text: &str) {
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.handle_text(now, conn, text, &mut fx);
        }

        fn binary(&mut self, conn: ConnId, data: &[u8]) {
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.handle_binary(now, conn, data, &mut fx);
        }

        fn disconnect(&mut self, conn: ConnId) {
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.handle_disconnect(now, conn, &mut fx);
        }

        fn shutdown(&mut self) {
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.shutdown(now, &mut fx);
        }

        /// When the next deadline is due.
        fn poll_timeout(&self) -> Option<Instant> {
            self.deadlines.earliest()
        }

        /// Moves the clock and runs every connection whose deadline has passed, as the
        /// facade does.
        fn advance_to(&mut self, since_t0: Duration) {
            self.now = self.t0 + since_t0;
            while let Some(conn) = self.deadlines.pop_due(self.now) {
                let now = self.now;
                let (hub, mut fx) = self.parts();
                hub.handle_timeout(now, conn, &mut fx);
            }
        }

        fn drain(&mut self) -> Vec<(ConnId, ConnOutput)> {
            std::iter::from_fn(|| self.out.pop()).collect()
        }

        /// Sends `input` from `conn` and returns what came out.
        fn exchange(&mut self, conn: ConnId, input: &str) -> Vec<(ConnId, ConnOutput)> {
            self.text(conn, input);
            self.drain()
        }
    }

    fn text(text: &str) -> ConnOutput {
        ConnOutput::Text(text.to_owned())
    }

    fn close(code: u16, reason: &str) -> ConnOutput {
        ConnOutput::Close {
            code,
            reason: reason.to_owned(),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn hello_registers_with_any_whitespace() {
        let mut f = Fixture::new();
        for (i, input) in ["HELLO a", "HELLO   b", "HELLO\tc"].into_iter().enumerate() {
            let conn = f.connect();
            assert_eq!(f.exchange(conn, input), [(conn, text("HELLO"))]);
            assert_eq!(f.hub.uid(conn), Some(["a", "b", "c"][i]));
        }
    }

    #[test]
    fn first_message_other_than_hello_closes_1002_invalid_protocol() {
        let mut f = Fixture::new();
        for input in ["HI x", "hello x", "SESSION x", "HELLOX x", "", "HI"] {
            let conn = f.connect();
            assert_eq!(
                f.exchange(conn, input),
                [(conn, close(1002, "invalid protocol"))],
                "{input:?}"
            );
            assert!(!f.hub.contains(conn));
        }
    }

    #[test]
    fn bad_uid_closes_1002_invalid_peer_uid() {
        let mut f = Fixture::new();
        // "HELLO" alone is our deviation: the original crashes with 1011.
        for input in ["HELLO x y", "HELLO x ", "HELLO", "HELLO  "] {
            let conn = f.connect();
            assert_eq!(
                f.exchange(conn, input),
                [(conn, close(1002, "invalid peer uid"))],
                "{input:?}"
            );
        }
    }

    #[test]
    fn uid_in_use_is_refused_without_touching_the_owner() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let intruder = f.connect();
        assert_eq!(
            f.exchange(intruder, "HELLO a"),
            [(intruder, close(1002, "invalid peer uid"))]
        );
        assert_eq!(f.exchange(b, "SESSION a"), [(b, text("SESSION_OK"))]);
        assert_eq!(f.exchange(b, "hi"), [(a, text("hi"))]);
    }

    #[test]
    fn binary_before_hello_closes_1002_invalid_protocol() {
        let mut f = Fixture::new();
        let conn = f.connect();
        f.binary(conn, b"HELLO x");
        assert_eq!(f.drain(), [(conn, close(1002, "invalid protocol"))]);
    }

    #[test]
    fn registration_times_out() {
        let mut f = Fixture::new();
        let conn = f.connect();
        assert_eq!(f.poll_timeout(), Some(f.t0 + REGISTRATION_TIMEOUT));
        f.advance_to(REGISTRATION_TIMEOUT - Duration::from_millis(1));
        assert_eq!(f.drain(), []);
        f.advance_to(REGISTRATION_TIMEOUT);
        assert_eq!(f.drain(), [(conn, close(1002, "registration timeout"))]);
        assert_eq!(f.hub.connection_count(), 0);
    }

    #[test]
    fn registered_peer_does_not_time_out_registration() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.advance_to(REGISTRATION_TIMEOUT);
        // Only the keepalive ping (due at 20 s) happened.
        assert_eq!(f.drain(), [(a, ConnOutput::Ping)]);
        assert!(f.hub.contains(a));
    }

    #[test]
    fn uid_is_free_after_disconnect() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.disconnect(a);
        assert_eq!(f.drain(), []);
        f.register("a");
    }

    #[test]
    fn idle_ignores_unknown_texts_and_prefix_lookalikes() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.register("b");
        for input in [
            "HELLO again",
            "FOO",
            "OFFER_REQUEST",
            "",
            "SESSIONX b",
            "ROOMX r",
            " SESSION b",
        ] {
            assert_eq!(f.exchange(a, input), [], "{input:?}");
        }
        // Still idle: a session can start.
        assert_eq!(f.exchange(a, "SESSION b"), [(a, text("SESSION_OK"))]);
    }

    #[test]
    fn session_with_unknown_peer() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.register("b");
        assert_eq!(
            f.exchange(a, "SESSION x"),
            [(a, text("ERROR peer 'x' not found"))]
        );
        assert_eq!(
            f.exchange(a, "SESSION b extra"),
            [(a, text("ERROR peer 'b extra' not found"))]
        );
        assert_eq!(
            f.exchange(a, "SESSION it's"),
            [(a, text("ERROR peer \"it's\" not found"))]
        );
    }

    #[test]
    fn session_without_peer_id_is_an_error_not_a_crash() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.register("b");
        assert_eq!(
            f.exchange(a, "SESSION"),
            [(a, text("ERROR invalid msg, SESSION needs a peer id"))]
        );
        assert_eq!(f.exchange(a, "SESSION b"), [(a, text("SESSION_OK"))]);
    }

    #[test]
    fn session_forwards_everything_verbatim_both_ways() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        // The callee is not told.
        assert_eq!(f.exchange(a, "SESSION b"), [(a, text("SESSION_OK"))]);
        for input in [
            "OFFER_REQUEST",
            "",
            "SESSION x",
            "ROOM r",
            "HELLO x",
            "ERROR fake",
            "ROOM_PEER_LIST",
            "{\"sdp\": {\"type\": \"offer\", \"sdp\": \"v=0\\r\\n\"}}",
        ] {
            assert_eq!(f.exchange(a, input), [(b, text(input))], "{input:?}");
            assert_eq!(f.exchange(b, input), [(a, text(input))], "{input:?}");
        }
        f.binary(a, &[0, 1, 2, 255]);
        assert_eq!(f.drain(), [(b, ConnOutput::Binary(vec![0, 1, 2, 255]))]);
        f.binary(b, b"");
        assert_eq!(f.drain(), [(a, ConnOutput::Binary(vec![]))]);
    }

    #[test]
    fn busy_callee_in_a_session_or_room() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let c = f.register("c");
        let d = f.register("d");
        f.exchange(a, "SESSION b");
        assert_eq!(
            f.exchange(c, "SESSION b"),
            [(c, text("ERROR peer 'b' busy"))]
        );
        assert_eq!(
            f.exchange(c, "SESSION a"),
            [(c, text("ERROR peer 'a' busy"))]
        );
        assert_eq!(f.exchange(d, "ROOM r"), [(d, text("ROOM_OK "))]);
        assert_eq!(
            f.exchange(c, "SESSION d"),
            [(c, text("ERROR peer 'd' busy"))]
        );
        // The session is untouched.
        assert_eq!(f.exchange(b, "x"), [(a, text("x"))]);
    }

    #[test]
    fn self_session_echoes() {
        let mut f = Fixture::new();
        let a = f.register("a");
        assert_eq!(f.exchange(a, "SESSION a"), [(a, text("SESSION_OK"))]);
        assert_eq!(f.exchange(a, "ping me"), [(a, text("ping me"))]);
        f.disconnect(a);
        assert_eq!(f.drain(), []);
        f.register("a");
    }

    #[test]
    fn session_end_closes_the_partner_1000_and_frees_its_uid() {
        for caller_leaves in [true, false] {
            let mut f = Fixture::new();
            let a = f.register("a");
            let b = f.register("b");
            f.exchange(a, "SESSION b");
            let (leaver, partner) = if caller_leaves { (a, b) } else { (b, a) };
            f.disconnect(leaver);
            assert_eq!(f.drain(), [(partner, close(1000, ""))]);
            assert!(!f.hub.contains(partner));
            // Both uids are free at once.
            let a2 = f.register("a");
            let b2 = f.register("b");
            // The runtime's late disconnect of the old partner changes nothing: cleanup is
            // keyed by connection, not by uid.
            f.disconnect(partner);
            assert_eq!(f.drain(), []);
            assert_eq!(f.hub.uid(a2), Some("a"));
            assert_eq!(f.exchange(a2, "SESSION b"), [(a2, text("SESSION_OK"))]);
            assert_eq!(f.exchange(b2, "hi"), [(a2, text("hi"))]);
        }
    }

    #[test]
    fn room_join_lists_members_in_joining_order() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let c = f.register("c");
        assert_eq!(f.exchange(a, "ROOM r"), [(a, text("ROOM_OK "))]);
        assert_eq!(
            f.exchange(b, "ROOM r"),
            [(b, text("ROOM_OK a")), (a, text("ROOM_PEER_JOINED b"))]
        );
        assert_eq!(
            f.exchange(c, "ROOM\tr"),
            [
                (c, text("ROOM_OK a b")),
                (a, text("ROOM_PEER_JOINED c")),
                (b, text("ROOM_PEER_JOINED c")),
            ]
        );
    }

    #[test]
    fn invalid_room_ids() {
        let mut f = Fixture::new();
        let a = f.register("a");
        assert_eq!(
            f.exchange(a, "ROOM session"),
            [(a, text("ERROR invalid room id 'session'"))]
        );
        assert_eq!(
            f.exchange(a, "ROOM a b"),
            [(a, text("ERROR invalid room id 'a b'"))]
        );
        assert_eq!(
            f.exchange(a, "ROOM r "),
            [(a, text("ERROR invalid room id 'r '"))]
        );
        assert_eq!(
            f.exchange(a, "ROOM"),
            [(a, text("ERROR invalid msg, ROOM needs a room id"))]
        );
        // Still idle.
        assert_eq!(f.exchange(a, "ROOM r"), [(a, text("ROOM_OK "))]);
    }

    #[test]
    fn room_peer_msg_rewrites_the_sender() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        f.exchange(a, "ROOM r");
        f.exchange(b, "ROOM r");
        assert_eq!(
            f.exchange(b, "ROOM_PEER_MSG a  {\"sdp\": \"x y  z\"}"),
            [(a, text("ROOM_PEER_MSG b {\"sdp\": \"x y  z\"}"))]
        );
        assert_eq!(
            f.exchange(a, "ROOM_PEER_MSG a self"),
            [(a, text("ROOM_PEER_MSG a self"))]
        );
    }

    #[test]
    fn room_peer_msg_errors() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let idle = f.register("idle");
        let s1 = f.register("s1");
        f.register("s2");
        let other = f.register("other");
        f.exchange(s1, "SESSION s2");
        f.exchange(other, "ROOM elsewhere");
        f.exchange(a, "ROOM r");
        assert_eq!(
            f.exchange(a, "ROOM_PEER_MSG x hi"),
            [(a, text("ERROR peer 'x' not found"))]
        );
        for peer in ["idle", "s1", "other"] {
            assert_eq!(
                f.exchange(a, &format!("ROOM_PEER_MSG {peer} hi")),
                [(a, text(&format!("ERROR peer '{peer}' is not in the room")))]
            );
        }
        // Missing body: our deviation (the original drops the connection).
        assert_eq!(
            f.exchange(a, "ROOM_PEER_MSG idle"),
            [(
                a,
                text("ERROR invalid msg, ROOM_PEER_MSG needs a peer id and a message")
            )]
        );
        assert_eq!(
            f.exchange(idle, "ROOM r"),
            [
                (idle, text("ROOM_OK a")),
                (a, text("ROOM_PEER_JOINED idle"))
            ]
        );
    }

    #[test]
    fn room_peer_list_answers_without_the_requester() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let c = f.register("c");
        f.exchange(a, "ROOM r");
        assert_eq!(
            f.exchange(a, "ROOM_PEER_LIST"),
            [(a, text("ROOM_PEER_LIST "))]
        );
        f.exchange(b, "ROOM r");
        f.exchange(c, "ROOM r");
        assert_eq!(
            f.exchange(b, "ROOM_PEER_LIST"),
            [(b, text("ROOM_PEER_LIST a c"))]
        );
    }

    #[test]
    fn other_texts_in_a_room_are_errors() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.register("b");
        f.exchange(a, "ROOM r");
        for input in [
            "ROOM x",
            "ROOM",
            "SESSION b",
            "SESSION",
            "HELLO a",
            "hello there",
            "",
            "ROOM_PEER_MSGX a hi",
            "ROOM_PEER_LISTX",
        ] {
            assert_eq!(
                f.exchange(a, input),
                [(a, text("ERROR invalid msg, already in room"))],
                "{input:?}"
            );
        }
    }

    #[test]
    fn room_commands_while_idle_are_errors() {
        let mut f = Fixture::new();
        let a = f.register("a");
        for input in ["ROOM_PEER_MSG a b", "ROOM_PEER_LIST"] {
            assert_eq!(
                f.exchange(a, input),
                [(a, text("ERROR invalid msg, not in a room"))],
                "{input:?}"
            );
        }
    }

    #[test]
    fn stray_binary_frames_get_an_error_and_the_connection_stays() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let stray = "ERROR invalid msg, binary messages are only forwarded in a session";
        f.binary(a, b"x");
        assert_eq!(f.drain(), [(a, text(stray))]);
        f.exchange(a, "ROOM r");
        f.exchange(b, "ROOM r");
        f.binary(a, b"x");
        assert_eq!(f.drain(), [(a, text(stray))]);
        assert_eq!(
            f.exchange(a, "ROOM_PEER_MSG b hi"),
            [(b, text("ROOM_PEER_MSG a hi"))]
        );
    }

    #[test]
    fn leaving_a_room_tells_the_others_and_empty_rooms_go() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let c = f.register("c");
        f.exchange(a, "ROOM r");
        f.exchange(b, "ROOM r");
        f.exchange(c, "ROOM r");
        f.disconnect(b);
        assert_eq!(
            f.drain(),
            [(a, text("ROOM_PEER_LEFT b")), (c, text("ROOM_PEER_LEFT b"))]
        );
        f.disconnect(a);
        assert_eq!(f.drain(), [(c, text("ROOM_PEER_LEFT a"))]);
        f.disconnect(c);
        assert_eq!(f.drain(), []);
        assert!(f.hub.rooms.is_empty());
        let d = f.register("d");
        assert_eq!(f.exchange(d, "ROOM r"), [(d, text("ROOM_OK "))]);
    }

    #[test]
    fn message_size_limit() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        f.exchange(a, "SESSION b");
        let largest = "x".repeat(MAX_MESSAGE_SIZE);
        assert_eq!(f.exchange(a, &largest), [(b, text(&largest))]);
        f.binary(a, &vec![7; MAX_MESSAGE_SIZE]);
        assert_eq!(
            f.drain(),
            [(b, ConnOutput::Binary(vec![7; MAX_MESSAGE_SIZE]))]
        );
        let too_big = "x".repeat(MAX_MESSAGE_SIZE + 1);
        // The sender gets 1009 and its partner is closed at once.
        assert_eq!(
            f.exchange(a, &too_big),
            [(a, close(1009, "")), (b, close(1000, ""))]
        );
        assert_eq!(f.hub.connection_count(), 0);
        let c = f.register("c");
        f.binary(c, &vec![0; MAX_MESSAGE_SIZE + 1]);
        assert_eq!(f.drain(), [(c, close(1009, ""))]);
    }

    #[test]
    fn keepalive_pings_after_silence_and_accepts_pongs() {
        let mut f = Fixture::new();
        let a = f.register("a");
        assert_eq!(f.poll_timeout(), Some(f.t0 + GST_PING_AFTER));
        f.advance_to(secs(19));
        assert_eq!(f.drain(), []);
        f.advance_to(secs(20));
        assert_eq!(f.drain(), [(a, ConnOutput::Ping)]);
        f.now = f.t0 + secs(25);
        f.hub.handle_pong(f.now, a);
        f.advance_to(secs(44));
        assert_eq!(f.drain(), []);
        f.advance_to(secs(45));
        assert_eq!(f.drain(), [(a, ConnOutput::Ping)]);
        assert!(f.hub.contains(a));
    }

    #[test]
    fn traffic_postpones_the_ping() {
        let mut f = Fixture::new();
        let a = f.register("a");
        f.now = f.t0 + secs(15);
        f.text(a, "FOO");
        f.advance_to(secs(30));
        assert_eq!(f.drain(), []);
        f.advance_to(secs(35));
        assert_eq!(f.drain(), [(a, ConnOutput::Ping)]);
    }

    #[test]
    fn unanswered_ping_closes_1011_and_ends_the_session() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        f.exchange(a, "SESSION b");
        f.advance_to(secs(20));
        assert_eq!(f.drain(), [(a, ConnOutput::Ping), (b, ConnOutput::Ping)]);
        f.now = f.t0 + secs(30);
        f.hub.handle_pong(f.now, b);
        f.advance_to(secs(40));
        assert_eq!(
            f.drain(),
            [
                (a, close(1011, "keepalive ping timeout")),
                (b, close(1000, ""))
            ]
        );
        assert_eq!(f.hub.connection_count(), 0);
    }

    #[test]
    fn shutdown_closes_everyone_1001() {
        let mut f = Fixture::new();
        let a = f.register("a");
        let b = f.register("b");
        let c = f.connect();
        f.exchange(a, "SESSION b");
        f.shutdown();
        assert_eq!(
            f.drain(),
            [
                (a, close(1001, "server is shutting down")),
                (b, close(1001, "server is shutting down")),
                (c, close(1001, "server is shutting down")),
            ]
        );
        assert_eq!(f.poll_timeout(), None);
        f.disconnect(a);
        assert_eq!(f.drain(), []);
    }

    #[test]
    fn frames_after_close_are_ignored() {
        let mut f = Fixture::new();
        let conn = f.connect();
        f.exchange(conn, "nope");
        assert_eq!(f.exchange(conn, "HELLO a"), []);
        f.binary(conn, b"x");
        f.hub.handle_pong(f.now, conn);
        assert_eq!(f.drain(), []);
    }
}
