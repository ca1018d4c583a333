//! RTP payloads back into codec frames: Opus (one packet, one frame), VP8 (RFC 7741), VP9
//! (the VP9 RTP payload format, RFC 9628; several spatial layers become a superframe) and
//! H.264 (RFC 6184, packetization mode 1: single NAL units, STAP-A and FU-A; frames come out
//! with 4-byte NAL lengths, as Matroska stores AVC).
//!
//! Packets arrive in sequence order ([`super::reorder`]). A video frame is the packets of one
//! RTP timestamp up to the marker bit; one that lost a packet, or whose start was not seen,
//! is dropped ([`Assembled::Lost`]) and the recorder waits for the next keyframe.

use std::time::Instant;

use crate::media::{SenderClock, SinkPacket};

use super::bitstream::{h264_sps_size, vp8_keyframe_size, vp9_keyframe_size};

/// The codecs the recorder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCodec {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// H.264 video.
    H264,
}

impl RecordCodec {
    /// Whether it is a video codec.
    pub fn is_video(self) -> bool {
        self != RecordCodec::Opus
    }
}

/// A complete frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// Extended RTP timestamp.
    pub time: u64,
    /// When its first packet arrived.
    pub arrival: Instant,
    /// The publisher's clock from the last sender report, if any.
    pub clock: Option<SenderClock>,
    /// A decoder can start here (always, for audio).
    pub keyframe: bool,
    /// The frame, in the container's format.
    pub data: Vec<u8>,
    /// A video keyframe's pixel size, when its headers say.
    pub size: Option<(u16, u16)>,
    /// H.264: the sequence and picture parameter sets this frame carries.
    pub parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
}

/// What one packet completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A frame.
    Frame(AssembledFrame),
    /// A video frame was lost: what follows cannot be decoded until a keyframe.
    Lost,
}

/// A frame being gathered.
#[derive(Debug)]
struct Partial {
    time: u64,
    arrival: Instant,
    clock: Option<SenderClock>,
    data: Vec<u8>,
    keyframe: bool,
    /// A packet is missing: the frame will be dropped.
    broken: bool,
    size: Option<(u16, u16)>,
    /// VP9: where each spatial layer's frame starts in `data`.
    layers: Vec<usize>,
    /// H.264: the FU-A unit being gathered: where its length prefix is in `data`.
    fu_start: Option<usize>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

/// Turns one track's packets into frames.
#[derive(Debug)]
pub struct Depacketizer {
    codec: RecordCodec,
    partial: Option<Partial>,
    /// Packets were lost before the next one.
    gap: bool,
}

impl Depacketizer {
    /// A depacketizer for `codec`.
    pub fn new(codec: RecordCodec) -> Depacketizer {
        Depacketizer {
            codec,
            partial: None,
            gap: false,
        }
    }

    /// Packets were given up before the next one.
    pub fn lost(&mut self) {
        if self.codec.is_video() {
            self.gap = true;
            if let Some(partial) = self.partial.as_mut() {
                partial.broken = true;
            }
        }
    }

