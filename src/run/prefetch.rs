//! Which configuration files an input will read, so that the runtime can refresh them off the
//! executor thread before handing the input to the engine (see [`crate::config::cache`]).
//!
//! The rules follow what the engine reads:
//!
//! - every HTTP request: `config.json` (canonical host, `proxyURL` for `.status` and
//!   `/public-groups.json`, `allowOrigin` for WebSocket upgrades); `/group/…` pages and
//!   `.status`: the group and its parents; WHIP and WHEP requests: the group and its
//!   parents, `ice-servers.json` and the tokens; `/public-groups.json`: the walk of the groups
//!   directory and every group file; Camus pages, upgrades and `/public`: `camus-rooms.json`;
//!   `/recordings/<group>/…`: the group;
//! - a Galène `join`: the group and its parents, `config.json`, `ice-servers.json` and the
//!   tokens; an `offer`: the joined group (its codecs); a token group action: the tokens;
//! - a Camus `get-ice-servers`: `ice-servers.json`.
//!
//! Frames are recognised by a substring check first (`"join"`, `"offer"`, `token`), and only
//! those are parsed here; the engine still parses every frame itself. A file these rules
//! miss is still read, synchronously, by the engine (counted by
//! [`crate::config::FileCache::fallback_reads`]).

use crate::config::FileNeed;
use crate::galene::msg::Message;
use crate::http::Request;
use crate::http::path::parse_target;
use crate::http::route::{Signalling, group_of_path};

/// The files routing `request` reads.
pub(super) fn for_request(request: &Request) -> Vec<FileNeed> {
    let mut needs = vec![FileNeed::Config];
    let Some(target) = parse_target(&request.target) else {
        return needs;
    };
    let path = target.path.as_str();
    if path == "/public-groups.json" {
        needs.push(FileNeed::PublicGroups);
    } else if crate::http::whip::is_whip_path(path) {
        // A WHIP or WHEP session joins the group (and its `Link` headers list ICE servers).
        let (dir, _, _) = crate::http::path::split_kind(path);
        needs.extend(crate::http::route::group_name(&format!("{dir}/")).map(FileNeed::Group));
        needs.extend([FileNeed::IceServers, FileNeed::Tokens]);
    } else if path.starts_with("/group/") {
        needs.extend(group_of_path(path).map(FileNeed::Group));
    } else if path == "/public" || path.starts_with("/chat/") || path.starts_with("/room/") {
        needs.push(FileNeed::CamusRooms);
    } else if let Some(rest) = path.strip_prefix("/recordings/") {
        // `<group>/` or `<group>/<file>`: the group whose credentials are checked.
        let group = match rest.rsplit_once('/') {
            Some((group, _)) => group,
            None => rest,
        };
        if !group.is_empty() {
            needs.push(FileNeed::Group(group.to_owned()));
        }
    }
    needs
}

/// The protocol a WebSocket speaks, as far as its file reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Galene,
    Gst,
    Camus,
}

/// What one WebSocket connection's frames will read; remembers the group a Galène client
/// asked to join, which its offers read.
#[derive(Debug)]
pub(super) struct FrameNeeds {
    protocol: Protocol,
    joined_group: Option<String>,
}

impl FrameNeeds {
    /// For a connection speaking `signalling`.
    pub(super) fn new(signalling: &Signalling) -> FrameNeeds {
        let protocol = match signalling {
            Signalling::Galene => Protocol::Galene,
            Signalling::Gst => Protocol::Gst,
            Signalling::Camus(_) => Protocol::Camus,
        };
        FrameNeeds {
            protocol,
            joined_group: None,
        }
    }

    /// The files handling the text frame `text` reads (often none).
    pub(super) fn for_text(&mut self, text: &str) -> Vec<FileNeed> {
        match self.protocol {
            Protocol::Galene => self.galene(text),
            Protocol::Camus if text.contains("get-ice-servers") => vec![FileNeed::IceServers],
            Protocol::Camus | Protocol::Gst => Vec::new(),
        }
    }

    fn galene(&mut self, text: &str) -> Vec<FileNeed> {
        // Message types are matched exactly by the engine, so they appear verbatim.
        let maybe_join = text.contains("\"join\"");
        let maybe_offer = text.contains("\"offer\"");
        let maybe_token = text.contains("token");
        if !(maybe_join || maybe_offer || maybe_token) {
            return Vec::new();
        }
        let Ok(message) = Message::parse(text) else {
            return Vec::new();
        };
        match (message.kind_of.as_str(), message.kind.as_str()) {
            ("join", "join") => {
                self.joined_group = Some(message.group.clone());
                vec![
                    FileNeed::Group(message.group),
                    FileNeed::Config,
                    FileNeed::IceServers,
                    FileNeed::Tokens,
                ]
            }
            ("offer", _) => self
                .joined_group
                .clone()
                .map(FileNeed::Group)
                .into_iter()
                .collect(),
            ("groupaction", kind) if kind.contains("token") => vec![FileNeed::Tokens],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            tls: false,
        }
    }

    #[test]
    fn requests() {
        assert_eq!(for_request(&get("/")), [FileNeed::Config]);
        assert_eq!(
            for_request(&get("/group/a/b/.status")),
            [FileNeed::Config, FileNeed::Group("a/b".into())]
        );
        assert_eq!(
            for_request(&get("/group/a/b/")),
            [FileNeed::Config, FileNeed::Group("a/b".into())]
        );
        assert_eq!(
            for_request(&get("/public-groups.json")),
            [FileNeed::Config, FileNeed::PublicGroups]
        );
        assert_eq!(
            for_request(&get("/chat/lobby/ws")),
            [FileNeed::Config, FileNeed::CamusRooms]
        );
        assert_eq!(for_request(&get("/ws")), [FileNeed::Config]);
    }

    #[test]
    fn galene_frames() {
        let mut needs = FrameNeeds::new(&Signalling::Galene);
        assert!(
            needs
                .for_text(r#"{"type":"offer","id":"s","sdp":"x"}"#)
                .is_empty()
        );
        assert_eq!(
            needs.for_text(r#"{"type": "join", "kind": "join", "group": "g/h", "username": "u"}"#),
            [
                FileNeed::Group("g/h".into()),
                FileNeed::Config,
                FileNeed::IceServers,
                FileNeed::Tokens
            ]
        );
        assert_eq!(
            needs.for_text(r#"{"type":"offer","id":"s","sdp":"x"}"#),
            [FileNeed::Group("g/h".into())]
        );
        assert_eq!(
            needs.for_text(r#"{"type":"groupaction","kind":"listtokens"}"#),
            [FileNeed::Tokens]
        );
        assert!(
            needs
                .for_text(r#"{"type":"chat","value":"join us, bring a token"}"#)
                .is_empty()
        );
        assert!(
            needs
                .for_text(r#"{"type":"join","kind":"leave","group":"g/h"}"#)
                .is_empty()
        );
        assert!(needs.for_text("\"join\" but not JSON").is_empty());
    }

    #[test]
    fn other_protocols() {
        let mut gst = FrameNeeds::new(&Signalling::Gst);
        assert!(gst.for_text(r#"{"type":"join","kind":"join"}"#).is_empty());
    }
}
