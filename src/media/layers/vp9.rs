//! The VP9 RTP payload descriptor (RFC 9628, formerly draft-ietf-payload-vp9).
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |I|P|L|F|B|E|V|Z| (required)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PICTURE ID  | (a second octet if M = 1)
//!      +-+-+-+-+-+-+-+-+
//! L:   | TID |U| SID |D| (and TL0PICIDX in non-flexible mode, F = 0)
//!      +-+-+-+-+-+-+-+-+
//! P,F: | P_DIFF      |N| (flexible mode, inter-picture predicted: up to 3 times)
//!      +-+-+-+-+-+-+-+-+
//! V:   | SS            | (scalability structure)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! The scalability structure is `N_S|Y|G|-|-|-`, then with Y a width and height (16 bits each)
//! per spatial layer, then with G the picture group: `N_G`, and `N_G` times `TID|U|R|-|-`
//! followed by R P_DIFF octets.
//!
//! [`Vp9Descriptor::parse`] reads every field the forwarding code needs and finds where the VP9
//! frame data starts; [`Vp9Descriptor::write_into`] rewrites the picture ID and TL0PICIDX in
//! place (on a copy of the payload: str0m has no VP9 patch).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::picture_id::{CodecIds, PictureId};
use super::vp8::write_ids;

/// Most spatial layers a scalability structure can describe (N_S is 3 bits).
pub const MAX_SPATIAL_LAYERS: usize = 8;

/// Most P_DIFF references of a picture in flexible mode.
pub const MAX_P_DIFFS: usize = 3;

/// The layer indices (L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Layers {
    /// TID: the temporal layer (0 to 7).
    pub tid: u8,
    /// U: switching up point. libwebrtc sets it on a frame that references only lower temporal
    /// layers, so a receiver of the lower layers can start this one here.
    pub switching_up: bool,
    /// SID: the spatial layer (0 to 7).
    pub sid: u8,
    /// D: this layer frame depends on the lower spatial layer frame of the same picture.
    pub inter_layer: bool,
}

/// The scalability structure (V), as far as a forwarder needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Scalability {
    /// N_S + 1: the number of spatial layers.
    pub spatial_layers: u8,
    /// N_G, when the picture group is described (G).
    pub pictures_in_group: Option<u8>,
    /// Width and height per spatial layer, when present (Y).
    sizes: Option<[(u16, u16); MAX_SPATIAL_LAYERS]>,
}

impl Vp9Scalability {
    /// Width and height of spatial layer `sid`, if the structure has them.
    #[cfg(test)]
    pub fn resolution(&self, sid: u8) -> Option<(u16, u16)> {
        if sid >= self.spatial_layers {
            return None;
        }
        self.sizes?.get(usize::from(sid)).copied()
    }
}