    /// Takes the next packet; appends what it completes to `out`.
    pub fn push(&mut self, packet: &SinkPacket, out: &mut Vec<Assembled>) {
        if self.codec == RecordCodec::Opus {
            if !packet.payload.is_empty() {
                out.push(Assembled::Frame(AssembledFrame {
                    time: packet.time,
                    arrival: packet.arrival,
                    clock: packet.sender_clock,
                    keyframe: true,
                    data: packet.payload.to_vec(),
                    size: None,
                    parameter_sets: None,
                }));
            }
            return;
        }
        // A new timestamp before the marker: the previous frame lost its end.
        if self.partial.as_ref().is_some_and(|p| p.time != packet.time) {
            self.partial = None;
            out.push(Assembled::Lost);
        }
        let partial = self.partial.get_or_insert_with(|| Partial {
            time: packet.time,
            arrival: packet.arrival,
            clock: None,
            data: Vec::with_capacity(packet.payload.len() * 4),
            keyframe: false,
            broken: false,
            size: None,
            layers: Vec::new(),
            fu_start: None,
            sps: None,
            pps: None,
        });
        let first = partial.data.is_empty() && !partial.broken && partial.layers.is_empty();
        partial.clock = packet.sender_clock.or(partial.clock);
        if std::mem::take(&mut self.gap) {
            partial.broken = true;
        }
        let ok = match self.codec {
            RecordCodec::Vp8 => vp8(partial, &packet.payload, first),
            RecordCodec::Vp9 => vp9(partial, &packet.payload, first),
            RecordCodec::H264 => h264(partial, &packet.payload, first),
            RecordCodec::Opus => true,
        };
        if !ok {
            partial.broken = true;
        }
        if packet.marker
            && let Some(done) = self.partial.take()
        {
            out.push(finish(done));
        }
    }
}

/// The frame, or `Lost` if it is broken.
fn finish(mut p: Partial) -> Assembled {
    if p.broken || p.data.is_empty() || p.fu_start.is_some() {
        return Assembled::Lost;
    }
    if p.layers.len() > 1 {
        p.data = superframe(&p.data, &p.layers);
    }
    let parameter_sets = match (p.sps, p.pps) {
        (Some(sps), Some(pps)) => Some((sps, pps)),
        _ => None,
    };
    Assembled::Frame(AssembledFrame {
        time: p.time,
        arrival: p.arrival,
        clock: p.clock,
        keyframe: p.keyframe,
        data: p.data,
        size: p.size,
        parameter_sets,
    })
}

/// One VP8 packet (RFC 7741 §4.2): the descriptor is skipped; a frame starts at a packet with
/// the S bit and partition 0. Returns false on a malformed descriptor or a missed start.
fn vp8(p: &mut Partial, payload: &[u8], first: bool) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // Picture ID: 7 or 15 bits.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    let Some(data) = payload.get(at..) else {
        return false;
    };
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if first {
        if !start {
            return false;
        }
        p.keyframe = data.first().is_some_and(|b| b & 1 == 0);
        if p.keyframe {
            p.size = vp8_keyframe_size(data);
        }
    }
    p.data.extend_from_slice(data);
    true
}

/// One VP9 packet (RFC 9628 §4.2): the descriptor is skipped; B starts a spatial layer's
/// frame (kept apart for the superframe), a picture's first layer with P clear is a keyframe,
/// and the scalability structure gives the pixel size.
fn vp9(p: &mut Partial, payload: &[u8], first: bool) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let (i, pred, l, f, begin, v) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
        b0 & 0x08 != 0,
        b0 & 0x02 != 0,
    );
    let mut at = 1;
    if i {
        let Some(&pid) = payload.get(at) else {
            return false;
        };
        at += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    let mut sid = 0;
    if l {
        let Some(&layer) = payload.get(at) else {
            return false;
        };
        sid = (layer >> 1) & 0x07;
        at += if f { 1 } else { 2 };
    }
    if f && pred {
        // Up to three P_DIFF bytes, each saying whether another follows.
        for _ in 0..3 {
            let Some(&diff) = payload.get(at) else {
                return false;
            };
            at += 1;
            if diff & 0x01 == 0 {
                break;
            }
        }
    }
    if v {
        let Some((end, size)) = vp9_scalability(payload, at) else {
            return false;
        };
        at = end;
        if size.is_some() {
            p.size = size;
        }
    }
    let Some(data) = payload.get(at..) else {
        return false;
    };
    if first {
        if !begin {
            return false;
        }
        p.keyframe = !pred && sid == 0;
    }
    if begin {
        p.layers.push(p.data.len());
        if p.keyframe && p.size.is_none() {
            p.size = vp9_keyframe_size(data);
        }
    }
    p.data.extend_from_slice(data);
    true
}

/// Skips the scalability structure at `at`; returns where it ends and the largest layer's
/// pixel size, if it gives sizes.
fn vp9_scalability(payload: &[u8], mut at: usize) -> Option<(usize, Option<(u16, u16)>)> {
    let head = *payload.get(at)?;
    at += 1;
    let layers = usize::from(head >> 5) + 1;
    let mut size = None;
    if head & 0x10 != 0 {
        for _ in 0..layers {
            let b = payload.get(at..at + 4)?;
            size = Some((
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            ));
            at += 4;
        }
    }
    if head & 0x08 != 0 {
        let groups = *payload.get(at)?;
        at += 1;
        for _ in 0..groups {
            let group = *payload.get(at)?;
            at += 1 + usize::from((group >> 2) & 0x03);
        }
    }
    Some((at, size.filter(|(w, h)| *w > 0 && *h > 0)))
}

