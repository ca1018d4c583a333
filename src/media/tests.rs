//! Whole-engine tests: real str0m peers around a [`Sfu`], in memory, on a fake clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::MediaKind;

use super::sim::{LinkConfig, SeenRtp, Sim, TEMPORAL_TAG_OFFSET};
use super::*;

const PUB: StreamKey = StreamKey(1);

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

/// The one clock read of the tests: the base of the fake clock.
fn sim(seed: u64) -> Sim {
    Sim::new(Instant::now(), addr(1, 8443), seed).expect("engine starts")
}

/// A VP8+Opus publisher on client 0 with running sources; returns the sim.
fn with_publisher(seed: u64, rids: &[&str]) -> Sim {
    let mut s = sim(seed);
    let p = s.add_client(addr(2, 5000), LinkConfig::CLEAN);
    let mids = s.publish(p, PUB, true, true, rids).expect("publish");
    s.add_source(
        p,
        mids.audio.expect("audio m-line"),
        None,
        MediaKind::Audio,
        0,
    );
    let video = mids.video.expect("video m-line");
    if rids.is_empty() {
        s.add_source(p, video, None, MediaKind::Video, 0);
    } else {
        for (i, rid) in rids.iter().enumerate() {
            s.add_source(p, video, Some(rid), MediaKind::Video, i as u8 + 1);
        }
    }
    s
}

/// Received / expected for one kind: distinct sequence numbers over the span they cover.
fn delivery(seen: &[SeenRtp], kind: MediaKind) -> (usize, u64) {
    let seqs: BTreeSet<u64> = seen
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.seq)
        .collect();
    let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
        return (0, 0);
    };
    (seqs.len(), last - first + 1)
}

fn ratio(seen: &[SeenRtp], kind: MediaKind) -> f64 {
    let (got, expected) = delivery(seen, kind);
    if expected == 0 {
        return 0.0;
    }
    got as f64 / expected as f64
}

#[test]
fn three_subscribers_receive_everything() {
    let mut s = with_publisher(1, &[]);
    let subs: Vec<usize> = (0..3)
        .map(|i| s.add_client(addr(10 + i, 6000), LinkConfig::CLEAN))
        .collect();
    for (i, &c) in subs.iter().enumerate() {
        s.subscribe(c, StreamKey(100 + i as u64), PUB, Selection::ALL)
            .expect("subscribe");
    }
    s.run_for(Duration::from_secs(5));
    assert!(s.events.contains(&MediaEvent::Connected { stream: PUB }));
    for &c in &subs {
        let seen = &s.clients[c].received;
        let (video, _) = delivery(seen, MediaKind::Video);
        let (audio, _) = delivery(seen, MediaKind::Audio);
        assert!(video > 300, "client {c}: {video} video packets");
        assert!(audio > 150, "client {c}: {audio} audio packets");
        assert!(ratio(seen, MediaKind::Video) >= 0.99);
        assert!(ratio(seen, MediaKind::Audio) >= 0.99);
        // Galène's fixed payload types towards receivers.
        assert!(seen.iter().all(|p| match p.kind {
            MediaKind::Video => p.pt == 96,
            MediaKind::Audio => p.pt == 111,
        }));
    }
    assert_eq!(s.sfu.counts().subscriptions, 6);
}

#[test]
fn nack_repairs_video_on_a_lossy_link() {
    let mut s = with_publisher(7, &[]);
    let lossy = s.add_client(
        addr(20, 6000),
        LinkConfig {
            latency: Duration::from_millis(20),
            loss: 0.05,
            ..LinkConfig::CLEAN
        },
    );
    s.subscribe(lossy, StreamKey(200), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(12));
    let seen = &s.clients[lossy].received;
    let video = ratio(seen, MediaKind::Video);
    let audio = ratio(seen, MediaKind::Audio);
    println!(
        "5% loss: video {video:.4} received/expected (NACK/RTX), audio {audio:.4} (no repair)"
    );
    assert!(delivery(seen, MediaKind::Video).0 > 500);
    // Audio shows the raw loss; video is repaired by retransmissions from the history.
    assert!(audio < 0.98, "audio {audio}");
    assert!(video >= 0.995, "video {video}");
}

