//! A down stream's SDP: the offer that brings its m-lines in line with the receiver's selection
//! (and restarts ICE), and the NACK history of the video tracks once negotiated.

use std::time::Instant;

use str0m::media::{Direction, MediaKind};

use super::Sfu;
use super::allocate::TrackPolicy;
use super::deferred::Deferred;
use super::forward::{DownTrack, LayerShape, Selection, VideoChoice, choose_layer};
use super::guard::guarded;
use super::ids::{PeerId, SourceRef, Subscriber};
use super::peer::{DownSlot, Peer, Role, peer_connected};
use super::types::{GoneReason, MediaError};

/// For one kind: the chosen layer of the source and the msid (stream id, track id) of its
/// m-line, to mirror on the down m-line.
type WantedTrack = (MediaKind, Option<usize>, Option<(String, String)>);

impl Sfu {
    /// Sizes the NACK history of newly negotiated video tracks.
    pub(super) fn configure_nack_history(&mut self, now: Instant, id: PeerId) {
        let packets = self.config.video_nack_packets;
        let age = self.config.video_nack_age;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return;
        };
        let mut changed = false;
        for slot in &mut down.tracks {
            if slot.nack_configured || slot.track.kind != MediaKind::Video {
                continue;
            }
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(slot.mid, None) {
                tx.set_rtx_cache(packets, age, Some(0.15));
                slot.nack_configured = true;
                changed = true;
            }
        }
        if changed {
            self.drain(now, id);
        }
    }

    /// Brings down stream `id` in line with `selection` (if given) and restarts ICE if asked,
    /// in one offer. Returns the offer if the SDP changed. A receiver-negotiated stream
    /// ([`Sfu::answer_down`]) only changes what its m-lines carry: it never offers.
    pub(super) fn renegotiate_down(
        &mut self,
        now: Instant,
        id: PeerId,
        selection: Option<Selection>,
        ice_restart: bool,
    ) -> Result<Option<String>, MediaError> {
        let (source, answered) = match self.peer(id).map(|p| &p.role) {
            Some(Role::Down(d)) => (d.source, d.answered),
            _ => return Ok(None),
        };
        // What the selection maps to on the source, and the msid of those m-lines.
        let mut wanted: [WantedTrack; 2] = [
            (MediaKind::Audio, None, None),
            (MediaKind::Video, None, None),
        ];
        if let Some(sel) = selection
            && let Some(up_peer) = source.and_then(|s| self.peer(s))
            && let Some(up) = up_peer.up()
        {
            let shapes = up.layers.iter().map(|l| LayerShape {
                kind: l.kind,
                mline: l.mline,
                rid: l.rid.as_ref(),
            });
            if sel.audio {
                wanted[0].1 = choose_layer(shapes.clone(), MediaKind::Audio, VideoChoice::None);
            }
            wanted[1].1 = choose_layer(shapes, MediaKind::Video, sel.video);
            for w in &mut wanted {
                w.2 =
                    w.1.and_then(|i| up.layers.get(i))
                        .and_then(|l| up_peer.rtc.media(l.mid))
                        .map(|m| (m.stream_id().to_string(), m.track_id().to_string()));
            }
        }
        let Some(peer) = self.peer_mut(id) else {
            return Ok(None);
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return Ok(None);
        };
        let mut subscribe: Vec<(SourceRef, usize)> = Vec::new();
        let mut unsubscribe: Vec<(SourceRef, usize)> = Vec::new();
        let offer = guarded(|| {
            let mut api = rtc.sdp_api();
            if let Some(sel) = selection {
                down.selection = sel;
                for (kind, layer, msid) in wanted {
                    let want = source.zip(layer).map(|(up, layer)| SourceRef { up, layer });
                    match down.tracks.iter().position(|t| t.track.kind == kind) {
                        Some(i) => {
                            let slot = &mut down.tracks[i]; // i from position() on this vector
                            slot.wanted = layer;
                            for old in slot.track.select(want) {
                                unsubscribe.push((old, i));
                            }
                            // A receiver-negotiated stream keeps its m-lines as they are.
                            if let Some(s) = want {
                                subscribe.push((s, i));
                                if !slot.active && !answered {
                                    api.set_direction(slot.mid, Direction::SendOnly);
                                    slot.active = true;
                                }
                            } else if slot.active && !answered {
                                api.set_direction(slot.mid, Direction::Inactive);
                                slot.active = false;
                            }
                        }
                        None => {
                            let Some(s) = want.filter(|_| !answered) else {
                                continue;
                            };
                            let (stream_id, track_id) = msid.unzip();
                            let mid =
                                api.add_media(kind, Direction::SendOnly, stream_id, track_id, None);
                            subscribe.push((s, down.tracks.len()));
                            down.tracks.push(DownSlot {
                                mid,
                                active: true,
                                track: DownTrack::new(kind, Some(s)),
                                pt_map: None,
                                nack_configured: false,
                                wanted: layer,
                                policy: TrackPolicy::default(),
                                choice: None,
                                reduced: false,
                                max_bitrate: None,
                                ceiling: None,
                            });
                        }
                    }
                }
            }
            if ice_restart && !answered {
                api.ice_restart(true);
            }
            if !api.has_changes() {
                return None;
            }
            let (offer, pending) = api.apply()?;
            down.pending_offer = Some(pending);
            Some(offer.to_sdp_string())
        });
        let connected = peer_connected(&self.slots, id);
        for (source, track) in subscribe {
            self.subscribe(source, Subscriber { down: id, track });
            if connected {
                self.deferred.push_back(Deferred::Keyframe(source));
            }
        }
        for (source, track) in unsubscribe {
            self.unsubscribe(source, Subscriber { down: id, track });
        }
        if ice_restart && let Some(peer) = self.peer_mut(id) {
            peer.ice_down_since = None;
            peer.ice_failure_reported = false;
        }
        if selection.is_some()
            && let Some(link) = self.peer(id).and_then(|p| p.down()).map(|d| d.link)
        {
            self.link_changed(link);
        }
        match offer {
            Ok(offer) => {
                self.drain(now, id);
                self.refresh_ufrag(id);
                Ok(offer)
            }
            Err(e) => {
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
                Err(e)
            }
        }
    }
}
