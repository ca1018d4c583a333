//! The media side of Galène signalling (galene.md §3.4–§3.6): publishers' up streams, the
//! down streams pushed to receivers, and the [`Sfu`] that carries them.
//!
//! [`Media`] owns the engine and a table of Galène streams. A session hands it the media
//! messages of its client (`offer`, `answer`, `ice`, `renegotiate`, `close`, `abort`,
//! `requestStream`, and the fact that `request` changed); the facade hands it datagrams and
//! time. What clients must be told comes out of [`Media::poll_notice`] as [`StreamNotice`]s,
//! which each receiver's session renders in its own dialect; datagrams come out of
//! [`Media::poll_transmit`].
//!
//! Stream names: an up stream is named by its publisher's connection and the id the client
//! chose; the down stream that carries it to a receiver has the same id (Galène's rule), so
//! it is named by the receiver's connection and that id. Each has its own [`StreamKey`] in the
//! engine (one `Rtc` each).
//!
//! Push logic (§3.6): when an up stream's tracks are known or change, it is pushed 200 ms
//! later (debounced) to every other member of the publisher's group that sent a `request`;
//! when a member's `request` changes, every other member's streams are pushed to it. The
//! receiver's selection is its `requestStream` override, else `request[label]`, else
//! `request[""]` (seed dialect: the track labels it asked for). A receiver whose selection
//! becomes empty gets `close`. Deliberate difference from Galène: a receiver that never had
//! a stream is not sent `close` for it (galene.md §13).
//!
//! When the engine reports that a down stream's video is reduced by its receiver's network
//! (or is back), the receiver is told ([`StreamNotice::LayerReduced`]), once per change and
//! only while it has that stream.
//!
//! Without an engine ([`Media::enable`] not called: no media socket), offers are refused with
//! `abort` and an error, as before publishing existed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::config::Permission;
use crate::conn::ConnId;
use crate::core::{Core, StreamRequest, TrackSelection};
use crate::media::{
    LinkKey, MediaCodec, MediaCounts, MediaError, MediaEvent, Selection, Sfu, SfuConfig, StreamKey,
    TrackInfo, TrackKind, Transmit, VideoChoice,
};

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
    /// Track label per mid of this offer (seed dialect `labels`).
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

/// A publisher's stream.
#[derive(Debug)]
struct UpStream {
    owner: ConnId,
    id: String,
    /// Version "2" label, or derived from the seed track labels.
    label: String,
    /// Seed dialect: track label per mid (empty for version "2" publishers).
    track_labels: Vec<(String, String)>,
    /// Layers as the engine last announced them.
    tracks: Vec<TrackInfo>,
    /// When the debounced push is due.
    push_at: Option<Instant>,
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
    /// `requestStream` override.
    requested: Option<TrackSelection>,
    /// Whether the client was last told its video is reduced by its network.
    reduced: bool,
}

/// Which streams one client has.
#[derive(Debug, Default)]
struct ClientStreams {
    ups: Vec<StreamKey>,
    downs: Vec<StreamKey>,
}

/// The media side of Galène. See the module documentation.
#[derive(Default)]
pub struct Media {
    sfu: Option<Sfu>,
    ups: HashMap<StreamKey, UpStream>,
    downs: HashMap<StreamKey, DownStream>,
    up_ids: HashMap<(ConnId, String), StreamKey>,
    down_ids: HashMap<(ConnId, String), StreamKey>,
    clients: HashMap<ConnId, ClientStreams>,
    pushes: BinaryHeap<Reverse<(Instant, StreamKey)>>,
    next_key: u64,
    notices: VecDeque<(ConnId, StreamNotice)>,
}

/// Table sizes, for tests: everything must be empty once every client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaTables {
    /// Up streams.
    pub ups: usize,
    /// Down streams.
    pub downs: usize,
    /// Clients with streams.
    pub clients: usize,
    /// Pending pushes (stale entries included).
    pub pushes: usize,
    /// The engine's tables.
    pub engine: MediaCounts,
}

impl Media {
    /// A media side without an engine: offers are refused.
    pub fn new() -> Media {
        Media::default()
    }

    /// Starts the engine with these host candidates (the media socket's addresses).
    pub fn enable(&mut self, config: SfuConfig) -> Result<(), MediaError> {
        self.sfu = Some(Sfu::new(config)?);
        Ok(())
    }

