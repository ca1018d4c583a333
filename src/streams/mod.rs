//! The media session layer: streams that clients publish and receive, for every kind of
//! client.
//!
//! This layer sits between the signalling adapters and the SFU. It speaks in clients (the
//! core's [`ConnId`]s) and stream ids, never in a protocol's messages: "client C publishes
//! stream S with this offer", "client C answers its copy of stream S", "stream S ended".
//! The Galène adapter translates its messages into these calls; a recorder, a WHIP publisher
//! or a WHEP viewer call them the same way, with no signalling protocol in sight.
//!
//! # Run loop
//!
//! [`Streams`] is sans-IO, like the [`Sfu`] it owns: it never reads the clock and never
//! touches a socket. Its owner
//!
//! 1. calls a client action ([`Streams::publish`], [`Streams::answer`], ...), a group change
//!    ([`Streams::request_changed`], [`Streams::permissions_changed`],
//!    [`Streams::remove_client`]) or [`Streams::handle_timeout`], each with `now` and the
//!    [`Core`] that knows groups, members and what each member asked to receive;
//! 2. feeds datagrams straight to the engine ([`Streams::engine_mut`] →
//!    [`Sfu::handle_receive`]) and, only when [`Sfu::has_events`] says so, lets
//!    this layer act on them with [`Streams::handle_engine_events`];
//! 3. drains [`Streams::poll_notice`] (what each client must be told: answers, offers,
//!    closes, ...) and [`Sfu::poll_transmit`] (datagrams), then asks
//!    [`Streams::poll_timeout`] when to call [`Streams::handle_timeout`] next.
//!
//! # Streams and keys
//!
//! An up stream is named by its publisher and the id the client chose; the down stream that
//! carries it to a receiver has the same id, so it is named by the receiver and that id. Each
//! has its own [`StreamKey`] in the engine (one `Rtc` each).
//!
//! # Who receives what
//!
//! When an up stream's tracks are known or change, it is pushed 200 ms later (debounced) to
//! every other member of the publisher's group that asked to receive; when a member's
//! request changes, every other member's streams are pushed to it. What a receiver gets is
//! decided in `select.rs`. A receiver whose selection becomes empty gets `Close`; one that
//! never had a stream is not told `Close` for it (Galène does, which clients ignore).
//!
//! A client that makes its own offer to receive (a WHEP viewer) follows its group's streams
//! instead ([`Streams::follow`], in `follow.rs`): one down stream answers its offer and is fed
//! the newest stream that matches what it asked for.
//!
//! A client that receives in process ([`Streams::receive_locally`]: the recorder) gets the
//! same streams by the same rules, but each through a local sink of the engine
//! ([`Sfu::attach_sink`]) instead of an `Rtc`: it is told with [`StreamNotice::Local`] (the
//! sink's key and tracks) rather than offered, and its packets come out of
//! [`Sfu::poll_sink_packet`].
//!
//! When the engine reports that a down stream's video is reduced by its receiver's network
//! (or is back), the receiver is told ([`StreamNotice::LayerReduced`]), once per change and
//! only while it has that stream.
//!
//! Without an engine ([`Streams::enable`] not called: no media socket), offers are refused
//! with `Abort` and an error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::config::Permission;
use crate::conn::{ConnId, Deadlines};
use crate::core::{Core, TrackSelection};
use crate::media::{
    LinkKey, MediaCodec, MediaCounts, MediaError, MediaEvent, Selection, Sfu, SfuConfig, SinkTrack,
    StreamKey, TrackInfo, TrackKind, TrackStats,
};

mod follow;
mod select;

pub use follow::Follow;
use follow::Follower;
use select::{Published, is_screenshare, sdp_media, select, stream_label_of_tracks};

/// How long after an up stream's tracks change it is pushed to receivers.
pub const PUSH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Up streams one client may have at once (each is an `Rtc`); more offers are refused.
pub const MAX_UP_STREAMS_PER_CLIENT: usize = 8;

/// Refusal text for an offer when no media engine runs.
pub const NO_MEDIA: &str = "publishing is not available on this server";

/// An offer the server makes to a receiver (a down stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownOffer {
    /// The stream id (the publisher's up-stream id).
    pub id: String,
    /// The publisher's stream label (version "2").
    pub label: String,
    /// Track label per mid of this offer (`audio`, `video` or `screenshare`).
    pub track_labels: Vec<(String, String)>,
    /// The down stream this one replaces, if any.
    pub replace: Option<String>,
    /// The publisher's client id.
    pub source: String,
    /// The publisher's username.
    pub username: Option<String>,
    /// The SDP.
    pub sdp: String,
}

/// A stream delivered to a client that receives in process ([`Streams::receive_locally`]):
/// the engine's local sink that carries it and what the stream is. Its packets come out of
/// [`Sfu::poll_sink_packet`] under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStream {
    /// The stream id (the publisher's up-stream id).
    pub id: String,
    /// The engine's key of the sink.
    pub key: StreamKey,
    /// The publisher's stream label.
    pub label: String,
    /// The publisher's client id.
    pub source: String,
    /// The publisher's username.
    pub username: Option<String>,
    /// The sink's tracks, in the order of [`crate::media::SinkPacket::track`].
    pub tracks: Vec<SinkTrack>,
    /// Every layer the publisher sends (the sink takes one audio and one video of them).
    pub published: Vec<TrackInfo>,
    /// The stream this one replaces for the client, if any (it is gone without a `Close`).
    pub replace: Option<String>,
}