#[test]
fn a_late_subscriber_makes_the_publisher_send_a_keyframe() {
    let mut s = with_publisher(3, &[]);
    let early = s.add_client(addr(30, 6000), LinkConfig::CLEAN);
    s.subscribe(early, StreamKey(300), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(3));
    let before = s.clients[0].keyframe_requests;
    assert!(before >= 1, "the first subscriber asked for a keyframe");
    let late = s.add_client(addr(31, 6000), LinkConfig::CLEAN);
    s.subscribe(late, StreamKey(301), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(2));
    assert!(s.clients[0].keyframe_requests > before);
    let first_video = s.clients[late]
        .received
        .iter()
        .find(|p| p.kind == MediaKind::Video);
    assert!(first_video.is_some(), "the late subscriber gets video");
}

#[test]
fn simulcast_layers_follow_the_selection_and_switch_continuously() {
    let mut s = with_publisher(5, &["h", "l"]);
    let low = s.add_client(addr(40, 6000), LinkConfig::CLEAN);
    let high = s.add_client(addr(41, 6000), LinkConfig::CLEAN);
    let low_sel = Selection {
        audio: true,
        video: VideoChoice::Low,
    };
    s.subscribe(low, StreamKey(400), PUB, low_sel)
        .expect("subscribe low");
    s.subscribe(high, StreamKey(401), PUB, Selection::ALL)
        .expect("subscribe high");
    s.run_for(Duration::from_secs(3));
    let tags = |c: usize, s: &Sim| -> BTreeSet<u8> {
        s.clients[c]
            .received
            .iter()
            .filter(|p| p.kind == MediaKind::Video)
            .map(|p| p.layer_tag)
            .collect()
    };
    assert_eq!(tags(low, &s), BTreeSet::from([2]), "video-low gets rid l");
    assert_eq!(tags(high, &s), BTreeSet::from([1]), "video gets rid h");
    assert!(
        s.events
            .iter()
            .any(|e| matches!(e, MediaEvent::UpTracks { tracks, .. }
            if tracks.iter().filter(|t| t.kind == TrackKind::Video).count() == 2)),
        "both rids announced"
    );

    // video-low -> video: no renegotiation, the switch happens at an h keyframe.
    let offer = s
        .engine(|sfu, now| sfu.set_selection(now, StreamKey(400), Selection::ALL))
        .expect("switch");
    assert_eq!(offer, None);
    s.run_for(Duration::from_secs(2));
    let video: Vec<&SeenRtp> = s.clients[low]
        .received
        .iter()
        .filter(|p| p.kind == MediaKind::Video)
        .collect();
    let last_low = video
        .iter()
        .rposition(|p| p.layer_tag == 2)
        .expect("l seen");
    assert!(video[last_low + 1..].iter().all(|p| p.layer_tag == 1));
    assert!(video.len() > last_low + 30, "h flows after the switch");
    for pair in video.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "continuous sequence numbers");
        assert!(
            pair[1].ts.wrapping_sub(pair[0].ts) < 90_000,
            "timestamps move forward"
        );
    }
    // The old layer no longer feeds the switched track.
    assert_eq!(s.sfu.counts().subscriptions, 4);
}

#[test]
fn replacing_the_source_keeps_the_receiver_continuous() {
    let mut s = with_publisher(9, &[]);
    let second = s.add_client(addr(3, 5000), LinkConfig::CLEAN);
    let mids = s
        .publish(second, StreamKey(2), true, true, &[])
        .expect("publish second");
    s.add_source(
        second,
        mids.audio.expect("audio"),
        None,
        MediaKind::Audio,
        7,
    );
    s.add_source(
        second,
        mids.video.expect("video"),
        None,
        MediaKind::Video,
        7,
    );
    let rx = s.add_client(addr(50, 6000), LinkConfig::CLEAN);
    s.subscribe(rx, StreamKey(500), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(2));
    let offer = s
        .engine(|sfu, now| sfu.replace_source(now, StreamKey(500), StreamKey(2)))
        .expect("replace");
    assert_eq!(offer, None);
    s.run_for(Duration::from_secs(2));
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let seen: Vec<&SeenRtp> = s.clients[rx]
            .received
            .iter()
            .filter(|p| p.kind == kind)
            .collect();
        assert!(
            seen.iter().any(|p| p.layer_tag == 7),
            "{kind:?} from the new source"
        );
        for pair in seen.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "{kind:?} continuous");
        }
    }
}

