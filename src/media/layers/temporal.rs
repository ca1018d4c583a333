//! Temporal and spatial layer selection for one down track.
//!
//! A receiver whose link cannot carry even the lowest simulcast layer still gets a picture at a
//! lower frame rate: [`TemporalFilter`] forwards only the frames of temporal layers up to a
//! target (and for VP9 SVC the spatial layers up to a target), switching where the decoder can
//! follow:
//!
//! - down at the next frame: higher layers are never referenced by lower ones;
//! - up at a keyframe (straight to the target), or one temporal layer at a time at a frame of
//!   the next layer that depends only on lower layers (VP8's Y bit, VP9's U bit as libwebrtc
//!   sets it); spatial layers go up at keyframes only (see [`TemporalFilter::needs_keyframe`]).
//!
//! Decisions are made per frame, keyed by RTP timestamp, the first time a packet of the frame
//! arrives, and remembered for the last [`REMEMBERED_FRAMES`] frames: every packet of a frame,
//! reordered or retransmitted, gets the same decision. Switches happen only at frames newer than
//! all seen before.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::vp8::Vp8Descriptor;
use super::vp9::Vp9Descriptor;

/// How many recent frames keep their decision.
pub const REMEMBERED_FRAMES: usize = 16;

/// What the filter needs to know about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerPacket {
    /// The frame (VP9: the picture) it belongs to: its RTP timestamp.
    pub frame: u32,
    /// Temporal layer, 0 without layers.
    pub tid: u8,
    /// Spatial layer, 0 without layers (always 0 for VP8).
    pub sid: u8,
    /// The packet starts a keyframe.
    pub keyframe: bool,
    /// The frame depends only on lower temporal layers: a receiver of those can start this
    /// layer here (VP8 Y, VP9 U).
    pub switch_up: bool,
    /// The packet ends its (layer) frame (VP9 E; for VP8 the RTP marker).
    pub ends_frame: bool,
    /// The incoming RTP marker bit.
    pub marker: bool,
}

impl LayerPacket {
    /// A VP8 packet with RTP timestamp `ts` and marker bit `marker`.
    pub fn vp8(d: &Vp8Descriptor, ts: u32, marker: bool) -> LayerPacket {
        LayerPacket {
            frame: ts,
            tid: d.temporal_layer(),
            sid: 0,
            keyframe: d.is_keyframe(),
            switch_up: d.layer_sync,
            ends_frame: marker,
            marker,
        }
    }

    /// A VP9 packet with RTP timestamp `ts` and marker bit `marker`.
    pub fn vp9(d: &Vp9Descriptor, ts: u32, marker: bool) -> LayerPacket {
        LayerPacket {
            frame: ts,
            tid: d.tid(),
            sid: d.sid(),
            keyframe: d.is_keyframe(),
            switch_up: d.switching_up(),
            ends_frame: d.ends_frame,
            marker,
        }
    }
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it, with this RTP marker bit (for VP9 set on the end of the highest forwarded
    /// spatial layer, which ends the picture for the receiver).
    Forward {
        /// The outgoing marker bit.
        marker: bool,
    },
    /// The whole frame is left out: drop the packet and remove the frame's picture ID too.
    DropFrame,
    /// Only this spatial layer is left out; the picture goes on with its lower layers.
    DropLayer,
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, Default)]
struct Fate {
    frame: u32,
    used: bool,
    forward: bool,
    /// The highest spatial layer forwarded in this picture.
    max_sid: u8,
}

/// Per-down-track layer selection.
#[derive(Debug, Clone)]
pub struct TemporalFilter {
    target_tid: u8,
    target_sid: u8,
    current_tid: u8,
    current_sid: u8,
    seen_tid: u8,
    seen_sid: u8,
    /// The newest frame seen.
    newest: Option<u32>,
    fates: [Fate; REMEMBERED_FRAMES],
    /// Where the next decision is stored (the oldest one).
    next: usize,
}

impl Default for TemporalFilter {
    fn default() -> Self {
        TemporalFilter::new()
    }
}

impl TemporalFilter {
    /// A filter that forwards every layer (after the first keyframe; before it, the base
    /// layers only).
    pub fn new() -> Self {
        TemporalFilter {
            target_tid: u8::MAX,
            target_sid: u8::MAX,
            current_tid: 0,
            current_sid: 0,
            seen_tid: 0,
            seen_sid: 0,
            newest: None,
            fates: [Fate::default(); REMEMBERED_FRAMES],
            next: 0,
        }
    }

