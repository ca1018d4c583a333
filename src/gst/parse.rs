//! Parsing of the text commands of the GStreamer signalling protocol.
//!
//! Arguments are split the way the original splits them (Python's `str.split()` with a
//! `maxsplit`): on runs of whitespace, the last argument keeping its inner and trailing
//! whitespace. Unlike the original, which tests prefixes (`startswith`), a command word must
//! match exactly: `SESSIONX b` is not `SESSION b`.

use super::msg::Verb;

/// Whitespace as Python's `str.isspace` sees it: Unicode whitespace plus the four ASCII
/// separators U+001C..U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Why a first message is not a valid registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// The first word is not exactly `HELLO` (or the text is empty).
    NotHello,
    /// `HELLO` without a uid, or a uid containing whitespace.
    BadUid,
}

/// The uid of a registration message `HELLO <uid>`. Leading whitespace and the run of
/// whitespace after `HELLO` are skipped, as in the original; whether the uid is in use is the
/// hub's business.
pub fn hello(text: &str) -> Result<&str, HelloError> {
    let (word, uid) = split_word(text.trim_start_matches(is_space));
    if word != "HELLO" {
        return Err(HelloError::NotHello);
    }
    if uid.is_empty() || uid.contains(is_space) {
        return Err(HelloError::BadUid);
    }
    Ok(uid)
}

/// A text from a registered peer that is not in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELLO ...` again.
    Hello,
    /// `SESSION <peer_id>`; the id is everything after the separating whitespace.
    Session {
        /// The callee's uid as given (it may contain whitespace and then matches nobody).
        peer: &'a str,
    },
    /// `ROOM <room_id>`; the id is everything after the separating whitespace.
    Room {
        /// The room id as given (see [`valid_room_id`]).
        room: &'a str,
    },
    /// `ROOM_PEER_MSG <peer_id> <msg>`.
    RoomPeerMsg {
        /// The destination's uid.
        peer: &'a str,
        /// The message: inner and trailing whitespace kept, leading whitespace dropped.
        msg: &'a str,
    },
    /// `ROOM_PEER_LIST` (anything after the word is ignored).
    RoomPeerList,
    /// A known command without the arguments it needs.
    Missing(Verb),
    /// Any other text.
    Other,
}

/// Parses a text by its first word, which must start the text and match exactly.
pub fn command(text: &str) -> Command<'_> {
    let (word, rest) = split_word(text);
    match word {
        "HELLO" => Command::Hello,
        "SESSION" if rest.is_empty() => Command::Missing(Verb::Session),
        "SESSION" => Command::Session { peer: rest },
        "ROOM" if rest.is_empty() => Command::Missing(Verb::Room),
        "ROOM" => Command::Room { room: rest },
        "ROOM_PEER_MSG" => match split_word(rest) {
            ("", _) | (_, "") => Command::Missing(Verb::RoomPeerMsg),
            (peer, msg) => Command::RoomPeerMsg { peer, msg },
        },
        "ROOM_PEER_LIST" => Command::RoomPeerList,
        _ => Command::Other,
    }
}

/// Whether a room id is acceptable: not `session` (a reserved word of the original) and
/// without whitespace.
pub fn valid_room_id(room: &str) -> bool {
    room != "session" && !room.contains(is_space)
}

/// Splits `text` at its first whitespace: the word before it, and the rest after the whole
/// whitespace run (empty when nothing follows).
fn split_word(text: &str) -> (&str, &str) {
    match text.find(is_space) {
        Some(at) => {
            let (word, rest) = text.split_at(at);
            (word, rest.trim_start_matches(is_space))
        }
        None => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_takes_the_uid_after_any_whitespace() {
        assert_eq!(hello("HELLO a"), Ok("a"));
        assert_eq!(hello("HELLO   a"), Ok("a"));
        assert_eq!(hello("HELLO\ta"), Ok("a"));
        assert_eq!(hello("  HELLO a"), Ok("a"));
        assert_eq!(hello("HELLO ünï"), Ok("ünï"));
    }

    #[test]
    fn hello_refuses_other_words() {
        for text in ["", "   ", "HI x", "hello x", "SESSION x", "HELLOX x", "HI"] {
            assert_eq!(hello(text), Err(HelloError::NotHello), "{text:?}");
        }
    }

    #[test]
    fn hello_refuses_bad_uids() {
        for text in [
            "HELLO",
            "HELLO ",
            "HELLO x y",
            "HELLO x ",
            "HELLO x\n",
            "HELLO x\u{1f}",
        ] {
            assert_eq!(hello(text), Err(HelloError::BadUid), "{text:?}");
        }
    }

    #[test]
    fn session_and_room_take_the_rest() {
        assert_eq!(command("SESSION b"), Command::Session { peer: "b" });
        assert_eq!(command("SESSION\t b"), Command::Session { peer: "b" });
        assert_eq!(
            command("SESSION b extra"),
            Command::Session { peer: "b extra" }
        );
        assert_eq!(command("SESSION b "), Command::Session { peer: "b " });
        assert_eq!(command("ROOM r"), Command::Room { room: "r" });
        assert_eq!(command("ROOM a b"), Command::Room { room: "a b" });
    }

    #[test]
    fn missing_arguments() {
        assert_eq!(command("SESSION"), Command::Missing(Verb::Session));
        assert_eq!(command("SESSION  "), Command::Missing(Verb::Session));
        assert_eq!(command("ROOM"), Command::Missing(Verb::Room));
        assert_eq!(command("ROOM\n"), Command::Missing(Verb::Room));
        assert_eq!(
            command("ROOM_PEER_MSG"),
            Command::Missing(Verb::RoomPeerMsg)
        );
        assert_eq!(
            command("ROOM_PEER_MSG a"),
            Command::Missing(Verb::RoomPeerMsg)
        );
        assert_eq!(
            command("ROOM_PEER_MSG a  "),
            Command::Missing(Verb::RoomPeerMsg)
        );
    }

    #[test]
    fn room_peer_msg_keeps_inner_whitespace() {
        assert_eq!(
            command("ROOM_PEER_MSG a   {\"sdp\": \"x y  z\"} "),
            Command::RoomPeerMsg {
                peer: "a",
                msg: "{\"sdp\": \"x y  z\"} "
            }
        );
    }

    #[test]
    fn command_words_are_exact() {
        for text in [
            "SESSIONX b",
            "ROOMX r",
            "ROOM_PEER_MSGX a b",
            "ROOM_PEER_LISTX",
            " SESSION b",
            "session b",
            "OFFER_REQUEST",
            "",
            "FOO",
        ] {
            assert_eq!(command(text), Command::Other, "{text:?}");
        }
        assert_eq!(command("ROOM_PEER_LIST"), Command::RoomPeerList);
        assert_eq!(command("ROOM_PEER_LIST please"), Command::RoomPeerList);
        assert_eq!(command("HELLO x"), Command::Hello);
    }

    #[test]
    fn room_ids() {
        assert!(valid_room_id("r"));
        assert!(valid_room_id("sessions"));
        assert!(!valid_room_id("session"));
        assert!(!valid_room_id("a b"));
        assert!(!valid_room_id("a\u{3000}b"));
    }
}
