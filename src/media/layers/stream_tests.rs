//! Whole-stream tests: synthetic VP8 and VP9 streams through a down track built the way
//! sfubox's `DownTrack::on_packet` is meant to use these modules (see [`Track::on_packet`]).

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::picture_id::{CodecIds, PictureIdRewriter};
use super::seqmap::SeqMap;
use super::temporal::{LayerPacket, TemporalFilter, Verdict};
use super::test_rng::Rng;
use super::vp8::Vp8Descriptor;
use super::vp9::Vp9Descriptor;

/// One incoming RTP packet (only what the track looks at), plus test bookkeeping.
#[derive(Debug, Clone)]
struct Pkt {
    source: u32,
    seq: u64,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
    vp9: bool,
    /// Index of the frame in its source's stream.
    frame: usize,
}

/// One outgoing packet, read back from the rewritten payload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    source: u32,
    frame: usize,
    in_seq: u64,
    seq: u64,
    tid: u8,
    sid: u8,
    pid: Option<u16>,
    tl0: Option<u8>,
    marker: bool,
}

/// Either descriptor, as the SFU would hold it after parsing once per incoming packet.
#[derive(Debug, Clone, Copy)]
enum Desc {
    Vp8(Vp8Descriptor),
    Vp9(Vp9Descriptor),
}

impl Desc {
    fn parse(vp9: bool, payload: &[u8]) -> Option<Desc> {
        if vp9 {
            Vp9Descriptor::parse(payload).map(Desc::Vp9)
        } else {
            Vp8Descriptor::parse(payload).map(Desc::Vp8)
        }
    }

    fn layer(&self, ts: u32, marker: bool) -> LayerPacket {
        match self {
            Desc::Vp8(d) => LayerPacket::vp8(d, ts, marker),
            Desc::Vp9(d) => LayerPacket::vp9(d, ts, marker),
        }
    }

    fn ids(&self) -> CodecIds {
        match self {
            Desc::Vp8(d) => d.ids(),
            Desc::Vp9(d) => d.ids(),
        }
    }

    fn tid(&self) -> u8 {
        match self {
            Desc::Vp8(d) => d.temporal_layer(),
            Desc::Vp9(d) => d.tid(),
        }
    }

    fn sid(&self) -> u8 {
        match self {
            Desc::Vp8(_) => 0,
            Desc::Vp9(d) => d.sid(),
        }
    }

    fn keyframe(&self) -> bool {
        match self {
            Desc::Vp8(d) => d.is_keyframe(),
            Desc::Vp9(d) => d.is_keyframe(),
        }
    }

    /// Whether the receiver needs picture IDs without gaps (all but VP9 flexible mode).
    fn dense_ids(&self) -> bool {
        match self {
            Desc::Vp8(_) => true,
            Desc::Vp9(d) => !d.flexible,
        }
    }

    fn write_into(&self, payload: &mut [u8], ids: CodecIds) -> bool {
        match self {
            Desc::Vp8(d) => d.write_into(payload, ids),
            Desc::Vp9(d) => d.write_into(payload, ids),
        }
    }
}

/// A down track: forward.rs's source selection (current / pending-until-keyframe), reduced to
/// what matters here, with the three new pieces.
#[derive(Default)]
struct Track {
    current: Option<u32>,
    pending: Option<u32>,
    synced: bool,
    filter: TemporalFilter,
    pictures: PictureIdRewriter,
    seqs: SeqMap,
    max_out: Option<u64>,
}

