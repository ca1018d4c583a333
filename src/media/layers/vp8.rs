//! The VP8 RTP payload descriptor (RFC 7741, section 4.2).
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID | (required)
//!      +-+-+-+-+-+-+-+-+
//! X:   |I|L|T|K| RSV   | (optional)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PictureID   | (optional; a second octet if M = 1)
//!      +-+-+-+-+-+-+-+-+
//! L:   |   TL0PICIDX   | (optional)
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  | (optional)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Vp8Descriptor::parse`] reads every field and where the VP8 payload (its frame header)
//! starts; the forwarding code needs the temporal layer fields, keyframe detection and the
//! picture numbering fields. [`Vp8Descriptor::write_into`] rewrites PictureID and TL0PICIDX in
//! place (str0m's `Vp8Patch` does the same while serializing, without a copy).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::picture_id::{CodecIds, PictureId};

/// A parsed VP8 payload descriptor.
///
/// The fields are plain values; the byte offsets needed by [`Vp8Descriptor::write_into`] are
/// kept privately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// X: the extension octet is present.
    pub extended: bool,
    /// N: a non-reference frame (can be discarded without affecting other frames).
    pub non_reference: bool,
    /// S: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index (0 to 7).
    pub partition_index: u8,
    /// I (and M): the PictureID, with its width.
    pub picture_id: Option<PictureId>,
    /// L: TL0PICIDX, the running index of base layer frames.
    pub tl0_pic_idx: Option<u8>,
    /// T: TID, the temporal layer (0 to 3).
    pub tid: Option<u8>,
    /// Y: layer sync, the frame depends only on base layer frames (meaningful with T).
    pub layer_sync: bool,
    /// K: KEYIDX, the temporal key frame index (0 to 31).
    pub key_idx: Option<u8>,
    /// Offset of the VP8 payload (the frame header on a frame's first packet) in the RTP
    /// payload. Equal to the payload length if the packet carries no VP8 data.
    pub payload_offset: usize,
    /// The P bit of the VP8 payload header: 1 for an interframe. Only meaningful at the start
    /// of a frame; `true` if the packet carries no VP8 data.
    inter_frame: bool,
    /// Offset of the PictureID octet(s).
    picture_id_at: usize,
    /// Offset of the TL0PICIDX octet.
    tl0_at: usize,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of an RTP payload. `None` if the payload is too short
    /// for the fields its flags announce.
    pub fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
        let mut at = 0;
        let first = take(payload, &mut at)?;
        let mut d = Vp8Descriptor {
            extended: first & 0x80 != 0,
            non_reference: first & 0x20 != 0,
            start_of_partition: first & 0x10 != 0,
            partition_index: first & 0x07,
            picture_id: None,
            tl0_pic_idx: None,
            tid: None,
            layer_sync: false,
            key_idx: None,
            payload_offset: 0,
            inter_frame: true,
            picture_id_at: 0,
            tl0_at: 0,
        };
        if d.extended {
            let x = take(payload, &mut at)?;
            if x & 0x80 != 0 {
                d.picture_id_at = at;
                let high = take(payload, &mut at)?;
                d.picture_id = Some(if high & 0x80 != 0 {
                    let low = take(payload, &mut at)?;
                    PictureId {
                        value: (u16::from(high & 0x7f) << 8) | u16::from(low),
                        long: true,
                    }
                } else {
                    PictureId {
                        value: u16::from(high),
                        long: false,
                    }
                });
            }
            if x & 0x40 != 0 {
                // RFC 7741 wants T set with L; the octet's position does not depend on it.
                d.tl0_at = at;
                d.tl0_pic_idx = Some(take(payload, &mut at)?);
            }
            if x & 0x30 != 0 {
                let tyk = take(payload, &mut at)?;
                if x & 0x20 != 0 {
                    d.tid = Some(tyk >> 6);
                    d.layer_sync = tyk & 0x20 != 0;
                }
                if x & 0x10 != 0 {
                    d.key_idx = Some(tyk & 0x1f);
                }
            }
        }
        d.payload_offset = at;
        d.inter_frame = payload.get(at).is_none_or(|header| header & 0x01 != 0);
        Some(d)
    }

    /// Whether this packet starts a frame: S = 1 and PID = 0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }

    /// Whether this packet starts a keyframe: it starts a frame and the P bit of the VP8 payload
    /// header is 0.
    pub fn is_keyframe(&self) -> bool {
        self.starts_frame() && !self.inter_frame
    }

    /// The temporal layer, 0 when the descriptor has none.
    pub fn temporal_layer(&self) -> u8 {
        self.tid.unwrap_or(0)
    }

    /// The frame numbering fields.
    pub fn ids(&self) -> CodecIds {
        CodecIds {
            picture_id: self.picture_id,
            tl0_pic_idx: self.tl0_pic_idx,
        }
    }

    /// Writes `ids` into the descriptor at the start of `payload`, which must be the bytes this
    /// descriptor was parsed from (or a copy). Only fields present in both are written; a
    /// picture ID is written in the descriptor's own width (its value taken modulo 2^7 or
    /// 2^15). Returns `false`, writing nothing, if `payload` is too short for them.
    pub fn write_into(&self, payload: &mut [u8], ids: CodecIds) -> bool {
        write_ids(payload, (self.ids(), self.picture_id_at, self.tl0_at), ids)
    }
}

/// Writes `ids` over the fields `current` describes (the fields a descriptor carries, and the
/// offsets of its picture ID and TL0PICIDX): only fields present in both are written, a picture
/// ID in the descriptor's own width. Returns `false`, writing nothing, if `payload` is too short.
/// Shared with [`super::vp9`], whose fields have the same layout.
pub(crate) fn write_ids(
    payload: &mut [u8],
    (current, picture_id_at, tl0_at): (CodecIds, usize, usize),
    ids: CodecIds,
) -> bool {
    let picture_id = current.picture_id.zip(ids.picture_id);
    let tl0 = current.tl0_pic_idx.and(ids.tl0_pic_idx);
    let picture_end = match picture_id {
        Some((mine, _)) => picture_id_at + if mine.long { 2 } else { 1 },
        None => 0,
    };
    let tl0_end = if tl0.is_some() { tl0_at + 1 } else { 0 };
    if payload.len() < picture_end.max(tl0_end) {
        return false;
    }
    if let Some((mine, new)) = picture_id {
        write_picture_id(payload, picture_id_at, mine.long, new.value);
    }
    if let (Some(t), Some(b)) = (tl0, payload.get_mut(tl0_at)) {
        *b = t;
    }
    true
}

/// Writes a picture ID of the given width at `at` (bounds already checked by the caller; out of
/// range writes are skipped).
fn write_picture_id(payload: &mut [u8], at: usize, long: bool, value: u16) {
    if long {
        let [high, low] = (value & 0x7fff).to_be_bytes();
        if let Some(b) = payload.get_mut(at) {
            *b = 0x80 | high;
        }
        if let Some(b) = payload.get_mut(at + 1) {
            *b = low;
        }
    } else if let Some(b) = payload.get_mut(at) {
        *b = (value & 0x7f) as u8;
    }
}

/// The byte at `*at`, advancing past it.
fn take(payload: &[u8], at: &mut usize) -> Option<u8> {
    let b = *payload.get(*at)?;
    *at += 1;
    Some(b)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::media::layers::test_rng::Rng;

    /// RFC 7741 4.6.1 style: keyframe, X, I with a 7-bit PictureID 17.
    #[test]
    fn parses_a_minimal_keyframe_with_a_short_picture_id() {
        let d = Vp8Descriptor::parse(&[0x90, 0x80, 0x11, 0x10, 0x02, 0x00]).unwrap();
        assert!(d.extended && d.start_of_partition && !d.non_reference);
        assert_eq!(d.partition_index, 0);
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 17,
                long: false
            })
        );
        assert_eq!((d.tl0_pic_idx, d.tid, d.key_idx), (None, None, None));
        assert_eq!(d.payload_offset, 3);
        assert!(d.starts_frame() && d.is_keyframe());
    }

    #[test]
    fn parses_every_field() {
        // X=1 N=1 S=1 PID=0 | I L T K | M=1 PictureID 0x1234 | TL0PICIDX 200 | TID 2 Y KEYIDX 5
        let p = [0xb0, 0xf0, 0x92, 0x34, 200, 0b1010_0101, 0x9d, 0x01];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert!(d.non_reference);
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true
            })
        );
        assert_eq!(d.tl0_pic_idx, Some(200));
        assert_eq!(d.tid, Some(2));
        assert!(d.layer_sync);
        assert_eq!(d.key_idx, Some(5));
        assert_eq!(d.payload_offset, 6);
        // P bit of 0x9d is 1: an interframe.
        assert!(d.starts_frame() && !d.is_keyframe());
        assert_eq!(d.temporal_layer(), 2);
    }

    #[test]
    fn k_without_t_reads_only_keyidx() {
        let d = Vp8Descriptor::parse(&[0x80, 0x10, 0xff, 0x00]).unwrap();
        assert_eq!(d.tid, None);
        assert!(!d.layer_sync);
        assert_eq!(d.key_idx, Some(0x1f));
        assert_eq!(d.payload_offset, 3);
        // A continuation packet (S=0) never starts a keyframe, and neither does PID 1.
        assert!(!d.is_keyframe());
        let d = Vp8Descriptor::parse(&[0x11, 0x00]).unwrap();
        assert!(!d.starts_frame() && !d.is_keyframe());
    }

    #[test]
    fn without_x_the_payload_starts_after_one_octet() {
        let d = Vp8Descriptor::parse(&[0x10, 0x00]).unwrap();
        assert!(!d.extended);
        assert_eq!(d.payload_offset, 1);
        assert!(d.is_keyframe());
        assert_eq!(d.ids(), CodecIds::default());
    }

    #[test]
    fn truncated_descriptors_are_rejected() {
        let full = [0x90, 0xf0, 0x92, 0x34, 200, 0x40, 0x00];
        for len in 0..6 {
            assert_eq!(Vp8Descriptor::parse(&full[..len]), None, "len {len}");
        }
        // The descriptor alone parses; there is then no frame header, so no keyframe.
        let d = Vp8Descriptor::parse(&full[..6]).unwrap();
        assert_eq!(d.payload_offset, 6);
        assert!(!d.is_keyframe());
    }

    #[test]
    fn writes_picture_id_and_tl0picidx_in_place() {
        let mut p = [0x90, 0xe0, 0x92, 0x34, 200, 0x40, 0x9d];
        let d = Vp8Descriptor::parse(&p).unwrap();
        let ids = CodecIds {
            picture_id: Some(PictureId {
                value: 0x7fff,
                long: true,
            }),
            tl0_pic_idx: Some(3),
        };
        assert!(d.write_into(&mut p, ids));
        assert_eq!(p, [0x90, 0xe0, 0xff, 0xff, 3, 0x40, 0x9d]);
        let again = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(again.ids(), ids);
        assert_eq!(again.tid, Some(1));

        // A 7-bit field keeps its width: the value is taken modulo 128.
        let mut p = [0x90, 0x80, 0x05, 0x00];
        let d = Vp8Descriptor::parse(&p).unwrap();
        let ids = CodecIds {
            picture_id: Some(PictureId {
                value: 130,
                long: true,
            }),
            tl0_pic_idx: Some(9),
        };
        assert!(d.write_into(&mut p, ids));
        assert_eq!(p, [0x90, 0x80, 0x02, 0x00]);

        // Too short a buffer: nothing written.
        let mut short = [0x90, 0xe0, 0x92];
        let long = Vp8Descriptor::parse(&[0x90, 0xe0, 0x92, 0x34, 200, 0x40]).unwrap();
        assert!(!long.write_into(&mut short, ids));
        assert_eq!(short, [0x90, 0xe0, 0x92]);
    }

    /// Random bytes never panic; whatever parses has its payload inside the buffer and
    /// round-trips a rewrite of its numbering fields.
    #[test]
    fn random_payloads_never_panic_and_round_trip() {
        let mut rng = Rng::new(0x5eed);
        let mut buf = [0u8; 12];
        for _ in 0..200_000 {
            let len = rng.below(13) as usize;
            let p = &mut buf[..len];
            rng.fill(p);
            if rng.one_in(2) && len > 0 {
                p[0] |= 0x80;
            }
            let Some(d) = Vp8Descriptor::parse(p) else {
                continue;
            };
            assert!(d.payload_offset <= len);
            let ids = CodecIds {
                picture_id: Some(PictureId {
                    value: rng.next_u64() as u16 & 0x7fff,
                    long: true,
                }),
                tl0_pic_idx: Some(rng.byte()),
            };
            let before = d;
            assert!(d.write_into(p, ids));
            let after = Vp8Descriptor::parse(p).unwrap();
            assert_eq!(after.payload_offset, before.payload_offset);
            assert_eq!(after.tid, before.tid);
            assert_eq!(after.layer_sync, before.layer_sync);
            assert_eq!(after.is_keyframe(), before.is_keyframe());
            if let Some(pid) = before.picture_id {
                let want = ids.picture_id.unwrap().value % pid.modulus();
                assert_eq!(
                    after.picture_id.map(|p| (p.value, p.long)),
                    Some((want, pid.long))
                );
            }
            assert_eq!(after.tl0_pic_idx, before.tl0_pic_idx.and(ids.tl0_pic_idx));
            // Writing into a truncated copy never panics either.
            let cut = rng.below(len as u64 + 1) as usize;
            let _ = d.write_into(&mut p[..cut], ids);
        }
    }
}
