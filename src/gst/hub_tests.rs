//! The hub on a fake clock: registration, sessions, rooms, keepalive and bad input.

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