impl Track {
    fn on_packet(&mut self, p: &Pkt) -> Option<Sent> {
        // Parsed once per incoming packet, before the fan-out, in the real thing.
        let d = Desc::parse(p.vp9, &p.payload)?;
        // forward.rs: switch at the pending source's keyframe; wait for one when (re)starting.
        if self.pending == Some(p.source) {
            if !d.keyframe() {
                return None;
            }
            self.current = self.pending.take();
            self.synced = false;
        }
        if self.current != Some(p.source) {
            return None;
        }
        if !self.synced {
            if !d.keyframe() {
                return None;
            }
            self.synced = true;
            // Rewriter::rebase, plus the new state.
            let first = self.max_out.map_or(p.seq & 0xffff, |m| m + 1);
            self.seqs.rebase(p.seq, first);
            self.filter.reset();
            self.pictures.rebase();
        }
        // The new part.
        match self.filter.on_packet(&d.layer(p.ts, p.marker)) {
            Verdict::DropFrame => {
                self.seqs.drop(p.seq);
                if d.dense_ids() {
                    self.pictures.drop_frame(d.ids(), d.tid());
                }
                None
            }
            Verdict::DropLayer => {
                self.seqs.drop(p.seq);
                None
            }
            Verdict::Forward { marker } => {
                let Some(ids) = self.pictures.forward(d.ids(), d.tid()) else {
                    self.seqs.drop(p.seq);
                    return None;
                };
                let seq = self.seqs.map(p.seq)?;
                self.max_out = Some(self.max_out.map_or(seq, |m| m.max(seq)));
                let mut out = p.payload.clone();
                assert!(d.write_into(&mut out, ids));
                let back = Desc::parse(p.vp9, &out).unwrap();
                assert_eq!(back.ids(), ids);
                Some(Sent {
                    source: p.source,
                    frame: p.frame,
                    in_seq: p.seq,
                    seq,
                    tid: back.tid(),
                    sid: back.sid(),
                    pid: ids.picture_id.map(|p| p.value),
                    tl0: ids.tl0_pic_idx,
                    marker,
                })
            }
        }
    }
}

/// libwebrtc's VP8 three-layer pattern (default_temporal_layers.cc): TIDs 0,2,1,2,0,2,1,2 and the
/// layer sync bit on the TL2 and TL1 frames right after the first TL0 frame of each 8-frame
/// cycle (they reference only `last`, the TL0 buffer); the pattern restarts at a keyframe, which
/// has TID 0 and Y set.
const TIDS: [u8; 8] = [0, 2, 1, 2, 0, 2, 1, 2];
const SYNC: [bool; 8] = [false, true, true, false, false, false, false, false];

struct Vp8Source {
    source: u32,
    pid: u16,
    long: bool,
    tl0: u8,
    seq: u64,
    ts: u32,
    /// Frames since the last keyframe.
    idx: usize,
    frames: usize,
}

impl Vp8Source {
    fn new(source: u32, pid: u16, long: bool, tl0: u8, seq: u64) -> Vp8Source {
        Vp8Source {
            source,
            pid,
            long,
            tl0: tl0.wrapping_sub(1),
            seq,
            ts: 90_000 * source,
            idx: 0,
            frames: 0,
        }
    }

    /// The packets of the next frame.
    fn frame(&mut self, keyframe: bool) -> Vec<Pkt> {
        if keyframe {
            self.idx = 0;
        }
        let i = self.idx % 8;
        let tid = TIDS[i];
        let sync = keyframe || SYNC[i];
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let count = if tid == 0 { 3 } else { 2 };
        let mut out = Vec::new();
        for k in 0..count {
            let mut payload = vec![if k == 0 { 0x90 } else { 0x80 }, 0xe0];
            if self.long {
                payload.extend((0x8000 | self.pid).to_be_bytes());
            } else {
                payload.push(self.pid as u8);
            }
            payload.push(self.tl0);
            payload.push((tid << 6) | (u8::from(sync) << 5));
            // VP8 payload header: P = 0 for a keyframe.
            payload.push(if k == 0 && keyframe { 0x00 } else { 0x01 });
            payload.extend([0xab; 4]);
            out.push(Pkt {
                source: self.source,
                seq: self.seq,
                ts: self.ts,
                marker: k == count - 1,
                payload,
                vp9: false,
                frame: self.frames,
            });
            self.seq += 1;
        }
        let modulus = if self.long { 1 << 15 } else { 1 << 7 };
        self.pid = (self.pid + 1) % modulus;
        self.ts = self.ts.wrapping_add(3000);
        self.idx += 1;
        self.frames += 1;
        out
    }
}

