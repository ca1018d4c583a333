//! Forwarding decisions: which up layer feeds a down track, which of its frames are forwarded,
//! and the header rewrite that keeps a receiver's sequence numbers, timestamps and codec picture
//! numbers continuous when that source changes or frames are left out.
//!
//! Everything here is plain data and arithmetic so it can be tested without `Rtc`s. The caller
//! ([`super::Sfu`]) owns the `Rtc`s and hands each packet's metadata to [`DownTrack::on_packet`].

use std::time::Instant;

use str0m::media::{MediaKind, Rid};

use super::ids::{PeerId, SourceRef};
use super::layers::CodecMeta;
use super::layers::picture_id::{CodecIds, PictureIdRewriter};
use super::layers::seqmap::SeqMap;
use super::layers::temporal::{TemporalFilter, Verdict};

/// What a receiver wants from one up stream (Galène's `request` values for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Forward the first audio track.
    pub audio: bool,
    /// Which video, if any.
    pub video: VideoChoice,
}

impl Selection {
    /// Audio and the high video layer: Galène's `["audio", "video"]`.
    pub const ALL: Selection = Selection {
        audio: true,
        video: VideoChoice::High,
    };

    /// Whether nothing at all is selected.
    pub fn is_empty(&self) -> bool {
        !self.audio && self.video == VideoChoice::None
    }
}

/// Which video a receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoChoice {
    /// No video.
    None,
    /// `video`: the first video track; with simulcast the rid `h` (or the first listed).
    High,
    /// `video-low`: the last video track; with simulcast the rid `l` (or the last listed).
    Low,
}

/// The identity of one incoming layer as the selection sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerShape<'a> {
    /// Audio or video.
    pub kind: MediaKind,
    /// Index of the m-line among the up stream's m-lines.
    pub mline: usize,
    /// The simulcast rid, if any.
    pub rid: Option<&'a Rid>,
}

/// Picks the layer index for one kind of a selection, by Galène's rules for `video` and
/// `video-low` (see [`VideoChoice`]).
pub(crate) fn choose_layer<'a>(
    layers: impl Iterator<Item = LayerShape<'a>> + Clone,
    kind: MediaKind,
    video: VideoChoice,
) -> Option<usize> {
    let of_kind = layers.enumerate().filter(move |(_, l)| l.kind == kind);
    if kind == MediaKind::Audio {
        return of_kind.map(|(i, _)| i).next();
    }
    let (wanted_rid, first_mline) = match video {
        VideoChoice::None => return None,
        VideoChoice::High => ("h", true),
        VideoChoice::Low => ("l", false),
    };
    let mline = if first_mline {
        of_kind.clone().map(|(_, l)| l.mline).next()?
    } else {
        of_kind.clone().map(|(_, l)| l.mline).last()?
    };
    let in_mline = of_kind.filter(move |(_, l)| l.mline == mline);
    if let Some((i, _)) = in_mline
        .clone()
        .find(|(_, l)| l.rid.is_some_and(|r| &**r == wanted_rid))
    {
        return Some(i);
    }
    if first_mline {
        in_mline.map(|(i, _)| i).next()
    } else {
        in_mline.map(|(i, _)| i).last()
    }
}

/// Metadata of one incoming packet, as the forwarding decision needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketMeta {
    /// The layer it came from.
    pub source: SourceRef,
    /// That layer's SSRC generation: changes when the publisher restarts the layer.
    pub epoch: u32,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// Arrival time.
    pub at: Instant,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Whether a decoder can start here (always true for audio).
    pub starts_decoding: bool,
    /// The RTP marker bit.
    pub marker: bool,
    /// The codec's payload descriptor, for temporal layers and picture IDs.
    pub codec: CodecMeta,
}

/// What to do with a packet for one down track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it with these header values. `left` is the source that stopped being used if this
    /// packet completed a switch.
    Forward {
        /// Outgoing extended sequence number.
        seq: u64,
        /// Outgoing RTP timestamp.
        ts: u32,
        /// The source abandoned by a switch that this packet completed.
        left: Option<SourceRef>,
        /// The outgoing marker bit (moved to the last forwarded spatial layer of a VP9
        /// picture).
        marker: bool,
        /// New picture ID and TL0PICIDX for the codec's descriptor, when it has them.
        ids: Option<CodecIds>,
    },
    /// Not yet: the track waits for a keyframe on this source.
    WaitKeyframe,
    /// Not for this track (stale subscription or a packet from before a switch).
    Drop,
}

