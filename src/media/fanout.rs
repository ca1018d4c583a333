//! The fan-out: each packet of an up layer written to every down track subscribed to it, with the
//! header rewritten per receiver ([`super::forward`] decides; this writes through str0m), the
//! subscriptions themselves, and keyframe requests to publishers.

use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

use super::Sfu;
use super::codecs::MediaCodec;
use super::deferred::Deferred;
use super::forward::{Decision, PacketMeta};
use super::ids::{PeerId, SourceRef, Subscriber};
use super::layers::CodecMeta;
use super::peer::{MAX_QUEUED_SINK_PACKETS, Peer, Role, peer_in};
use super::types::{SenderClock, SinkPacket};

/// Whether a decoder can start at this payload (the first packet of a keyframe).
fn starts_decoding(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => str0m::format::detect_vp8_keyframe(payload),
        Codec::Vp9 => str0m::format::detect_vp9_keyframe(payload),
        Codec::Av1 => str0m::format::detect_av1_keyframe(payload),
        Codec::H264 => str0m::format::detect_h264_keyframe(payload),
        _ => true,
    }
}

impl Sfu {
    /// Sends one packet of an up stream to every down track attached to its layer.
    pub(super) fn forward(&mut self, now: Instant, up_id: PeerId, packet: Box<RtpPacket>) {
        let Some(peer) = peer_in(&mut self.slots, up_id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let index = match up.layers.iter().position(|l| l.ssrc == Some(ssrc)) {
            Some(i) => i,
            None => {
                // A new SSRC: find its layer by mid/rid once, then remember it.
                let Some((mid, rid)) = rtc
                    .direct_api()
                    .stream_rx(&ssrc)
                    .map(|s| (s.mid(), s.rid()))
                else {
                    return;
                };
                let Some(i) = up.layers.iter().position(|l| l.mid == mid && l.rid == rid) else {
                    return;
                };
                let layer = &mut up.layers[i]; // i comes from position() on the same vector
                if layer.ssrc.is_some() {
                    layer.epoch = layer.epoch.wrapping_add(1);
                }
                layer.ssrc = Some(ssrc);
                i
            }
        };
        let layer = &mut up.layers[index]; // index was found in this vector above
        let pt = packet.header.payload_type;
        if layer.payload.map(|(p, _)| p) != Some(pt) {
            let Some(params) = rtc.codec_config().params().iter().find(|p| p.pt() == pt) else {
                return;
            };
            layer.payload = Some((pt, *params));
        }
        let Some((_, params)) = layer.payload else {
            return;
        };
        let codec = params.spec().codec;
        let is_video = layer.kind == MediaKind::Video;
        let codec_meta = if is_video {
            CodecMeta::parse(codec, &packet.payload)
        } else {
            CodecMeta::Other
        };
        layer.meter.on_packet(
            packet.timestamp,
            packet.payload.len(),
            codec_meta.tid(),
            packet.header.marker,
        );
        if !layer.sinks.is_empty() {
            let sender_clock = packet.last_sender_info.map(|info| SenderClock {
                ntp: info.ntp_time,
                // The low 32 bits: the sender's RTP timestamp as it was on the wire.
                rtp: info.rtp_time.numer() as u32,
            });
            for &(sink, track) in &layer.sinks {
                let queued = SinkPacket {
                    sink,
                    track,
                    codec: MediaCodec::from_str0m(codec),
                    clock_rate: packet.time.frequency().get(),
                    epoch: layer.epoch,
                    seq: *packet.seq_no,
                    time: packet.time.numer(),
                    marker: packet.header.marker,
                    payload: packet.payload.clone(),
                    arrival: packet.timestamp,
                    sender_clock,
                };
                if self.sink_packets.len() >= MAX_QUEUED_SINK_PACKETS {
                    self.sink_packets.pop_front();
                    self.dropped_sink_packets += 1;
                }
                self.sink_packets.push_back(queued);
            }
        }
        if layer.subscribers.is_empty() {
            return;
        }
        // str0m patches VP8 descriptors on the way out; its own parse says where the fields are.
        let vp8_descriptor = match codec_meta {
            CodecMeta::Vp8(_) => str0m::rtp::Vp8Descriptor::parse(&packet.payload).ok(),
            _ => None,
        };
        let meta = PacketMeta {
            source: SourceRef {
                up: up_id,
                layer: index,
            },
            epoch: layer.epoch,
            seq: *packet.seq_no,
            ts: packet.header.timestamp,
            at: packet.timestamp,
            clock_rate: packet.time.frequency().get(),
            starts_decoding: !is_video || starts_decoding(codec, &packet.payload),
            marker: packet.header.marker,
            codec: codec_meta,
        };
        let ext_vals = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let subscribers = std::mem::take(&mut layer.subscribers);
        let mut want_keyframe = false;
        for &sub in &subscribers {
            let Some(down_peer) = peer_in(&mut self.slots, sub.down) else {
                self.deferred
                    .push_back(Deferred::Unsubscribe(meta.source, sub));
                continue;
            };
            if !down_peer.connected {
                continue;
            }
            let Peer { rtc, role, .. } = down_peer;
            let Role::Down(down) = role else {
                continue;
            };
            let Some(slot) = down.tracks.get_mut(sub.track) else {
                continue;
            };
            let (seq, ts, marker, ids) = match slot.track.on_packet(&meta) {
                Decision::Forward {
                    seq,
                    ts,
                    left,
                    marker,
                    ids,
                } => {
                    if let Some(old) = left {
                        log::debug!(
                            "down {:?}: track {} switched from layer {} to {}",
                            sub.down,
                            sub.track,
                            old.layer,
                            meta.source.layer
                        );
                        self.deferred.push_back(Deferred::Unsubscribe(old, sub));
                    }
                    (seq, ts, marker, ids)
                }
                Decision::WaitKeyframe => {
                    want_keyframe = true;
                    continue;
                }
                Decision::Drop => {
                    // A VP9 spatial layer can only be added at a keyframe.
                    want_keyframe |= slot.track.needs_keyframe();
                    continue;
                }
            };
            let out_pt = match slot.pt_map {
                Some((from, to)) if from == pt => to,
                _ => {
                    let Some(local) = rtc.codec_config().match_params(params).map(|p| p.pt())
                    else {
                        continue;
                    };
                    slot.pt_map = Some((pt, local));
                    local
                }
            };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(slot.mid, None) else {
                continue;
            };
            let mut write = match (&meta.codec, ids) {
                // VP9 descriptors are rewritten in a copy (str0m has no patch for them).
                (CodecMeta::Vp9(_), Some(ids)) => {
                    let mut copy = packet.payload.to_vec();
                    meta.codec.write_into(&mut copy, ids);
                    RtpWrite::new(out_pt, seq.into(), ts, meta.at, copy)
                }
                _ => RtpWrite::new(out_pt, seq.into(), ts, meta.at, packet.payload.clone()),
            };
            if let (Some(descriptor), Some(ids)) = (&vp8_descriptor, ids) {
                let mut patch = descriptor.patch();
                if let Some(picture_id) = ids.picture_id {
                    patch = patch.picture_id(picture_id.value);
                }
                if let Some(tl0) = ids.tl0_pic_idx {
                    patch = patch.tl0_pic_idx(tl0);
                }
                if let Ok(patch) = patch.build() {
                    write = write.vp8_patch(patch);
                }
            }
            tx.write_rtp(
                write
                    .marker(marker)
                    .ext_vals(ext_vals.clone())
                    .nackable(is_video),
            );
            self.drain(now, sub.down);
        }
        if let Some(layer) = self
            .peer_mut(up_id)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(index))
        {
            // Nothing subscribes during a fan-out, but keep anything that did.
            let added = std::mem::replace(&mut layer.subscribers, subscribers);
            layer.subscribers.extend(added);
        }
        if want_keyframe {
            self.deferred.push_back(Deferred::Keyframe(meta.source));
        }
    }