    /// Whether an engine runs.
    pub fn is_enabled(&self) -> bool {
        self.sfu.is_some()
    }

    /// Table sizes.
    pub fn tables(&self) -> MediaTables {
        MediaTables {
            ups: self.ups.len(),
            downs: self.downs.len(),
            clients: self.clients.len(),
            pushes: self.pushes.len(),
            engine: self.sfu.as_ref().map(Sfu::counts).unwrap_or_default(),
        }
    }

    /// The next message for a client.
    pub fn poll_notice(&mut self) -> Option<(ConnId, StreamNotice)> {
        self.notices.pop_front()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.sfu.as_mut()?.poll_transmit()
    }

    /// When [`Media::handle_timeout`] is due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let engine = self.sfu.as_mut().and_then(Sfu::poll_timeout);
        let push = self.pushes.peek().map(|Reverse((at, _))| *at);
        match (engine, push) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The statistics of every group in memory (galene.md §6.6): per client, its up and
    /// down streams and their tracks. Sorted by group name, client id and stream id.
    pub fn stats(&self, core: &Core) -> Value {
        let mut groups = Vec::new();
        for name in core.group_names() {
            let mut clients: Vec<(String, Value)> = Vec::new();
            for conn in core.members(&name) {
                let id = core
                    .client(*conn)
                    .map(|c| c.id().to_owned())
                    .unwrap_or_default();
                let mut client = Map::new();
                client.insert("id".into(), Value::String(id.clone()));
                if let Some(streams) = self.clients.get(conn) {
                    let ups = streams
                        .ups
                        .iter()
                        .filter_map(|k| self.ups.get(k).map(|u| (*k, u.id.as_str())));
                    let downs = streams
                        .downs
                        .iter()
                        .filter_map(|k| self.downs.get(k).map(|d| (*k, d.id.as_str())));
                    let up = self.streams_json(ups, false);
                    let down = self.streams_json(downs, true);
                    if !up.is_empty() {
                        client.insert("up".into(), Value::Array(up));
                    }
                    if !down.is_empty() {
                        client.insert("down".into(), Value::Array(down));
                    }
                }
                clients.push((id, Value::Object(client)));
            }
            clients.sort_by(|a, b| a.0.cmp(&b.0));
            let mut group = Map::new();
            group.insert("name".into(), Value::String(name));
            if !clients.is_empty() {
                group.insert(
                    "clients".into(),
                    Value::Array(clients.into_iter().map(|(_, c)| c).collect()),
                );
            }
            groups.push(Value::Object(group));
        }
        Value::Array(groups)
    }

    fn streams_json<'a>(
        &self,
        streams: impl Iterator<Item = (StreamKey, &'a str)>,
        down: bool,
    ) -> Vec<Value> {
        let mut list: Vec<(&str, Value)> = streams
            .map(|(key, id)| {
                let tracks: Vec<Value> = self
                    .sfu
                    .as_ref()
                    .map(|sfu| sfu.stream_stats(key))
                    .unwrap_or_default()
                    .iter()
                    .map(|t| {
                        let mut track = json!({
                            "bitrate": t.bitrate,
                            "loss": t.loss,
                            "jitter": t.jitter_ms,
                        });
                        if down && let Some(rtt) = t.rtt_ms {
                            track["rtt"] = json!(rtt);
                        }
                        if down && let Some(layer) = t.layer {
                            track["sid"] = json!(layer.sid);
                            track["maxSid"] = json!(layer.max_sid);
                            track["tid"] = json!(layer.tid);
                            track["maxTid"] = json!(layer.max_tid);
                            if let Some(max) = layer.max_bitrate {
                                track["maxBitrate"] = json!(max);
                            }
                        }
                        track
                    })
                    .collect();
                (id, json!({"id": id, "tracks": tracks}))
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        list.into_iter().map(|(_, v)| v).collect()
    }

    // ------------------------------------------------------------------ runtime inputs

    /// A datagram arrived on the media socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        core: &mut Core,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Some(sfu) = self.sfu.as_mut() else {
            return;
        };
        if let Err(e) = sfu.handle_receive(now, source, destination, data) {
            log::trace!("datagram from {source}: {e}");
        }
        self.process_events(now, core);
    }