/// One outgoing m-line of a down stream and its forwarding state.
#[derive(Debug)]
pub(crate) struct DownTrack {
    /// Audio or video.
    pub kind: MediaKind,
    /// The source currently forwarded.
    pub current: Option<SourceRef>,
    /// The source to switch to at its next keyframe.
    pub pending: Option<SourceRef>,
    /// `current` is left at once rather than at `pending`'s keyframe: the link cannot carry it
    /// (see [`DownTrack::leave_current_now`]).
    leaving_now: bool,
    /// The `epoch` of `current` the rewriter is based on.
    synced_epoch: Option<u32>,
    rewriter: Rewriter,
    /// Which temporal (and VP9 spatial) layers are forwarded.
    filter: TemporalFilter,
    /// Picture IDs and TL0PICIDX as the receiver sees them.
    pictures: PictureIdRewriter,
}

impl DownTrack {
    /// A track that will start forwarding `source` at its first keyframe.
    pub(crate) fn new(kind: MediaKind, source: Option<SourceRef>) -> DownTrack {
        DownTrack {
            kind,
            current: source,
            pending: None,
            leaving_now: false,
            synced_epoch: None,
            rewriter: Rewriter::default(),
            filter: TemporalFilter::new(),
            pictures: PictureIdRewriter::new(),
        }
    }

    /// Forwards temporal layers up to `max_tid` only (`None`: all of them).
    pub(crate) fn set_max_tid(&mut self, max_tid: Option<u8>) {
        self.filter.set_target(max_tid.unwrap_or(u8::MAX), u8::MAX);
    }

    /// Whether the filter waits for a keyframe to add a spatial layer.
    pub(crate) fn needs_keyframe(&self) -> bool {
        self.filter.needs_keyframe()
    }

    /// The highest temporal layer being forwarded, and the highest the source has.
    pub(crate) fn temporal_layers(&self) -> (u8, u8) {
        (self.filter.current_tid(), self.filter.max_tid())
    }

    /// Asks for `source` from now on. Returns the sources this track stopped listening to.
    /// Switching happens at the next keyframe of `source`; until then `current` keeps flowing.
    pub(crate) fn select(&mut self, source: Option<SourceRef>) -> heapless::Vec<SourceRef, 2> {
        let mut dropped = heapless::Vec::new();
        self.leaving_now = false;
        if source == self.current {
            if let Some(p) = self.pending.take() {
                // capacity 2, at most two pushes in this function
                let _ = dropped.push(p);
            }
            return dropped;
        }
        match (self.current, source) {
            (None, _) | (_, None) => {
                if let Some(c) = self.current.take() {
                    let _ = dropped.push(c);
                }
                if let Some(p) = self.pending.take() {
                    let _ = dropped.push(p);
                }
                self.current = source;
                self.synced_epoch = None;
            }
            (Some(_), Some(s)) => {
                if let Some(p) = self.pending.replace(s).filter(|p| *p != s) {
                    let _ = dropped.push(p);
                }
            }
        }
        dropped
    }

    /// Stops forwarding `current` now instead of at the keyframe of the pending source: for a
    /// step down on a link that cannot carry `current`, where every packet more of it only
    /// deepens the queue the pending source's keyframe must then cross. The receiver's picture
    /// stands still until that keyframe (it was losing packets anyway). Numbering stays
    /// continuous. No effect without a pending source.
    pub(crate) fn leave_current_now(&mut self) {
        self.leaving_now = self.pending.is_some();
    }

    /// Forgets every source of `up` (it went away). Returns whether anything changed.
    pub(crate) fn forget_up(&mut self, up: PeerId) -> bool {
        let mut changed = false;
        if self.pending.is_some_and(|p| p.up == up) {
            self.pending = None;
            self.leaving_now = false;
            changed = true;
        }
        if self.current.is_some_and(|c| c.up == up) {
            self.current = self.pending.take();
            self.leaving_now = false;
            self.synced_epoch = None;
            changed = true;
        }
        changed
    }

