//! Per-receiver picture ID and TL0PICIDX numbering for VP8 and VP9.
//!
//! Decoders track frames by picture ID: a gap makes a VP8 or non-flexible VP9 receiver wait for
//! the missing frame (or a keyframe). So a down track that leaves frames out, or switches to
//! another source, renumbers them: [`PictureIdRewriter`] maps the incoming values of each
//! forwarded frame to outgoing ones that
//!
//! - have no gap where a frame was dropped on purpose ([`PictureIdRewriter::drop_frame`]), but
//!   keep the gap of a frame lost upstream (the receiver should notice that one),
//! - continue by one across a source switch ([`PictureIdRewriter::rebase`]),
//! - wrap like the field they are written to: 7 or 15 bits for picture IDs, 8 for TL0PICIDX,
//! - are the same for every packet of a frame, retransmitted or late ones included.
//!
//! Incoming values are extended to `u64` and mapped with a [`SeqMap`], which makes the mapping a
//! pure function of the incoming value; nothing per frame needs storing beyond the drops.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::seqmap::SeqMap;

/// A picture ID as a payload descriptor carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PictureId {
    /// The value, below [`PictureId::modulus`].
    pub value: u16,
    /// 15 bits (the M bit set) rather than 7.
    pub long: bool,
}

impl PictureId {
    /// The number of distinct values of the field: 2^15 or 2^7.
    pub const fn modulus(self) -> u16 {
        if self.long { 1 << 15 } else { 1 << 7 }
    }
}

/// The frame numbering fields of a payload descriptor, incoming or outgoing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecIds {
    /// The picture ID, if the descriptor has one.
    pub picture_id: Option<PictureId>,
    /// TL0PICIDX, if the descriptor has one.
    pub tl0_pic_idx: Option<u8>,
}

/// Extended values start here so that late values just below the first do not go negative.
/// A multiple of every modulus, so the first value keeps its low bits.
const BIAS: u64 = 1 << 32;

/// Drop runs remembered for picture IDs (frames dropped since the oldest one a late packet can
/// still belong to).
const PICTURE_RUNS: usize = 32;

/// Drop runs remembered for TL0PICIDX (base layer frames are normally never dropped).
const TL0_RUNS: usize = 4;

/// One renumbered field: the extension of its incoming values and their mapping.
#[derive(Debug, Clone)]
struct Lane<const N: usize> {
    /// The highest extended incoming value of the current source.
    newest: Option<u64>,
    map: SeqMap<N>,
    /// The highest outgoing value so far, across sources.
    last_out: Option<u64>,
    /// The next forwarded value starts a new mapping.
    fresh: bool,
}

impl<const N: usize> Lane<N> {
    fn new() -> Self {
        Lane {
            newest: None,
            map: SeqMap::new(),
            last_out: None,
            fresh: true,
        }
    }

    fn rebase(&mut self) {
        self.newest = None;
        self.fresh = true;
    }

    /// Extends a `modulus`-wrapping value to the one nearest the newest seen.
    fn extend(&mut self, value: u16, modulus: u16) -> u64 {
        let m = u64::from(modulus.max(1));
        let value = u64::from(value) % m;
        let ext = match self.newest {
            None => BIAS + value,
            Some(newest) => {
                let ahead = (value + m - newest % m) % m;
                if ahead < m / 2 {
                    newest.saturating_add(ahead)
                } else {
                    newest.saturating_sub(m - ahead)
                }
            }
        };
        self.newest = Some(self.newest.map_or(ext, |n| n.max(ext)));
        ext
    }

    /// The outgoing value of a forwarded frame's field. `step` is how far the first value after a
    /// rebase is from the last one sent.
    fn forward(&mut self, value: u16, modulus: u16, step: u64) -> Option<u16> {
        let ext = self.extend(value, modulus);
        if self.fresh {
            let first = self.last_out.map_or(ext, |o| o.saturating_add(step));
            self.map.rebase(ext, first);
            self.fresh = false;
        }
        let out = self.map.map(ext)?;
        self.last_out = Some(self.last_out.map_or(out, |o| o.max(out)));
        u16::try_from(out % u64::from(modulus.max(1))).ok()
    }

    /// Removes a dropped frame's value from the outgoing space.
    fn drop(&mut self, value: u16, modulus: u16) {
        if self.fresh {
            // Nothing forwarded from this source yet: its numbering starts later anyway.
            return;
        }
        let ext = self.extend(value, modulus);
        self.map.drop(ext);
    }
}

/// Renumbers picture IDs and TL0PICIDX for one down track.
#[derive(Debug, Clone)]
pub struct PictureIdRewriter {
    pictures: Lane<PICTURE_RUNS>,
    tl0: Lane<TL0_RUNS>,
}

