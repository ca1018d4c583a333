//! Statistics: per-track rates, loss, jitter and round-trip times folded from str0m's
//! once-a-second reports ([`Sfu::stream_stats`]), and the sizes of the engine's tables
//! ([`Sfu::counts`]).

use std::time::{Duration, Instant};

use str0m::media::{Mid, Rid};

use super::Sfu;
use super::ids::{PeerId, StreamKey};
use super::peer::{MAX_TRACK_STATS, StatsState};
use super::types::{MediaCounts, TrackKind, TrackStats, track_kind};

impl Sfu {
    /// Table sizes.
    pub fn counts(&self) -> MediaCounts {
        let mut subscriptions = 0;
        for slot in &self.slots {
            if let Some(up) = slot.peer.as_ref().and_then(|p| p.up()) {
                subscriptions += up.layers.iter().map(|l| l.subscribers.len()).sum::<usize>();
            }
        }
        MediaCounts {
            streams: self.keys.len(),
            timers: self.timers.len(),
            routes: self.routes.len(),
            ufrags: self.ufrags.len(),
            subscriptions,
            queued_transmits: self.transmits.len(),
            dropped_transmits: self.dropped_transmits,
            sinks: self.sinks.len(),
            dropped_sink_packets: self.dropped_sink_packets,
        }
    }

    /// Whether stream `key` is connected (ICE and DTLS up, media can flow); `None` when no
    /// stream has that key.
    pub fn is_connected(&self, key: StreamKey) -> Option<bool> {
        let id = self.keys.get(&key)?;
        Some(self.peer(*id)?.connected)
    }

    /// Folds one stats report (mid, rid, byte count, time) into `id`'s track statistics.
    pub(super) fn record_stats(
        &mut self,
        id: PeerId,
        (mid, rid, bytes, at): (Mid, Option<Rid>, u64, Instant),
        loss: Option<f32>,
        jitter: Option<u32>,
        rtt: Option<Duration>,
    ) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Some(kind) = peer.rtc.media(mid).map(|m| track_kind(m.kind())) else {
            return;
        };
        let clock = if kind == TrackKind::Audio {
            48_000.0
        } else {
            90_000.0
        };
        let mid_text = mid.to_string();
        let rid_text = rid.map(|r| r.to_string());
        let index = match peer
            .stats
            .iter()
            .position(|s| s.stats.mid == mid_text && s.stats.rid == rid_text)
        {
            Some(i) => i,
            None if peer.stats.len() < MAX_TRACK_STATS => {
                peer.stats.push(StatsState {
                    stats: TrackStats {
                        kind,
                        mid: mid_text,
                        rid: rid_text,
                        bitrate: 0,
                        loss: 0.0,
                        jitter_ms: 0.0,
                        rtt_ms: None,
                        layer: None,
                    },
                    bytes,
                    at,
                });
                return;
            }
            None => return,
        };
        let entry = &mut peer.stats[index]; // index from position() on this vector
        let elapsed = at.saturating_duration_since(entry.at).as_secs_f64();
        if elapsed > 0.0 {
            let delta = bytes.saturating_sub(entry.bytes) as f64;
            entry.stats.bitrate = (delta * 8.0 / elapsed) as u64;
        }
        entry.bytes = bytes;
        entry.at = at;
        if let Some(loss) = loss {
            entry.stats.loss = f64::from(loss);
        }
        if let Some(jitter) = jitter {
            entry.stats.jitter_ms = f64::from(jitter) * 1000.0 / clock;
        }
        if let Some(rtt) = rtt {
            entry.stats.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
        }
    }

    /// The per-track statistics of stream `key` (empty until the first report, a second
    /// after media starts).
    pub fn stream_stats(&self, key: StreamKey) -> Vec<TrackStats> {
        let Some((id, peer)) = self
            .keys
            .get(&key)
            .and_then(|&id| Some((id, self.peer(id)?)))
        else {
            return Vec::new();
        };
        let mut stats: Vec<TrackStats> = peer.stats.iter().map(|s| s.stats.clone()).collect();
        if let Some(down) = peer.down() {
            for track in &mut stats {
                let index = down
                    .tracks
                    .iter()
                    .position(|t| t.mid.to_string() == track.mid);
                track.layer = index.and_then(|i| self.layer_stats(id, i));
            }
        }
        stats
    }
}