    /// Runs the engine's and the pushes' timers.
    pub fn handle_timeout(&mut self, now: Instant, core: &mut Core) {
        if let Some(sfu) = self.sfu.as_mut()
            && sfu.poll_timeout().is_some_and(|at| at <= now)
        {
            sfu.handle_timeout(now);
        }
        self.process_events(now, core);
        while let Some(Reverse((at, key))) = self.pushes.peek().copied() {
            if at > now {
                break;
            }
            self.pushes.pop();
            let Some(up) = self.ups.get_mut(&key) else {
                continue;
            };
            if up.push_at != Some(at) {
                continue; // stale: debounced again
            }
            up.push_at = None;
            self.push_to_group(now, core, key);
        }
    }

    // ------------------------------------------------------------------ client messages

    /// A client's `offer` for its up stream `id`. `labels` are the seed dialect's track
    /// labels by mid (empty for version "2").
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        now: Instant,
        core: &mut Core,
        from: ConnId,
        id: &str,
        label: &str,
        labels: Vec<(String, String)>,
        replace: &str,
        sdp: &str,
    ) {
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
                    let label = if labels.is_empty() {
                        label.to_owned()
                    } else {
                        seed_stream_label(&labels)
                    };
                    self.ups.insert(
                        key,
                        UpStream {
                            owner: from,
                            id: id.to_owned(),
                            label,
                            track_labels: labels,
                            tracks: Vec::new(),
                            push_at: None,
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
                    up.label = seed_stream_label(&labels);
                    up.track_labels = labels;
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

    /// A client's `answer` for its down stream `id`.
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

    /// A trickled candidate for stream `id` of `from` (up first, then down).
    pub fn ice(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str, candidate: &str) {
        let name = (from, id.to_owned());
        let Some(key) = self
            .up_ids
            .get(&name)
            .or_else(|| self.down_ids.get(&name))
            .copied()
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

    /// `renegotiate` for down stream `id`: offer again with an ICE restart.
    pub fn renegotiate(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        let Some(key) = self.down_ids.get(&(from, id.to_owned())).copied() else {
            log::debug!("{from:?}: renegotiate for unknown stream {id:?}");
            return;
        };
        self.restart_down(now, core, key);
        self.process_events(now, core);
    }

    /// The client closed its up stream `id`; receivers get `close`.
    pub fn close(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        match self.up_ids.get(&(from, id.to_owned())).copied() {
            Some(key) => self.close_up(now, key, true),
            None => log::debug!("{from:?}: close for unknown stream {id:?}"),
        }
        self.process_events(now, core);
    }

    /// The client refused or ended down stream `id`; it is told `close`.
    pub fn abort(&mut self, now: Instant, core: &mut Core, from: ConnId, id: &str) {
        match self.down_ids.get(&(from, id.to_owned())).copied() {
            Some(key) => self.close_down(now, key, true),
            None => self
                .notices
                .push_back((from, StreamNotice::Close { id: id.to_owned() })),
        }
        self.process_events(now, core);
    }

    /// `requestStream`: a per-stream override of what `from` receives (`None` resets it).
    pub fn request_stream(
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

    /// `from` changed its `request`: every other member's streams are pushed to it again.
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
                        .is_some_and(|u| u.push_at.is_none() && !u.tracks.is_empty())
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

    /// `conn` left its group or is gone: all its streams close; receivers get `close`. With
    /// `tell_self` the client itself is told too (it left but stays connected).
    pub fn remove_client(&mut self, now: Instant, core: &mut Core, conn: ConnId, tell_self: bool) {
        let Some(streams) = self.clients.get(&conn) else {
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
        let screenshare =
            up.label == "screenshare" || up.track_labels.iter().any(|(_, l)| l == "screenshare");
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
        let selection = select(request, requested, up);
        if let Some(down_key) = existing {
            if self.downs.get(&down_key).map(|d| d.source) != Some(key) {
                log::debug!("{receiver:?}: stream id {:?} is used twice", up.id);
                return;
            }
            if selection.is_empty() {
                self.close_down(now, down_key, true);
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

    /// Acts on everything the engine reported.
    fn process_events(&mut self, now: Instant, core: &mut Core) {
        while let Some(event) = self.sfu.as_mut().and_then(Sfu::poll_event) {
            self.handle_event(now, core, event);
        }
    }

    /// Acts on one engine event.
    fn handle_event(&mut self, now: Instant, core: &mut Core, event: MediaEvent) {
        match event {
            MediaEvent::Connected { stream } => {
                log::debug!("stream {} connected", stream.0);
            }
            MediaEvent::UpTracks { stream, tracks } => {
                if let Some(up) = self.ups.get_mut(&stream) {
                    up.tracks = tracks;
                    let at = now + PUSH_DEBOUNCE;
                    up.push_at = Some(at);
                    self.pushes.push(Reverse((at, stream)));
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
                if self.ups.contains_key(&stream) {
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

/// The stream label a seed publisher's track labels stand for.
fn seed_stream_label(labels: &[(String, String)]) -> String {
    if labels.iter().any(|(_, l)| l == "screenshare") {
        "screenshare".to_owned()
    } else {
        "camera".to_owned()
    }
}

/// What a receiver gets of `up` (galene.md §3.6, galene-seed-dialect.md).
fn select(request: &StreamRequest, requested: Option<TrackSelection>, up: &UpStream) -> Selection {
    let wanted = match (requested, request) {
        (Some(selection), _) => selection,
        (None, StreamRequest::ByStreamLabel(map)) => map
            .get(&up.label)
            .or_else(|| map.get(""))
            .copied()
            .unwrap_or_default(),
        (None, StreamRequest::ByTrackLabel(labels)) => {
            let mut selection = TrackSelection::default();
            for track in &up.tracks {
                let label = track_label(up, track);
                if labels.contains(label) {
                    match track.kind {
                        TrackKind::Audio => selection.audio = true,
                        TrackKind::Video => selection.video = true,
                    }
                }
            }
            selection
        }
    };
    Selection {
        audio: wanted.audio,
        video: if wanted.video {
            VideoChoice::High
        } else if wanted.video_low {
            VideoChoice::Low
        } else {
            VideoChoice::None
        },
    }
}

/// A track's seed-dialect label.
fn track_label<'a>(up: &'a UpStream, track: &TrackInfo) -> &'a str {
    if !up.track_labels.is_empty() {
        return up
            .track_labels
            .iter()
            .find(|(mid, _)| *mid == track.mid)
            .map(|(_, l)| l.as_str())
            .unwrap_or("");
    }
    match track.kind {
        TrackKind::Audio => "audio",
        TrackKind::Video if up.label == "screenshare" => "screenshare",
        TrackKind::Video => "video",
    }
}

/// The kind and mid of every audio/video m-line of an SDP, in order.
fn sdp_media(sdp: &str) -> Vec<(TrackKind, String)> {
    let mut media = Vec::new();
    let mut kind = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            kind = if rest.starts_with("audio") {
                Some(TrackKind::Audio)
            } else if rest.starts_with("video") {
                Some(TrackKind::Video)
            } else {
                None
            };
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(k) = kind.take()
        {
            media.push((k, mid.to_owned()));
        }
    }
    media
}

#[cfg(test)]
mod tests {
    //! The whole App with its media engine, str0m peers in memory and a fake clock: streams
    //! come and go, and nothing is left behind.

    use std::net::SocketAddr;
    use std::time::{Duration, Instant, SystemTime};

    use serde_json::{Value, json};
    use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
    use str0m::media::{Direction, MediaKind};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc};

    use super::MediaTables;
    use crate::app::{App, AppOptions};
    use crate::config::MemoryDirectory;
    use crate::conn::{ConnId, ConnOutput};
    use crate::media::{MediaCounts, SfuConfig};

    const SERVER: &str = "192.0.2.1:8443";

    struct Peer {
        rtc: Rtc,
        addr: SocketAddr,
        deadline: Instant,
        connected: bool,
        pending: Option<SdpPendingOffer>,
    }

    struct World {
        app: App,
        now: Instant,
        peers: Vec<Peer>,
        received: Vec<(ConnId, Value)>,
    }

    impl World {
        fn new() -> World {
            World::with_group(r#"{"wildcard-user": {"password": "pw", "permissions": "present"}}"#)
        }

        fn with_group(group: &str) -> World {
            let now = Instant::now();
            let mut dir = MemoryDirectory::default();
            dir.set_group_json("g", group).unwrap();
            let mut app = App::new(Box::new(dir), AppOptions::default(), now, SystemTime::now());
            app.enable_media(SfuConfig::new(vec![SERVER.parse().unwrap()]))
                .unwrap();
            World {
                app,
                now,
                peers: Vec::new(),
                received: Vec::new(),
            }
        }

        fn send(&mut self, conn: ConnId, value: Value) {
            self.app.handle_text(self.now, conn, &value.to_string());
            self.collect();
        }

        fn collect(&mut self) {
            while let Some((conn, output)) = self.app.poll_output() {
                if let ConnOutput::Text(text) = output {
                    self.received
                        .push((conn, serde_json::from_str(&text).unwrap()));
                }
            }
        }

        fn client(&mut self, id: &str) -> ConnId {
            let conn = self.app.galene_connect(self.now, None);
            self.send(
                conn,
                json!({"type": "handshake", "version": ["2"], "id": id}),
            );
            self.send(
                conn,
                json!({"type": "join", "kind": "join", "group": "g", "username": id, "password": "pw"}),
            );
            conn
        }

        /// The first message of `kind` for `conn`, taken out of what was received.
        fn take(&mut self, conn: ConnId, kind: &str) -> Option<Value> {
            let i = self
                .received
                .iter()
                .position(|(c, v)| *c == conn && v["type"] == kind)?;
            Some(self.received.remove(i).1)
        }

        fn peer(&mut self, port: u16) -> usize {
            let addr: SocketAddr = format!("198.51.100.1:{port}").parse().unwrap();
            let mut rtc = Rtc::builder().set_rtp_mode(true).build(self.now);
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            self.peers.push(Peer {
                rtc,
                addr,
                deadline: self.now,
                connected: false,
                pending: None,
            });
            self.peers.len() - 1
        }

        fn drain_peer(&mut self, i: usize) {
            loop {
                match self.peers[i].rtc.poll_output().unwrap() {
                    Output::Timeout(at) => {
                        self.peers[i].deadline = at;
                        return;
                    }
                    Output::Transmit(t) => {
                        let data: Vec<u8> = t.contents.into();
                        self.app
                            .handle_datagram(self.now, t.source, t.destination, &data);
                        self.collect();
                        self.deliver();
                    }
                    Output::Event(Event::Connected) => self.peers[i].connected = true,
                    Output::Event(_) => {}
                }
            }
        }

        /// Hands the server's datagrams to the peers.
        fn deliver(&mut self) {
            let mut out = Vec::new();
            while let Some(t) = self.app.poll_transmit() {
                out.push(t);
            }
            for t in out {
                let Some(i) = self.peers.iter().position(|p| p.addr == t.destination) else {
                    continue;
                };
                let receive =
                    Receive::new(Protocol::Udp, t.source, t.destination, &t.contents).unwrap();
                let _ = self.peers[i]
                    .rtc
                    .handle_input(Input::Receive(self.now, receive));
                self.drain_peer(i);
            }
        }

        fn run(&mut self, d: Duration) {
            let until = self.now + d;
            while self.now < until {
                self.now += Duration::from_millis(5);
                if self.app.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.app.handle_timeout(self.now);
                    self.collect();
                }
                self.deliver();
                for i in 0..self.peers.len() {
                    if self.peers[i].deadline <= self.now {
                        let now = self.now;
                        self.peers[i].rtc.handle_input(Input::Timeout(now)).unwrap();
                        self.drain_peer(i);
                    }
                }
            }
        }

        fn publish(&mut self, conn: ConnId, peer: usize, id: &str) -> String {
            let mut api = self.peers[peer].rtc.sdp_api();
            api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
            let (offer, pending) = api.apply().unwrap();
            self.peers[peer].pending = Some(pending);
            self.send(
                conn,
                json!({"type": "offer", "id": id, "label": "camera", "sdp": offer.to_sdp_string()}),
            );
            let answer = self.take(conn, "answer").expect("no answer");
            let sdp = answer["sdp"].as_str().unwrap().to_owned();
            let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
            let pending = self.peers[peer].pending.take().unwrap();
            self.peers[peer]
                .rtc
                .sdp_api()
                .accept_answer(pending, answer)
                .unwrap();
            self.drain_peer(peer);
            sdp
        }

        fn receive(&mut self, conn: ConnId, peer: usize, id: &str) {
            let offer = self.take(conn, "offer").expect("no offer");
            self.answer(conn, peer, id, offer);
        }

        fn answer(&mut self, conn: ConnId, peer: usize, id: &str, offer: Value) {
            assert_eq!(offer["id"], id);
            let offer = SdpOffer::from_sdp_string(offer["sdp"].as_str().unwrap()).unwrap();
            let answer = self.peers[peer].rtc.sdp_api().accept_offer(offer).unwrap();
            self.drain_peer(peer);
            self.send(
                conn,
                json!({"type": "answer", "id": id, "sdp": answer.to_sdp_string()}),
            );
        }
    }

    fn empty(tables: MediaTables) -> bool {
        tables
            == MediaTables {
                engine: MediaCounts {
                    dropped_transmits: tables.engine.dropped_transmits,
                    ..MediaCounts::default()
                },
                ..MediaTables::default()
            }
    }

    #[test]
    fn streams_connect_and_leave_nothing_behind() {
        let mut w = World::new();
        let p = w.client("p");
        let s = w.client("s");
        let t = w.client("t");
        for conn in [s, t] {
            w.send(
                conn,
                json!({"type": "request", "request": {"": ["audio", "video"]}}),
            );
        }
        let (pp, sp, tp) = (w.peer(1), w.peer(2), w.peer(3));
        w.publish(p, pp, "up");
        // Debounced: nothing before 200 ms.
        w.run(Duration::from_millis(150));
        assert!(w.take(s, "offer").is_none());
        w.run(Duration::from_millis(100));
        w.receive(s, sp, "up");
        w.receive(t, tp, "up");
        w.run(Duration::from_secs(2));
        assert!(w.peers[pp].connected && w.peers[sp].connected && w.peers[tp].connected);
        let tables = w.app.media().tables();
        assert_eq!((tables.ups, tables.downs, tables.engine.streams), (1, 2, 3));

        // Leaving the group (still connected): its down stream closes, it is told so.
        w.send(s, json!({"type": "join", "kind": "leave", "group": "g"}));
        assert_eq!(w.take(s, "close").unwrap()["id"], "up");
        assert_eq!(w.app.media().tables().downs, 1);
        // A publisher that disconnects takes its streams along; receivers get close.
        w.app.handle_disconnect(w.now, p);
        w.collect();
        assert_eq!(w.take(t, "close").unwrap()["id"], "up");
        w.app.handle_disconnect(w.now, s);
        w.app.handle_disconnect(w.now, t);
        w.collect();
        w.run(Duration::from_secs(1));
        let tables = w.app.media().tables();
        assert!(empty(tables), "{tables:?}");
    }

    #[test]
    fn group_codecs_queued_changes_and_ice_failure() {
        let mut w = World::with_group(
            r#"{"wildcard-user": {"password": "pw", "permissions": "present"},
                "codecs": ["vp9", "opus"]}"#,
        );
        let p = w.client("p");
        let s = w.client("s");
        w.send(
            s,
            json!({"type": "request", "request": {"": ["audio", "video"]}}),
        );
        let (pp, sp) = (w.peer(1), w.peer(2));
        // The group's codecs decide what a publisher's offer is answered with.
        let answer = w.publish(p, pp, "up");
        assert!(
            answer.contains("VP9/90000") && !answer.contains("VP8/90000"),
            "{answer}"
        );
        w.run(Duration::from_millis(250));
        let offer = w.take(s, "offer").expect("no offer");
        // A change while our offer is pending waits for the answer, then comes as an offer.
        w.send(s, json!({"type": "request", "request": {"": ["audio"]}}));
        assert!(w.take(s, "offer").is_none());
        w.answer(s, sp, "up", offer);
        let follow_up = w.take(s, "offer").expect("no follow-up offer");
        assert!(
            follow_up["sdp"].as_str().unwrap().contains("a=inactive"),
            "{follow_up}"
        );
        w.answer(s, sp, "up", follow_up);
        w.run(Duration::from_secs(1));
        assert!(w.peers[pp].connected && w.peers[sp].connected);
        // The publisher's path dies: after ICE gives up, the client is asked to renegotiate.
        w.peers[pp].addr = "198.51.100.99:9".parse().unwrap();
        let mut renegotiate = None;
        for _ in 0..60 {
            w.run(Duration::from_secs(1));
            renegotiate = w.take(p, "renegotiate");
            if renegotiate.is_some() {
                break;
            }
        }
        assert_eq!(
            renegotiate,
            Some(json!({"type": "renegotiate", "id": "up"}))
        );
    }

    #[test]
    fn receivers_hear_when_their_video_is_reduced_by_their_network() {
        use crate::media::MediaEvent;

        let mut w = World::new();
        let p = w.client("p");
        let s = w.client("s");
        // A seed-dialect receiver: it has no way to understand the message.
        let q = w.app.galene_connect(w.now, None);
        w.send(q, json!({"type": "handshake", "id": "q"}));
        w.send(
            q,
            json!({"type": "join", "kind": "join", "group": "g", "username": "q", "password": "pw"}),
        );
        w.send(
            s,
            json!({"type": "request", "request": {"": ["audio", "video"]}}),
        );
        w.send(
            q,
            json!({"type": "request", "request": {"audio": true, "video": true}}),
        );
        let (pp, sp, qp) = (w.peer(1), w.peer(2), w.peer(3));
        w.publish(p, pp, "up");
        w.run(Duration::from_millis(250));
        w.receive(s, sp, "up");
        w.receive(q, qp, "up");
        w.received.clear();
        let media = w.app.media();
        let (s_down, q_down) = (
            media.down_key(s, "up").unwrap(),
            media.down_key(q, "up").unwrap(),
        );
        let up = media.up_key(p, "up").unwrap();
        let inject = |w: &mut World, stream, reduced| {
            w.app
                .inject_media_event(w.now, MediaEvent::LayerReduced { stream, reduced });
            w.collect();
        };
        let layer = |reduced: bool| {
            json!({"type": "usermessage", "kind": "sfubox-layer", "dest": "s", "privileged": true,
                   "value": {"id": "up", "reduced": reduced}})
        };

        // The receiver whose stream it is hears it, about its own stream id; nobody else does.
        inject(&mut w, s_down, true);
        assert_eq!(w.received, [(s, layer(true))]);
        w.received.clear();
        // Only changes are sent.
        inject(&mut w, s_down, true);
        assert_eq!(w.received, []);
        inject(&mut w, s_down, false);
        assert_eq!(w.received, [(s, layer(false))]);
        w.received.clear();
        // Not to the seed dialect; not for an up stream.
        inject(&mut w, q_down, true);
        inject(&mut w, up, true);
        assert_eq!(w.received, []);

        // A stream the client no longer has: nothing.
        w.send(s, json!({"type": "abort", "id": "up"}));
        assert_eq!(w.take(s, "close").unwrap()["id"], "up");
        inject(&mut w, s_down, true);
        assert_eq!(w.received, []);
        // Pushed again, the new down stream starts unreduced: `false` is not news.
        w.send(s, json!({"type": "request", "request": {"": ["audio"]}}));
        w.send(
            s,
            json!({"type": "request", "request": {"": ["audio", "video"]}}),
        );
        let sp2 = w.peer(4);
        w.receive(s, sp2, "up");
        w.received.clear();
        let again = w.app.media().down_key(s, "up").unwrap();
        assert_ne!(again, s_down);
        inject(&mut w, again, false);
        assert_eq!(w.received, []);
        inject(&mut w, again, true);
        assert_eq!(w.received, [(s, layer(true))]);
    }

    #[test]
    fn a_client_has_a_bounded_number_of_up_streams() {
        let mut w = World::new();
        let p = w.client("p");
        for n in 0..super::MAX_UP_STREAMS_PER_CLIENT {
            let peer = w.peer(100 + n as u16);
            w.publish(p, peer, &format!("up{n}"));
        }
        let peer = w.peer(99);
        let mut api = w.peers[peer].rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _) = api.apply().unwrap();
        w.send(
            p,
            json!({"type": "offer", "id": "one-more", "label": "camera", "sdp": offer.to_sdp_string()}),
        );
        assert_eq!(
            w.take(p, "abort"),
            Some(json!({"type": "abort", "id": "one-more"}))
        );
        assert_eq!(
            w.take(p, "usermessage").unwrap()["value"],
            "too many streams"
        );
        assert_eq!(w.app.media().tables().ups, super::MAX_UP_STREAMS_PER_CLIENT);
        // Closing one makes room again.
        w.send(p, json!({"type": "close", "id": "up0"}));
        let peer = w.peer(98);
        w.publish(p, peer, "again");
    }
}