#[test]
fn closing_streams_leaves_nothing_behind() {
    let mut s = with_publisher(11, &[]);
    let a = s.add_client(addr(60, 6000), LinkConfig::CLEAN);
    let b = s.add_client(addr(61, 6000), LinkConfig::CLEAN);
    s.subscribe(a, StreamKey(600), PUB, Selection::ALL)
        .expect("subscribe");
    s.subscribe(b, StreamKey(601), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(2));
    let counts = s.sfu.counts();
    assert_eq!(counts.streams, 3);
    assert_eq!(counts.ufrags, 3);
    assert_eq!(counts.routes, 3);
    assert_eq!(counts.subscriptions, 4);

    s.engine(|sfu, now| sfu.close_stream(now, StreamKey(600)))
        .expect("close down");
    let counts = s.sfu.counts();
    assert_eq!(
        (counts.streams, counts.subscriptions, counts.routes),
        (2, 2, 2)
    );
    // The publisher goes: its receiver's tracks lose their source, nothing dangles.
    s.engine(|sfu, now| sfu.close_stream(now, PUB))
        .expect("close up");
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.sfu.counts().subscriptions, 0);
    s.engine(|sfu, now| sfu.close_stream(now, StreamKey(601)))
        .expect("close down");
    let counts = s.sfu.counts();
    assert_eq!(
        (
            counts.streams,
            counts.timers,
            counts.routes,
            counts.ufrags,
            counts.subscriptions
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(s.sfu.poll_timeout(), None);
    assert_eq!(
        s.engine(|sfu, now| sfu.close_stream(now, PUB)),
        Err(MediaError::UnknownStream(PUB))
    );
}

#[test]
fn bad_input_is_refused_without_panicking() {
    let mut s = with_publisher(13, &[]);
    let rx = s.add_client(addr(70, 6000), LinkConfig::CLEAN);
    s.subscribe(rx, StreamKey(700), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(1));
    let known = addr(2, 5000);
    let stranger = addr(99, 9999);
    let mut seed = 0x1234_5678_9abc_def1_u64;
    for len in 0..600 {
        let mut junk = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        // Make some of it look like RTP/RTCP, DTLS and STUN to reach deeper parsers.
        if let Some(first) = junk.first_mut() {
            *first = [0x80, 0x16, 0x00, 0x90, *first][len % 5];
        }
        for from in [known, stranger] {
            let now = s.now;
            let dst = s.sfu_addr;
            let _ = s.sfu.handle_receive(now, from, dst, &junk);
        }
    }
    let dst = s.sfu_addr;
    let now = s.now;
    assert_eq!(
        s.sfu
            .handle_receive(now, stranger, dst, &[0x80, 0x60, 0, 1]),
        Err(MediaError::Unroutable)
    );
    // Media still flows after the junk.
    let before = s.clients[rx].received.len();
    s.run_for(Duration::from_secs(1));
    assert!(s.clients[rx].received.len() > before + 50);

    let r = s.engine(|sfu, now| sfu.accept_offer(now, StreamKey(9), "v=0\r\nbroken", &[]));
    assert!(matches!(r, Err(MediaError::BadSdp(_))), "{r:?}");
    let r = s.engine(|sfu, now| sfu.accept_answer(now, StreamKey(700), "nonsense"));
    assert!(matches!(r, Err(MediaError::BadSdp(_))), "{r:?}");
    let r = s.engine(|sfu, now| sfu.add_remote_candidate(now, StreamKey(700), "candidate:x"));
    assert!(matches!(r, Err(MediaError::BadCandidate(_))), "{r:?}");
    let r = s.engine(|sfu, now| {
        sfu.create_down(
            now,
            StreamKey(701),
            StreamKey(700),
            LinkKey(1),
            Selection::ALL,
        )
    });
    assert_eq!(r, Err(MediaError::WrongDirection(StreamKey(700))));
    let r = s.engine(|sfu, now| {
        sfu.create_down(
            now,
            StreamKey(701),
            StreamKey(42),
            LinkKey(1),
            Selection::ALL,
        )
    });
    assert_eq!(r, Err(MediaError::UnknownStream(StreamKey(42))));
    let nothing = Selection {
        audio: false,
        video: VideoChoice::None,
    };
    let r = s.engine(|sfu, now| sfu.create_down(now, StreamKey(701), PUB, LinkKey(1), nothing));
    assert_eq!(r, Err(MediaError::NothingSelected));
    let r = s.engine(|sfu, now| sfu.accept_offer(now, StreamKey(700), "v=0", &[]));
    assert!(r.is_err());
    let r = s.engine(|sfu, now| sfu.restart_ice(now, PUB));
    assert_eq!(r, Err(MediaError::WrongDirection(PUB)));
    // Failed commands left nothing behind.
    assert_eq!(s.sfu.counts().streams, 2);
}

#[test]
fn ice_failure_of_an_up_stream_is_reported() {
    let mut s = with_publisher(17, &[]);
    s.run_for(Duration::from_secs(1));
    assert!(s.events.contains(&MediaEvent::Connected { stream: PUB }));
    s.clients[0].link.loss = 1.0;
    s.run_for(Duration::from_secs(30));
    assert!(s.events.contains(&MediaEvent::UpIceFailed { stream: PUB }));
}

#[test]
fn down_ice_restart_reconnects() {
    let mut s = with_publisher(19, &[]);
    let rx = s.add_client(addr(80, 6000), LinkConfig::CLEAN);
    s.subscribe(rx, StreamKey(800), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(1));
    let ufrags_before = s.sfu.counts().ufrags;
    let offer = s
        .engine(|sfu, now| sfu.restart_ice(now, StreamKey(800)))
        .expect("restart")
        .expect("an offer");
    s.answer_offer(rx, StreamKey(800), offer).expect("answer");
    let before = s.clients[rx].received.len();
    s.run_for(Duration::from_secs(2));
    assert!(s.clients[rx].received.len() > before + 100);
    assert_eq!(s.sfu.counts().ufrags, ufrags_before, "old ufrag replaced");
}

#[test]
fn trickled_candidates_wait_for_the_answer() {
    let mut s = with_publisher(23, &[]);
    let offer = s
        .engine(|sfu, now| sfu.create_down(now, StreamKey(900), PUB, LinkKey(1), Selection::ALL))
        .expect("offer");
    let r = s.engine(|sfu, now| {
        sfu.add_remote_candidate(
            now,
            StreamKey(900),
            "candidate:1 1 udp 2113929471 10.0.0.90 6000 typ host",
        )
    });
    assert_eq!(r, Ok(()));
    let rx = s.add_client(addr(90, 6000), LinkConfig::CLEAN);
    s.answer_offer(rx, StreamKey(900), offer).expect("answer");
    s.run_for(Duration::from_secs(2));
    assert!(s.clients[rx].received.len() > 100);
    // Queued while the offer was pending: a selection change comes back as a new offer later.
    let r = s.engine(|sfu, now| {
        sfu.set_selection(
            now,
            StreamKey(900),
            Selection {
                audio: false,
                video: VideoChoice::High,
            },
        )
    });
    let offer = r.expect("selection").expect("audio m-line goes inactive");
    s.answer_offer(rx, StreamKey(900), offer).expect("answer");
    let audio_before = delivery(&s.clients[rx].received, MediaKind::Audio).0;
    s.run_for(Duration::from_secs(1));
    let audio_after = delivery(&s.clients[rx].received, MediaKind::Audio).0;
    assert!(audio_after <= audio_before + 2, "audio stopped");
}

/// A simulcast publisher whose high layer ("h", tag 1) costs about 840 kb/s and low layer
/// ("l", tag 2) about 100 kb/s.
fn with_simulcast_publisher(seed: u64) -> Sim {
    let mut s = with_publisher(seed, &["h", "l"]);
    for source in &mut s.sources {
        if source.rid.as_deref() == Some("l") {
            source.packets_per_frame = 1;
            source.payload_len = 350;
        }
    }
    s
}

/// The layer tags of the video packets `client` received at or after `since`.
fn tags_since(s: &Sim, client: usize, since: Instant) -> Vec<u8> {
    s.clients[client]
        .received
        .iter()
        .filter(|p| p.kind == MediaKind::Video && p.at >= since)
        .map(|p| p.layer_tag)
        .collect()
}

/// Audio delivery after `since`: distinct sequence numbers over the span they cover.
fn audio_ratio_since(s: &Sim, client: usize, since: Instant) -> f64 {
    let seen: Vec<SeenRtp> = s.clients[client]
        .received
        .iter()
        .filter(|p| p.at >= since)
        .copied()
        .collect();
    ratio(&seen, MediaKind::Audio)
}

#[test]
fn a_capped_subscriber_moves_to_the_low_layer_and_back_while_others_keep_the_high_one() {
    let mut s = with_simulcast_publisher(21);
    let capped_link = LinkConfig {
        down_rate: Some(400_000),
        ..LinkConfig::CLEAN
    };
    let capped = s.add_client(addr(30, 6000), capped_link);
    let clean = s.add_client(addr(31, 6000), LinkConfig::CLEAN);
    s.subscribe(capped, StreamKey(300), PUB, Selection::ALL)
        .expect("subscribe");
    s.subscribe(clean, StreamKey(301), PUB, Selection::ALL)
        .expect("subscribe");
    // New streams ignore their estimate for 10 s (its start-up dip); then the capped one
    // settles on the low layer.
    s.run_for(Duration::from_secs(30));
    let settled = s.now - Duration::from_secs(10);
    let capped_tags = tags_since(&s, capped, settled);
    let clean_tags = tags_since(&s, clean, settled);
    assert!(
        !capped_tags.is_empty() && capped_tags.iter().all(|&t| t == 2),
        "the capped subscriber is on the low layer: {:?}",
        &capped_tags[capped_tags.len().saturating_sub(20)..]
    );
    assert!(clean_tags.len() > 400 && clean_tags.iter().all(|&t| t == 1));
    let audio = audio_ratio_since(&s, capped, settled);
    assert!(audio >= 0.99, "audio delivery on the capped link: {audio}");
    let reduced = MediaEvent::LayerReduced {
        stream: StreamKey(300),
        reduced: true,
    };
    assert!(s.events.contains(&reduced));
    let stats = s.sfu.stream_stats(StreamKey(300));
    let video = stats.iter().find(|t| t.kind == TrackKind::Video);
    let layer = video.and_then(|t| t.layer).expect("layer stats");
    assert_eq!((layer.sid, layer.max_sid), (0, 1));
    assert!(layer.reduced);
    assert!(layer.max_bitrate.is_some_and(|b| b < 400_000), "{layer:?}");

    // The cap is lifted: the probes find room and the high layer comes back.
    s.clients[capped].link = LinkConfig::CLEAN;
    s.run_for(Duration::from_secs(25));
    let recovered = tags_since(&s, capped, s.now - Duration::from_secs(3));
    assert!(
        !recovered.is_empty() && recovered.iter().all(|&t| t == 1),
        "back on the high layer: {:?}",
        &recovered[recovered.len().saturating_sub(20)..]
    );
    assert!(s.events.contains(&MediaEvent::LayerReduced {
        stream: StreamKey(300),
        reduced: false,
    }));
}

#[test]
fn publishers_are_told_not_to_send_a_layer_nobody_can_receive() {
    let mut s = with_simulcast_publisher(22);
    let capped_link = LinkConfig {
        down_rate: Some(400_000),
        ..LinkConfig::CLEAN
    };
    let capped = s.add_client(addr(32, 6000), capped_link);
    s.subscribe(capped, StreamKey(310), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(25));
    let limit = s.clients[0].remb.expect("a REMB reached the publisher");
    assert!(
        (150_000..600_000).contains(&limit),
        "the limit covers the low layer and audio only: {limit}"
    );
    // A second receiver with room for the high layer lifts the limit.
    let clean = s.add_client(addr(33, 6000), LinkConfig::CLEAN);
    s.subscribe(clean, StreamKey(311), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(5));
    let limit = s.clients[0].remb.expect("REMB");
    assert!(limit >= 10_000_000, "limit lifted: {limit}");
}

/// A received VP8 packet's TID, picture ID and TL0PICIDX (full descriptors only).
fn vp8_ids(p: &SeenRtp) -> (u8, u16, u8) {
    let h = p.head;
    (
        h[5] >> 6,
        (u16::from(h[2] & 0x7f) << 8) | u16::from(h[3]),
        h[4],
    )
}

#[test]
fn below_the_lowest_layer_temporal_layers_are_dropped_without_gaps() {
    let mut s = with_publisher(23, &[]);
    for source in &mut s.sources {
        source.temporal_layers = true;
    }
    // The video costs about 840 kb/s: TL0 a quarter of it, TL0+TL1 half.
    let capped_link = LinkConfig {
        down_rate: Some(420_000),
        ..LinkConfig::CLEAN
    };
    let capped = s.add_client(addr(34, 6000), capped_link);
    s.subscribe(capped, StreamKey(320), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(25));
    let since = s.now - Duration::from_secs(8);
    let video: Vec<SeenRtp> = s.clients[capped]
        .received
        .iter()
        .filter(|p| p.kind == MediaKind::Video && p.at >= since)
        .copied()
        .collect();
    assert!(video.len() > 100, "{} video packets", video.len());
    let tids: BTreeSet<u8> = video.iter().map(|p| vp8_ids(p).0).collect();
    assert!(
        !tids.contains(&2),
        "the top temporal layer is dropped: {tids:?}"
    );
    // Sequence numbers have no holes where frames were left out.
    let ratio = ratio(&video, MediaKind::Video);
    assert!(
        ratio >= 0.99,
        "video sequence numbers are gap-free: {ratio}"
    );
    // Picture IDs go up by one per forwarded frame (wrapping at 2^15), TL0PICIDX by one per
    // TL0 frame.
    let mut frames: Vec<(u64, u8, u16, u8)> = video
        .iter()
        .filter(|p| p.head[0] & 0x10 != 0)
        .map(|p| {
            let (tid, pid, tl0) = vp8_ids(p);
            (p.seq, tid, pid, tl0)
        })
        .collect();
    frames.sort();
    frames.dedup();
    for pair in frames.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(b.2, (a.2 + 1) & 0x7fff, "picture IDs continue: {a:?} {b:?}");
        let tl0_step = u8::from(b.1 == 0);
        assert_eq!(b.3, a.3.wrapping_add(tl0_step), "TL0PICIDX: {a:?} {b:?}");
    }
    let audio = audio_ratio_since(&s, capped, since);
    assert!(audio >= 0.99, "audio delivery: {audio}");
    let stats = s.sfu.stream_stats(StreamKey(320));
    let layer = stats
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .and_then(|t| t.layer)
        .expect("layer stats");
    assert_eq!(layer.max_tid, 2);
    assert!(layer.tid < 2 && layer.reduced, "{layer:?}");
}

