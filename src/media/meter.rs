//! The meter of one incoming layer: its rate in total and per temporal layer, its frame rate
//! and whether it is arriving, measured from the packets the fan-out sees.

use std::time::{Duration, Instant};

/// How often layer choices are revisited (also when an estimate falls); meters are rolled on
/// each revisit, so it is also the shortest window a rate is measured over.
pub(crate) const ADAPT_INTERVAL: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not arriving.
pub(crate) const LAYER_TIMEOUT: Duration = Duration::from_millis(1200);
/// Bytes a packet costs on the wire beyond its payload (RTP, SRTP tag, UDP, IP).
const PACKET_OVERHEAD: u64 = 12 + 10 + 8 + 20;
/// Temporal layers tracked per layer.
const MAX_TIDS: usize = 4;

/// The rate of one incoming layer, per temporal layer, and whether it is arriving.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerMeter {
    window_start: Option<Instant>,
    bytes: u64,
    tid_bytes: [u64; MAX_TIDS],
    /// Smoothed rate of the whole layer, bits per second.
    pub rate: u64,
    /// Smoothed rate of temporal layers `0..=i`, bits per second.
    pub tid_rates: [u64; MAX_TIDS],
    /// The highest temporal layer seen (`None`: no temporal layers).
    pub max_tid: Option<u8>,
    frames: u32,
    /// Smoothed frames per second.
    pub fps: f64,
    /// When the last packet arrived.
    pub last_packet: Option<Instant>,
}

impl LayerMeter {
    /// Counts one packet of `len` payload bytes in temporal layer `tid`; `marker` ends a frame.
    pub(crate) fn on_packet(&mut self, at: Instant, len: usize, tid: Option<u8>, marker: bool) {
        let size = len as u64 + PACKET_OVERHEAD;
        self.bytes += size;
        self.frames += u32::from(marker);
        if let Some(tid) = tid {
            let t = usize::from(tid).min(MAX_TIDS - 1);
            self.tid_bytes[t] += size;
            if self.max_tid.is_none_or(|m| tid > m) {
                self.max_tid = Some(tid.min(MAX_TIDS as u8 - 1));
            }
        }
        self.window_start.get_or_insert(at);
        self.last_packet = Some(at);
    }

    /// Whether packets are arriving (a layer that just started counts, with no rate yet).
    pub(crate) fn available(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|at| now.saturating_duration_since(at) < LAYER_TIMEOUT)
    }

    /// Closes the measuring window if it is old enough, folding it into the smoothed rates
    /// (an average that moves 30 % of the way per window: a keyframe does not look like a
    /// new rate, a real change shows within a few windows).
    pub(crate) fn roll(&mut self, now: Instant) {
        let Some(start) = self.window_start else {
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < ADAPT_INTERVAL {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let measured = (self.bytes * 8) as f64 / secs;
        let fold = |old: u64, new: f64| -> u64 {
            if old == 0 {
                new as u64
            } else {
                (old as f64 * 0.7 + new * 0.3) as u64
            }
        };
        self.rate = fold(self.rate, measured);
        let fps = f64::from(self.frames) / secs;
        self.fps = if self.fps == 0.0 {
            fps
        } else {
            self.fps * 0.7 + fps * 0.3
        };
        self.frames = 0;
        let mut cumulative = 0;
        for t in 0..MAX_TIDS {
            cumulative += self.tid_bytes[t];
            let measured = (cumulative * 8) as f64 / secs;
            self.tid_rates[t] = fold(self.tid_rates[t], measured);
        }
        self.bytes = 0;
        self.tid_bytes = [0; MAX_TIDS];
        // A window with no packet at all leaves the layer idle until the next packet.
        self.window_start = (self.last_packet.is_some_and(|at| at > start)).then_some(now);
    }
}
