//! WHIP ingest and WHEP playback: sessions created over HTTP that are in-process clients of
//! a group (docs/whip.md).
//!
//! A WHIP session is a client that joins a group like any other (the group's members see a
//! `user add`, username `whip` or the token's) and publishes one stream from the SDP offer
//! its HTTP client posted. A WHEP session joins the same way (username `whep` or the
//! token's) and follows the group's streams through one stream that answers its client's
//! offer ([`crate::streams::Follow`]). Neither has a WebSocket: the facade attaches the
//! client, routes the stream notices it gets here ([`Hub::handle_notice`]), and ends the
//! clients this hub lists in [`Hub::take_ended`].
//!
//! The HTTP side (`crate::http::whip`) parses requests and renders replies; this module keeps
//! the sessions: their secret resource ids, ETags, tokens and last offers, joins, offers,
//! trickled candidates, ICE restarts and endings.
//!
//! # Run loop
//!
//! Sans-IO like the rest: every call takes `now`. A call that negotiates ([`Hub::create`],
//! [`Hub::patch`] with new ICE credentials) leaves the answer to come as a stream notice;
//! the facade drains the notices, then takes the result with [`Hub::outcome`]. A session
//! that is not connected [`CONNECT_TIMEOUT`] after its offer (or ICE restart) ends at its
//! deadline ([`Hub::handle_timeout`]). It also ends when DELETE asks, when its stream fails
//! (ICE or DTLS), when its client is kicked (an operator, the server's shutdown), and when
//! its publishing permission goes.

pub mod sdpfrag;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::config::Permission;
use crate::conn::{ConnId, Deadlines};
use crate::core::{Core, JoinFailure, JoinRequest};
use crate::streams::{Follow, NO_MEDIA, Publish, StreamNotice, Streams};

/// How long a session may take to connect (ICE and DTLS) after its offer or an ICE restart.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// WHIP sessions and WHEP sessions live side by side (a WHIP resource is not a WHEP one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ingest: the client publishes.
    Whip,
    /// Playback: the client receives.
    Whep,
}

impl Kind {
    /// The path element of the endpoint (`.whip`, `.whep`).
    pub fn path_kind(self) -> &'static str {
        match self {
            Kind::Whip => ".whip",
            Kind::Whep => ".whep",
        }
    }

    /// The username a session joins with when its token names none.
    pub fn username(self) -> &'static str {
        match self {
            Kind::Whip => "whip",
            Kind::Whep => "whep",
        }
    }
}

/// Why a request failed, as the HTTP layer maps it to a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhipError {
    /// The group does not exist (404).
    NoSuchGroup,
    /// Bad credentials (401).
    NotAuthorised,
    /// The user may not publish (403).
    Forbidden,
    /// The group refused the join: locked, full, closed... (403 with the reason).
    Refused(String),
    /// The offer could not be used (400 with the reason).
    BadOffer(String),
    /// The trickle fragment could not be read (400).
    BadFragment(&'static str),
    /// No media engine runs (503).
    NoMedia,
    /// The session is gone (404).
    Gone,
    /// Anything else (500).
    Internal,
}

/// What a new session asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    /// WHIP or WHEP.
    pub kind: Kind,
    /// The group.
    pub group: &'a str,
    /// The bearer token, if any.
    pub token: Option<&'a str>,
    /// The client's SDP offer.
    pub offer: &'a str,
    /// WHEP: which streams it follows.
    pub follow: Follow,
}

/// A session created: what the `201` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The secret id in the resource URL.
    pub resource: String,
    /// The resource's entity tag (quoted).
    pub etag: String,
    /// The SDP answer.
    pub answer: String,
}

/// What a session's resource is, for the HTTP checks before a request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The session's client.
    pub conn: ConnId,
    /// The token it was created with (the same one is required on the resource).
    pub token: Option<String>,
    /// Its entity tag (quoted).
    pub etag: String,
}

/// What a PATCH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Candidates added (204).
    Trickled,
    /// An ICE restart is negotiating: the answer comes with [`Hub::outcome`].
    Restarting,
}

/// One session.
#[derive(Debug)]
struct Session {
    kind: Kind,
    group: String,
    resource: String,
    token: Option<String>,
    etag: String,
    /// The stream's id in the media session layer.
    stream: String,
    /// The last offer (patched on ICE restarts).
    offer: String,
    /// An offer was sent and its outcome not taken yet ([`Hub::outcome`]).
    negotiating: bool,
    /// The result of the current negotiation, once the notices told it.
    outcome: Option<Result<String, WhipError>>,
    /// An error text that came with a refusal.
    error: Option<String>,
}

