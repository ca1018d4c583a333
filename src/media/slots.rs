//! The peer table: slots reused under a new generation, the lookups from a [`StreamKey`], and
//! building, inserting and removing a stream's `Rtc` with every index that names it.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::Direction;
use str0m::{Candidate, Output, Rtc};

use super::Sfu;
use super::codecs::{MediaCodec, configure_codecs};
use super::config::{sending_extensions, stream_rtc_config};
use super::guard::guarded;
use super::ids::{PeerId, StreamKey, Subscriber};
use super::meter::ADAPT_INTERVAL;
use super::peer::{Peer, Role, Slot, peer_in, scheduled};
use super::types::{GoneReason, MediaError, MediaEvent};

/// Outputs read from an `Rtc` being closed, at most (its goodbye is a handful of datagrams).
const MAX_GOODBYE_OUTPUTS: usize = 64;

impl Sfu {
    /// The live peer `id`.
    pub(super) fn peer(&self, id: PeerId) -> Option<&Peer> {
        let slot = self.slots.get(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.peer.as_deref()
    }

    /// The live peer `id`, mutable.
    pub(super) fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        peer_in(&mut self.slots, id)
    }

    /// The peer of stream `key`.
    pub(super) fn key_id(&self, key: StreamKey) -> Result<PeerId, MediaError> {
        self.keys
            .get(&key)
            .copied()
            .ok_or(MediaError::UnknownStream(key))
    }

    /// The peer of stream `key`, which must be an up stream.
    pub(super) fn up_id(&self, key: StreamKey) -> Result<PeerId, MediaError> {
        let id = self.key_id(key)?;
        match self.peer(id).map(|p| &p.role) {
            Some(Role::Up(_)) => Ok(id),
            _ => Err(MediaError::WrongDirection(key)),
        }
    }

    /// A new `Rtc` for a stream that only receives (`RecvOnly`, a publisher) or only sends; see
    /// [`stream_rtc_config`].
    pub(super) fn build_rtc(
        &self,
        now: Instant,
        codecs: &[MediaCodec],
        direction: Direction,
    ) -> Result<Rtc, MediaError> {
        let estimate = direction == Direction::SendOnly && self.config.downlink_estimation;
        let mut config = stream_rtc_config(direction, self.config.video_nack_packets);
        if estimate {
            config = config
                .set_extension_map(sending_extensions(true))
                .enable_bwe(Some(Bitrate::bps(self.config.initial_downlink_estimate)));
        }
        let config = config
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.dtls_cert.clone())
            .set_stats_interval(Some(Duration::from_secs(1)));
        let config = configure_codecs(config, codecs);
        let candidates = &self.config.candidates;
        guarded(move || {
            let mut rtc = config.build(now);
            for &addr in candidates {
                if let Ok(c) = Candidate::host(addr, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
            rtc
        })
    }

    /// Registers a new stream under `key` in a free slot (or a new one) and drains its `Rtc`.
    pub(super) fn insert_peer(
        &mut self,
        now: Instant,
        key: StreamKey,
        rtc: Rtc,
        role: Role,
    ) -> PeerId {
        let peer = Box::new(Peer {
            key,
            rtc,
            role,
            rtc_deadline: now,
            deadline: None,
            connected: false,
            ice_down_since: None,
            ice_failure_reported: false,
            ufrag: String::new(),
            addrs: heapless::Vec::new(),
            early_candidates: Vec::new(),
            has_remote_description: false,
            stats: Vec::new(),
        });
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize]; // free holds valid indices only
                slot.peer = Some(peer);
                PeerId::new(index, slot.generation)
            }
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    generation: 0,
                    peer: Some(peer),
                });
                PeerId::new(index, 0)
            }
        };
        self.keys.insert(key, id);
        if self.next_adapt_at.is_none() {
            self.next_adapt_at = Some(now + ADAPT_INTERVAL);
        }
        self.drain(now, id);
        id
    }

    /// Drops peer `id` and every index that names it, says goodbye on its `Rtc` if it still
    /// can, and announces it as gone when `announce` gives a reason.
    pub(super) fn remove_peer(&mut self, id: PeerId, announce: Option<GoneReason>) {
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return;
        };
        if slot.generation != id.generation() {
            return;
        }
        let Some(mut peer) = slot.peer.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        if let Ok(index) = u32::try_from(id.index()) {
            self.free.push(index);
        }
        if self.keys.get(&peer.key) == Some(&id) {
            self.keys.remove(&peer.key);
        }
        if self.keys.is_empty() {
            // Nothing to adapt: an idle engine has no deadline.
            self.next_adapt_at = None;
            self.next_remb_at = None;
        }
        for addr in &peer.addrs {
            if self.routes.get(addr) == Some(&id) {
                self.routes.remove(addr);
            }
        }
        if self.ufrags.get(&peer.ufrag) == Some(&id) {
            self.ufrags.remove(&peer.ufrag);
        }
        match &peer.role {
            Role::Up(up) => {
                for layer in &up.layers {
                    for sub in &layer.subscribers {
                        if let Some(slot) = self
                            .peer_mut(sub.down)
                            .and_then(|d| d.down_mut())
                            .and_then(|d| d.tracks.get_mut(sub.track))
                        {
                            slot.track.forget_up(id);
                        }
                    }
                }
            }
            Role::Down(down) => {
                self.leave_link(down.link, id);
                for (index, slot) in down.tracks.iter().enumerate() {
                    let sub = Subscriber {
                        down: id,
                        track: index,
                    };
                    for source in slot.track.keyframe_targets() {
                        self.unsubscribe(source, sub);
                    }
                }
            }
        }
        // Say goodbye (RTCP BYE, DTLS close_notify) if the engine still can.
        let rtc = &mut peer.rtc;
        let mut goodbye = Vec::new();
        let _ = guarded(|| {
            if rtc.close().is_err() {
                return;
            }
            for _ in 0..MAX_GOODBYE_OUTPUTS {
                match rtc.poll_output() {
                    Ok(Output::Transmit(t)) => goodbye.push(t),
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
            }
        });
        for t in goodbye {
            self.push_transmit(t);
        }
        let slots = &self.slots;
        self.timers
            .compact(|at, id| scheduled(slots, id) == Some(at));
        if let Some(reason) = announce {
            self.push_event(MediaEvent::StreamGone {
                stream: peer.key,
                reason,
            });
        }
    }
}