#[test]
fn a_clean_subscriber_of_simulcast_with_temporal_layers_gets_the_high_layer_whole() {
    let mut s = with_simulcast_publisher(24);
    for source in &mut s.sources {
        source.temporal_layers = true;
    }
    let c = s.add_client(addr(35, 6000), LinkConfig::CLEAN);
    s.subscribe(c, StreamKey(330), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(15));
    let since = s.now - Duration::from_secs(5);
    let video: Vec<SeenRtp> = s.clients[c]
        .received
        .iter()
        .filter(|p| p.kind == MediaKind::Video && p.at >= since)
        .copied()
        .collect();
    assert!(video.len() > 300, "{} video packets", video.len());
    assert!(
        video.iter().all(|p| p.head[TEMPORAL_TAG_OFFSET] == 1),
        "all from h"
    );
    let tids: BTreeSet<u8> = video.iter().map(|p| vp8_ids(p).0).collect();
    assert_eq!(tids, BTreeSet::from([0, 1, 2]), "every temporal layer");
    let layer = s
        .sfu
        .stream_stats(StreamKey(330))
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .and_then(|t| t.layer)
        .expect("layer stats");
    assert_eq!(
        (layer.sid, layer.max_sid, layer.tid, layer.max_tid),
        (1, 1, 2, 2)
    );
    assert!(!layer.reduced);
}