/// The sessions. See the module documentation.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: HashMap<ConnId, Session>,
    resources: HashMap<String, ConnId>,
    ended: Vec<ConnId>,
}

/// `n` random bytes, base64url without padding.
fn random_id(n: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; n];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // Without randomness no resource may be created: an unguessable URL is the session's
        // only protection when it has no token.
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Hub {
    /// No sessions.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Whether `conn` is a session's client.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.sessions.contains_key(&conn)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// A fresh client id for a session's client (what other members see as its id).
    pub fn new_client_id() -> String {
        random_id(16)
    }

    /// The session at `resource` if it is a `kind` session of `group`.
    pub fn resource(&self, kind: Kind, group: &str, resource: &str) -> Option<Resource> {
        let conn = *self.resources.get(resource)?;
        let session = self.sessions.get(&conn)?;
        (session.kind == kind && session.group == group).then(|| Resource {
            conn,
            token: session.token.clone(),
            etag: session.etag.clone(),
        })
    }

    /// A new session for client `conn` (attached to the core, with a unique client id, not
    /// in a group yet): joins `request.group` and sends the offer. On `Ok` the answer is
    /// negotiating: drain the stream notices, then [`Hub::outcome`]. On `Err` the client must
    /// be removed from the core.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: CreateRequest<'_>,
        core: &mut Core,
        streams: &mut Streams,
        deadlines: &mut Deadlines<ConnId>,
    ) -> Result<(), WhipError> {
        let CreateRequest {
            kind,
            group,
            token,
            offer,
            follow,
        } = request;
        if !streams.is_enabled() {
            return Err(WhipError::NoMedia);
        }
        let join = JoinRequest {
            group: group.to_owned(),
            username: Some(kind.username().to_owned()),
            password: token.is_none().then(String::new),
            token: token.map(str::to_owned),
            data: Default::default(),
        };
        core.join(now, conn, join)
            .map_err(|failure| match failure {
                JoinFailure::NotAuthorised | JoinFailure::DuplicateUsername => {
                    WhipError::NotAuthorised
                }
                JoinFailure::NoSuchGroup => WhipError::NoSuchGroup,
                JoinFailure::Refused(why) => WhipError::Refused(why),
                JoinFailure::NeedUsername | JoinFailure::Internal | JoinFailure::Redirect(_) => {
                    WhipError::Internal
                }
            })?;
        let joined_group = core
            .client(conn)
            .and_then(|c| c.group())
            .unwrap_or(group)
            .to_owned();
        if kind == Kind::Whip
            && !core
                .client(conn)
                .is_some_and(|c| c.has(Permission::Present))
        {
            return Err(WhipError::Forbidden);
        }
        let resource = random_id(16);
        let etag = random_id(12);
        if resource.is_empty() || etag.is_empty() {
            return Err(WhipError::Internal);
        }
        let stream = random_id(8);
        self.sessions.insert(
            conn,
            Session {
                kind,
                group: joined_group,
                resource: resource.clone(),
                token: token.map(str::to_owned),
                etag: format!("\"{etag}\""),
                stream: stream.clone(),
                offer: offer.to_owned(),
                negotiating: true,
                outcome: None,
                error: None,
            },
        );
        self.resources.insert(resource, conn);
        deadlines.schedule(conn, now + CONNECT_TIMEOUT);
        negotiate(now, conn, kind, &stream, offer, follow, core, streams);
        Ok(())
    }

    /// The result of `conn`'s last negotiation, after its notices were drained: the answer,
    /// or why it failed (the session then ends). A session whose negotiation had no answer
    /// ends too.
    pub fn outcome(&mut self, conn: ConnId) -> Result<Created, WhipError> {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return Err(WhipError::Gone);
        };
        session.negotiating = false;
        match session.outcome.take() {
            Some(Ok(answer)) => Ok(Created {
                resource: session.resource.clone(),
                etag: session.etag.clone(),
                answer,
            }),
            Some(Err(e)) => {
                self.end(conn);
                Err(e)
            }
            None => {
                log::warn!("{conn:?}: WHIP/WHEP negotiation gave no answer");
                self.end(conn);
                Err(WhipError::Internal)
            }
        }
    }

    /// A trickle or ICE-restart fragment for `conn`'s session. New credentials restart ICE
    /// (the answer then comes with [`Hub::outcome`]); otherwise the candidates are added.
    pub fn patch(
        &mut self,
        now: Instant,
        conn: ConnId,
        fragment: &str,
        core: &mut Core,
        streams: &mut Streams,
        deadlines: &mut Deadlines<ConnId>,
    ) -> Result<Patched, WhipError> {
        let fragment = sdpfrag::parse(fragment).map_err(|e| WhipError::BadFragment(e.0))?;
        let Some(session) = self.sessions.get_mut(&conn) else {
            return Err(WhipError::Gone);
        };
        let current = sdpfrag::credentials(&session.offer);
        match fragment.credentials {
            Some(new) if Some(&new) != current.as_ref() => {
                let offer = sdpfrag::restarted_offer(
                    &session.offer,
                    (&new.0, &new.1),
                    &fragment.candidates,
                );
                session.offer = offer.clone();
                session.etag = format!("\"{}\"", random_id(12));
                session.negotiating = true;
                session.outcome = None;
                let (kind, stream) = (session.kind, session.stream.clone());
                deadlines.schedule(conn, now + CONNECT_TIMEOUT);
                negotiate(
                    now,
                    conn,
                    kind,
                    &stream,
                    &offer,
                    Follow::default(),
                    core,
                    streams,
                );
                Ok(Patched::Restarting)
            }
            _ => {
                let stream = session.stream.clone();
                for candidate in &fragment.candidates {
                    streams.add_candidate(now, core, conn, &stream, candidate);
                }
                Ok(Patched::Trickled)
            }
        }
    }

    /// DELETE: the session ends.
    pub fn delete(&mut self, conn: ConnId) {
        if self.sessions.contains_key(&conn) {
            log::debug!("{conn:?}: WHIP/WHEP session deleted");
            self.end(conn);
        }
    }

    /// A stream notice for a session's client.
    pub fn handle_notice(&mut self, conn: ConnId, notice: StreamNotice) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        match notice {
            StreamNotice::Answer { id, sdp } if id == session.stream && session.negotiating => {
                session.outcome = Some(Ok(sdp));
            }
            StreamNotice::Error(text) => {
                log::debug!("{conn:?}: WHIP/WHEP session: {text}");
                // A refusal is `Abort` then `Error`: the text says why the outcome failed.
                if let Some(Err(outcome)) = &mut session.outcome {
                    *outcome = refusal(Some(text));
                } else {
                    session.error = Some(text);
                }
            }
            StreamNotice::Abort { id } | StreamNotice::Close { id } if id == session.stream => {
                let error = refusal(session.error.take());
                if session.negotiating && session.outcome.is_none() {
                    // Reported by `outcome`, which ends the session.
                    session.outcome = Some(Err(error));
                    return;
                }
                log::debug!("{conn:?}: WHIP/WHEP stream ended");
                self.end(conn);
            }
            StreamNotice::Renegotiate { id } if id == session.stream => {
                // ICE failed: the session is over (its client may start a new one).
                log::debug!("{conn:?}: WHIP stream's ICE failed");
                self.end(conn);
            }
            _ => {}
        }
    }

    /// `conn`'s deadline passed: a session that is not connected by now ends.
    pub fn handle_timeout(&mut self, conn: ConnId, streams: &Streams) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if streams.is_connected(conn, &session.stream) != Some(true) {
            log::info!(
                "{conn:?}: WHIP/WHEP session in {:?} not connected after {CONNECT_TIMEOUT:?}",
                session.group
            );
            self.end(conn);
        }
    }

    /// `conn` was kicked or left its group: its session ends.
    pub fn client_left(&mut self, conn: ConnId) {
        if self.sessions.contains_key(&conn) {
            self.end(conn);
        }
    }

    /// The sessions that ended since the last call: the facade removes their clients.
    pub fn take_ended(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.ended)
    }

    /// Forgets the session of `conn` at once and lists it as ended.
    fn end(&mut self, conn: ConnId) {
        if let Some(session) = self.sessions.remove(&conn) {
            self.resources.remove(&session.resource);
            self.ended.push(conn);
        }
    }
}

/// The error a refusal of the media session layer stands for, from its text.
fn refusal(text: Option<String>) -> WhipError {
    match text {
        Some(text) if text == NO_MEDIA => WhipError::NoMedia,
        Some(text) => WhipError::BadOffer(text),
        None => WhipError::Gone,
    }
}

#[cfg(test)]
mod tests;

/// Sends `offer` for the session's stream: a publication (WHIP) or a follower (WHEP).
#[allow(clippy::too_many_arguments)]
fn negotiate(
    now: Instant,
    conn: ConnId,
    kind: Kind,
    stream: &str,
    offer: &str,
    follow: Follow,
    core: &mut Core,
    streams: &mut Streams,
) {
    match kind {
        Kind::Whip => {
            let publish = Publish {
                id: stream,
                label: "",
                track_labels: &[],
                replace: "",
                sdp: offer,
            };
            streams.publish(now, core, conn, publish);
        }
        Kind::Whep => streams.follow(now, core, conn, stream, offer, follow),
    }
}
