//! Local sinks: the packets of an up stream delivered inside the process, to a receiver that
//! has no `Rtc` of its own (the recorder). A sink takes at most one audio and one video layer
//! of one up stream, chosen by the same rules as a down stream's ([`Selection`]); every packet
//! of those layers is queued as a [`SinkPacket`] (the payload shared, the header as received)
//! for [`Sfu::poll_sink_packet`]. The cost per packet is one queue entry per sink of its
//! layer; nothing is scanned.

use std::time::Instant;

use str0m::media::MediaKind;

use super::Sfu;
use super::codecs::MediaCodec;
use super::forward::{LayerShape, Selection, VideoChoice, choose_layer};
use super::ids::{PeerId, SourceRef, StreamKey};
use super::peer::{LocalSink, MAX_SINK_TRACKS, UpLayer, peer_in};
use super::types::{MediaError, SinkPacket, SinkTrack, track_kind};

impl Sfu {
    /// Attaches the local sink `key` to up stream `source`: from now on the packets of the
    /// layers `selection` picks (the first audio layer; the video layer `video` or `video-low`
    /// names) come out of [`Sfu::poll_sink_packet`]. Returns the sink's tracks, in track
    /// order. The key shares the namespace of stream keys; [`Sfu::close_stream`] detaches it.
    pub fn attach_sink(
        &mut self,
        now: Instant,
        key: StreamKey,
        source: StreamKey,
        selection: Selection,
    ) -> Result<Vec<SinkTrack>, MediaError> {
        let _ = now;
        if self.keys.contains_key(&key) || self.sinks.contains_key(&key) {
            return Err(MediaError::StreamExists(key));
        }
        let up_id = self.up_id(source)?;
        let layers = self.sink_layers(up_id, selection);
        if layers.is_empty() {
            return Err(MediaError::NothingSelected);
        }
        let tracks = self.sink_tracks(up_id, &layers);
        self.connect_sink(key, up_id, &layers);
        self.sinks.insert(
            key,
            LocalSink {
                source: up_id,
                layers,
            },
        );
        Ok(tracks)
    }

    /// Applies a new selection to sink `key` (also after [`super::MediaEvent::UpTracks`] for
    /// its source). Returns the new tracks when the layers feeding it changed, `None` when
    /// nothing changed.
    pub fn update_sink(
        &mut self,
        now: Instant,
        key: StreamKey,
        selection: Selection,
    ) -> Result<Option<Vec<SinkTrack>>, MediaError> {
        let _ = now;
        let source = self
            .sinks
            .get(&key)
            .map(|s| s.source)
            .ok_or(MediaError::UnknownStream(key))?;
        let layers = self.sink_layers(source, selection);
        if self.sinks.get(&key).is_some_and(|s| s.layers == layers) {
            return Ok(None);
        }
        if layers.is_empty() {
            return Err(MediaError::NothingSelected);
        }
        self.disconnect_sink(key);
        let tracks = self.sink_tracks(source, &layers);
        self.connect_sink(key, source, &layers);
        if let Some(sink) = self.sinks.get_mut(&key) {
            sink.layers = layers;
        }
        Ok(Some(tracks))
    }

    /// Asks the publisher feeding sink `key` for a keyframe on the sink's video layer (at
    /// most one request per layer per [`super::SfuConfig::keyframe_request_interval`],
    /// shared with the down streams of that layer). Nothing for an audio-only sink.
    pub fn request_sink_keyframe(&mut self, now: Instant, key: StreamKey) {
        let Some(sink) = self.sinks.get(&key) else {
            return;
        };
        let up = sink.source;
        let video = sink.layers.iter().copied().find(|&layer| {
            self.peer(up)
                .and_then(|p| p.up())
                .and_then(|u| u.layers.get(layer))
                .is_some_and(|l| l.kind == MediaKind::Video)
        });
        if let Some(layer) = video {
            self.request_keyframe(now, SourceRef { up, layer });
            self.run_deferred(now);
        }
    }

    /// The next packet for a local sink. Drain after every input, like
    /// [`Sfu::poll_transmit`].
    pub fn poll_sink_packet(&mut self) -> Option<SinkPacket> {
        self.sink_packets.pop_front()
    }

    /// Detaches sink `key` if it is one; returns whether it was.
    pub(super) fn remove_sink(&mut self, key: StreamKey) -> bool {
        if !self.sinks.contains_key(&key) {
            return false;
        }
        self.disconnect_sink(key);
        self.sinks.remove(&key);
        true
    }

    /// The layers of up peer `up` a sink with `selection` takes, in track order (audio
    /// first).
    fn sink_layers(
        &self,
        up: PeerId,
        selection: Selection,
    ) -> heapless::Vec<usize, MAX_SINK_TRACKS> {
        let mut chosen = heapless::Vec::new();
        let Some(state) = self.peer(up).and_then(|p| p.up()) else {
            return chosen;
        };
        let shapes = state.layers.iter().map(|l| LayerShape {
            kind: l.kind,
            mline: l.mline,
            rid: l.rid.as_ref(),
        });
        if selection.audio
            && let Some(i) = choose_layer(shapes.clone(), MediaKind::Audio, VideoChoice::None)
        {
            // Capacity 2, at most two pushes.
            let _ = chosen.push(i);
        }
        if let Some(i) = choose_layer(shapes, MediaKind::Video, selection.video) {
            let _ = chosen.push(i);
        }
        chosen
    }

    /// What the sink's tracks are: kind, mid, rid and the negotiated codec of each layer.
    fn sink_tracks(&self, up: PeerId, layers: &[usize]) -> Vec<SinkTrack> {
        let Some(peer) = self.peer(up) else {
            return Vec::new();
        };
        let Some(state) = peer.up() else {
            return Vec::new();
        };
        let params = peer.rtc.codec_config().params();
        layers
            .iter()
            .filter_map(|&i| state.layers.get(i))
            .map(|layer: &UpLayer| {
                let codec = peer.rtc.media(layer.mid).and_then(|media| {
                    media.remote_pts().iter().find_map(|pt| {
                        params
                            .iter()
                            .find(|p| p.pt() == *pt)
                            .and_then(|p| MediaCodec::from_str0m(p.spec().codec))
                    })
                });
                SinkTrack {
                    kind: track_kind(layer.kind),
                    mid: layer.mid.to_string(),
                    rid: layer.rid.map(|r| r.to_string()),
                    codec,
                }
            })
            .collect()
    }

    /// Adds sink `key` to the sink lists of `layers` of up peer `up`.
    fn connect_sink(&mut self, key: StreamKey, up: PeerId, layers: &[usize]) {
        let Some(state) = peer_in(&mut self.slots, up).and_then(|p| p.up_mut()) else {
            return;
        };
        for (track, &index) in layers.iter().enumerate() {
            if let Some(layer) = state.layers.get_mut(index) {
                // At most MAX_SINK_TRACKS tracks: the index fits in a u8.
                layer.sinks.push((key, track as u8));
            }
        }
    }

    /// Takes sink `key` out of the sink lists of the layers feeding it.
    fn disconnect_sink(&mut self, key: StreamKey) {
        let Some(sink) = self.sinks.get(&key) else {
            return;
        };
        let up = sink.source;
        let layers = sink.layers.clone();
        let Some(state) = peer_in(&mut self.slots, up).and_then(|p| p.up_mut()) else {
            return;
        };
        for index in layers {
            if let Some(layer) = state.layers.get_mut(index) {
                layer.sinks.retain(|(k, _)| *k != key);
            }
        }
    }
}