/// Something one client must be told about its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamNotice {
    /// The answer to the client's offer for up stream `id`.
    Answer {
        /// The stream id.
        id: String,
        /// The SDP.
        sdp: String,
    },
    /// A down stream offer (new stream or renegotiation).
    Offer(Box<DownOffer>),
    /// For a client that receives in process: a stream now reaches it through a local sink,
    /// or the tracks of one it has changed (same id and key, new tracks).
    Local(Box<LocalStream>),
    /// Down stream `id` is gone.
    Close {
        /// The stream id.
        id: String,
    },
    /// Up stream `id` is refused or killed; the client should close it.
    Abort {
        /// The stream id.
        id: String,
    },
    /// ICE of up stream `id` failed: re-offer with an ICE restart.
    Renegotiate {
        /// The stream id.
        id: String,
    },
    /// The video of down stream `id` is now received below (or back at) the best layer the
    /// client asked for, because of the client's own link (sent only on change).
    LayerReduced {
        /// The stream id.
        id: String,
        /// Whether it is reduced now.
        reduced: bool,
    },
    /// An error text for the user.
    Error(String),
}

/// A `requestStream` named a stream the client does not receive (fatal for the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStream;

/// What a client publishes: a stream it names, described by an SDP offer.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// The stream id the client chose.
    pub id: &'a str,
    /// The stream's label (`camera`, `screenshare`, ...).
    pub label: &'a str,
    /// Track label per mid, for clients that label tracks instead of the stream (Galène's
    /// older protocol); empty otherwise. When given, the stream label derives from them.
    pub track_labels: &'a [(String, String)],
    /// The id of a stream of the same client this one replaces (empty: none).
    pub replace: &'a str,
    /// The SDP offer.
    pub sdp: &'a str,
}

/// A publisher's stream.
#[derive(Debug)]
struct UpStream {
    owner: ConnId,
    id: String,
    /// The stream's label, given or derived from the track labels.
    label: String,
    /// Track label per mid, when the publisher labelled tracks (else empty).
    track_labels: Vec<(String, String)>,
    /// Layers as the engine last announced them.
    tracks: Vec<TrackInfo>,
    /// Whether a debounced push is pending (its deadline is in `Streams::pushes`).
    push_pending: bool,
    /// Down streams fed from this stream.
    downs: Vec<StreamKey>,
    /// Down streams of the stream this one replaced, until the first push replaces them.
    replaced: Vec<StreamKey>,
    /// The id of the replaced stream.
    replaces: Option<String>,
}

/// A stream pushed to a receiver.
#[derive(Debug)]
struct DownStream {
    receiver: ConnId,
    id: String,
    source: StreamKey,
    /// The receiver's override of its request for this stream.
    requested: Option<TrackSelection>,
    /// Whether the client was last told its video is reduced by its network.
    reduced: bool,
    /// Delivered to a local sink rather than to an `Rtc`.
    local: bool,
}

/// Which streams one client has.
#[derive(Debug, Default)]
struct ClientStreams {
    ups: Vec<StreamKey>,
    downs: Vec<StreamKey>,
}

/// Every client's streams and the engine that carries them. See the module documentation.
#[derive(Default)]
pub struct Streams {
    sfu: Option<Sfu>,
    ups: HashMap<StreamKey, UpStream>,
    downs: HashMap<StreamKey, DownStream>,
    up_ids: HashMap<(ConnId, String), StreamKey>,
    down_ids: HashMap<(ConnId, String), StreamKey>,
    clients: HashMap<ConnId, ClientStreams>,
    /// Debounced pushes of up streams.
    pushes: Deadlines<StreamKey>,
    next_key: u64,
    notices: VecDeque<(ConnId, StreamNotice)>,
    /// Clients that follow their group's streams through a stream they negotiated
    /// ([`Streams::follow`]), and the client of each follower's engine key.
    followers: HashMap<ConnId, Follower>,
    follower_keys: HashMap<StreamKey, ConnId>,
    /// Followers whose stream ended during the current input: they look for another one.
    orphans: Vec<ConnId>,
    /// Clients that receive through local sinks ([`Streams::receive_locally`]).
    local_receivers: HashSet<ConnId>,
}

/// Table sizes, for tests: everything must be empty once every client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamTables {
    /// Up streams.
    pub ups: usize,
    /// Down streams.
    pub downs: usize,
    /// Clients with streams.
    pub clients: usize,
    /// Pending pushes.
    pub pushes: usize,
    /// Clients following streams ([`Streams::follow`]).
    pub followers: usize,
    /// The engine's tables.
    pub engine: MediaCounts,
}

/// One stream of one client, with its tracks' statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// The stream id.
    pub id: String,
    /// Per track, as the engine measures it.
    pub tracks: Vec<TrackStats>,
}