/// A VP9 superframe (VP9 bitstream spec, Annex B) of the layer frames starting at `starts`.
fn superframe(data: &[u8], starts: &[usize]) -> Vec<u8> {
    let mut sizes: Vec<usize> = starts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    sizes.push(data.len().saturating_sub(*starts.last().unwrap_or(&0)));
    let frames = sizes.len().min(8);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let bytes = match largest {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    };
    // 0b110, size bytes − 1 (2 bits), frames − 1 (3 bits).
    let marker = 0xc0 | ((bytes - 1) << 3) as u8 | (frames - 1) as u8;
    let mut out = Vec::with_capacity(data.len() + 2 + bytes * frames);
    out.extend_from_slice(data);
    out.push(marker);
    for size in sizes.iter().take(frames) {
        out.extend_from_slice(&(*size as u32).to_le_bytes()[..bytes]);
    }
    out.push(marker);
    out
}

/// One H.264 packet (RFC 6184 §5.6–5.8): each NAL unit is written with a 4-byte length.
/// An IDR slice makes the frame a keyframe; SPS and PPS are kept for the container.
fn h264(p: &mut Partial, payload: &[u8], first: bool) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1f {
        1..=23 => {
            if p.fu_start.is_some() {
                return false;
            }
            add_nal(p, payload);
        }
        24 => {
            if p.fu_start.is_some() {
                return false;
            }
            let mut at = 1;
            while at + 2 <= payload.len() {
                // Both bytes exist: the loop's condition.
                let len = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                at += 2;
                let Some(nal) = payload.get(at..at + len) else {
                    return false;
                };
                if !nal.is_empty() {
                    add_nal(p, nal);
                }
                at += len;
            }
        }
        28 => {
            let Some(&fu) = payload.get(1) else {
                return false;
            };
            let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
            if start {
                if p.fu_start.is_some() {
                    return false;
                }
                p.fu_start = Some(p.data.len());
                p.data.extend_from_slice(&[0; 4]);
                p.data.push((header & 0xe0) | (fu & 0x1f));
            } else if first || p.fu_start.is_none() {
                return false;
            }
            p.data
                .extend_from_slice(payload.get(2..).unwrap_or_default());
            if end && let Some(at) = p.fu_start.take() {
                let nal_len = p.data.len() - at - 4;
                let Ok(len) = u32::try_from(nal_len) else {
                    return false;
                };
                p.data[at..at + 4].copy_from_slice(&len.to_be_bytes());
                note_nal(p, at + 4);
            }
        }
        _ => return false, // STAP-B, MTAP, FU-B: not in packetization mode 1
    }
    true
}

/// Appends a whole NAL unit with its length.
fn add_nal(p: &mut Partial, nal: &[u8]) {
    let Ok(len) = u32::try_from(nal.len()) else {
        return;
    };
    p.data.extend_from_slice(&len.to_be_bytes());
    let at = p.data.len();
    p.data.extend_from_slice(nal);
    note_nal(p, at);
}