impl Default for PictureIdRewriter {
    fn default() -> Self {
        PictureIdRewriter::new()
    }
}

impl PictureIdRewriter {
    /// A rewriter whose first forwarded frame keeps its values.
    pub fn new() -> Self {
        PictureIdRewriter {
            pictures: Lane::new(),
            tl0: Lane::new(),
        }
    }

    /// The source changes (simulcast switch, replaced or restarted stream): the next forwarded
    /// frame, a keyframe, continues the outgoing numbering with the next values.
    pub fn rebase(&mut self) {
        self.pictures.rebase();
        self.tl0.rebase();
    }

    /// The outgoing values for a packet of a forwarded frame whose temporal layer is `tid`
    /// (0 without temporal layers). `None` if the frame cannot be numbered consistently (it was
    /// dropped, or is older than the current source or than what is remembered): drop the packet.
    ///
    /// Outgoing values keep the width of the incoming ones.
    pub fn forward(&mut self, ids: CodecIds, tid: u8) -> Option<CodecIds> {
        let picture_id = match ids.picture_id {
            Some(p) => Some(PictureId {
                value: self.pictures.forward(p.value, p.modulus(), 1)?,
                long: p.long,
            }),
            None => None,
        };
        let tl0_pic_idx = match ids.tl0_pic_idx {
            // A base layer frame after a switch starts the next TL0 group; a frame of a higher
            // layer still belongs to the last one.
            Some(t) => {
                let step = u64::from(tid == 0);
                let out = self.tl0.forward(u16::from(t), 256, step)?;
                Some(u8::try_from(out).ok()?)
            }
            None => None,
        };
        Some(CodecIds {
            picture_id,
            tl0_pic_idx,
        })
    }

    /// A packet of a frame left out on purpose: its picture ID (and, for a base layer frame,
    /// its TL0PICIDX) is removed from the outgoing space. Calling it for every packet of the
    /// frame is fine.
    ///
    /// For VP8 and VP9 in non-flexible mode. VP9 in flexible mode references pictures by picture
    /// ID difference (P_DIFF), so there the IDs must keep their gaps: don't call it.
    pub fn drop_frame(&mut self, ids: CodecIds, tid: u8) {
        if let Some(p) = ids.picture_id {
            self.pictures.drop(p.value, p.modulus());
        }
        if let (Some(t), 0) = (ids.tl0_pic_idx, tid) {
            self.tl0.drop(u16::from(t), 256);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::media::layers::test_rng::Rng;

    fn ids(pid: u16, long: bool, tl0: u8) -> CodecIds {
        CodecIds {
            picture_id: Some(PictureId { value: pid, long }),
            tl0_pic_idx: Some(tl0),
        }
    }

    fn out(r: &mut PictureIdRewriter, pid: u16, long: bool, tl0: u8, tid: u8) -> (u16, u8) {
        let o = r.forward(ids(pid, long, tl0), tid).unwrap();
        (o.picture_id.unwrap().value, o.tl0_pic_idx.unwrap())
    }

    #[test]
    fn the_first_frame_keeps_its_values_and_others_follow() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(out(&mut r, 1000, true, 7, 0), (1000, 7));
        assert_eq!(out(&mut r, 1001, true, 7, 2), (1001, 7));
        assert_eq!(out(&mut r, 1002, true, 7, 1), (1002, 7));
    }

    #[test]
    fn dropped_frames_leave_no_gap_and_lost_ones_do() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(out(&mut r, 10, true, 1, 0), (10, 1));
        r.drop_frame(ids(11, true, 1), 2);
        r.drop_frame(ids(11, true, 1), 2); // a second packet of the same frame
        assert_eq!(out(&mut r, 12, true, 1, 1), (11, 1));
        r.drop_frame(ids(13, true, 1), 2);
        assert_eq!(out(&mut r, 14, true, 2, 0), (12, 2));
        // 15 never arrives (lost upstream): its gap stays.
        assert_eq!(out(&mut r, 16, true, 2, 1), (14, 2));
        // Retransmissions and late packets get the same values.
        assert_eq!(out(&mut r, 12, true, 1, 1), (11, 1));
        assert_eq!(out(&mut r, 15, true, 2, 2), (13, 2));
        // A packet of a dropped frame cannot be forwarded.
        assert_eq!(r.forward(ids(13, true, 1), 2), None);
    }