/// A parsed VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// I (and M): the picture ID, with its width.
    pub picture_id: Option<PictureId>,
    /// P: inter-picture predicted (this layer frame references an earlier picture).
    pub inter_picture: bool,
    /// F: flexible mode (references as P_DIFFs, no TL0PICIDX).
    pub flexible: bool,
    /// B: this packet begins a layer frame.
    pub begins_frame: bool,
    /// E: this packet ends a layer frame.
    pub ends_frame: bool,
    /// Z: not used as a reference by upper spatial layers of this picture.
    pub not_upper_reference: bool,
    /// L: the layer indices.
    pub layers: Option<Vp9Layers>,
    /// TL0PICIDX (non-flexible mode with L).
    pub tl0_pic_idx: Option<u8>,
    /// V: the scalability structure.
    pub scalability: Option<Vp9Scalability>,
    /// Offset of the VP9 frame data in the RTP payload (the payload length if there is none).
    pub payload_offset: usize,
    p_diffs: [u8; MAX_P_DIFFS],
    p_diff_count: u8,
    picture_id_at: usize,
    tl0_at: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the start of an RTP payload. `None` if the payload is too short
    /// for the fields its flags announce, or if it lists more than three P_DIFFs.
    pub fn parse(payload: &[u8]) -> Option<Vp9Descriptor> {
        let mut at = 0;
        let first = take(payload, &mut at)?;
        let mut d = Vp9Descriptor {
            picture_id: None,
            inter_picture: first & 0x40 != 0,
            flexible: first & 0x10 != 0,
            begins_frame: first & 0x08 != 0,
            ends_frame: first & 0x04 != 0,
            not_upper_reference: first & 0x01 != 0,
            layers: None,
            tl0_pic_idx: None,
            scalability: None,
            payload_offset: 0,
            p_diffs: [0; MAX_P_DIFFS],
            p_diff_count: 0,
            picture_id_at: 0,
            tl0_at: 0,
        };
        if first & 0x80 != 0 {
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
        if first & 0x20 != 0 {
            let b = take(payload, &mut at)?;
            d.layers = Some(Vp9Layers {
                tid: b >> 5,
                switching_up: b & 0x10 != 0,
                sid: (b >> 1) & 0x07,
                inter_layer: b & 0x01 != 0,
            });
            if !d.flexible {
                d.tl0_at = at;
                d.tl0_pic_idx = Some(take(payload, &mut at)?);
            }
        }
        if d.flexible && d.inter_picture {
            loop {
                let b = take(payload, &mut at)?;
                let slot = d.p_diffs.get_mut(usize::from(d.p_diff_count))?;
                *slot = b >> 1;
                d.p_diff_count += 1;
                if b & 0x01 == 0 {
                    break;
                }
            }
        }
        if first & 0x02 != 0 {
            d.scalability = Some(parse_scalability(payload, &mut at)?);
        }
        d.payload_offset = at;
        Some(d)
    }

    /// The temporal layer, 0 without layer indices.
    pub fn tid(&self) -> u8 {
        self.layers.map_or(0, |l| l.tid)
    }

    /// The spatial layer, 0 without layer indices.
    pub fn sid(&self) -> u8 {
        self.layers.map_or(0, |l| l.sid)
    }

    /// Whether this is a switching up point (U), false without layer indices.
    pub fn switching_up(&self) -> bool {
        self.layers.is_some_and(|l| l.switching_up)
    }

    /// The P_DIFF references (flexible mode, inter-picture predicted), in order.
    #[cfg(test)]
    pub fn p_diffs(&self) -> &[u8] {
        self.p_diffs
            .get(..usize::from(self.p_diff_count))
            .unwrap_or_default()
    }

    /// Whether this packet starts a keyframe: a base spatial layer frame (SID 0) begins here and
    /// is not inter-picture predicted (P = 0).
    pub fn is_keyframe(&self) -> bool {
        !self.inter_picture && self.begins_frame && self.sid() == 0
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

/// Reads a scalability structure starting at `*at`.
fn parse_scalability(payload: &[u8], at: &mut usize) -> Option<Vp9Scalability> {
    let b = take(payload, at)?;
    let spatial_layers = (b >> 5) + 1;
    let mut ss = Vp9Scalability {
        spatial_layers,
        pictures_in_group: None,
        sizes: None,
    };
    if b & 0x10 != 0 {
        let mut sizes = [(0, 0); MAX_SPATIAL_LAYERS];
        for size in sizes.iter_mut().take(usize::from(spatial_layers)) {
            let width = u16::from_be_bytes([take(payload, at)?, take(payload, at)?]);
            let height = u16::from_be_bytes([take(payload, at)?, take(payload, at)?]);
            *size = (width, height);
        }
        ss.sizes = Some(sizes);
    }
    if b & 0x08 != 0 {
        let n_g = take(payload, at)?;
        for _ in 0..n_g {
            let picture = take(payload, at)?;
            let references = (picture >> 2) & 0x03;
            for _ in 0..references {
                take(payload, at)?;
            }
        }
        ss.pictures_in_group = Some(n_g);
    }
    Some(ss)
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

    #[test]
    fn parses_non_flexible_mode_with_tl0picidx() {
        // I L B E | M=1 PID 0x0102 | TID 2 U SID 1 D | TL0PICIDX 77 | data
        let p = [0xac, 0x81, 0x02, 0b0101_0011, 77, 0xaa];
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 0x102,
                long: true
            })
        );
        assert!(!d.flexible && !d.inter_picture && d.begins_frame && d.ends_frame);
        assert_eq!(
            d.layers,
            Some(Vp9Layers {
                tid: 2,
                switching_up: true,
                sid: 1,
                inter_layer: true
            })
        );
        assert_eq!(d.tl0_pic_idx, Some(77));
        assert_eq!(d.payload_offset, 5);
        assert!(d.p_diffs().is_empty());
        // SID 1 never starts a keyframe, even without P.
        assert!(!d.is_keyframe());
    }

    #[test]
    fn parses_flexible_mode_p_diffs() {
        // I P L F B | PID 5 | TID 1 SID 0 | P_DIFF 1 N, P_DIFF 2 N, P_DIFF 4 | data
        let p = [0xf8, 0x05, 0x20, 0x03, 0x05, 0x08, 0xbb];
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert!(d.flexible && d.inter_picture);
        assert_eq!(d.tl0_pic_idx, None);
        assert_eq!(d.p_diffs(), &[1, 2, 4]);
        assert_eq!(d.payload_offset, 6);
        assert_eq!((d.tid(), d.sid()), (1, 0));
        assert!(!d.is_keyframe());
        // A fourth P_DIFF is malformed.
        assert_eq!(
            Vp9Descriptor::parse(&[0xf8, 0x05, 0x20, 0x03, 0x05, 0x09, 0x02, 0xbb]),
            None
        );
        // Flexible mode without P has no P_DIFF.
        let d = Vp9Descriptor::parse(&[0xb8, 0x05, 0x20, 0xbb]).unwrap();
        assert_eq!(d.payload_offset, 3);
        assert!(d.is_keyframe());
    }

    #[test]
    fn skips_the_scalability_structure() {
        // Keyframe: I B V | PID 9 (7 bits) | SS: N_S=1 Y G | 2 x (w, h) | N_G=2 |
        //   TID 0 U R=1 | P_DIFF 4 | TID 1 U R=2 | 1, 2 | data
        let p = [
            0x8a,
            0x09,
            0b0011_1000,
            0x01,
            0x40,
            0x00,
            0xb4,
            0x02,
            0x80,
            0x01,
            0x68,
            0x02,
            0b0001_0100,
            4,
            0b0011_1000,
            1,
            2,
            0xcc,
        ];
        let d = Vp9Descriptor::parse(&p).unwrap();
        let ss = d.scalability.unwrap();
        assert_eq!(ss.spatial_layers, 2);
        assert_eq!(ss.resolution(0), Some((320, 180)));
        assert_eq!(ss.resolution(1), Some((640, 360)));
        assert_eq!(ss.resolution(2), None);
        assert_eq!(ss.pictures_in_group, Some(2));
        assert_eq!(d.payload_offset, p.len() - 1);
        assert!(d.is_keyframe());
        // Without Y and G the structure is one octet.
        let d = Vp9Descriptor::parse(&[0x0a, 0x40, 0xcc]).unwrap();
        let ss = d.scalability.unwrap();
        assert_eq!((ss.spatial_layers, ss.pictures_in_group), (3, None));
        assert_eq!(ss.resolution(0), None);
        assert_eq!(d.payload_offset, 2);
        // Every truncation of the keyframe fails (up to the data octet).
        for len in 0..p.len() - 1 {
            assert_eq!(Vp9Descriptor::parse(&p[..len]), None, "len {len}");
        }
    }

    #[test]
    fn writes_picture_id_and_tl0picidx_in_place() {
        let mut p = [0xac, 0x81, 0x02, 0x00, 77, 0xaa];
        let d = Vp9Descriptor::parse(&p).unwrap();
        let ids = CodecIds {
            picture_id: Some(PictureId {
                value: 0x4321,
                long: true,
            }),
            tl0_pic_idx: Some(255),
        };
        assert!(d.write_into(&mut p, ids));
        assert_eq!(p, [0xac, 0xc3, 0x21, 0x00, 255, 0xaa]);
        assert_eq!(Vp9Descriptor::parse(&p).unwrap().ids(), ids);
        let mut short = [0xac, 0x81];
        assert!(!d.write_into(&mut short, ids));
        assert_eq!(short, [0xac, 0x81]);
    }

    #[test]
    fn random_payloads_never_panic_and_round_trip() {
        let mut rng = Rng::new(0x9999);
        let mut buf = [0u8; 40];
        for _ in 0..200_000 {
            let len = rng.below(41) as usize;
            let p = &mut buf[..len];
            rng.fill(p);
            let Some(d) = Vp9Descriptor::parse(p) else {
                continue;
            };
            assert!(d.payload_offset <= len);
            assert!(d.p_diffs().len() <= MAX_P_DIFFS);
            if let Some(ss) = d.scalability {
                for sid in 0..=8 {
                    let _ = ss.resolution(sid);
                }
            }
            let ids = CodecIds {
                picture_id: Some(PictureId {
                    value: rng.next_u64() as u16 & 0x7fff,
                    long: true,
                }),
                tl0_pic_idx: Some(rng.byte()),
            };
            assert!(d.write_into(p, ids));
            let after = Vp9Descriptor::parse(p).unwrap();
            assert_eq!(after.payload_offset, d.payload_offset);
            assert_eq!(after.layers, d.layers);
            assert_eq!(after.p_diffs(), d.p_diffs());
            assert_eq!(after.scalability, d.scalability);
            if let Some(pid) = d.picture_id {
                let want = ids.picture_id.unwrap().value % pid.modulus();
                assert_eq!(
                    after.picture_id.map(|p| (p.value, p.long)),
                    Some((want, pid.long))
                );
            }
            assert_eq!(after.tl0_pic_idx, d.tl0_pic_idx.and(ids.tl0_pic_idx));
            let cut = rng.below(len as u64 + 1) as usize;
            let _ = d.write_into(&mut p[..cut], ids);
        }
    }
}
