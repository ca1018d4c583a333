//! The wire strings of the GStreamer examples' signalling protocol: everything the server
//! sends, byte for byte as `simple_server.py` sends it (docs/gstreamer.md), plus the texts of
//! our documented deviations, the close codes and the close reasons.
//!
//! Peer and room ids inside error texts are quoted the way Python's `repr` quotes a string,
//! because the original formats them with `{!r}`.

use std::fmt::{self, Write as _};

/// Close code: normal closure (session partner gone).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is going away (shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: protocol error (bad or missing registration).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code: a message above the size limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: internal error, used for a keepalive ping that got no answer.
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// Close reason: the first message was not `HELLO <uid>`.
pub const INVALID_PROTOCOL: &str = "invalid protocol";
/// Close reason: the uid is missing, contains whitespace or is in use.
pub const INVALID_PEER_UID: &str = "invalid peer uid";
/// Close reason: no `HELLO` arrived in time (our deviation: the original waits for ever).
pub const REGISTRATION_TIMEOUT: &str = "registration timeout";
/// Close reason: a keepalive ping got no answer in time (the websockets library's text).
pub const KEEPALIVE_TIMEOUT: &str = "keepalive ping timeout";
/// Close reason: a message above the size limit (empty, as the original's websockets 13.1
/// and Gorilla send it).
pub const MESSAGE_TOO_BIG: &str = "";
/// Close reason: the server shuts down.
pub const SHUTTING_DOWN: &str = "server is shutting down";

/// A command that needs arguments it did not get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `SESSION <peer_id>`.
    Session,
    /// `ROOM <room_id>`.
    Room,
    /// `ROOM_PEER_MSG <peer_id> <msg>`.
    RoomPeerMsg,
}

/// A text the server sends (forwarded payloads excepted). `Display` renders the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `HELLO`: registration accepted.
    Hello,
    /// `SESSION_OK`: to the caller only.
    SessionOk,
    /// `ROOM_OK <ids...>`; the space after `ROOM_OK` is there even when the room was empty.
    RoomOk(&'a [&'a str]),
    /// `ROOM_PEER_JOINED <id>`.
    RoomPeerJoined(&'a str),
    /// `ROOM_PEER_LEFT <id>`.
    RoomPeerLeft(&'a str),
    /// `ROOM_PEER_MSG <from> <msg>`: the sender's uid replaces the destination's.
    RoomPeerMsg {
        /// The sender's uid.
        from: &'a str,
        /// The message, as it came.
        msg: &'a str,
    },
    /// `ROOM_PEER_LIST <ids...>` (the other members; trailing space when alone).
    RoomPeerList(&'a [&'a str]),
    /// `ERROR peer '<id>' not found`.
    PeerNotFound(&'a str),
    /// `ERROR peer '<id>' busy`: the callee is in a session or a room.
    PeerBusy(&'a str),
    /// `ERROR peer '<id>' is not in the room`.
    PeerNotInRoom(&'a str),
    /// `ERROR invalid room id '<id>'`.
    InvalidRoomId(&'a str),
    /// `ERROR invalid msg, already in room`.
    AlreadyInRoom,
    /// Our deviation: a room command from a peer that is in no room.
    NotInRoom,
    /// Our deviation: a command without its arguments (the original crashes).
    MissingArgument(Verb),
    /// Our deviation: a binary frame outside a session (the original crashes).
    StrayBinary,
}

impl fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reply::Hello => f.write_str("HELLO"),
            Reply::SessionOk => f.write_str("SESSION_OK"),
            Reply::RoomOk(ids) => write_list(f, "ROOM_OK ", ids),
            Reply::RoomPeerJoined(id) => write!(f, "ROOM_PEER_JOINED {id}"),
            Reply::RoomPeerLeft(id) => write!(f, "ROOM_PEER_LEFT {id}"),
            Reply::RoomPeerMsg { from, msg } => write!(f, "ROOM_PEER_MSG {from} {msg}"),
            Reply::RoomPeerList(ids) => write_list(f, "ROOM_PEER_LIST ", ids),
            Reply::PeerNotFound(id) => write!(f, "ERROR peer {} not found", Repr(id)),
            Reply::PeerBusy(id) => write!(f, "ERROR peer {} busy", Repr(id)),
            Reply::PeerNotInRoom(id) => write!(f, "ERROR peer {} is not in the room", Repr(id)),
            Reply::InvalidRoomId(id) => write!(f, "ERROR invalid room id {}", Repr(id)),
            Reply::AlreadyInRoom => f.write_str("ERROR invalid msg, already in room"),
            Reply::NotInRoom => f.write_str("ERROR invalid msg, not in a room"),
            Reply::MissingArgument(Verb::Session) => {
                f.write_str("ERROR invalid msg, SESSION needs a peer id")
            }
            Reply::MissingArgument(Verb::Room) => {
                f.write_str("ERROR invalid msg, ROOM needs a room id")
            }
            Reply::MissingArgument(Verb::RoomPeerMsg) => {
                f.write_str("ERROR invalid msg, ROOM_PEER_MSG needs a peer id and a message")
            }
            Reply::StrayBinary => {
                f.write_str("ERROR invalid msg, binary messages are only forwarded in a session")
            }
        }
    }
}

/// `head` followed by the ids separated by single spaces.
fn write_list(f: &mut fmt::Formatter<'_>, head: &str, ids: &[&str]) -> fmt::Result {
    f.write_str(head)?;
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        f.write_str(id)?;
    }
    Ok(())
}