    /// The sources a keyframe request on this track should go to.
    pub(crate) fn keyframe_targets(&self) -> impl Iterator<Item = SourceRef> {
        self.pending.into_iter().chain(self.current)
    }

    /// Decides what to do with one packet from one of the sources this track listens to.
    pub(crate) fn on_packet(&mut self, p: &PacketMeta) -> Decision {
        let mut left = None;
        if self.pending == Some(p.source) {
            if !p.starts_decoding {
                return Decision::WaitKeyframe;
            }
            left = self.current.replace(p.source);
            self.pending = None;
            self.leaving_now = false;
            self.synced_epoch = None;
        }
        if self.current != Some(p.source) {
            return Decision::Drop;
        }
        if self.leaving_now {
            self.rewriter.drop(p);
            return Decision::Drop;
        }
        if self.synced_epoch != Some(p.epoch) {
            if !p.starts_decoding {
                return Decision::WaitKeyframe;
            }
            // A new source or a restarted one: numbering continues from what was sent.
            self.synced_epoch = Some(p.epoch);
            self.rewriter.rebase(p);
            self.filter.reset();
            self.pictures.rebase();
        }
        let (marker, ids) = match p.codec.layer(p.ts, p.marker) {
            None => (p.marker, None),
            Some(layer) => match self.filter.on_packet(&layer) {
                Verdict::Forward { marker } => {
                    let tid = p.codec.tid().unwrap_or(0);
                    match self.pictures.forward(p.codec.ids(), tid) {
                        Some(ids) => (marker, Some(ids)),
                        None => {
                            self.rewriter.drop(p);
                            return Decision::Drop;
                        }
                    }
                }
                Verdict::DropFrame => {
                    self.rewriter.drop(p);
                    if p.codec.dense_ids() {
                        self.pictures
                            .drop_frame(p.codec.ids(), p.codec.tid().unwrap_or(0));
                    }
                    return Decision::Drop;
                }
                Verdict::DropLayer => {
                    self.rewriter.drop(p);
                    return Decision::Drop;
                }
            },
        };
        match self.rewriter.map(p) {
            Some((seq, ts)) => Decision::Forward {
                seq,
                ts,
                left,
                marker,
                ids,
            },
            None => Decision::Drop,
        }
    }
}

/// Rewriting of sequence numbers and timestamps for one down track: an offset per source, less
/// the packets left out on purpose.
#[derive(Debug, Default)]
struct Rewriter {
    state: Option<RewriteState>,
    /// Incoming to outgoing sequence numbers of the current source; packets before its first
    /// one map to nothing.
    seqs: SeqMap,
}

#[derive(Debug, Clone, Copy)]
struct RewriteState {
    /// Added (wrapping) to incoming timestamps.
    ts_offset: u32,
    /// Highest outgoing sequence number so far.
    max_out: u64,
    /// Timestamp and arrival time of the packet that carried `max_out`.
    max_out_ts: u32,
    max_out_at: Instant,
}

impl Rewriter {
    /// Starts mapping at packet `p`, continuing the outgoing numbering if there was one; `p`
    /// itself is then mapped (or dropped) like any other packet.
    fn rebase(&mut self, p: &PacketMeta) {
        let (out_seq, out_ts) = match self.state {
            // The first packet a receiver ever sees keeps its low 16 bits, so the outgoing
            // SRTP rollover counter starts at 0 as a new receiver expects.
            None => (p.seq & 0xffff, p.ts),
            Some(s) => {
                let elapsed = p.at.saturating_duration_since(s.max_out_at);
                let ticks = elapsed.as_nanos() * u128::from(p.clock_rate) / 1_000_000_000;
                let step = u32::try_from(ticks).unwrap_or(u32::MAX).max(1);
                (s.max_out + 1, s.max_out_ts.wrapping_add(step))
            }
        };
        self.seqs.rebase(p.seq, out_seq);
        self.state = Some(RewriteState {
            ts_offset: out_ts.wrapping_sub(p.ts),
            max_out: out_seq,
            max_out_ts: out_ts,
            max_out_at: p.at,
        });
    }