    /// Sets the highest temporal and spatial layers to forward (`u8::MAX`: all). Lower targets
    /// apply from the next frame, higher ones from the next point where the decoder can follow.
    pub fn set_target(&mut self, max_tid: u8, max_sid: u8) {
        self.target_tid = max_tid;
        self.target_sid = max_sid;
    }

    /// The targets: `(max_tid, max_sid)`.
    #[cfg(test)]
    pub fn target(&self) -> (u8, u8) {
        (self.target_tid, self.target_sid)
    }

    /// The highest temporal layer currently forwarded (bounded by the highest seen).
    pub fn current_tid(&self) -> u8 {
        self.current_tid.min(self.seen_tid)
    }

    /// The highest spatial layer currently forwarded (bounded by the highest seen).
    #[cfg(test)]
    pub fn current_sid(&self) -> u8 {
        self.current_sid.min(self.seen_sid)
    }

    /// The highest temporal layer seen in the stream since the last [`reset`](Self::reset).
    pub fn max_tid(&self) -> u8 {
        self.seen_tid
    }

    /// The highest spatial layer seen in the stream since the last [`reset`](Self::reset).
    #[cfg(test)]
    pub fn max_sid(&self) -> u8 {
        self.seen_sid
    }

    /// Whether a keyframe is needed to reach the target: the stream has a higher spatial layer
    /// than forwarded and the target asks for it (spatial layers only go up at keyframes).
    pub fn needs_keyframe(&self) -> bool {
        self.current_sid < self.target_sid && self.current_sid < self.seen_sid
    }

    /// The source changes (its timestamps and layers are unrelated to the old one's). The
    /// targets stay; the next keyframe (where a switch starts) brings the current layers to
    /// them.
    pub fn reset(&mut self) {
        self.current_tid = 0;
        self.current_sid = 0;
        self.seen_tid = 0;
        self.seen_sid = 0;
        self.newest = None;
        self.fates = [Fate::default(); REMEMBERED_FRAMES];
        self.next = 0;
    }

    /// Decides what to do with one packet.
    pub fn on_packet(&mut self, p: &LayerPacket) -> Verdict {
        self.seen_tid = self.seen_tid.max(p.tid);
        self.seen_sid = self.seen_sid.max(p.sid);
        let fate = match self.fates.iter().find(|f| f.used && f.frame == p.frame) {
            Some(f) => *f,
            None if self.newest.is_none_or(|n| is_newer(p.frame, n)) => self.new_frame(p),
            // A late packet of a frame older than those remembered: no switching.
            None => Fate {
                frame: p.frame,
                used: false,
                forward: p.tid <= self.current_tid,
                max_sid: self.current_sid,
            },
        };
        if !fate.forward {
            Verdict::DropFrame
        } else if p.sid > fate.max_sid {
            Verdict::DropLayer
        } else {
            Verdict::Forward {
                marker: p.marker || (p.ends_frame && p.sid == fate.max_sid),
            }
        }
    }

    /// Decides a frame newer than every one seen: the place where layers switch.
    fn new_frame(&mut self, p: &LayerPacket) -> Fate {
        self.newest = Some(p.frame);
        if p.keyframe {
            self.current_tid = self.target_tid;
            self.current_sid = self.target_sid;
        } else {
            self.current_tid = self.current_tid.min(self.target_tid);
            self.current_sid = self.current_sid.min(self.target_sid);
            if p.switch_up
                && p.tid <= self.target_tid
                && Some(p.tid) == self.current_tid.checked_add(1)
            {
                self.current_tid = p.tid;
            }
        }
        let fate = Fate {
            frame: p.frame,
            used: true,
            forward: p.keyframe || p.tid <= self.current_tid,
            max_sid: self.current_sid,
        };
        if let Some(slot) = self.fates.get_mut(self.next) {
            *slot = fate;
        }
        self.next = (self.next + 1) % REMEMBERED_FRAMES;
        fate
    }
}