/// The checks that matter to a receiver, over packets sent in order: sequence numbers,
/// picture IDs and TL0PICIDX without gaps, whole frames, the marker on each frame's last packet.
fn assert_continuous(sent: &[Sent], pid_modulus: u32) {
    for w in sent.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(b.seq, a.seq + 1, "sequence gap between {a:?} and {b:?}");
        let new_frame = (a.source, a.frame) != (b.source, b.frame);
        assert_eq!(a.marker, new_frame, "marker at {a:?}");
        let step = u32::from(new_frame);
        if let (Some(x), Some(y)) = (a.pid, b.pid) {
            assert_eq!(
                u32::from(y),
                (u32::from(x) + step) % pid_modulus,
                "picture ID gap between {a:?} and {b:?}"
            );
        }
        if let (Some(x), Some(y)) = (a.tl0, b.tl0) {
            let step = u8::from(new_frame && b.tid == 0);
            assert_eq!(
                y,
                x.wrapping_add(step),
                "TL0PICIDX gap between {a:?} and {b:?}"
            );
        }
    }
    assert!(sent.last().is_none_or(|s| s.marker));
}

/// Frames (by index) that made it out.
fn frames_sent(sent: &[Sent]) -> Vec<usize> {
    let mut frames: Vec<usize> = sent.iter().map(|s| s.frame).collect();
    frames.dedup();
    frames
}

#[test]
fn vp8_temporal_layers_down_and_back_up() {
    // Picture IDs near the 15-bit wrap, TL0PICIDX near the 8-bit one, sequence numbers near
    // the 16-bit one.
    let mut src = Vp8Source::new(1, 32_760, true, 254, 65_530);
    let mut track = Track {
        current: Some(1),
        ..Track::default()
    };
    let mut sent = Vec::new();
    let mut current = Vec::new();
    for i in 0..40 {
        match i {
            10 => track.filter.set_target(0, u8::MAX),
            17 => track.filter.set_target(1, u8::MAX),
            27 => track.filter.set_target(2, u8::MAX),
            _ => {}
        }
        for p in src.frame(i == 0) {
            sent.extend(track.on_packet(&p));
        }
        current.push(track.filter.current_tid());
    }
    // Down at once (frame 10); TL1 back at its sync frame 18, TL2 at its sync frame 33 (the
    // TL2 sync frame 25 came while the target was 1, and TL2 frames 27, 29, 31 were not sync).
    let mut expected: Vec<usize> = (0..10).collect();
    expected.extend([12, 16, 18, 20, 22, 24, 26, 28, 30, 32]);
    expected.extend(33..40);
    assert_eq!(frames_sent(&sent), expected);
    assert_eq!(current[9], 2);
    assert_eq!(current[10], 0);
    assert_eq!(current[17], 0);
    assert_eq!(current[18], 1);
    assert_eq!(current[32], 1);
    assert_eq!(current[33], 2);
    assert_eq!(track.filter.max_tid(), 2);
    assert_continuous(&sent, 1 << 15);
    // Where the numbers started and that they wrapped.
    assert_eq!(sent[0].seq, 65_530);
    assert_eq!((sent[0].pid, sent[0].tl0), (Some(32_760), Some(254)));
    assert!(sent.iter().any(|s| s.seq > 0xffff));
    assert!(sent.iter().any(|s| s.pid == Some(0)));
    assert!(sent.iter().any(|s| s.tl0 == Some(0)));
    assert_eq!(sent.last().unwrap().pid, Some((32_760 + 26) % 32_768));
}

#[test]
fn vp8_reordered_and_retransmitted_packets_get_the_same_numbers() {
    let run = |shake: bool| {
        let mut rng = Rng::new(11);
        let mut src = Vp8Source::new(1, 100, true, 7, 1_000);
        let mut track = Track {
            current: Some(1),
            ..Track::default()
        };
        let mut history: Vec<Pkt> = Vec::new();
        let mut sent = Vec::new();
        for i in 0..120 {
            match i % 30 {
                5 => track.filter.set_target(0, u8::MAX),
                15 => track.filter.set_target(1, u8::MAX),
                25 => track.filter.set_target(2, u8::MAX),
                _ => {}
            }
            let mut frame = src.frame(i == 0);
            if shake && i > 0 {
                // Packets of a frame in any order; retransmissions of recent packets.
                for k in (1..frame.len()).rev() {
                    frame.swap(k, rng.below(k as u64 + 1) as usize);
                }
                if rng.one_in(2) && !history.is_empty() {
                    let back = history.len() - 1 - rng.below(history.len().min(30) as u64) as usize;
                    frame.insert(
                        rng.below(frame.len() as u64) as usize,
                        history[back].clone(),
                    );
                }
            }
            for p in &frame {
                sent.extend(track.on_packet(p));
            }
            history.extend(frame);
        }
        sent
    };
    let straight = run(false);
    let shaken = run(true);
    assert_continuous(&straight, 1 << 15);
    // Same packets out with the same numbers; duplicates repeat them exactly.
    let mut unique = shaken.clone();
    unique.sort_by_key(|s| s.in_seq);
    unique.dedup();
    assert_eq!(unique, straight);
    assert!(shaken.len() > straight.len(), "no retransmission forwarded");
}