    /// Leaves packet `p` out of the outgoing numbering.
    fn drop(&mut self, p: &PacketMeta) {
        if self.state.is_some() {
            self.seqs.drop(p.seq);
        }
    }

    /// Maps a packet of the current source, or `None` if it predates the switch or was left
    /// out.
    fn map(&mut self, p: &PacketMeta) -> Option<(u64, u32)> {
        let s = self.state.as_mut()?;
        let seq = self.seqs.map(p.seq)?;
        let ts = p.ts.wrapping_add(s.ts_offset);
        if seq > s.max_out {
            s.max_out = seq;
            s.max_out_ts = ts;
            s.max_out_at = p.at;
        }
        Some((seq, ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn src(layer: usize) -> SourceRef {
        SourceRef {
            up: PeerId::new(1, 0),
            layer,
        }
    }

    fn meta(layer: usize, seq: u64, ts: u32, at: Instant, key: bool) -> PacketMeta {
        PacketMeta {
            source: src(layer),
            epoch: 0,
            seq,
            ts,
            at,
            clock_rate: 90_000,
            starts_decoding: key,
            marker: false,
            codec: CodecMeta::Other,
        }
    }

    fn fwd(d: Decision) -> (u64, u32) {
        match d {
            Decision::Forward { seq, ts, .. } => (seq, ts),
            other => panic!("expected forward, got {other:?}"),
        }
    }

    #[test]
    fn waits_for_keyframe_then_numbers_continuously_across_a_switch() {
        let t0 = Instant::now();
        let mut t = DownTrack::new(MediaKind::Video, Some(src(0)));
        assert_eq!(
            t.on_packet(&meta(0, 70_000, 1000, t0, false)),
            Decision::WaitKeyframe
        );
        // Starts at the keyframe, keeping only the low 16 bits (ROC 0).
        assert_eq!(
            fwd(t.on_packet(&meta(0, 70_001, 1000, t0, true))),
            (70_001 & 0xffff, 1000)
        );
        assert_eq!(
            fwd(t.on_packet(&meta(0, 70_002, 4000, t0, false))),
            (4466, 4000)
        );
        // Switch to layer 1: layer 0 keeps flowing until layer 1 has a keyframe.
        assert!(t.select(Some(src(1))).is_empty());
        assert_eq!(
            t.on_packet(&meta(1, 5, 90_000, t0, false)),
            Decision::WaitKeyframe
        );
        assert_eq!(
            fwd(t.on_packet(&meta(0, 70_003, 7000, t0, false))),
            (4467, 7000)
        );
        let later = t0 + Duration::from_millis(10);
        match t.on_packet(&meta(1, 6, 90_000, later, true)) {
            Decision::Forward { seq, ts, left, .. } => {
                assert_eq!(seq, 4468);
                assert_eq!(ts, 7000 + 900);
                assert_eq!(left, Some(src(0)));
            }
            other => panic!("{other:?}"),
        }
        // Old layer packets are now dropped; the new one continues.
        assert_eq!(
            t.on_packet(&meta(0, 70_004, 10_000, later, false)),
            Decision::Drop
        );
        assert_eq!(
            fwd(t.on_packet(&meta(1, 7, 93_000, later, false))),
            (4469, 10_900)
        );
        // A late packet from before the switch point is dropped, not renumbered over others.
        assert_eq!(
            t.on_packet(&meta(1, 5, 90_000, later, false)),
            Decision::Drop
        );
    }

    #[test]
    fn a_forced_step_down_leaves_the_old_layer_at_once_and_numbers_on_without_a_gap() {
        let t0 = Instant::now();
        let mut t = DownTrack::new(MediaKind::Video, Some(src(0)));
        assert_eq!(fwd(t.on_packet(&meta(0, 100, 1000, t0, true))), (100, 1000));
        assert_eq!(
            fwd(t.on_packet(&meta(0, 101, 4000, t0, false))),
            (101, 4000)
        );
        // Without a pending source there is nothing to leave for.
        t.leave_current_now();
        assert_eq!(
            fwd(t.on_packet(&meta(0, 102, 7000, t0, false))),
            (102, 7000)
        );
        // Down to layer 1, at once: layer 0 stops before layer 1's keyframe.
        assert!(t.select(Some(src(1))).is_empty());
        t.leave_current_now();
        assert_eq!(
            t.on_packet(&meta(0, 103, 10_000, t0, false)),
            Decision::Drop
        );
        assert_eq!(
            t.on_packet(&meta(1, 50, 90_000, t0, false)),
            Decision::WaitKeyframe
        );
        assert_eq!(
            t.on_packet(&meta(0, 104, 13_000, t0, false)),
            Decision::Drop
        );
        // The keyframe continues the numbering from the last packet sent (the dropped ones
        // leave no gap) and completes the switch.
        match t.on_packet(&meta(1, 51, 90_000, t0 + Duration::from_millis(100), true)) {
            Decision::Forward { seq, left, .. } => {
                assert_eq!(seq, 103);
                assert_eq!(left, Some(src(0)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fwd(t.on_packet(&meta(1, 52, 93_000, t0, false))).0, 104);
        // A new selection clears the flag: going back up waits for the keyframe as usual.
        assert!(t.select(Some(src(0))).is_empty());
        assert_eq!(fwd(t.on_packet(&meta(1, 53, 96_000, t0, false))).0, 105);
    }

    #[test]
    fn a_restarted_source_is_rebased_without_a_gap() {
        let t0 = Instant::now();
        let mut t = DownTrack::new(MediaKind::Audio, Some(src(0)));
        assert_eq!(fwd(t.on_packet(&meta(0, 10, 0, t0, true))), (10, 0));
        assert_eq!(fwd(t.on_packet(&meta(0, 11, 960, t0, true))), (11, 960));
        let mut p = meta(0, 60_000, 5, t0 + Duration::from_millis(20), true);
        p.epoch = 1;
        p.clock_rate = 48_000;
        assert_eq!(fwd(t.on_packet(&p)), (12, 960 + 960));
    }

    #[test]
    fn selection_follows_galene_rules() {
        let h: Rid = "h".into();
        let l: Rid = "l".into();
        let layers = [
            LayerShape {
                kind: MediaKind::Audio,
                mline: 0,
                rid: None,
            },
            LayerShape {
                kind: MediaKind::Video,
                mline: 1,
                rid: Some(&l),
            },
            LayerShape {
                kind: MediaKind::Video,
                mline: 1,
                rid: Some(&h),
            },
        ];
        let it = layers.iter().copied();
        assert_eq!(
            choose_layer(it.clone(), MediaKind::Audio, VideoChoice::None),
            Some(0)
        );
        assert_eq!(
            choose_layer(it.clone(), MediaKind::Video, VideoChoice::High),
            Some(2)
        );
        assert_eq!(
            choose_layer(it.clone(), MediaKind::Video, VideoChoice::Low),
            Some(1)
        );
        assert_eq!(choose_layer(it, MediaKind::Video, VideoChoice::None), None);
        // Two plain video tracks: first for video, last for video-low.
        let plain = [
            LayerShape {
                kind: MediaKind::Video,
                mline: 0,
                rid: None,
            },
            LayerShape {
                kind: MediaKind::Video,
                mline: 1,
                rid: None,
            },
        ];
        let it = plain.iter().copied();
        assert_eq!(
            choose_layer(it.clone(), MediaKind::Video, VideoChoice::High),
            Some(0)
        );
        assert_eq!(
            choose_layer(it.clone(), MediaKind::Video, VideoChoice::Low),
            Some(1)
        );
        assert_eq!(choose_layer(it, MediaKind::Audio, VideoChoice::High), None);
    }

    #[test]
    fn reselecting_reports_abandoned_sources() {
        let mut t = DownTrack::new(MediaKind::Video, Some(src(0)));
        assert!(t.select(Some(src(1))).is_empty());
        assert_eq!(t.select(Some(src(2))).as_slice(), &[src(1)]);
        assert_eq!(t.select(Some(src(0))).as_slice(), &[src(2)]);
        assert_eq!(t.select(None).as_slice(), &[src(0)]);
        assert_eq!(t.current, None);
        assert!(!t.forget_up(PeerId::new(9, 9)));
    }
}