/// One client's streams, sorted by id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientStats {
    /// The client's id (as the client chose it).
    pub id: String,
    /// The name it joined under (not in Galène's statistics; the admin page shows who is in
    /// a group).
    pub username: Option<String>,
    /// What it publishes.
    pub up: Vec<StreamStats>,
    /// What it receives.
    pub down: Vec<StreamStats>,
}

/// One group's clients, sorted by client id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// Its members.
    pub clients: Vec<ClientStats>,
}

impl Streams {
    /// A layer without an engine: offers are refused.
    pub fn new() -> Streams {
        Streams::default()
    }

    /// Starts the engine with these host candidates (the media socket's addresses).
    pub fn enable(&mut self, config: SfuConfig) -> Result<(), MediaError> {
        self.sfu = Some(Sfu::new(config)?);
        Ok(())
    }

    /// `conn` receives in process: the streams pushed to it go to local sinks of the engine
    /// ([`Sfu::attach_sink`]) instead of `Rtc`s, and it is told with
    /// [`StreamNotice::Local`] rather than offered. For the recorder; lasts until
    /// [`Streams::remove_client`].
    pub fn receive_locally(&mut self, conn: ConnId) {
        self.local_receivers.insert(conn);
    }

    /// Whether an engine runs.
    pub fn is_enabled(&self) -> bool {
        self.sfu.is_some()
    }

    /// The engine, for the runtime's datagram path: datagrams go straight to
    /// [`Sfu::handle_receive`] and transmits straight back from [`Sfu::poll_transmit`].
    pub fn engine_mut(&mut self) -> Option<&mut Sfu> {
        self.sfu.as_mut()
    }

    /// Table sizes.
    pub fn tables(&self) -> StreamTables {
        StreamTables {
            ups: self.ups.len(),
            downs: self.downs.len(),
            clients: self.clients.len(),
            pushes: self.pushes.len(),
            followers: self.followers.len(),
            engine: self.sfu.as_ref().map(Sfu::counts).unwrap_or_default(),
        }
    }

    /// The next message for a client.
    pub fn poll_notice(&mut self) -> Option<(ConnId, StreamNotice)> {
        self.notices.pop_front()
    }

    /// When [`Streams::handle_timeout`] is due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let engine = self.sfu.as_mut().and_then(Sfu::poll_timeout);
        let push = self.pushes.earliest();
        match (engine, push) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The statistics of every group in memory: per client, its up and down streams and
    /// their tracks. Sorted by group name, client id and stream id.
    pub fn stats(&self, core: &Core) -> Vec<GroupStats> {
        let mut groups = Vec::new();
        for name in core.group_names() {
            let mut clients = Vec::new();
            for conn in core.members(&name) {
                let member = core.client(*conn);
                let mut client = ClientStats {
                    id: member.map(|c| c.id().to_owned()).unwrap_or_default(),
                    username: member.and_then(|c| c.username()).map(str::to_owned),
                    ..ClientStats::default()
                };
                if let Some(streams) = self.clients.get(conn) {
                    let ups = streams
                        .ups
                        .iter()
                        .filter_map(|k| self.ups.get(k).map(|u| (*k, u.id.as_str())));
                    let downs = streams
                        .downs
                        .iter()
                        .filter_map(|k| self.downs.get(k).map(|d| (*k, d.id.as_str())));
                    client.up = self.stream_stats(ups);
                    client.down = self.stream_stats(downs);
                }
                if let Some(follower) = self.followers.get(conn) {
                    let follower = [(follower.key, follower.id.as_str())].into_iter();
                    client.down.extend(self.stream_stats(follower));
                    client.down.sort_by(|a, b| a.id.cmp(&b.id));
                }
                clients.push(client);
            }
            clients.sort_by(|a, b| a.id.cmp(&b.id));
            groups.push(GroupStats { name, clients });
        }
        groups
    }

