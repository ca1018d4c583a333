//! One Galène WebSocket connection: handshake, dialect, liveness, anti-spoofing, and the
//! translation of wire messages into core requests (docs/galene.md, "The WebSocket protocol").
//!
//! A session is driven with `now`: [`Session::handle_text`] for every text frame,
//! [`Session::handle_timeout`] when [`Session::next_deadline`] has passed, and
//! [`Session::render`] for every core event addressed to it. Everything it wants to send
//! goes to the [`Outbox`]; once it has queued a close, it ignores everything.
//!
//! Deliberate differences from Galène (docs/galene.md, "Differences from Galène"):
//! - an unknown `useraction` or `groupaction` kind is reported with an error user message
//!   and the connection stays open (Galène disconnects);
//! - liveness uses exact deadlines instead of a 10 s polling tick: a ping is sent 20 s after
//!   the last frame received, and the connection is dropped (1011) 45 s after it
//!   ([`GALENE_PING_AFTER`], [`GALENE_DEAD_AFTER`]);
//! - `request` before joining is a user error (`join a group first`, close 1000);
//! - chat and user messages without `source`/`username` get the sender's (see
//!   [`Core::send_message`]);
//! - a version "2" client is told with a `sfubox-layer` user message when the video of one of
//!   its down streams is reduced by its network, and when it is back
//!   ([`render::layer_reduced`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conn::{ConnId, GALENE_DEAD_AFTER, GALENE_PING_AFTER, Outbox};
use crate::core::{
    ActionError, Core, Event, GroupAction, JoinFailure, JoinRequest, MessageKind,
    NOT_AUTHORISED_DELAY, OutgoingMessage, PermissionChange, UserAction,
};

pub use super::msg::Dialect;
use super::msg::Message;
use super::parse;
use super::render;
use crate::streams::{Publish, StreamNotice, Streams};

/// The first message must arrive within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Larger incoming messages are refused.
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;
/// Frames kept while a delayed reply is pending; more closes the connection.
pub const MAX_DEFERRED_FRAMES: usize = 64;

/// Where a session is in its life.
#[derive(Debug)]
enum Phase {
    /// Waiting for the client's handshake.
    AwaitingHandshake,
    /// Handshake done.
    Open(Open),
    /// A close was queued; nothing more happens.
    Closed,
}

/// The state of an established session.
#[derive(Debug)]
struct Open {
    dialect: Dialect,
    /// The client id announced in the handshake.
    id: String,
}

/// A reply held back (a failed join answers after 200 ms), with the frames that arrived
/// meanwhile, processed in order once the reply is out.
#[derive(Debug)]
struct Deferred {
    until: Instant,
    reply: Message,
    frames: VecDeque<String>,
}

/// How a request ends the session (docs/galene.md, "How a session ends").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Error user message, then close 1002 with the text.
    Protocol(String),
    /// Error user message, then close 1000 with the text.
    User(String),
    /// Close 1011 with the text (malformed input, unknown stream, dead client).
    Internal(String),
}

impl Failure {
    fn protocol(text: &str) -> Failure {
        Failure::Protocol(text.to_owned())
    }
}

/// One Galène connection. See the module documentation.
#[derive(Debug)]
pub struct Session {
    conn: ConnId,
    phase: Phase,
    connected_at: Instant,
    last_received: Instant,
    pinged: bool,
    deferred: Option<Deferred>,
}

impl Session {
    /// A session for a connection that was just upgraded.
    pub fn new(conn: ConnId, now: Instant) -> Session {
        Session {
            conn,
            phase: Phase::AwaitingHandshake,
            connected_at: now,
            last_received: now,
            pinged: false,
            deferred: None,
        }
    }

    /// Whether the session queued its close.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The client's dialect (version "2" until the handshake says otherwise).
    pub fn dialect(&self) -> Dialect {
        match &self.phase {
            Phase::Open(open) => open.dialect,
            _ => Dialect::V2,
        }
    }