/// A string quoted like Python's `repr(str)`: single quotes unless the text contains a single
/// quote and no double quote; backslashes, the chosen quote and non-printable characters
/// escaped. Printability is approximated by `char::is_control` and `char::is_whitespace`
/// (Python also escapes format characters such as U+200B, which std cannot classify).
pub struct Repr<'a>(pub &'a str);

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.0.contains('\'') && !self.0.contains('"') {
            '"'
        } else {
            '\''
        };
        f.write_char(quote)?;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\t' => f.write_str("\\t")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                ' ' => f.write_char(' ')?,
                _ if c == quote => write!(f, "\\{c}")?,
                _ if c.is_control() || c.is_whitespace() => {
                    let code = u32::from(c);
                    if code <= 0xff {
                        write!(f, "\\x{code:02x}")?;
                    } else if code <= 0xffff {
                        write!(f, "\\u{code:04x}")?;
                    } else {
                        write!(f, "\\U{code:08x}")?;
                    }
                }
                _ => f.write_char(c)?,
            }
        }
        f.write_char(quote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_replies() {
        assert_eq!(Reply::Hello.to_string(), "HELLO");
        assert_eq!(Reply::SessionOk.to_string(), "SESSION_OK");
        assert_eq!(
            Reply::AlreadyInRoom.to_string(),
            "ERROR invalid msg, already in room"
        );
    }

    #[test]
    fn room_ok_keeps_its_trailing_space_when_empty() {
        assert_eq!(Reply::RoomOk(&[]).to_string(), "ROOM_OK ");
        assert_eq!(Reply::RoomOk(&["a", "b"]).to_string(), "ROOM_OK a b");
        assert_eq!(Reply::RoomPeerList(&[]).to_string(), "ROOM_PEER_LIST ");
        assert_eq!(Reply::RoomPeerList(&["x"]).to_string(), "ROOM_PEER_LIST x");
    }

    #[test]
    fn room_events() {
        assert_eq!(Reply::RoomPeerJoined("a").to_string(), "ROOM_PEER_JOINED a");
        assert_eq!(Reply::RoomPeerLeft("a").to_string(), "ROOM_PEER_LEFT a");
        let msg = Reply::RoomPeerMsg {
            from: "a",
            msg: "{\"sdp\": \"x y  z\"}",
        };
        assert_eq!(msg.to_string(), "ROOM_PEER_MSG a {\"sdp\": \"x y  z\"}");
    }

    #[test]
    fn errors_quote_ids_like_python() {
        assert_eq!(
            Reply::PeerNotFound("b extra").to_string(),
            "ERROR peer 'b extra' not found"
        );
        assert_eq!(Reply::PeerBusy("b").to_string(), "ERROR peer 'b' busy");
        assert_eq!(
            Reply::PeerNotInRoom("c").to_string(),
            "ERROR peer 'c' is not in the room"
        );
        assert_eq!(
            Reply::InvalidRoomId("session").to_string(),
            "ERROR invalid room id 'session'"
        );
    }

    #[test]
    fn repr_matches_python() {
        // Expected values from Python 3's repr().
        assert_eq!(Repr("a").to_string(), "'a'");
        assert_eq!(Repr("it's").to_string(), "\"it's\"");
        assert_eq!(Repr("'\"").to_string(), "'\\'\"'");
        assert_eq!(Repr("a\\b").to_string(), "'a\\\\b'");
        assert_eq!(Repr("a\tb\n").to_string(), "'a\\tb\\n'");
        assert_eq!(Repr("\x1f\x7f").to_string(), "'\\x1f\\x7f'");
        assert_eq!(Repr("\u{a0}\u{2028}").to_string(), "'\\xa0\\u2028'");
        assert_eq!(Repr("é😀").to_string(), "'é😀'");
    }

    #[test]
    fn deviation_texts_start_with_error() {
        let texts = [
            Reply::NotInRoom,
            Reply::MissingArgument(Verb::Session),
            Reply::MissingArgument(Verb::Room),
            Reply::MissingArgument(Verb::RoomPeerMsg),
            Reply::StrayBinary,
        ];
        for reply in texts {
            assert!(reply.to_string().starts_with("ERROR "), "{reply:?}");
        }
    }
}