/// Looks at the NAL unit that starts at `at` in the frame: IDR, SPS, PPS.
fn note_nal(p: &mut Partial, at: usize) {
    let Some(nal) = p.data.get(at..) else {
        return;
    };
    match nal.first().map(|h| h & 0x1f) {
        Some(5) => p.keyframe = true,
        Some(7) => {
            p.size = h264_sps_size(nal);
            p.sps = Some(nal.to_vec());
        }
        Some(8) => p.pps = Some(nal.to_vec()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::StreamKey;
    use std::sync::Arc;

    fn packet(seq: u64, time: u64, marker: bool, payload: &[u8]) -> SinkPacket {
        SinkPacket {
            sink: StreamKey(1),
            track: 1,
            codec: None,
            clock_rate: 90_000,
            epoch: 0,
            seq,
            time,
            marker,
            payload: Arc::from(payload),
            arrival: Instant::now(),
            sender_clock: None,
        }
    }

    fn frames(d: &mut Depacketizer, packets: &[SinkPacket]) -> Vec<Assembled> {
        let mut out = Vec::new();
        for p in packets {
            d.push(p, &mut out);
        }
        out
    }

    const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];

    #[test]
    fn vp8_frames_are_reassembled_and_broken_ones_dropped() {
        let mut d = Depacketizer::new(RecordCodec::Vp8);
        // Extended descriptor with a 15-bit picture id, start of partition 0.
        let mut first = vec![0x90, 0x80, 0x81, 0x23];
        first.extend_from_slice(&VP8_KEY);
        let second = [0x80, 0x80, 0x81, 0x23, 0xaa, 0xbb];
        let out = frames(
            &mut d,
            &[packet(1, 0, false, &first), packet(2, 0, true, &second)],
        );
        let [Assembled::Frame(f)] = &out[..] else {
            panic!("{out:?}");
        };
        assert!(f.keyframe);
        assert_eq!(f.size, Some((640, 360)));
        let mut expected = VP8_KEY.to_vec();
        expected.extend_from_slice(&[0xaa, 0xbb]);
        assert_eq!(f.data, expected);

        // A loss inside a frame drops it; the next frame comes through.
        let inter = [0x10, 0x01, 0x02];
        let mut out = Vec::new();
        d.push(&packet(3, 3000, false, &inter), &mut out);
        d.lost();
        d.push(&packet(5, 3000, true, &[0x00, 0x03]), &mut out);
        d.push(&packet(6, 6000, true, &inter), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Assembled::Lost);
        assert!(matches!(&out[1], Assembled::Frame(f) if !f.keyframe && f.data == [0x01, 0x02]));
        // A frame whose start was lost is dropped.
        let mut out = Vec::new();
        d.lost();
        d.push(&packet(8, 9000, true, &[0x00, 0x05]), &mut out);
        assert_eq!(out, [Assembled::Lost]);
    }

    #[test]
    fn vp9_spatial_layers_become_a_superframe_with_the_ss_size() {
        let mut d = Depacketizer::new(RecordCodec::Vp9);
        // I=0 P=0 L=1 F=0 B=1 E=1 V=1: layer byte (sid 0), TL0PICIDX, then the SS: two
        // spatial layers with sizes (320 × 180, 640 × 360), no groups.
        let mut base = vec![0x2e, 0x00, 0x00, 0x30];
        base.extend_from_slice(&[0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68]);
        base.extend_from_slice(&[0xaa; 5]);
        // Upper layer: L=1 (sid 1), B=1 E=1, P=0 (inter-layer only).
        let upper = [0x2c, 0x02, 0x00, 0xbb, 0xbb, 0xbb];
        let out = frames(
            &mut d,
            &[packet(1, 0, false, &base), packet(2, 0, true, &upper)],
        );
        let [Assembled::Frame(f)] = &out[..] else {
            panic!("{out:?}");
        };
        assert!(f.keyframe);
        assert_eq!(f.size, Some((640, 360)));
        // Two frames of 5 and 3 bytes, one size byte each: marker 0b11000_001.
        assert_eq!(
            f.data,
            [
                0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xbb, 0xc1, 5, 3, 0xc1
            ]
        );
    }

    #[test]
    fn h264_stap_a_and_fu_a_become_length_prefixed_nal_units() {
        let mut d = Depacketizer::new(RecordCodec::H264);
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00,
            0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
        ];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut stap = vec![0x18];
        for nal in [&sps[..], &pps[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        // An IDR slice in two FU-A fragments: indicator NRI 3, type 28; header S/E, type 5.
        let fu1 = [0x7c, 0x85, 0x01, 0x02];
        let fu2 = [0x7c, 0x45, 0x03];
        let out = frames(
            &mut d,
            &[
                packet(1, 0, false, &stap),
                packet(2, 0, false, &fu1),
                packet(3, 0, true, &fu2),
            ],
        );
        let [Assembled::Frame(f)] = &out[..] else {
            panic!("{out:?}");
        };
        assert!(f.keyframe);
        assert_eq!(f.size, Some((640, 480)));
        assert_eq!(f.parameter_sets, Some((sps.to_vec(), pps.to_vec())));
        let mut expected = Vec::new();
        for nal in [&sps[..], &pps[..], &[0x65, 0x01, 0x02, 0x03][..]] {
            expected.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            expected.extend_from_slice(nal);
        }
        assert_eq!(f.data, expected);

        // A continuation fragment without its start: lost.
        let out = frames(&mut d, &[packet(5, 3000, true, &fu2)]);
        assert_eq!(out, [Assembled::Lost]);
        // Garbage is refused without a panic.
        let out = frames(&mut d, &[packet(6, 6000, true, &[0x18, 0xff])]);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn opus_packets_are_frames() {
        let mut d = Depacketizer::new(RecordCodec::Opus);
        d.lost();
        let out = frames(&mut d, &[packet(1, 960, false, &[0xfc, 1, 2])]);
        assert!(matches!(&out[..], [Assembled::Frame(f)] if f.keyframe && f.data == [0xfc, 1, 2]));
    }
}