/// Whether RTP timestamp `a` is after `b` (serial number arithmetic).
fn is_newer(a: u32, b: u32) -> bool {
    let ahead = a.wrapping_sub(b);
    ahead != 0 && ahead < 1 << 31
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::media::layers::test_rng::Rng;

    fn pkt(frame: u32, tid: u8, sync: bool) -> LayerPacket {
        LayerPacket {
            frame,
            tid,
            sid: 0,
            keyframe: false,
            switch_up: sync,
            ends_frame: false,
            marker: false,
        }
    }

    fn key(frame: u32) -> LayerPacket {
        LayerPacket {
            keyframe: true,
            ..pkt(frame, 0, true)
        }
    }

    fn fwd(v: Verdict) -> bool {
        matches!(v, Verdict::Forward { .. })
    }

    #[test]
    fn before_a_keyframe_only_the_base_layer_passes() {
        let mut f = TemporalFilter::new();
        assert!(fwd(f.on_packet(&pkt(0, 0, false))));
        assert_eq!(f.on_packet(&pkt(1, 1, false)), Verdict::DropFrame);
        assert!(fwd(f.on_packet(&key(2))));
        assert!(fwd(f.on_packet(&pkt(3, 2, false))));
        assert_eq!((f.current_tid(), f.max_tid()), (2, 2));
    }

    #[test]
    fn going_down_applies_at_the_next_frame_not_mid_frame() {
        let mut f = TemporalFilter::new();
        assert!(fwd(f.on_packet(&key(0))));
        assert!(fwd(f.on_packet(&pkt(1, 2, false))));
        f.set_target(0, u8::MAX);
        // The rest of frame 1 still goes (it was started).
        assert!(fwd(f.on_packet(&pkt(1, 2, false))));
        assert_eq!(f.on_packet(&pkt(2, 1, false)), Verdict::DropFrame);
        assert_eq!(f.current_tid(), 0);
        assert!(fwd(f.on_packet(&pkt(3, 0, false))));
        // A late packet of frame 1 keeps frame 1's decision.
        assert!(fwd(f.on_packet(&pkt(1, 2, false))));
    }

    #[test]
    fn going_up_waits_for_a_sync_frame_one_layer_at_a_time() {
        let mut f = TemporalFilter::new();
        assert!(fwd(f.on_packet(&key(0))));
        f.set_target(0, 0);
        assert_eq!(f.on_packet(&pkt(1, 2, true)), Verdict::DropFrame);
        f.set_target(2, 0);
        // Not a sync frame: stays dropped.
        assert_eq!(f.on_packet(&pkt(2, 1, false)), Verdict::DropFrame);
        // A TL2 sync frame cannot come first: TL1 is not forwarded yet.
        assert_eq!(f.on_packet(&pkt(3, 2, true)), Verdict::DropFrame);
        assert!(fwd(f.on_packet(&pkt(4, 0, false))));
        assert!(fwd(f.on_packet(&pkt(5, 1, true))));
        assert_eq!(f.current_tid(), 1);
        assert_eq!(f.on_packet(&pkt(6, 2, false)), Verdict::DropFrame);
        assert!(fwd(f.on_packet(&pkt(7, 2, true))));
        assert_eq!(f.current_tid(), 2);
    }

    #[test]
    fn a_keyframe_goes_straight_to_the_target() {
        let mut f = TemporalFilter::new();
        f.set_target(1, 0);
        assert!(fwd(f.on_packet(&key(0))));
        assert!(fwd(f.on_packet(&pkt(1, 1, false))));
        assert_eq!(f.on_packet(&pkt(2, 2, true)), Verdict::DropFrame);
        assert_eq!((f.current_tid(), f.max_tid()), (1, 2));
    }

    #[test]
    fn a_late_first_packet_does_not_switch() {
        let mut f = TemporalFilter::new();
        assert!(fwd(f.on_packet(&key(100))));
        f.set_target(0, 0);
        assert_eq!(f.on_packet(&pkt(300, 1, false)), Verdict::DropFrame);
        f.set_target(1, 0);
        // A sync frame seen first after a newer frame: decided without switching.
        assert!(fwd(f.on_packet(&pkt(400, 0, false))));
        assert_eq!(f.on_packet(&pkt(350, 1, true)), Verdict::DropFrame);
        assert_eq!(f.current_tid(), 0);
    }

    #[test]
    fn timestamps_wrap() {
        let mut f = TemporalFilter::new();
        assert!(fwd(f.on_packet(&key(u32::MAX - 10))));
        f.set_target(0, 0);
        assert_eq!(f.on_packet(&pkt(5, 1, false)), Verdict::DropFrame);
        f.set_target(1, 0);
        assert!(fwd(f.on_packet(&pkt(3005, 1, true))));
        assert_eq!(f.current_tid(), 1);
    }

    fn vp9(frame: u32, tid: u8, sid: u8, begins: bool, ends: bool, key: bool) -> LayerPacket {
        LayerPacket {
            frame,
            tid,
            sid,
            keyframe: key && sid == 0 && begins,
            switch_up: false,
            ends_frame: ends,
            marker: ends && sid == 2,
        }
    }

    /// One picture of three spatial layers, two packets each.
    fn picture(f: &mut TemporalFilter, frame: u32, tid: u8, key: bool) -> Vec<(u8, Verdict)> {
        let mut out = Vec::new();
        for sid in 0..3 {
            for (begins, ends) in [(true, false), (false, true)] {
                out.push((sid, f.on_packet(&vp9(frame, tid, sid, begins, ends, key))));
            }
        }
        out
    }

    #[test]
    fn vp9_spatial_layers_drop_above_the_target_and_move_the_marker() {
        let mut f = TemporalFilter::new();
        f.set_target(u8::MAX, 1);
        let got = picture(&mut f, 0, 0, true);
        let fwd = Verdict::Forward { marker: false };
        let end = Verdict::Forward { marker: true };
        let expected = [
            (0, fwd),
            (0, fwd),
            (1, fwd),
            (1, end),
            (2, Verdict::DropLayer),
            (2, Verdict::DropLayer),
        ];
        assert_eq!(got, expected);
        assert_eq!((f.current_sid(), f.max_sid()), (1, 2));
        // Down to SID 0 at the next picture.
        f.set_target(u8::MAX, 0);
        let got = picture(&mut f, 3000, 0, false);
        assert_eq!(got[1], (0, end));
        assert_eq!(got[2], (1, Verdict::DropLayer));
        // Up again needs a keyframe: not at a plain picture.
        f.set_target(u8::MAX, 2);
        assert!(f.needs_keyframe());
        let got = picture(&mut f, 6000, 0, false);
        assert_eq!(got[2], (1, Verdict::DropLayer));
        let got = picture(&mut f, 9000, 0, true);
        assert!(
            got.iter()
                .all(|(_, v)| matches!(v, Verdict::Forward { .. }))
        );
        // The original marker stays on the top layer.
        assert_eq!(got[5], (2, end));
        assert_eq!(got[1], (0, fwd));
        assert!(!f.needs_keyframe());
    }

    #[test]
    fn vp9_temporal_and_spatial_together() {
        let mut f = TemporalFilter::new();
        f.set_target(0, 0);
        picture(&mut f, 0, 0, true);
        let got = picture(&mut f, 3000, 1, false);
        assert!(got.iter().all(|(_, v)| *v == Verdict::DropFrame));
        let got = picture(&mut f, 6000, 0, false);
        assert_eq!(got[1], (0, Verdict::Forward { marker: true }));
    }

    #[test]
    fn reset_forgets_the_source_but_keeps_targets() {
        let mut f = TemporalFilter::new();
        f.set_target(1, 0);
        f.on_packet(&key(1000));
        f.on_packet(&pkt(2000, 2, false));
        f.reset();
        assert_eq!((f.max_tid(), f.current_tid(), f.target()), (0, 0, (1, 0)));
        // The new source's timestamps are unrelated (here: "older").
        assert!(fwd(f.on_packet(&key(5))));
        assert!(fwd(f.on_packet(&pkt(6, 1, false))));
        assert_eq!(f.on_packet(&pkt(7, 2, false)), Verdict::DropFrame);
    }

    /// Random packets never panic, and every packet of a remembered frame gets one decision.
    #[test]
    fn random_packets_get_one_decision_per_frame() {
        let mut rng = Rng::new(3);
        let mut f = TemporalFilter::new();
        let mut decided: Vec<(u32, bool)> = Vec::new();
        let mut frame = 0u32;
        for _ in 0..100_000 {
            if rng.one_in(50) {
                f.set_target(rng.below(4) as u8, rng.below(3) as u8);
            }
            if rng.one_in(500) {
                f.reset();
                decided.clear();
            }
            if rng.one_in(3) {
                frame = frame.wrapping_add(rng.below(6000) as u32);
            }
            let late = rng.one_in(5);
            let p = LayerPacket {
                frame: if late {
                    frame.wrapping_sub(rng.below(20_000) as u32)
                } else {
                    frame
                },
                tid: rng.below(4) as u8,
                sid: 0,
                keyframe: rng.one_in(30),
                switch_up: rng.one_in(3),
                ends_frame: rng.one_in(3),
                marker: rng.one_in(3),
            };
            let v = f.on_packet(&p);
            assert_ne!(v, Verdict::DropLayer);
            let remembered = f.fates.iter().any(|x| x.used && x.frame == p.frame);
            if remembered {
                let forward = matches!(v, Verdict::Forward { .. });
                if let Some((_, before)) = decided.iter().find(|(fr, _)| *fr == p.frame) {
                    assert_eq!(*before, forward, "frame {}", p.frame);
                } else {
                    decided.push((p.frame, forward));
                }
            }
            decided.retain(|(fr, _)| f.fates.iter().any(|x| x.used && x.frame == *fr));
            assert!(f.current_tid() <= f.max_tid());
        }
    }
}