#[test]
fn one_lossy_receiver_report_is_not_congestion_two_in_a_row_are() {
    let mut s = with_simulcast_publisher(24);
    let receiver = s.add_client(addr(35, 6000), LinkConfig::CLEAN);
    s.subscribe(receiver, StreamKey(330), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(3));
    let id = s.sfu.key_id(StreamKey(330)).expect("the down stream");
    let cap = |s: &Sim| {
        let down = s.sfu.peer(id).and_then(|p| p.down());
        down.expect("down state").congestion_cap
    };
    let down = s.sfu.peer(id).and_then(|p| p.down()).expect("down state");
    let mid = down.tracks.first().expect("a track").mid;
    let now = s.now;
    let report = |s: &mut Sim, acked: u64, loss: f32| {
        s.sfu
            .on_receiver_report(now, id, (mid, acked), Some(loss), None);
    };
    // Random loss: one report above the threshold between clean ones.
    report(&mut s, 1, 0.2);
    report(&mut s, 2, 0.03);
    report(&mut s, 3, 0.2);
    assert_eq!(cap(&s), None);
    // Congestion: the reports stay above it.
    report(&mut s, 4, 0.2);
    assert!(cap(&s).is_some());
}

#[test]
fn a_receiver_negotiated_stream_takes_sources_without_offers() {
    let mut s = with_publisher(11, &[]);
    let viewer = s.add_client(addr(40, 6000), LinkConfig::CLEAN);
    let view = StreamKey(400);
    let mids = s.view(viewer, view, MediaCodec::DEFAULT).expect("answered");
    s.run_for(Duration::from_secs(1));
    assert!(s.clients[viewer].peer.connected);
    assert!(s.clients[viewer].received.is_empty(), "no source yet");
    // A source is attached without an offer; media flows on the viewer's own m-lines.
    let offer = s
        .engine(|sfu, now| sfu.replace_source(now, view, PUB))
        .expect("attached");
    assert_eq!(offer, None);
    s.run_for(Duration::from_secs(3));
    let seen = &s.clients[viewer].received;
    assert!(delivery(seen, MediaKind::Video).0 > 150);
    assert!(delivery(seen, MediaKind::Audio).0 > 100);
    assert!(seen.iter().all(|p| match p.kind {
        MediaKind::Video => Some(p.mid) == mids.video,
        MediaKind::Audio => Some(p.mid) == mids.audio,
    }));
    // The server never offers on it.
    let restart = s.engine(|sfu, now| sfu.restart_ice(now, view));
    assert_eq!(restart, Err(MediaError::ReceiverNegotiated(view)));
    let audio_only = Selection {
        audio: true,
        video: VideoChoice::None,
    };
    let changed = s.engine(|sfu, now| sfu.set_selection(now, view, audio_only));
    assert_eq!(changed, Ok(None));
    assert!(
        s.engine(|sfu, now| sfu.create_down(now, view, PUB, LinkKey(9), Selection::ALL))
            .is_err()
    );

    // A viewer whose answer has no VP8 cannot carry this publisher.
    let vp9 = s.add_client(addr(41, 6000), LinkConfig::CLEAN);
    let key = StreamKey(401);
    s.view(vp9, key, &[MediaCodec::Vp9, MediaCodec::Opus])
        .expect("answered");
    let refused = s.engine(|sfu, now| sfu.replace_source(now, key, PUB));
    assert_eq!(refused, Err(MediaError::CodecMismatch));

    // The publisher goes: the viewer stays, idle, until it is given another source.
    s.engine(|sfu, now| sfu.close_stream(now, PUB))
        .expect("closed");
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.engine(|sfu, _| sfu.is_connected(view)), Some(true));
    assert_eq!(s.sfu.counts().subscriptions, 0);
}
