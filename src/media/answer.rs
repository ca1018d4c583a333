//! Down streams that the receiver negotiates (WHEP): the receiver's offer is answered
//! send-only ([`Sfu::answer_down`]), its m-lines stay as the receiver offered them, and the
//! up stream that feeds it is attached and swapped with [`Sfu::replace_source`] without any
//! new offer. A new offer from the receiver on the same stream renegotiates it (an ICE
//! restart).
//!
//! The first audio and the first video m-line the receiver offers become the stream's two
//! tracks; further m-lines are answered but carry nothing. Packets take the same path as on
//! any down stream: the payload types are the receiver's, found per packet by codec.

use std::time::Instant;

use str0m::media::{Direction, MediaKind};

use super::Sfu;
use super::allocate::TrackPolicy;
use super::codecs::MediaCodec;
use super::demux;
use super::forward::{DownTrack, Selection, VideoChoice};
use super::guard::guarded;
use super::ids::{LinkKey, PeerId, StreamKey};
use super::peer::{DownSlot, DownState, Peer, Role};
use super::types::{MediaError, parse_one_way_offer};

impl Sfu {
    /// Answers a receiver's offer with the down stream `key`, sending on the offer's first
    /// audio and first video m-line to the subscriber whose network path is `link`. `codecs`
    /// are what the stream may carry (the group's); the answer keeps those the receiver also
    /// offered. The stream starts without a source: [`Sfu::replace_source`] gives it one.
    ///
    /// If `key` is already such a stream, the offer renegotiates it (same m-lines, new ICE
    /// credentials for a restart) and its sources stay. Returns the answer.
    pub fn answer_down(
        &mut self,
        now: Instant,
        key: StreamKey,
        link: LinkKey,
        offer: &str,
        codecs: &[MediaCodec],
    ) -> Result<String, MediaError> {
        // We only ever send on these streams: answer a sendrecv m-line as sendonly.
        let offer = parse_one_way_offer(offer, "a=recvonly")?;
        let (id, created) = match self.keys.get(&key) {
            Some(&id) => {
                if !self
                    .peer(id)
                    .and_then(|p| p.down())
                    .is_some_and(|d| d.answered)
                {
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
                let rtc = self.build_rtc(now, codecs, Direction::SendOnly)?;
                let down = answered_down(now, link);
                let id = self.insert_peer(now, key, rtc, Role::Down(Box::new(down)));
                self.join_link(link, id);
                (id, true)
            }
        };
        let Some(peer) = self.peer_mut(id) else {
            return Err(MediaError::UnknownStream(key));
        };
        let answer = match guarded(|| peer.rtc.sdp_api().accept_offer(offer)) {
            Ok(Ok(answer)) => answer.to_sdp_string(),
            Ok(Err(e)) => {
                if created {
                    self.remove_peer(id, None);
                } else {
                    self.drain(now, id);
                }
                self.run_deferred(now);
                return Err(MediaError::Negotiation(e.to_string()));
            }
            Err(e) => {
                self.remove_peer(id, None);
                self.run_deferred(now);
                return Err(e);
            }
        };
        if created {
            self.add_answered_tracks(id, &answer);
        }
        self.drain(now, id);
        self.configure_nack_history(now, id);
        self.remote_description_set(now, id);
        self.refresh_ufrag(id);
        self.run_deferred(now);
        Ok(answer)
    }

    /// Whether the receiver-negotiated down peer `id` can carry every codec of `codecs` whose
    /// kind it has a track for (and has a track for at least one of them): each must be among
    /// the payload types negotiated on that track's m-line.
    pub(super) fn answered_carries(&self, id: PeerId, codecs: &[MediaCodec]) -> bool {
        let Some(peer) = self.peer(id) else {
            return false;
        };
        let Some(down) = peer.down() else {
            return false;
        };
        let params = peer.rtc.codec_config().params();
        let mut any = false;
        for codec in codecs {
            let Some(slot) = down.tracks.iter().find(|t| t.track.kind == codec.kind()) else {
                continue;
            };
            let negotiated = peer.rtc.media(slot.mid).is_some_and(|media| {
                media.remote_pts().iter().any(|pt| {
                    params
                        .iter()
                        .any(|p| p.pt() == *pt && p.spec().codec == codec.str0m_codec())
                })
            });
            if !negotiated {
                return false;
            }
            any = true;
        }
        any
    }

    /// Makes tracks of the first sending audio and video m-line of a new answer, and the
    /// selection they stand for.
    fn add_answered_tracks(&mut self, id: PeerId, answer: &str) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return;
        };
        for mid in demux::sdp_mids(answer) {
            let Some(media) = rtc.media(mid) else {
                continue;
            };
            let kind = media.kind();
            if !media.direction().is_sending() || down.tracks.iter().any(|t| t.track.kind == kind) {
                continue;
            }
            down.tracks.push(DownSlot {
                mid,
                active: true,
                track: DownTrack::new(kind, None),
                pt_map: None,
                nack_configured: false,
                wanted: None,
                policy: TrackPolicy::default(),
                choice: None,
                reduced: false,
                max_bitrate: None,
                ceiling: None,
            });
        }
        let has = |kind| down.tracks.iter().any(|t| t.track.kind == kind);
        down.selection = Selection {
            audio: has(MediaKind::Audio),
            video: if has(MediaKind::Video) {
                VideoChoice::High
            } else {
                VideoChoice::None
            },
        };
    }
}

/// The state of a new receiver-negotiated down stream: no source, no tracks yet.
fn answered_down(now: Instant, link: LinkKey) -> DownState {
    let nothing = Selection {
        audio: false,
        video: VideoChoice::None,
    };
    DownState::new(now, link, None, true, nothing)
}