#[test]
fn vp8_simulcast_switch_and_replace_continue_the_numbering() {
    // Source 1 (15-bit IDs), then source 2 (its own numbers), then source 3 with 7-bit IDs.
    let mut a = Vp8Source::new(1, 5_000, true, 100, 40_000);
    let mut b = Vp8Source::new(2, 20_000, true, 3, 7);
    let mut c = Vp8Source::new(3, 120, false, 250, 65_000);
    let mut track = Track {
        current: Some(1),
        ..Track::default()
    };
    track.filter.set_target(1, u8::MAX);
    let mut sent = Vec::new();
    for i in 0..12 {
        for p in a.frame(i == 0) {
            sent.extend(track.on_packet(&p));
        }
    }
    // Switch to b: a keeps flowing until b's keyframe (b's 4th frame).
    track.pending = Some(2);
    for i in 0..20 {
        for p in a.frame(false) {
            sent.extend(track.on_packet(&p));
        }
        for p in b.frame(i == 3) {
            sent.extend(track.on_packet(&p));
        }
    }
    // Then a replaced stream whose first packets are not a keyframe.
    track.pending = Some(3);
    for i in 0..20 {
        for p in c.frame(i == 2) {
            sent.extend(track.on_packet(&p));
        }
    }
    // Late packets of the old sources are not forwarded.
    for p in a.frame(false).into_iter().chain(b.frame(false)) {
        assert!(track.on_packet(&p).is_none());
    }
    let sources: Vec<u32> = {
        let mut s: Vec<u32> = sent.iter().map(|s| s.source).collect();
        s.dedup();
        s
    };
    assert_eq!(sources, [1, 2, 3]);
    // Each switch starts at the new source's keyframe; TL2 frames never go out.
    let first_b = sent.iter().find(|s| s.source == 2).unwrap();
    assert_eq!(first_b.frame, 3);
    let first_c = sent.iter().find(|s| s.source == 3).unwrap();
    assert_eq!(first_c.frame, 2);
    assert!(sent.iter().all(|s| s.tid <= 1));
    assert_eq!(track.filter.current_tid(), 1);
    // 7-bit descriptors after the switch: compare the low 7 bits throughout.
    let low7: Vec<Sent> = sent
        .iter()
        .cloned()
        .map(|mut s| {
            s.pid = s.pid.map(|p| p % 128);
            s
        })
        .collect();
    assert_continuous(&low7, 128);
    let (x, y) = (sent.iter().rev().find(|s| s.source == 2).unwrap(), first_c);
    assert_eq!(y.seq, x.seq + 1);
    assert_eq!(y.tl0, Some(x.tl0.unwrap().wrapping_add(1)));
}

/// A VP9 L3T3-like stream: three spatial layers per picture, TIDs 0,2,1,2 with U set on the
/// first TL2 and TL1 pictures of each cycle (they reference only TL0), two packets per layer
/// frame, the marker on the last packet of the top layer.
fn vp9_picture(
    pid: u16,
    tl0: u8,
    i: usize,
    flexible: bool,
    seq: &mut u64,
    frame: usize,
) -> Vec<Pkt> {
    let key = i == 0;
    let tid = [0u8, 2, 1, 2][i % 4];
    let up = matches!(i % 4, 1 | 2);
    let mut out = Vec::new();
    for sid in 0..3u8 {
        for k in 0..2 {
            let mut b0 = 0xa0; // I L
            if !key {
                b0 |= 0x40; // P
            }
            if flexible {
                b0 |= 0x10;
            }
            if k == 0 {
                b0 |= 0x08; // B
            }
            if k == 1 {
                b0 |= 0x04; // E
            }
            let mut payload = vec![b0];
            payload.extend((0x8000 | pid).to_be_bytes());
            payload.push((tid << 5) | (u8::from(up) << 4) | (sid << 1) | u8::from(sid > 0));
            if flexible {
                if !key {
                    payload.push(if tid == 0 { 4 << 1 } else { 1 << 1 });
                }
            } else {
                payload.push(tl0);
            }
            payload.extend([0xcd; 3]);
            out.push(Pkt {
                source: 1,
                seq: *seq,
                ts: 3000 * i as u32,
                marker: sid == 2 && k == 1,
                payload,
                vp9: true,
                frame,
            });
            *seq += 1;
        }
    }
    out
}