    fn stream_stats<'a>(
        &self,
        streams: impl Iterator<Item = (StreamKey, &'a str)>,
    ) -> Vec<StreamStats> {
        let mut list: Vec<StreamStats> = streams
            .map(|(key, id)| StreamStats {
                id: id.to_owned(),
                tracks: self
                    .sfu
                    .as_ref()
                    .map(|sfu| sfu.stream_stats(key))
                    .unwrap_or_default(),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    // ------------------------------------------------------------------ engine and time

    /// Acts on what the engine reported (after datagrams fed to [`Streams::engine_mut`]).
    pub fn handle_engine_events(&mut self, now: Instant, core: &mut Core) {
        self.process_events(now, core);
    }

    /// Runs the engine's timers and the debounced pushes that are due.
    pub fn handle_timeout(&mut self, now: Instant, core: &mut Core) {
        if let Some(sfu) = self.sfu.as_mut()
            && sfu.poll_timeout().is_some_and(|at| at <= now)
        {
            sfu.handle_timeout(now);
        }
        self.process_events(now, core);
        while let Some(key) = self.pushes.pop_due(now) {
            let Some(up) = self.ups.get_mut(&key) else {
                continue;
            };
            up.push_pending = false;
            self.push_to_group(now, core, key);
        }
    }

    // ------------------------------------------------------------------ client messages

    /// `from` publishes (or renegotiates) its up stream `publish.id` with this offer; the
    /// answer comes out as [`StreamNotice::Answer`], a refusal as `Abort` and `Error`.
    pub fn publish(&mut self, now: Instant, core: &mut Core, from: ConnId, publish: Publish<'_>) {
        let Publish {
            id,
            label,
            track_labels: labels,
            replace,
            sdp,
        } = publish;
        let present = core
            .client(from)
            .is_some_and(|c| c.has(Permission::Present));
        let old = (!replace.is_empty() && replace != id)
            .then(|| self.up_ids.get(&(from, replace.to_owned())).copied())
            .flatten();
        if !present {
            if let Some(old) = old {
                self.close_up(now, old, true);
            }
            self.refuse(from, id, "not authorised");
            return;
        }
        if self.sfu.is_none() {
            self.refuse(from, id, NO_MEDIA);
            return;
        }
        if self.down_ids.contains_key(&(from, id.to_owned())) {
            self.refuse(from, id, "adding duplicate connection");
            return;
        }
        let existing = self.up_ids.get(&(from, id.to_owned())).copied();
        let count = self.clients.get(&from).map_or(0, |c| c.ups.len());
        if existing.is_none() && old.is_none() && count >= MAX_UP_STREAMS_PER_CLIENT {
            self.refuse(from, id, "too many streams");
            return;
        }
        let key = existing.unwrap_or_else(|| self.new_key());
        let codecs = group_codecs(core, from);
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        let answer = sfu.accept_offer(now, key, sdp, &codecs);
        match answer {
            Ok(sdp) => {
                if existing.is_none() {
                    log::debug!("{from:?} publishes {id:?} (stream {})", key.0);
                    let label = if labels.is_empty() {
                        label.to_owned()
                    } else {
                        stream_label_of_tracks(labels)
                    };
                    self.ups.insert(
                        key,
                        UpStream {
                            owner: from,
                            id: id.to_owned(),
                            label,
                            track_labels: labels.to_vec(),
                            tracks: Vec::new(),
                            push_pending: false,
                            downs: Vec::new(),
                            replaced: Vec::new(),
                            replaces: None,
                        },
                    );
                    self.up_ids.insert((from, id.to_owned()), key);
                    self.clients.entry(from).or_default().ups.push(key);
                    if let Some(old) = old {
                        self.replace_up(now, old, key);
                    }
                } else if !labels.is_empty()
                    && let Some(up) = self.ups.get_mut(&key)
                {
                    up.label = stream_label_of_tracks(labels);
                    up.track_labels = labels.to_vec();
                }
                self.notices.push_back((
                    from,
                    StreamNotice::Answer {
                        id: id.to_owned(),
                        sdp,
                    },
                ));
            }
            Err(e) => {
                log::debug!("{from:?}: offer {id:?} failed: {e}");
                if existing.is_some() {
                    self.close_up(now, key, true);
                }
                self.refuse(from, id, &e.to_string());
            }
        }
        self.process_events(now, core);
    }

    /// `from` answers the offer of its down stream `id`.
    pub fn answer(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str, sdp: &str) {
        let Some(key) = self.down_ids.get(&(from, id.to_owned())).copied() else {
            self.notices
                .push_back((from, StreamNotice::Close { id: id.to_owned() }));
            return;
        };
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        match sfu.accept_answer(now, key, sdp) {
            Ok(Some(offer)) => self.send_offer(core, key, offer, None),
            Ok(None) => {}
            Err(e) => {
                log::debug!("{from:?}: answer {id:?} failed: {e}");
                self.close_down(now, key, true);
                self.notices
                    .push_back((from, StreamNotice::Error(e.to_string())));
            }
        }
        self.process_events(now, core);
    }

    /// A trickled ICE candidate for stream `id` of `from` (up first, then down).
    pub fn add_candidate(
        &mut self,
        now: Instant,
        core: &mut Core,
        from: ConnId,
        id: &str,
        candidate: &str,
    ) {
        let name = (from, id.to_owned());
        let follower = self
            .followers
            .get(&from)
            .filter(|f| f.id == id)
            .map(|f| f.key);
        let Some(key) = self
            .up_ids
            .get(&name)
            .or_else(|| self.down_ids.get(&name))
            .copied()
            .or(follower)
        else {
            log::debug!("{from:?}: candidate for unknown stream {id:?}");
            return;
        };
        if candidate.trim().is_empty() {
            return; // end of candidates
        }
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        if let Err(e) = sfu.add_remote_candidate(now, key, candidate) {
            log::debug!("{from:?}: candidate for {id:?}: {e}");
        }
        self.process_events(now, core);
    }

    /// Whether `from`'s stream `id` (up, down or followed) is connected: ICE and DTLS are up.
    /// `None` when `from` has no stream `id`.
    pub fn is_connected(&self, from: ConnId, id: &str) -> Option<bool> {
        let name = (from, id.to_owned());
        let key = self
            .up_ids
            .get(&name)
            .or_else(|| self.down_ids.get(&name))
            .copied()
            .or_else(|| {
                self.followers
                    .get(&from)
                    .filter(|f| f.id == id)
                    .map(|f| f.key)
            })?;
        self.sfu.as_ref()?.is_connected(key)
    }

    /// `from` asks for down stream `id` again: it is offered anew with an ICE restart.
    pub fn restart_receiving(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        let Some(key) = self.down_ids.get(&(from, id.to_owned())).copied() else {
            log::debug!("{from:?}: renegotiate for unknown stream {id:?}");
            return;
        };
        self.restart_down(now, core, key);
        self.process_events(now, core);
    }

    /// `from` stopped publishing up stream `id`; receivers get `Close`.
    pub fn unpublish(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        match self.up_ids.get(&(from, id.to_owned())).copied() {
            Some(key) => self.close_up(now, key, true),
            None => log::debug!("{from:?}: close for unknown stream {id:?}"),
        }
        self.process_events(now, core);
    }

    /// `from` refused or ended its down stream `id`; it is told `Close`.
    pub fn stop_receiving(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        match self.down_ids.get(&(from, id.to_owned())).copied() {
            Some(key) => self.close_down(now, key, true),
            None => self
                .notices
                .push_back((from, StreamNotice::Close { id: id.to_owned() })),
        }
        self.process_events(now, core);
    }

    /// A per-stream override of what `from` receives of stream `id` (`None`: back to its
    /// request).
    pub fn override_selection(
        &mut self,
        now: Instant,
        core: &mut Core,
        from: ConnId,
        id: &str,
        requested: Option<TrackSelection>,
    ) -> Result<(), UnknownStream> {
        let key = self
            .down_ids
            .get(&(from, id.to_owned()))
            .copied()
            .ok_or(UnknownStream)?;
        let Some(down) = self.downs.get_mut(&key) else {
            return Err(UnknownStream);
        };
        down.requested = requested;
        let source = down.source;
        self.push_one(now, core, source, from);
        self.process_events(now, core);
        Ok(())
    }

    /// `from` changed what it asks to receive: every other member's streams are pushed to it
    /// again.
    pub fn request_changed(&mut self, now: Instant, core: &mut Core, from: ConnId) {
        let Some(group) = core.client(from).and_then(|c| c.group()) else {
            return;
        };
        let mut sources = Vec::new();
        for member in core.members(group) {
            if *member == from {
                continue;
            }
            if let Some(streams) = self.clients.get(member) {
                sources.extend(streams.ups.iter().copied().filter(|k| {
                    self.ups
                        .get(k)
                        .is_some_and(|u| !u.push_pending && !u.tracks.is_empty())
                }));
            }
        }
        for source in sources {
            self.push_one(now, core, source, from);
        }
        self.process_events(now, core);
    }

    /// The client's permissions changed: without `present` its up streams are killed.
    pub fn permissions_changed(&mut self, now: Instant, core: &mut Core, conn: ConnId) {
        if core
            .client(conn)
            .is_some_and(|c| c.has(Permission::Present))
        {
            return;
        }
        let ups = match self.clients.get(&conn) {
            Some(streams) if !streams.ups.is_empty() => streams.ups.clone(),
            _ => return,
        };
        for key in ups {
            if let Some(up) = self.ups.get(&key) {
                let id = up.id.clone();
                self.notices.push_back((conn, StreamNotice::Abort { id }));
            }
            self.close_up(now, key, true);
        }
        self.notices
            .push_back((conn, StreamNotice::Error("permission denied".into())));
        self.process_events(now, core);
    }

    /// `conn` left its group or is gone: all its streams close; receivers get `Close`. With
    /// `tell_self` the client itself is told too (it left but stays connected).
    pub fn remove_client(&mut self, now: Instant, core: &mut Core, conn: ConnId, tell_self: bool) {
        self.end_follower(now, conn, tell_self);
        self.local_receivers.remove(&conn);
        let Some(streams) = self.clients.get(&conn) else {
            self.process_events(now, core);
            return;
        };
        let ups = streams.ups.clone();
        let downs = streams.downs.clone();
        for key in ups {
            if tell_self && let Some(up) = self.ups.get(&key) {
                let id = up.id.clone();
                self.notices.push_back((conn, StreamNotice::Abort { id }));
            }
            self.close_up(now, key, true);
        }
        for key in downs {
            self.close_down(now, key, tell_self);
        }
        self.clients.remove(&conn);
        self.process_events(now, core);
    }

    // ------------------------------------------------------------------ internals

    fn new_key(&mut self) -> StreamKey {
        self.next_key += 1;
        StreamKey(self.next_key)
    }

    fn refuse(&mut self, to: ConnId, id: &str, text: &str) {
        self.notices
            .push_back((to, StreamNotice::Abort { id: id.to_owned() }));
        self.notices
            .push_back((to, StreamNotice::Error(text.to_owned())));
    }

    /// The old up stream is torn down silently; its receivers get the new one with `replace`.
    fn replace_up(&mut self, now: Instant, old: StreamKey, new: StreamKey) {
        let Some(old_up) = self.ups.remove(&old) else {
            return;
        };
        self.pushes.cancel(old);
        self.orphan_followers(old);
        self.up_ids.remove(&(old_up.owner, old_up.id.clone()));
        if let Some(streams) = self.clients.get_mut(&old_up.owner) {
            streams.ups.retain(|k| *k != old);
        }
        if let Some(sfu) = self.sfu.as_mut() {
            let _ = sfu.close_stream(now, old);
        }
        // Close what the old stream itself still had pending replacement.
        for key in old_up.replaced {
            self.close_down(now, key, true);
        }
        if let Some(up) = self.ups.get_mut(&new) {
            up.replaced = old_up.downs;
            up.replaces = Some(old_up.id);
        }
    }

    fn close_up(&mut self, now: Instant, key: StreamKey, tell_receivers: bool) {
        let Some(up) = self.ups.remove(&key) else {
            return;
        };
        self.pushes.cancel(key);
        self.orphan_followers(key);
        self.up_ids.remove(&(up.owner, up.id.clone()));
        if let Some(streams) = self.clients.get_mut(&up.owner) {
            streams.ups.retain(|k| *k != key);
        }
        if let Some(sfu) = self.sfu.as_mut() {
            let _ = sfu.close_stream(now, key);
        }
        for down in up.downs.into_iter().chain(up.replaced) {
            self.close_down(now, down, tell_receivers);
        }
        self.forget_if_empty(up.owner);
    }

    fn close_down(&mut self, now: Instant, key: StreamKey, tell_receiver: bool) {
        let Some(down) = self.downs.remove(&key) else {
            return;
        };
        self.down_ids.remove(&(down.receiver, down.id.clone()));
        if let Some(streams) = self.clients.get_mut(&down.receiver) {
            streams.downs.retain(|k| *k != key);
        }
        if let Some(up) = self.ups.get_mut(&down.source) {
            up.downs.retain(|k| *k != key);
            up.replaced.retain(|k| *k != key);
        }
        if let Some(sfu) = self.sfu.as_mut() {
            let _ = sfu.close_stream(now, key);
        }
        if tell_receiver {
            self.notices
                .push_back((down.receiver, StreamNotice::Close { id: down.id }));
        }
        self.forget_if_empty(down.receiver);
    }

    fn forget_if_empty(&mut self, conn: ConnId) {
        if self
            .clients
            .get(&conn)
            .is_some_and(|s| s.ups.is_empty() && s.downs.is_empty())
        {
            self.clients.remove(&conn);
        }
    }

    fn restart_down(&mut self, now: Instant, core: &Core, key: StreamKey) {
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        match sfu.restart_ice(now, key) {
            Ok(Some(offer)) => self.send_offer(core, key, offer, None),
            Ok(None) => {} // offered after the pending answer
            Err(e) => {
                log::debug!("ICE restart of down stream {}: {e}", key.0);
                self.close_down(now, key, true);
            }
        }
    }

    /// Queues the offer of down stream `key` for its receiver.
    fn send_offer(&mut self, core: &Core, key: StreamKey, sdp: String, replace: Option<String>) {
        let Some(down) = self.downs.get(&key) else {
            return;
        };
        let Some(up) = self.ups.get(&down.source) else {
            return;
        };
        let screenshare = is_screenshare(&up.label, &up.track_labels);
        let track_labels = sdp_media(&sdp)
            .into_iter()
            .map(|(kind, mid)| {
                let label = match kind {
                    TrackKind::Audio => "audio",
                    TrackKind::Video if screenshare => "screenshare",
                    TrackKind::Video => "video",
                };
                (mid, label.to_owned())
            })
            .collect();
        let publisher = core.client(up.owner);
        let offer = DownOffer {
            id: down.id.clone(),
            label: up.label.clone(),
            track_labels,
            replace,
            source: publisher.map(|c| c.id().to_owned()).unwrap_or_default(),
            username: Some(
                publisher
                    .and_then(|c| c.username())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            sdp,
        };
        self.notices
            .push_back((down.receiver, StreamNotice::Offer(Box::new(offer))));
    }

    /// Pushes up stream `key` to every member of its publisher's group that asked.
    fn push_to_group(&mut self, now: Instant, core: &mut Core, key: StreamKey) {
        let Some(owner) = self.ups.get(&key).map(|u| u.owner) else {
            return;
        };
        let Some(group) = core.client(owner).and_then(|c| c.group()) else {
            return;
        };
        let members: Vec<ConnId> = core
            .members(group)
            .iter()
            .copied()
            .filter(|m| *m != owner)
            .collect();
        for member in members {
            self.push_one(now, core, key, member);
        }
        // Receivers of a replaced stream that did not get the new one.
        let left: Vec<StreamKey> = match self.ups.get_mut(&key) {
            Some(up) => std::mem::take(&mut up.replaced),
            None => Vec::new(),
        };
        for down in left {
            self.close_down(now, down, true);
        }
        if let Some(group) = core
            .client(owner)
            .and_then(|c| c.group())
            .map(str::to_owned)
        {
            self.refollow_group(now, core, &group);
        }
        self.process_events(now, core);
    }

    /// Brings what `receiver` gets of up stream `key` in line with its request.
    fn push_one(&mut self, now: Instant, core: &mut Core, key: StreamKey, receiver: ConnId) {
        let Some(up) = self.ups.get(&key) else {
            return;
        };
        if up.tracks.is_empty() {
            return;
        }
        let Some(client) = core.client(receiver) else {
            return;
        };
        let name = (receiver, up.id.clone());
        let existing = self.down_ids.get(&name).copied();
        let requested = existing
            .and_then(|k| self.downs.get(&k))
            .and_then(|d| d.requested);
        let Some(request) = client.request() else {
            return; // nothing asked for yet
        };
        let selection = select(
            request,
            requested,
            &Published {
                label: &up.label,
                track_labels: &up.track_labels,
                tracks: &up.tracks,
            },
        );
        if let Some(down_key) = existing {
            if self.downs.get(&down_key).map(|d| d.source) != Some(key) {
                log::debug!("{receiver:?}: stream id {:?} is used twice", up.id);
                return;
            }
            if selection.is_empty() {
                self.close_down(now, down_key, true);
                return;
            }
            if self.downs.get(&down_key).is_some_and(|d| d.local) {
                self.update_local(now, core, key, down_key, selection);
                return;
            }
            let Some(sfu) = self.sfu.as_mut() else {
                return;
            };
            match sfu.set_selection(now, down_key, selection) {
                Ok(Some(offer)) => self.send_offer(core, down_key, offer, None),
                Ok(None) => {}
                Err(e) => {
                    log::debug!("{receiver:?}: selection for {:?}: {e}", name.1);
                    self.close_down(now, down_key, true);
                }
            }
            return;
        }
        if self.up_ids.contains_key(&name) {
            log::debug!("{receiver:?}: stream id {:?} collides with its own", name.1);
            return;
        }
        let replaced = self.ups.get(&key).and_then(|up| {
            up.replaced
                .iter()
                .copied()
                .find(|k| self.downs.get(k).is_some_and(|d| d.receiver == receiver))
        });
        if selection.is_empty() {
            if let Some(old) = replaced {
                self.close_down(now, old, true);
            }
            return;
        }
        let down_key = self.new_key();
        if self.local_receivers.contains(&receiver) {
            self.push_local(now, core, key, receiver, down_key, selection, replaced);
            return;
        }
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        match sfu.create_down(now, down_key, key, LinkKey(receiver.0), selection) {
            Ok(offer) => {
                self.downs.insert(
                    down_key,
                    DownStream {
                        receiver,
                        id: name.1.clone(),
                        source: key,
                        requested: None,
                        reduced: false,
                        local: false,
                    },
                );
                self.down_ids.insert(name, down_key);
                self.clients
                    .entry(receiver)
                    .or_default()
                    .downs
                    .push(down_key);
                if let Some(up) = self.ups.get_mut(&key) {
                    up.downs.push(down_key);
                }
                let replace = replaced
                    .and_then(|old| self.downs.get(&old))
                    .map(|d| d.id.clone());
                self.send_offer(core, down_key, offer, replace);
                if let Some(old) = replaced {
                    // The client swaps the old stream out itself when it sees `replace`.
                    self.close_down(now, old, false);
                }
            }
            Err(e) => {
                log::debug!("{receiver:?}: cannot push {:?}: {e}", name.1);
                if let Some(old) = replaced {
                    self.close_down(now, old, true);
                }
            }
        }
    }

    /// Starts delivering up stream `key` to the local receiver `receiver` through a new sink
    /// `down_key`; `replaced` is its copy of the stream this one replaces, if any.
    #[allow(clippy::too_many_arguments)]
    fn push_local(
        &mut self,
        now: Instant,
        core: &Core,
        key: StreamKey,
        receiver: ConnId,
        down_key: StreamKey,
        selection: Selection,
        replaced: Option<StreamKey>,
    ) {
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        let tracks = match sfu.attach_sink(now, down_key, key, selection) {
            Ok(tracks) => tracks,
            Err(e) => {
                log::debug!("{receiver:?}: cannot deliver stream {}: {e}", key.0);
                if let Some(old) = replaced {
                    self.close_down(now, old, true);
                }
                return;
            }
        };
        let Some(up) = self.ups.get_mut(&key) else {
            return;
        };
        up.downs.push(down_key);
        let id = up.id.clone();
        self.downs.insert(
            down_key,
            DownStream {
                receiver,
                id: id.clone(),
                source: key,
                requested: None,
                reduced: false,
                local: true,
            },
        );
        self.down_ids.insert((receiver, id), down_key);
        self.clients
            .entry(receiver)
            .or_default()
            .downs
            .push(down_key);
        let replace = replaced
            .and_then(|old| self.downs.get(&old))
            .map(|d| d.id.clone());
        self.send_local(core, down_key, tracks, replace);
        if let Some(old) = replaced {
            self.close_down(now, old, false);
        }
    }

    /// Applies a new selection to the local sink `down_key` of up stream `key`; the receiver
    /// hears of it only if the tracks changed.
    fn update_local(
        &mut self,
        now: Instant,
        core: &Core,
        key: StreamKey,
        down_key: StreamKey,
        selection: Selection,
    ) {
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        match sfu.update_sink(now, down_key, selection) {
            Ok(Some(tracks)) => self.send_local(core, down_key, tracks, None),
            Ok(None) => {}
            Err(e) => {
                log::debug!("local sink {} of stream {}: {e}", down_key.0, key.0);
                self.close_down(now, down_key, true);
            }
        }
    }

    /// Queues [`StreamNotice::Local`] about sink `down_key` for its receiver.
    fn send_local(
        &mut self,
        core: &Core,
        down_key: StreamKey,
        tracks: Vec<SinkTrack>,
        replace: Option<String>,
    ) {
        let Some(down) = self.downs.get(&down_key) else {
            return;
        };
        let Some(up) = self.ups.get(&down.source) else {
            return;
        };
        let publisher = core.client(up.owner);
        let local = LocalStream {
            id: down.id.clone(),
            key: down_key,
            label: up.label.clone(),
            source: publisher.map(|c| c.id().to_owned()).unwrap_or_default(),
            username: publisher.and_then(|c| c.username()).map(str::to_owned),
            tracks,
            published: up.tracks.clone(),
            replace,
        };
        self.notices
            .push_back((down.receiver, StreamNotice::Local(Box::new(local))));
    }

    /// Acts on everything the engine reported.
    fn process_events(&mut self, now: Instant, core: &mut Core) {
        loop {
            while let Some(event) = self.sfu.as_mut().and_then(Sfu::poll_event) {
                self.handle_event(now, core, event);
            }
            if self.orphans.is_empty() {
                break;
            }
            for conn in std::mem::take(&mut self.orphans) {
                self.refollow(now, core, conn);
            }
        }
    }

    /// Acts on one engine event.
    fn handle_event(&mut self, now: Instant, core: &mut Core, event: MediaEvent) {
        if let MediaEvent::DownIceFailed { stream } | MediaEvent::StreamGone { stream, .. } = event
            && let Some(&conn) = self.follower_keys.get(&stream)
        {
            // A follower's receiver restarts ICE itself, with a new offer: it is told its
            // stream failed.
            log::debug!("{conn:?}: followed stream {} failed: {event:?}", stream.0);
            self.end_follower(now, conn, true);
            return;
        }
        match event {
            MediaEvent::Connected { stream } => {
                log::debug!("stream {} connected", stream.0);
            }
            MediaEvent::UpTracks { stream, tracks } => {
                if let Some(up) = self.ups.get_mut(&stream) {
                    up.tracks = tracks;
                    let at = now + PUSH_DEBOUNCE;
                    up.push_pending = true;
                    self.pushes.schedule(stream, at);
                }
            }
            MediaEvent::UpIceFailed { stream } => {
                if let Some(up) = self.ups.get(&stream) {
                    let id = up.id.clone();
                    self.notices
                        .push_back((up.owner, StreamNotice::Renegotiate { id }));
                }
            }
            MediaEvent::DownIceFailed { stream } => self.restart_down(now, core, stream),
            MediaEvent::LayerReduced { stream, reduced } => {
                log::debug!("stream {}: reduced by the network: {reduced}", stream.0);
                // Only a down stream the client still has, and only when its state changes.
                if let Some(down) = self.downs.get_mut(&stream)
                    && down.reduced != reduced
                {
                    down.reduced = reduced;
                    let id = down.id.clone();
                    self.notices
                        .push_back((down.receiver, StreamNotice::LayerReduced { id, reduced }));
                }
            }
            MediaEvent::StreamGone { stream, reason } => {
                log::debug!("stream {} gone: {reason:?}", stream.0);
                if let Some(up) = self.ups.get(&stream) {
                    // The publisher must drop it too (a WHIP session ends with it).
                    let id = up.id.clone();
                    self.notices
                        .push_back((up.owner, StreamNotice::Abort { id }));
                    self.close_up(now, stream, true);
                } else {
                    self.close_down(now, stream, true);
                }
            }
        }
    }

    /// Test hook: acts on `event` as if the engine had reported it.
    #[cfg(test)]
    pub(crate) fn inject_event(&mut self, now: Instant, core: &mut Core, event: MediaEvent) {
        self.handle_event(now, core, event);
        self.process_events(now, core);
    }

    /// Test hook: the engine key of `receiver`'s down stream `id`.
    #[cfg(test)]
    pub(crate) fn down_key(&self, receiver: ConnId, id: &str) -> Option<StreamKey> {
        self.down_ids.get(&(receiver, id.to_owned())).copied()
    }

    /// Test hook: the engine key of `owner`'s up stream `id`.
    #[cfg(test)]
    pub(crate) fn up_key(&self, owner: ConnId, id: &str) -> Option<StreamKey> {
        self.up_ids.get(&(owner, id.to_owned())).copied()
    }
}

/// The codecs of `conn`'s group (Galène's defaults when unknown).
fn group_codecs(core: &mut Core, conn: ConnId) -> Vec<MediaCodec> {
    let Some(group) = core.client(conn).and_then(|c| c.group()).map(str::to_owned) else {
        return MediaCodec::DEFAULT.to_vec();
    };
    match core.directory().group(&group) {
        Ok(Some(entry)) => {
            let codecs: Vec<MediaCodec> = entry
                .description
                .codecs
                .iter()
                .filter_map(|name| MediaCodec::from_name(name))
                .collect();
            if codecs.is_empty() {
                MediaCodec::DEFAULT.to_vec()
            } else {
                codecs
            }
        }
        _ => MediaCodec::DEFAULT.to_vec(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