    #[test]
    fn fifteen_bit_ids_and_tl0picidx_wrap() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(out(&mut r, 32_766, true, 254, 0), (32_766, 254));
        r.drop_frame(ids(32_767, true, 254), 1);
        assert_eq!(out(&mut r, 0, true, 255, 0), (32_767, 255));
        assert_eq!(out(&mut r, 1, true, 0, 0), (0, 0));
        r.drop_frame(ids(2, true, 0), 1);
        assert_eq!(out(&mut r, 3, true, 1, 0), (1, 1));
        // Late packet from before the wrap.
        assert_eq!(out(&mut r, 32_766, true, 254, 0), (32_766, 254));
    }

    #[test]
    fn seven_bit_ids_stay_within_seven_bits() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(out(&mut r, 126, false, 0, 0), (126, 0));
        r.drop_frame(ids(127, false, 0), 1);
        assert_eq!(out(&mut r, 0, false, 1, 0), (127, 1));
        assert_eq!(out(&mut r, 1, false, 2, 0), (0, 2));
        for i in 2..300u16 {
            let (pid, _) = out(&mut r, i % 128, false, (i + 1) as u8, 0);
            assert!(pid < 128);
            assert_eq!(pid, (i - 1) % 128);
        }
    }

    #[test]
    fn a_source_switch_continues_the_numbering() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(out(&mut r, 500, true, 20, 0), (500, 20));
        assert_eq!(out(&mut r, 501, true, 20, 1), (501, 20));
        r.rebase();
        // The new source's keyframe: unrelated numbers, continued outgoing ones.
        assert_eq!(out(&mut r, 9000, true, 200, 0), (502, 21));
        assert_eq!(out(&mut r, 9001, true, 200, 2), (503, 21));
        assert_eq!(out(&mut r, 9002, true, 201, 0), (504, 22));
        // A late packet of the old source no longer maps.
        assert_eq!(r.forward(ids(501, true, 20), 1), None);
        // Switch to a source with 7-bit IDs: same sequence, 7 bits wide.
        r.rebase();
        assert_eq!(out(&mut r, 3, false, 9, 0), (505 % 128, 23));
        // And back to a 15-bit source whose first frame is not a base layer frame.
        r.rebase();
        assert_eq!(out(&mut r, 77, true, 9, 1), (506, 23));
    }

    #[test]
    fn drops_before_the_first_forwarded_frame_are_ignored() {
        let mut r = PictureIdRewriter::new();
        r.drop_frame(ids(4, true, 0), 2);
        assert_eq!(out(&mut r, 5, true, 1, 0), (5, 1));
        r.rebase();
        r.drop_frame(ids(100, true, 0), 2);
        assert_eq!(out(&mut r, 101, true, 1, 0), (6, 2));
    }

    #[test]
    fn fields_absent_stay_absent() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(r.forward(CodecIds::default(), 0), Some(CodecIds::default()));
        let only_pid = CodecIds {
            picture_id: Some(PictureId {
                value: 3,
                long: true,
            }),
            tl0_pic_idx: None,
        };
        assert_eq!(r.forward(only_pid, 0), Some(only_pid));
    }

    /// Random streams of frames, drops and duplicates: outgoing IDs of forwarded frames are
    /// consecutive in frame order, the same for every packet of a frame, and within their width.
    #[test]
    fn random_streams_number_forwarded_frames_consecutively() {
        let mut rng = Rng::new(99);
        for _ in 0..200 {
            let mut r = PictureIdRewriter::new();
            let long = !rng.one_in(3);
            let m = if long { 1u32 << 15 } else { 1 << 7 };
            let start = rng.below(u64::from(m)) as u32;
            let mut tl0 = rng.byte();
            let mut expected: Option<u32> = None;
            let mut seen = Vec::new();
            for i in 0..300u32 {
                let pid = ((start + i) % m) as u16;
                let tid = [0u8, 2, 1, 2][(i % 4) as usize];
                if tid == 0 {
                    tl0 = tl0.wrapping_add(1);
                }
                let frame = ids(pid, long, tl0);
                if tid > 0 && rng.one_in(2) {
                    r.drop_frame(frame, tid);
                    continue;
                }
                let got = r.forward(frame, tid).unwrap();
                let value = u32::from(got.picture_id.unwrap().value);
                assert!(value < m);
                if let Some(e) = expected {
                    assert_eq!(value, e % m);
                }
                expected = Some(value + 1);
                seen.push((frame, tid, got));
                // Duplicate of a recent frame.
                if rng.one_in(4) {
                    let back = seen.len() - 1 - rng.below(seen.len().min(20) as u64) as usize;
                    let (f, t, g) = seen[back];
                    assert_eq!(r.forward(f, t), Some(g));
                }
            }
        }
    }
}