    /// The client id announced in the handshake (empty before it).
    pub fn own_id(&self) -> &str {
        match &self.phase {
            Phase::Open(open) => &open.id,
            _ => "",
        }
    }

    /// When [`Session::handle_timeout`] must run next; `None` once closed.
    pub fn next_deadline(&self) -> Option<Instant> {
        let liveness = match &self.phase {
            Phase::Closed => return None,
            Phase::AwaitingHandshake => return Some(self.connected_at + HANDSHAKE_TIMEOUT),
            Phase::Open(_) if self.pinged => self.last_received + GALENE_DEAD_AFTER,
            Phase::Open(_) => self.last_received + GALENE_PING_AFTER,
        };
        Some(match &self.deferred {
            Some(deferred) => liveness.min(deferred.until),
            None => liveness,
        })
    }

    /// Queues a close and stops the session.
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Outbox) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed;
        self.deferred = None;
        out.close(self.conn, code, reason);
    }

    /// One text frame from the client.
    pub fn handle_text(
        &mut self,
        now: Instant,
        text: &str,
        core: &mut Core,
        media: &mut Streams,
        out: &mut Outbox,
    ) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        self.pinged = false;
        if let Some(deferred) = &mut self.deferred {
            if deferred.frames.len() >= MAX_DEFERRED_FRAMES {
                self.fail(Failure::Internal("too many messages".into()), out);
            } else {
                deferred.frames.push_back(text.to_owned());
            }
            return;
        }
        self.process(now, text, core, media, out);
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        core: &mut Core,
        media: &mut Streams,
        out: &mut Outbox,
    ) {
        match &self.phase {
            Phase::Closed => return,
            Phase::AwaitingHandshake => {
                if now >= self.connected_at + HANDSHAKE_TIMEOUT {
                    log::info!(
                        "{:?}: no handshake in {HANDSHAKE_TIMEOUT:?}, closing",
                        self.conn
                    );
                    self.close(1002, "you must handshake first", out);
                }
                return;
            }
            Phase::Open(_) => {
                if now >= self.last_received + GALENE_DEAD_AFTER {
                    log::info!("{:?}: silent for {GALENE_DEAD_AFTER:?}, closing", self.conn);
                    self.close(1011, "client is dead", out);
                    return;
                }
                if !self.pinged && now >= self.last_received + GALENE_PING_AFTER {
                    self.pinged = true;
                    out.text(self.conn, Message::new("ping").to_json());
                }
            }
        }
        if self.deferred.as_ref().is_some_and(|d| now >= d.until)
            && let Some(deferred) = self.deferred.take()
        {
            out.text(self.conn, deferred.reply.to_json());
            let mut frames = deferred.frames;
            while let Some(frame) = frames.pop_front() {
                if self.is_closed() {
                    break;
                }
                if let Some(again) = &mut self.deferred {
                    again.frames.push_back(frame);
                    again.frames.extend(frames.drain(..));
                    break;
                }
                self.process(now, &frame, core, media, out);
            }
        }
    }

    /// Renders one core event for this client.
    pub fn render(&mut self, event: &Event, out: &mut Outbox) {
        if self.is_closed() {
            return;
        }
        let own_id = self.own_id().to_owned();
        let dialect = self.dialect();
        if let Event::Kicked {
            by_id,
            by_username,
            message,
        } = event
        {
            out.text(
                self.conn,
                render::kicked(&own_id, by_id, by_username, message).to_json(),
            );
            self.close(1000, &render::kick_reason(by_username, message), out);
            return;
        }
        if let Some(message) = render::event(event, dialect, &own_id) {
            out.text(self.conn, message.to_json());
        }
    }

    /// Renders one stream notice for this client. [`StreamNotice::LayerReduced`] is sfubox's
    /// own user message, sent to version "2" clients only: no seed-dialect client knows it.
    pub fn render_stream(&mut self, notice: &StreamNotice, out: &mut Outbox) {
        if self.is_closed() {
            return;
        }
        let message = match notice {
            StreamNotice::Answer { id, sdp } => {
                let mut m = Message::new("answer");
                m.id = id.clone();
                m.sdp = sdp.clone();
                m
            }
            StreamNotice::Offer(offer) => {
                let mut m = Message::new("offer");
                m.id = offer.id.clone();
                match self.dialect() {
                    Dialect::V2 => m.label = offer.label.clone(),
                    Dialect::Seed => {
                        m.labels = Some(
                            offer
                                .track_labels
                                .iter()
                                .map(|(mid, label)| (mid.clone(), Value::String(label.clone())))
                                .collect(),
                        )
                    }
                }
                m.replace = offer.replace.clone().unwrap_or_default();
                m.source = offer.source.clone();
                m.username = offer.username.clone();
                m.sdp = offer.sdp.clone();
                m
            }
            StreamNotice::Close { id } => {
                let mut m = Message::new("close");
                m.id = id.clone();
                m
            }
            StreamNotice::Abort { id } => {
                let mut m = Message::new("abort");
                m.id = id.clone();
                m
            }
            StreamNotice::Renegotiate { id } => {
                let mut m = Message::new("renegotiate");
                m.id = id.clone();
                m
            }
            StreamNotice::LayerReduced { id, reduced } => match self.dialect() {
                Dialect::V2 => render::layer_reduced(self.own_id(), id, *reduced),
                Dialect::Seed => return,
            },
            StreamNotice::Error(text) => render::notice(self.own_id(), "error", text),
            // Only clients that receive in process get these; a session never does.
            StreamNotice::Local(_) => return,
        };
        out.text(self.conn, message.to_json());
    }

    fn process(
        &mut self,
        now: Instant,
        text: &str,
        core: &mut Core,
        media: &mut Streams,
        out: &mut Outbox,
    ) {
        if text.len() > MAX_MESSAGE_SIZE {
            self.fail(Failure::Internal("message too large".into()), out);
            return;
        }
        let message = match Message::parse(text) {
            Ok(message) => message,
            Err(err) => {
                log::debug!("{:?}: malformed message: {err}", self.conn);
                self.fail(Failure::Internal("malformed message".into()), out);
                return;
            }
        };
        match &self.phase {
            Phase::Closed => {}
            Phase::AwaitingHandshake => {
                if message.kind_of == "handshake" {
                    self.handshake(message, core, out);
                } else {
                    self.close(1002, "you must handshake first", out);
                }
            }
            Phase::Open(open) => {
                let dialect = open.dialect;
                if let Err(failure) = self.dispatch(now, message, dialect, core, media, out) {
                    self.fail(failure, out);
                }
            }
        }
    }

    fn handshake(&mut self, message: Message, core: &mut Core, out: &mut Outbox) {
        let (dialect, unknown_version) = match &message.version {
            None => (Dialect::Seed, false),
            Some(versions) => (Dialect::V2, !versions.iter().any(|v| v == "2")),
        };
        core.set_client_id(self.conn, message.id.clone());
        self.phase = Phase::Open(Open {
            dialect,
            id: message.id.clone(),
        });
        let mut reply = Message::new("handshake");
        if dialect == Dialect::V2 {
            reply.version = Some(vec!["2".to_owned()]);
        }
        out.text(self.conn, reply.to_json());
        if unknown_version {
            let warning = render::notice(
                &message.id,
                "warning",
                "This client is using an unknown protocol version.\nPerhaps it needs upgrading?\nTrying to continue, things may break.",
            );
            out.text(self.conn, warning.to_json());
        }
    }

    /// Handles one message of an established session.
    fn dispatch(
        &mut self,
        now: Instant,
        message: Message,
        dialect: Dialect,
        core: &mut Core,
        media: &mut Streams,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        let own_id = self.own_id().to_owned();
        let (own_username, joined) = match core.client(self.conn) {
            Some(client) => (
                client.username().unwrap_or("").to_owned(),
                client.group().is_some(),
            ),
            None => (String::new(), false),
        };
        if !message.source.is_empty() && message.source != own_id {
            return Err(Failure::protocol("spoofed client id"));
        }
        if message.kind_of != "join"
            && let Some(username) = &message.username
            && *username != own_username
        {
            return Err(Failure::protocol("spoofed username"));
        }
        match message.kind_of.as_str() {
            "join" => self.join(now, message, core, out),
            "request" => {
                let request = match dialect {
                    Dialect::V2 => parse::stream_request(message.request.as_ref()),
                    Dialect::Seed => parse::seed_request(message.request.as_ref()),
                }
                .map_err(|_| Failure::Internal("bad request".into()))?;
                self.outcome(core.set_request(self.conn, request), out)?;
                media.request_changed(now, core, self.conn);
                Ok(())
            }
            "requestStream" => {
                let requested = match &message.request {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(
                        parse::track_list(value)
                            .map_err(|_| Failure::Internal("bad request".into()))?,
                    ),
                };
                media
                    .override_selection(now, core, self.conn, &message.id, requested)
                    .map_err(|_| Failure::Internal("unknown stream id".into()))
            }
            "offer" => {
                require_id(&message)?;
                let labels: Vec<(String, String)> = message
                    .labels
                    .iter()
                    .flatten()
                    .filter_map(|(mid, label)| Some((mid.clone(), label.as_str()?.to_owned())))
                    .collect();
                let publish = Publish {
                    id: &message.id,
                    label: &message.label,
                    track_labels: &labels,
                    replace: &message.replace,
                    sdp: &message.sdp,
                };
                media.publish(now, core, self.conn, publish);
                Ok(())
            }
            "answer" => {
                require_id(&message)?;
                media.answer(now, core, self.conn, &message.id, &message.sdp);
                Ok(())
            }
            "abort" => {
                require_id(&message)?;
                media.stop_receiving(now, core, self.conn, &message.id);
                Ok(())
            }
            "renegotiate" => {
                require_id(&message)?;
                media.restart_receiving(now, core, self.conn, &message.id);
                Ok(())
            }
            "close" => {
                require_id(&message)?;
                media.unpublish(now, core, self.conn, &message.id);
                Ok(())
            }
            "ice" => {
                require_id(&message)?;
                let Some(candidate) = &message.candidate else {
                    return Err(Failure::protocol("null candidate"));
                };
                let text = candidate
                    .get("candidate")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                media.add_candidate(now, core, self.conn, &message.id, text);
                Ok(())
            }
            "chat" | "usermessage" => {
                let kind = if message.kind_of == "chat" {
                    MessageKind::Chat
                } else {
                    MessageKind::UserMessage
                };
                let outgoing = OutgoingMessage {
                    kind,
                    id: Some(message.id).filter(|id| !id.is_empty()),
                    source: message.source,
                    dest: message.dest,
                    username: message.username,
                    subkind: message.kind,
                    noecho: message.noecho,
                    value: message.value,
                };
                let result = core.send_message(now, self.conn, outgoing);
                self.outcome(result, out)
            }
            "useraction" | "groupaction" if !joined => {
                let refusal = ActionError::Report("join a group first".into());
                self.outcome(Err(refusal), out)
            }
            "useraction" => {
                let action = match message.kind.as_str() {
                    "op" => UserAction::Permission(PermissionChange::Op),
                    "unop" => UserAction::Permission(PermissionChange::Unop),
                    "present" => UserAction::Permission(PermissionChange::Present),
                    "unpresent" => UserAction::Permission(PermissionChange::Unpresent),
                    "shutup" => UserAction::Permission(PermissionChange::Shutup),
                    "unshutup" => UserAction::Permission(PermissionChange::Unshutup),
                    "kick" => UserAction::Kick {
                        message: match message.value {
                            Some(Value::String(text)) => text,
                            _ => String::new(),
                        },
                    },
                    "identify" => UserAction::Identify,
                    "setdata" | "setstatus" => UserAction::SetData(message.value),
                    _ => {
                        let unknown = ActionError::Report("unknown user action".into());
                        return self.outcome(Err(unknown), out);
                    }
                };
                let result = core.user_action(now, self.conn, &message.dest, action);
                self.outcome(result, out)
            }
            "groupaction" => {
                let action = match message.kind.as_str() {
                    "clearchat" => GroupAction::ClearChat {
                        scope: parse::clear_scope(message.value.as_ref()).ok(),
                        value: message.value,
                    },
                    "lock" => GroupAction::Lock(match message.value {
                        Some(Value::String(text)) => text,
                        _ => String::new(),
                    }),
                    "unlock" => GroupAction::Unlock,
                    "record" => GroupAction::Record,
                    "unrecord" => GroupAction::Unrecord,
                    "subgroups" => GroupAction::Subgroups,
                    "setdata" => GroupAction::SetData(message.value),
                    "maketoken" => {
                        GroupAction::MakeToken(parse::token_request(message.value.as_ref()))
                    }
                    "edittoken" => {
                        GroupAction::EditToken(parse::token_edit(message.value.as_ref()))
                    }
                    "listtokens" => GroupAction::ListTokens,
                    _ => {
                        let unknown = ActionError::Report("unknown group action".into());
                        return self.outcome(Err(unknown), out);
                    }
                };
                let result = core.group_action(now, self.conn, action);
                self.outcome(result, out)
            }
            "ping" => {
                out.text(self.conn, Message::new("pong").to_json());
                Ok(())
            }
            "pong" => Ok(()),
            _ => Err(Failure::protocol("unexpected message")),
        }
    }

    fn join(
        &mut self,
        now: Instant,
        message: Message,
        core: &mut Core,
        out: &mut Outbox,
    ) -> Result<(), Failure> {
        match message.kind.as_str() {
            "leave" => {
                let result = core.leave(now, self.conn, &message.group);
                self.outcome(result, out)
            }
            "join" => {
                if core.client(self.conn).and_then(|c| c.group()).is_some() {
                    return Err(Failure::protocol("cannot join multiple groups"));
                }
                let request = JoinRequest {
                    group: message.group.clone(),
                    username: message.username.clone(),
                    password: Some(message.password).filter(|p| !p.is_empty()),
                    token: Some(message.token).filter(|t| !t.is_empty()),
                    data: message.data.unwrap_or_default(),
                };
                let Err(failure) = core.join(now, self.conn, request) else {
                    return Ok(());
                };
                let reply = render::join_failure(&message.group, message.username, &failure);
                if failure == JoinFailure::NotAuthorised {
                    self.deferred = Some(Deferred {
                        until: now + NOT_AUTHORISED_DELAY,
                        reply,
                        frames: VecDeque::new(),
                    });
                } else {
                    out.text(self.conn, reply.to_json());
                }
                Ok(())
            }
            _ => Err(Failure::protocol("unknown kind")),
        }
    }

    /// Reports a refused request, or turns a fatal one into a failure.
    fn outcome(&self, result: Result<(), ActionError>, out: &mut Outbox) -> Result<(), Failure> {
        match result {
            Ok(()) => Ok(()),
            Err(ActionError::Report(text)) => {
                let notice = render::notice(self.own_id(), "error", &text);
                out.text(self.conn, notice.to_json());
                Ok(())
            }
            Err(ActionError::Fatal(text)) => Err(Failure::User(text)),
        }
    }

    /// Ends the session as Galène does for `failure` (docs/galene.md, "How a session ends").
    fn fail(&mut self, failure: Failure, out: &mut Outbox) {
        let own_id = self.own_id().to_owned();
        match failure {
            Failure::Protocol(text) => {
                out.text(self.conn, render::notice(&own_id, "error", &text).to_json());
                self.close(1002, &text, out);
            }
            Failure::User(text) => {
                out.text(self.conn, render::notice(&own_id, "error", &text).to_json());
                self.close(1000, &text, out);
            }
            Failure::Internal(text) => self.close(1011, &text, out),
        }
    }
}

fn require_id(message: &Message) -> Result<(), Failure> {
    if message.id.is_empty() {
        Err(Failure::protocol("empty id"))
    } else {
        Ok(())
    }
}
