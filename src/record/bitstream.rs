//! What the recorder reads inside codec payloads: the pixel size of a VP8, VP9 or H.264
//! keyframe, and the codec private data a container needs (OpusHead, avcC). Every parser
//! takes untrusted bytes and answers `None` rather than panic on anything short or odd.

/// The pixel size of a VP8 keyframe (the frame's first bytes, payload descriptor removed),
/// from its frame header (RFC 6386 §9.1). `None` for an interframe or a malformed header.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let tag = *frame.first()?;
    if tag & 1 != 0 {
        return None; // P bit set: an interframe
    }
    if frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let height = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

/// Reads bits most significant first.
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, bit: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.bit / 8)?;
        let value = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(value))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut value = 0;
        for _ in 0..n {
            value = (value << 1) | self.bit()?;
        }
        Some(value)
    }

    /// An unsigned Exp-Golomb code (H.264 `ue(v)`).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// A signed Exp-Golomb code (`se(v)`).
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// The pixel size of a VP9 keyframe from its uncompressed header (VP9 bitstream spec
/// §6.2). `None` for anything but a keyframe, or a malformed header.
pub fn vp9_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None; // frame marker
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?; // reserved zero
    }
    if r.bit()? == 1 {
        return None; // show_existing_frame
    }
    if r.bit()? != 0 {
        return None; // frame_type: not a keyframe
    }
    r.bits(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None; // sync code
    }
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?; // reserved
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// An H.264 NAL unit with its emulation prevention bytes (`00 00 03`) removed.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The pixel size an H.264 sequence parameter set (the whole NAL unit, header byte
/// included) describes, after cropping (H.264 §7.3.2.1.1, §7.4.2.1.1).
pub fn h264_sps_size(sps: &[u8]) -> Option<(u16, u16)> {
    let rbsp = unescape(sps.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            // seq_scaling_matrix_present_flag: skip the scaling lists.
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        left = r.ue()?;
        right = r.ue()?;
        top = r.ue()?;
        bottom = r.ue()?;
    }
    let (crop_x, crop_y) = match chroma_format {
        0 | 3 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        _ => (2, 2 - frame_mbs_only),
    };
    let width = i64::from(width_mbs) * 16 - i64::from(crop_x) * i64::from(left + right);
    let height = i64::from(2 - frame_mbs_only) * i64::from(height_units) * 16
        - i64::from(crop_y) * i64::from(top + bottom);
    let width = u16::try_from(width).ok().filter(|w| *w > 0)?;
    let height = u16::try_from(height).ok().filter(|h| *h > 0)?;
    Some((width, height))
}

/// The `AVCDecoderConfigurationRecord` (ISO 14496-15 §5.2.4.1) for one SPS and one PPS
/// (whole NAL units), with 4-byte NAL lengths: Matroska's CodecPrivate for
/// `V_MPEG4/ISO/AVC`.
pub fn avc_decoder_configuration(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    if sps.len() < 4 || pps.is_empty() || sps.len() > 0xffff || pps.len() > 0xffff {
        return None;
    }
    let mut out = Vec::with_capacity(11 + sps.len() + pps.len());
    out.push(1); // configurationVersion
    out.extend_from_slice(&sps[1..4]); // profile, compatibility, level
    out.push(0xfc | 3); // lengthSizeMinusOne = 3
    out.push(0xe0 | 1); // one SPS
    // Both lengths were checked to fit in 16 bits.
    out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1); // one PPS
    out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    out.extend_from_slice(pps);
    Some(out)
}

/// The Opus identification header (RFC 7845 §5.1) for a WebRTC stream: `channels`
/// channels at 48 kHz, no pre-skip, mapping family 0. Matroska's CodecPrivate for `A_OPUS`.
pub fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_header_gives_the_size() {
        // A keyframe tag (P bit clear), the start code, 640 × 480 with scaling bits set.
        let frame = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0xe0, 0x41, 0x00,
        ];
        assert_eq!(vp8_keyframe_size(&frame), Some((640, 480)));
        let mut inter = frame;
        inter[0] |= 1;
        assert_eq!(vp8_keyframe_size(&inter), None);
        assert_eq!(vp8_keyframe_size(&frame[..7]), None);
        assert_eq!(vp8_keyframe_size(&[]), None);
    }

    #[test]
    fn vp9_uncompressed_header_gives_the_size() {
        // Profile 0 keyframe: marker 10, profile 00, show_existing 0, frame_type 0,
        // show_frame 1, error_res 0, sync code, color_space 001, color_range 0, then
        // width−1 = 1279 and height−1 = 719 on 16 bits each.
        let mut bits = String::from("10" /* marker */);
        bits += "00" /* profile */;
        bits += "0" /* show existing */;
        bits += "0" /* key */;
        bits += "1" /* show */;
        bits += "0" /* error res */;
        bits += "010010011000001101000010" /* sync code */;
        bits += "001" /* color space */;
        bits += "0" /* range */;
        bits += &format!("{:016b}{:016b}", 1279, 719);
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        assert_eq!(vp9_keyframe_size(&bytes), Some((1280, 720)));
        let mut inter = bytes.clone();
        inter[0] |= 0x04; // frame_type 1
        assert_eq!(vp9_keyframe_size(&inter), None);
        assert_eq!(vp9_keyframe_size(&bytes[..4]), None);
    }

    #[test]
    fn h264_sps_sizes_with_and_without_cropping() {
        // Written by libx264 (ffmpeg's testsrc): constrained baseline 640 × 480, main
        // 1280 × 720, high 1920 × 1080 (1088 coded, cropped by 8).
        let vga = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00,
            0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
        ];
        assert_eq!(h264_sps_size(&vga), Some((640, 480)));
        let hd = [
            0x67, 0x4d, 0x40, 0x1f, 0xec, 0xa0, 0x28, 0x02, 0xdd, 0x80, 0x88, 0x00, 0x00, 0x03,
            0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x78, 0xc1, 0x8c, 0xb0,
        ];
        assert_eq!(h264_sps_size(&hd), Some((1280, 720)));
        let full_hd = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
            0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
        ];
        assert_eq!(h264_sps_size(&full_hd), Some((1920, 1080)));
        assert_eq!(h264_sps_size(&vga[..5]), None);
        assert_eq!(h264_sps_size(&[]), None);
    }

    #[test]
    fn codec_private_data() {
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let avcc = avc_decoder_configuration(&sps, &pps).unwrap();
        assert_eq!(
            avcc,
            [
                1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 5, 0x67, 0x42, 0xc0, 0x1e, 0xda, 1, 0, 4, 0x68,
                0xce, 0x3c, 0x80
            ]
        );
        assert_eq!(avc_decoder_configuration(&sps[..2], &pps), None);
        let head = opus_head(2);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2);
        assert_eq!(&head[12..16], &48_000u32.to_le_bytes());
    }
}