    pub(super) fn subscribe(&mut self, source: SourceRef, sub: Subscriber) {
        let Some(layer) = self
            .peer_mut(source.up)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(source.layer))
        else {
            return;
        };
        if !layer.subscribers.contains(&sub) {
            layer.subscribers.push(sub);
        }
    }

    pub(super) fn unsubscribe(&mut self, source: SourceRef, sub: Subscriber) {
        // Still listening (e.g. re-selected before the deferred removal ran)?
        let still_used = self
            .peer(sub.down)
            .and_then(|p| match &p.role {
                Role::Down(d) => d.tracks.get(sub.track),
                Role::Up(_) => None,
            })
            .is_some_and(|slot| slot.track.keyframe_targets().any(|s| s == source));
        if still_used {
            return;
        }
        if let Some(layer) = self
            .peer_mut(source.up)
            .and_then(|p| p.up_mut())
            .and_then(|u| u.layers.get_mut(source.layer))
        {
            layer.subscribers.retain(|s| *s != sub);
        }
    }

    /// Asks the publisher of `source` for a keyframe unless one was asked for recently.
    pub(super) fn request_keyframe(&mut self, now: Instant, source: SourceRef) {
        let interval = self.config.keyframe_request_interval;
        let Some(peer) = self.peer_mut(source.up) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Up(up) = role else {
            return;
        };
        let Some(layer) = up.layers.get_mut(source.layer) else {
            return;
        };
        if layer.kind != MediaKind::Video
            || layer
                .last_keyframe_request
                .is_some_and(|last| now < last + interval)
        {
            return;
        }
        let mut api = rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(layer.mid, layer.rid) else {
            return; // nothing received yet on that layer
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        layer.last_keyframe_request = Some(now);
        self.drain(now, source.up);
    }
}
