//! Viewers that make their own offer (WHEP): a client follows its group's streams through
//! one down stream that answers its offer, and is fed the newest stream that matches what
//! it asked for.
//!
//! The rule, in full: a follower carries one stream of its group at a time, the newest
//! (last published) one that matches its [`Follow`] and whose codecs its answer negotiated.
//! When a newer matching stream's tracks become known it switches to it, at that stream's
//! next keyframe; when its stream ends it moves to the newest remaining match; with none
//! left it sends nothing and waits for the next one. Its m-lines never change (the viewer
//! cannot be sent an offer): the audio of a stream goes to its audio m-line, the first video
//! to its video m-line, and a kind it did not offer is left out.
//!
//! A follower ends when its client leaves or is removed ([`Streams::remove_client`]), or
//! when its stream fails in the engine (ICE or DTLS); the client is then told
//! [`StreamNotice::Close`].

use std::time::Instant;

use crate::conn::ConnId;
use crate::core::Core;
use crate::media::{LinkKey, MediaError, StreamKey};

use super::{NO_MEDIA, StreamNotice, Streams, UpStream, group_codecs};

/// Which of its group's streams a follower gets: the newest that matches every field given
/// (none given: the newest stream of the group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follow {
    /// The publisher's username.
    pub username: Option<String>,
    /// The stream's label (`camera`, `screenshare`; `""` for WHIP streams).
    pub label: Option<String>,
    /// The stream's id as its publisher named it.
    pub stream: Option<String>,
}

impl Follow {
    fn matches(&self, up: &UpStream, core: &Core) -> bool {
        let username = || core.client(up.owner).and_then(|c| c.username());
        self.stream.as_ref().is_none_or(|s| *s == up.id)
            && self.label.as_ref().is_none_or(|l| *l == up.label)
            && self
                .username
                .as_ref()
                .is_none_or(|u| username() == Some(u.as_str()))
    }
}

/// One follower: its down stream and what it follows.
#[derive(Debug)]
pub(super) struct Follower {
    /// The engine's key of its down stream.
    pub key: StreamKey,
    /// The id the client gave its stream.
    pub id: String,
    /// What it follows.
    pub follow: Follow,
    /// The up stream it carries now, if any.
    pub source: Option<StreamKey>,
}

impl Streams {
    /// `from` offers to receive as stream `id`, following the streams of its group that
    /// `follow` names (see the module documentation). The answer comes out as
    /// [`StreamNotice::Answer`], a refusal as `Abort` and `Error`. The same `id` again
    /// renegotiates (an ICE restart); a client follows through one stream at a time.
    pub fn follow(
        &mut self,
        now: Instant,
        core: &mut Core,
        from: ConnId,
        id: &str,
        offer: &str,
        follow: Follow,
    ) {
        if core.client(from).and_then(|c| c.group()).is_none() {
            self.refuse(from, id, "join a group first");
            return;
        }
        if self.sfu.is_none() {
            self.refuse(from, id, NO_MEDIA);
            return;
        }
        let existing = self.followers.get(&from).map(|f| (f.key, f.id == id));
        if existing.is_some_and(|(_, same)| !same) {
            self.refuse(from, id, "already following a stream");
            return;
        }
        let key = existing.map_or_else(|| self.new_key(), |(key, _)| key);
        let codecs = group_codecs(core, from);
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        match sfu.answer_down(now, key, LinkKey(from.0), offer, &codecs) {
            Ok(sdp) => {
                if existing.is_none() {
                    self.followers.insert(
                        from,
                        super::follow::Follower {
                            key,
                            id: id.to_owned(),
                            follow,
                            source: None,
                        },
                    );
                    self.follower_keys.insert(key, from);
                }
                self.notices.push_back((
                    from,
                    StreamNotice::Answer {
                        id: id.to_owned(),
                        sdp,
                    },
                ));
                self.refollow(now, core, from);
            }
            Err(e) => {
                log::debug!("{from:?}: offer to follow {id:?} failed: {e}");
                if existing.is_some() {
                    self.end_follower(now, from, false);
                }
                self.refuse(from, id, &e.to_string());
            }
        }
        self.process_events(now, core);
    }

    /// Brings follower `conn` onto the newest matching stream of its group, if that is not
    /// the one it carries.
    pub(super) fn refollow(&mut self, now: Instant, core: &Core, conn: ConnId) {
        let Some(follower) = self.followers.get(&conn) else {
            return;
        };
        let Some(group) = core.client(conn).and_then(|c| c.group()) else {
            return;
        };
        let mut candidates: Vec<StreamKey> = Vec::new();
        for member in core.members(group) {
            if *member == conn {
                continue;
            }
            let Some(streams) = self.clients.get(member) else {
                continue;
            };
            candidates.extend(streams.ups.iter().copied().filter(|k| {
                self.ups
                    .get(k)
                    .is_some_and(|up| !up.tracks.is_empty() && follower.follow.matches(up, core))
            }));
        }
        // Keys grow with every new stream: the newest first.
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let key = follower.key;
        let current = follower.source;
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        let mut chosen = None;
        for candidate in candidates {
            if Some(candidate) == current {
                return;
            }
            match sfu.replace_source(now, key, candidate) {
                Ok(_) => {
                    chosen = Some(candidate);
                    break;
                }
                Err(MediaError::CodecMismatch) => {}
                Err(e) => log::debug!("{conn:?}: cannot follow stream {}: {e}", candidate.0),
            }
        }
        if let Some(follower) = self.followers.get_mut(&conn)
            && chosen.is_some()
        {
            log::debug!("{conn:?}: follows stream {:?}", chosen.map(|k| k.0));
            follower.source = chosen;
        }
    }

    /// Moves every follower in `group` onto its newest match.
    pub(super) fn refollow_group(&mut self, now: Instant, core: &Core, group: &str) {
        let followers: Vec<ConnId> = core
            .members(group)
            .iter()
            .copied()
            .filter(|m| self.followers.contains_key(m))
            .collect();
        for conn in followers {
            self.refollow(now, core, conn);
        }
    }

    /// Up stream `key` is gone: its followers look for another stream (once the current
    /// input's events are processed).
    pub(super) fn orphan_followers(&mut self, key: StreamKey) {
        for (conn, follower) in &mut self.followers {
            if follower.source == Some(key) {
                follower.source = None;
                self.orphans.push(*conn);
            }
        }
    }

    /// Ends `conn`'s follower: its stream closes; the client is told when `tell`.
    pub(super) fn end_follower(&mut self, now: Instant, conn: ConnId, tell: bool) {
        let Some(follower) = self.followers.remove(&conn) else {
            return;
        };
        self.follower_keys.remove(&follower.key);
        if let Some(sfu) = self.sfu.as_mut() {
            let _ = sfu.close_stream(now, follower.key);
        }
        if tell {
            self.notices
                .push_back((conn, StreamNotice::Close { id: follower.id }));
        }
    }
}
