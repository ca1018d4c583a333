//! The commands signalling gives the engine: answering a publisher ([`Sfu::accept_offer`]),
//! offering to a receiver and following up ([`Sfu::create_down`], [`Sfu::accept_answer`],
//! [`Sfu::set_selection`], [`Sfu::replace_source`], [`Sfu::restart_ice`]), trickled candidates
//! and closing a stream; and the bookkeeping of an up stream's layers and codecs they need.

use std::time::Instant;

use str0m::Candidate;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid, Rid, Rids};

use super::Sfu;
use super::codecs::MediaCodec;
use super::demux;
use super::forward::Selection;
use super::guard::guarded;
use super::ids::{LinkKey, PeerId, StreamKey};
use super::peer::{
    DownState, MAX_BUFFERED_CANDIDATES, MAX_UP_LAYERS, Peer, Role, UpLayer, UpState,
};
use super::types::{MediaError, MediaEvent, TrackInfo, parse_one_way_offer, track_kind};

impl Sfu {
    /// Answers a publisher's offer: creates the up stream `key`, or renegotiates it if it
    /// exists. `codecs` are the group's codecs (ignored on renegotiation). Returns the answer.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        key: StreamKey,
        offer: &str,
        codecs: &[MediaCodec],
    ) -> Result<String, MediaError> {
        // We only ever receive on up streams: answer a sendrecv m-line as recvonly.
        let offer = parse_one_way_offer(offer, "a=sendonly")?;
        let (id, created) = match self.keys.get(&key) {
            Some(&id) => {
                if self.peer(id).and_then(|p| p.up()).is_none() {
                    return Err(MediaError::WrongDirection(key));
                }
                (id, false)
            }
            None => {
                let codecs = if codecs.is_empty() {
                    MediaCodec::DEFAULT
                } else {
                    codecs
                };
                let rtc = self.build_rtc(now, codecs, Direction::RecvOnly)?;
                let up = UpState {
                    created: Some(now),
                    ..UpState::default()
                };
                (self.insert_peer(now, key, rtc, Role::Up(up)), true)
            }
        };
        let Some(peer) = self.peer_mut(id) else {
            return Err(MediaError::UnknownStream(key));
        };
        let answer = guarded(|| peer.rtc.sdp_api().accept_offer(offer));
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                if created {
                    self.remove_peer(id, None);
                } else {
                    self.drain(now, id);
                }
                return Err(MediaError::Negotiation(e.to_string()));
            }
            Err(e) => {
                self.remove_peer(id, None);
                return Err(e);
            }
        };
        let before = self.track_infos(id);
        let answer = answer.to_sdp_string();
        // str0m announces media only once DTLS is up; the answer names the m-lines now.
        for mid in demux::sdp_mids(&answer) {
            let kind = self
                .peer(id)
                .and_then(|p| p.rtc.media(mid))
                .map(|m| m.kind());
            if let Some(kind) = kind {
                self.add_up_layers(id, mid, kind);
            }
        }
        self.drain(now, id);
        self.remote_description_set(now, id);
        self.refresh_ufrag(id);
        let after = self.track_infos(id);
        if after != before && !after.is_empty() {
            self.push_event(MediaEvent::UpTracks {
                stream: key,
                tracks: after,
            });
        }
        self.run_deferred(now);
        Ok(answer)
    }

    /// Creates the down stream `key` carrying `selection` of the up stream `source` to the
    /// subscriber whose network path is `link` (all down streams of one subscriber share one
    /// bandwidth budget). Returns the offer to send to the receiver.
    pub fn create_down(
        &mut self,
        now: Instant,
        key: StreamKey,
        source: StreamKey,
        link: LinkKey,
        selection: Selection,
    ) -> Result<String, MediaError> {
        if self.keys.contains_key(&key) {
            return Err(MediaError::StreamExists(key));
        }
        let up_id = self.up_id(source)?;
        if selection.is_empty() {
            return Err(MediaError::NothingSelected);
        }
        let codecs = self.up_codecs(up_id);
        if codecs.is_empty() {
            return Err(MediaError::CodecMismatch);
        }
        let rtc = self.build_rtc(now, &codecs, Direction::SendOnly)?;
        let down = DownState::new(now, link, Some(up_id), false, selection);
        let id = self.insert_peer(now, key, rtc, Role::Down(Box::new(down)));
        self.join_link(link, id);
        self.refresh_ufrag(id);
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        match result {
            Ok(Some(offer)) => Ok(offer),
            Ok(None) => {
                self.remove_peer(id, None);
                Err(MediaError::NothingSelected)
            }
            Err(e) => {
                self.remove_peer(id, None);
                Err(e)
            }
        }
    }

    /// Applies the receiver's answer to our last offer on down stream `key`. Returns a
    /// follow-up offer if changes were queued meanwhile.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        key: StreamKey,
        answer: &str,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let answer =
            SdpAnswer::from_sdp_string(answer).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return Err(MediaError::WrongDirection(key));
        };
        let pending = down
            .pending_offer
            .take()
            .ok_or(MediaError::NoPendingOffer(key))?;
        let handled = guarded(|| rtc.sdp_api().accept_answer(pending, answer));
        let accepted = self.settle(id, handled, MediaError::Negotiation);
        self.drain(now, id);
        if let Err(e) = accepted {
            self.run_deferred(now);
            return Err(e);
        }
        self.configure_nack_history(now, id);
        self.remote_description_set(now, id);
        self.refresh_ufrag(id);
        let (selection, restart) = match self.peer_mut(id).and_then(|p| p.down_mut()) {
            Some(d) => (
                d.queued_selection.take(),
                std::mem::take(&mut d.queued_ice_restart),
            ),
            None => (None, false),
        };
        let result = if selection.is_some() || restart {
            self.renegotiate_down(now, id, selection, restart)
        } else {
            Ok(None)
        };
        self.run_deferred(now);
        result
    }

    /// Adds a trickled remote ICE candidate (`candidate:...` text) to stream `key`; buffered
    /// until the remote description is known.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        key: StreamKey,
        candidate: &str,
    ) -> Result<(), MediaError> {
        let id = self.key_id(key)?;
        let text = candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        let candidate = Candidate::from_sdp_string(text)
            .map_err(|e| MediaError::BadCandidate(e.to_string()))?;
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        if peer.has_remote_description {
            peer.rtc.add_remote_candidate(candidate);
            self.drain(now, id);
            self.run_deferred(now);
        } else if peer.early_candidates.len() < MAX_BUFFERED_CANDIDATES {
            peer.early_candidates.push(candidate);
        }
        Ok(())
    }

    /// Restarts ICE on down stream `key` (after [`MediaEvent::DownIceFailed`]). Returns the
    /// offer, or `None` if an offer is pending: the restart is then offered after its answer.
    /// A receiver-negotiated stream cannot: its receiver restarts with a new offer.
    pub fn restart_ice(
        &mut self,
        now: Instant,
        key: StreamKey,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let down = self
            .peer_mut(id)
            .and_then(|p| p.down_mut())
            .ok_or(MediaError::WrongDirection(key))?;
        if down.answered {
            return Err(MediaError::ReceiverNegotiated(key));
        }
        if down.pending_offer.is_some() {
            down.queued_ice_restart = true;
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, None, true);
        self.run_deferred(now);
        result
    }

    /// Changes what down stream `key` carries. Returns an offer if the m-lines change; a switch
    /// between `video` and `video-low` needs none (it happens at the next keyframe). While an
    /// offer is pending the change is queued and offered after the answer.
    ///
    /// Also call this after [`MediaEvent::UpTracks`] for the source, to pick up new tracks.
    pub fn set_selection(
        &mut self,
        now: Instant,
        key: StreamKey,
        selection: Selection,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let down = self
            .peer_mut(id)
            .and_then(|p| p.down_mut())
            .ok_or(MediaError::WrongDirection(key))?;
        if down.pending_offer.is_some() {
            down.queued_selection = Some(selection);
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        result
    }

    /// Feeds down stream `key` from another up stream (a publisher's `replace`), keeping the
    /// receiver's sequence numbers and timestamps continuous. The new source must use codecs
    /// the down stream negotiated. A receiver-negotiated stream ([`Sfu::answer_down`]) gets
    /// its first source this way too, and never needs an offer.
    pub fn replace_source(
        &mut self,
        now: Instant,
        key: StreamKey,
        source: StreamKey,
    ) -> Result<Option<String>, MediaError> {
        let id = self.key_id(key)?;
        let up_id = self.up_id(source)?;
        let wanted = self.up_codecs(up_id);
        let answered = self
            .peer(id)
            .and_then(|p| p.down())
            .is_some_and(|d| d.answered);
        let supported = if answered {
            self.answered_carries(id, &wanted)
        } else {
            let peer = self.peer(id).ok_or(MediaError::UnknownStream(key))?;
            wanted.iter().all(|c| {
                peer.rtc
                    .codec_config()
                    .params()
                    .iter()
                    .any(|p| p.spec().codec == c.str0m_codec())
            })
        };
        let peer = self.peer_mut(id).ok_or(MediaError::UnknownStream(key))?;
        if !supported {
            return Err(MediaError::CodecMismatch);
        }
        let down = peer.down_mut().ok_or(MediaError::WrongDirection(key))?;
        down.source = Some(up_id);
        let selection = down.selection;
        if down.pending_offer.is_some() {
            down.queued_selection = Some(selection);
            return Ok(None);
        }
        let result = self.renegotiate_down(now, id, Some(selection), false);
        self.run_deferred(now);
        result
    }

    /// Closes stream `key` (either direction, or a local sink) and forgets everything about
    /// it.
    pub fn close_stream(&mut self, now: Instant, key: StreamKey) -> Result<(), MediaError> {
        if self.remove_sink(key) {
            return Ok(());
        }
        let id = self.key_id(key)?;
        self.remove_peer(id, None);
        self.run_deferred(now);
        Ok(())
    }

    /// The remote description is known: add the candidates that came early.
    pub(super) fn remote_description_set(&mut self, now: Instant, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        peer.has_remote_description = true;
        let early = std::mem::take(&mut peer.early_candidates);
        for candidate in early {
            let Some(peer) = self.peer_mut(id) else {
                return;
            };
            peer.rtc.add_remote_candidate(candidate);
            self.drain(now, id);
        }
    }

    /// Records the layers of a new incoming m-line.
    fn add_up_layers(&mut self, id: PeerId, mid: Mid, kind: MediaKind) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let peer_key = peer.key.0;
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        if up.layers.iter().any(|l| l.mid == mid) {
            return;
        }
        let mline = up.layers.last().map(|l| l.mline + 1).unwrap_or(0);
        let rids: Vec<Option<Rid>> = match rtc.media(mid).map(|m| m.rids_rx()) {
            Some(Rids::Specific(rids)) if !rids.is_empty() => {
                rids.iter().copied().map(Some).collect()
            }
            _ => vec![None],
        };
        for rid in rids {
            if up.layers.len() >= MAX_UP_LAYERS {
                log::debug!(
                    "stream {}: ignoring layers beyond {MAX_UP_LAYERS}",
                    peer_key
                );
                return;
            }
            up.layers.push(UpLayer {
                mid,
                mline,
                rid,
                kind,
                ssrc: None,
                epoch: 0,
                subscribers: Vec::new(),
                sinks: Vec::new(),
                last_keyframe_request: None,
                payload: None,
                meter: Default::default(),
            });
        }
    }

    /// The layers of up peer `id`, as [`MediaEvent::UpTracks`] announces them.
    fn track_infos(&self, id: PeerId) -> Vec<TrackInfo> {
        let Some(up) = self.peer(id).and_then(|p| p.up()) else {
            return Vec::new();
        };
        up.layers
            .iter()
            .map(|l| TrackInfo {
                kind: track_kind(l.kind),
                mid: l.mid.to_string(),
                rid: l.rid.map(|r| r.to_string()),
            })
            .collect()
    }

    /// The table codecs negotiated on an up stream's m-lines.
    fn up_codecs(&self, id: PeerId) -> Vec<MediaCodec> {
        let mut codecs = Vec::new();
        let Some(peer) = self.peer(id) else {
            return codecs;
        };
        let Some(up) = peer.up() else {
            return codecs;
        };
        let params = peer.rtc.codec_config().params();
        for layer in &up.layers {
            let Some(media) = peer.rtc.media(layer.mid) else {
                continue;
            };
            for pt in media.remote_pts() {
                let codec = params
                    .iter()
                    .find(|p| p.pt() == *pt)
                    .and_then(|p| MediaCodec::from_str0m(p.spec().codec));
                if let Some(c) = codec
                    && !codecs.contains(&c)
                {
                    codecs.push(c);
                }
            }
        }
        codecs
    }
}