fn vp9_run(flexible: bool) -> (Vec<Sent>, Track) {
    let mut track = Track {
        current: Some(1),
        ..Track::default()
    };
    track.filter.set_target(1, 1);
    let mut seq = 65_500;
    let mut tl0 = 200u8;
    let mut sent = Vec::new();
    for i in 0..24 {
        if i == 12 {
            track.filter.set_target(0, 0);
        }
        let tid = [0u8, 2, 1, 2][i % 4];
        if tid == 0 && i > 0 {
            tl0 = tl0.wrapping_add(1);
        }
        let pid = (32_700 + i as u16) % 32_768;
        for p in vp9_picture(pid, tl0, i, flexible, &mut seq, i) {
            sent.extend(track.on_packet(&p));
        }
    }
    (sent, track)
}

#[test]
fn vp9_non_flexible_drops_layers_with_gap_free_numbers() {
    let (sent, track) = vp9_run(false);
    // Pictures: TL0 and TL1 until 12, then TL0 only; spatial layers 0 and 1, then 0.
    let mut expected: Vec<usize> = (0..12).filter(|i| i % 4 != 1 && i % 4 != 3).collect();
    expected.extend((12..24).filter(|i| i % 4 == 0));
    assert_eq!(frames_sent(&sent), expected);
    assert!(
        sent.iter()
            .all(|s| s.sid <= if s.frame < 12 { 1 } else { 0 })
    );
    // The marker moved to the end of the top forwarded layer: one per picture.
    assert_continuous(&sent, 1 << 15);
    assert!(
        sent.iter()
            .filter(|s| s.marker)
            .all(|s| s.sid == if s.frame < 12 { 1 } else { 0 })
    );
    assert_eq!((track.filter.max_sid(), track.filter.max_tid()), (2, 2));
    assert_eq!(
        (track.filter.current_sid(), track.filter.current_tid()),
        (0, 0)
    );
}

#[test]
fn vp9_flexible_mode_keeps_picture_id_gaps_but_not_sequence_gaps() {
    let (sent, _) = vp9_run(true);
    // Picture IDs keep their distance (P_DIFFs stay valid); continuity is only in sequence
    // numbers and markers.
    for w in sent.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        let gap = (w[1].frame - w[0].frame) as u16;
        assert_eq!(w[1].pid.unwrap(), (w[0].pid.unwrap() + gap) % 32_768);
    }
    assert_eq!(sent[0].pid, Some(32_700));
    assert!(sent.iter().all(|s| s.tl0.is_none()));
}

/// Random bytes with random headers through the whole track never panic.
#[test]
fn random_packets_through_a_track_never_panic() {
    let mut rng = Rng::new(42);
    let mut track = Track {
        current: Some(0),
        ..Track::default()
    };
    let mut seq = 60_000u64;
    let mut buf = [0u8; 16];
    for i in 0..200_000u32 {
        if rng.one_in(100) {
            track
                .filter
                .set_target(rng.below(4) as u8, rng.below(3) as u8);
        }
        if rng.one_in(1000) {
            track.pending = Some(rng.below(2) as u32);
        }
        seq = seq.wrapping_add(rng.below(3)).saturating_sub(rng.below(2));
        let len = rng.below(17) as usize;
        rng.fill(&mut buf[..len]);
        let p = Pkt {
            source: rng.below(2) as u32,
            seq,
            ts: i / 3 * 3000,
            marker: rng.one_in(3),
            payload: buf[..len].to_vec(),
            vp9: rng.one_in(2),
            frame: 0,
        };
        let _ = track.on_packet(&p);
    }
}
