//! Whole-engine tests: real str0m peers around a [`Sfu`], in memory, on a fake clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};

use super::sim::{LAYER_TAG_OFFSET, LinkConfig, SeenRtp, Sim, TEMPORAL_TAG_OFFSET};
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

#[test]
fn a_local_sink_gets_every_packet_of_its_layers_until_it_is_closed() {
    const SINK: StreamKey = StreamKey(900);
    let mut s = with_simulcast_publisher(23);
    s.run_for(Duration::from_secs(1));
    let tracks = s
        .engine(|sfu, now| sfu.attach_sink(now, SINK, PUB, Selection::ALL))
        .expect("attach");
    // Audio first, then the high simulcast layer, with the negotiated codecs.
    assert_eq!(tracks.len(), 2);
    assert_eq!(
        (tracks[0].kind, tracks[0].codec),
        (TrackKind::Audio, Some(MediaCodec::Opus))
    );
    assert_eq!(
        (tracks[1].kind, tracks[1].rid.as_deref(), tracks[1].codec),
        (TrackKind::Video, Some("h"), Some(MediaCodec::Vp8))
    );
    assert_eq!(s.sfu.counts().sinks, 1);
    // A key already in use is refused.
    let again = s.engine(|sfu, now| sfu.attach_sink(now, SINK, PUB, Selection::ALL));
    assert_eq!(again, Err(MediaError::StreamExists(SINK)));

    let before = s.clients[0].keyframe_requests;
    s.engine(|sfu, now| sfu.request_sink_keyframe(now, SINK));
    s.run_for(Duration::from_secs(5));
    assert!(
        s.clients[0].keyframe_requests > before,
        "the publisher was asked"
    );
    let got = std::mem::take(&mut s.sink_packets);
    assert!(got.iter().all(|p| p.sink == SINK));
    let of = |track: u8| got.iter().filter(move |p| p.track == track);
    // Every packet of the two layers, in order, none lost on a clean link.
    for track in [0u8, 1] {
        let seqs: Vec<u64> = of(track).map(|p| p.seq).collect();
        assert!(seqs.len() > 200, "track {track}: {} packets", seqs.len());
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "track {track}");
    }
    assert!(of(0).all(|p| p.codec == Some(MediaCodec::Opus) && p.clock_rate == 48_000));
    assert!(of(1).all(|p| p.codec == Some(MediaCodec::Vp8) && p.clock_rate == 90_000));
    // Only the high layer's packets (tag 1) reach the video track.
    assert!(of(1).all(|p| p.payload.get(LAYER_TAG_OFFSET) == Some(&1)));
    // The publisher's sender reports come along.
    assert!(of(1).any(|p| p.sender_clock.is_some()));
    // The recorder keeps the high layer wanted: no rate limit cuts it.
    assert!(s.clients[0].remb.is_none_or(|limit| limit >= 10_000_000));

    s.engine(|sfu, now| sfu.close_stream(now, SINK))
        .expect("close");
    s.run_for(Duration::from_secs(1));
    assert!(s.sink_packets.is_empty());
    assert_eq!(s.sfu.counts().sinks, 0);
    let missing = s.engine(|sfu, now| sfu.update_sink(now, SINK, Selection::ALL));
    assert_eq!(missing, Err(MediaError::UnknownStream(SINK)));
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

/// A publisher like Chromium's fake camera in the network test: simulcast `h` (tag 1, about
/// 520 kb/s) and `l` (tag 2, about 150 kb/s) at 20 frames/s in three temporal layers, and Opus.
fn with_chromium_like_publisher(seed: u64) -> Sim {
    let mut s = with_publisher(seed, &["h", "l"]);
    for source in &mut s.sources {
        if source.kind == MediaKind::Video {
            source.temporal_layers = true;
            source.frame_interval = Duration::from_millis(50);
            if source.rid.as_deref() == Some("l") {
                source.packets_per_frame = 1;
                source.payload_len = 900;
            } else {
                source.packets_per_frame = 3;
                source.payload_len = 1060;
            }
        }
    }
    s
}

/// `client`'s video from `since` on, in bins of `bin`: per bin the layer tags, the temporal
/// layers and the number of frames (packets with the marker bit) received.
fn video_bins(
    s: &Sim,
    client: usize,
    since: Instant,
    bin: Duration,
) -> Vec<(BTreeSet<u8>, BTreeSet<u8>, usize)> {
    let mut bins = Vec::new();
    let mut start = since;
    while start + bin <= s.now {
        let end = start + bin;
        let video = s.clients[client]
            .received
            .iter()
            .filter(|p| p.kind == MediaKind::Video && p.at >= start && p.at < end);
        let mut tags = BTreeSet::new();
        let mut tids = BTreeSet::new();
        let mut frames = 0;
        for p in video {
            tags.insert(p.head[TEMPORAL_TAG_OFFSET]);
            tids.insert(vp8_ids(p).0);
            frames += usize::from(p.marker);
        }
        bins.push((tags, tids, frames));
        start = end;
    }
    bins
}

/// The network test's `cap300` on the fake clock: a subscriber of the high layer whose downlink
/// becomes `tbf rate 300kbit burst 16kb latency 300ms`. The low layer whole (150 kb/s, plus
/// audio) fits; the queue the high layer built drains slowly after the step down, and the
/// estimator's probes through the token bucket make its estimate swing. Neither may cost the
/// subscriber its frame rate: it settles on the low layer with every temporal layer and stays
/// there.
/// A Chromium-like publisher, one subscriber of `key` on the high layer whose downlink is
/// then capped like the network test's (`tbf rate 300kbit burst 16kb latency 300ms`), and one
/// clean subscriber. Returns the sim, the two clients and when the cap began.
fn capped_to_300k(seed: u64, key: StreamKey) -> (Sim, usize, usize, Instant) {
    let mut s = with_chromium_like_publisher(seed);
    let capped = s.add_client(addr(40, 6000), LinkConfig::CLEAN);
    let clean = s.add_client(addr(41, 6000), LinkConfig::CLEAN);
    s.subscribe(capped, key, PUB, Selection::ALL)
        .expect("subscribe");
    s.subscribe(clean, StreamKey(key.0 + 1), PUB, Selection::ALL)
        .expect("subscribe");
    // Past the estimate's start-up grace: both on the high layer.
    s.run_for(Duration::from_secs(15));
    let before = video_bins(
        &s,
        capped,
        s.now - Duration::from_secs(2),
        Duration::from_secs(2),
    );
    assert!(
        before[0].0 == BTreeSet::from([1]),
        "on h before the cap: {before:?}"
    );
    let capped_at = s.now;
    s.clients[capped].link =
        LinkConfig::token_bucket(300_000, 16 * 1024, Duration::from_millis(300));
    (s, capped, clean, capped_at)
}

/// The video layer choice of down stream `key`.
fn video_layer(s: &Sim, key: StreamKey) -> LayerStats {
    s.sfu
        .stream_stats(key)
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .and_then(|t| t.layer)
        .expect("layer stats")
}

/// Whether a bin of [`video_bins`] is the low layer (tag 2) whole: every temporal layer and
/// most of its 20 frames/s (a frame the shaper holds back may land in the next bin).
fn low_layer_whole(bin: &(BTreeSet<u8>, BTreeSet<u8>, usize), length: Duration) -> bool {
    let (tags, tids, frames) = bin;
    let expected = 20.0 * length.as_secs_f64();
    *tags == BTreeSet::from([2]) && tids.contains(&2) && *frames as f64 >= 0.75 * expected
}

/// The network test's `cap300` on the fake clock: a subscriber of the high layer whose downlink
/// becomes `tbf rate 300kbit burst 16kb latency 300ms`. The low layer whole (150 kb/s, plus
/// audio) fits; the queue the high layer built drains slowly after the step down, and the
/// estimator's probes through the token bucket make its estimate swing. Neither may cost the
/// subscriber its frame rate: it settles on the low layer with every temporal layer and stays
/// there.
#[test]
fn a_subscriber_capped_by_a_token_bucket_settles_on_the_whole_low_layer() {
    let (mut s, capped, clean, capped_at) = capped_to_300k(41, StreamKey(400));
    // Settled within 10 s: the low layer, every temporal layer.
    s.run_for(Duration::from_secs(10));
    let layer = video_layer(&s, StreamKey(400));
    assert_eq!(
        (layer.sid, layer.tid, layer.max_tid),
        (0, 2, 2),
        "10 s after the cap: {layer:?}, {:?}",
        video_bins(&s, capped, capped_at, Duration::from_secs(1))
    );
    // And stays there: every 2 s of the next 30, the low layer at its full frame rate.
    let settled = s.now;
    s.run_for(Duration::from_secs(30));
    let bin = Duration::from_secs(2);
    let bins = video_bins(&s, capped, settled, bin);
    assert!(
        bins.len() == 15 && bins.iter().all(|b| low_layer_whole(b, bin)),
        "the low layer whole all along: {bins:?} ({} datagrams dropped by the shaper)",
        s.clients[capped].shaper_drops
    );
    let audio = audio_ratio_since(&s, capped, settled);
    assert!(audio >= 0.99, "audio delivery on the capped link: {audio}");
    let clean_bins = video_bins(&s, clean, settled, Duration::from_secs(2));
    assert!(
        clean_bins
            .iter()
            .all(|(tags, _, frames)| *tags == BTreeSet::from([1]) && *frames >= 30),
        "the clean subscriber keeps the high layer: {clean_bins:?}"
    );
}

/// An over-cut (receiver reports of heavy loss while the subscriber has room for the low layer
/// whole: here injected) takes temporal layers away; once the reports are clean again, the
/// subscriber gets them back after the hold and one trial, not only when the estimator, which
/// reads little more than what is sent, happens to report room.
#[test]
fn an_over_cut_on_a_capped_link_recovers_once_the_reports_are_clean() {
    let key = StreamKey(410);
    let (mut s, capped, _, _) = capped_to_300k(42, key);
    s.run_for(Duration::from_secs(12));
    assert_eq!(
        video_layer(&s, key).tid,
        2,
        "settled on the low layer whole"
    );
    let id = s.sfu.key_id(key).expect("the down stream");
    let down = s.sfu.peer(id).and_then(|p| p.down()).expect("down state");
    let mid = down
        .tracks
        .iter()
        .find(|t| t.track.kind == MediaKind::Video)
        .expect("video")
        .mid;
    // Two reports of 30 % loss in a row: congestion, capped at 85 % of what was carried.
    for acked in [u64::MAX - 1, u64::MAX] {
        s.engine(|sfu, now| sfu.on_receiver_report(now, id, (mid, acked), Some(0.3), None));
    }
    let cut_at = s.now;
    s.run_for(Duration::from_millis(500));
    let layer = video_layer(&s, key);
    assert!(
        layer.tid < 2,
        "the over-cut took temporal layers away: {layer:?}"
    );
    // Back to the low layer whole within 10 s (2 s until the congestion lapses, a 4 s hold,
    // a 2.5 s trial), and it stays.
    s.run_for(Duration::from_secs(10));
    let layer = video_layer(&s, key);
    assert_eq!(
        (layer.sid, layer.tid),
        (0, 2),
        "10 s after the over-cut: {layer:?}, {:?}",
        video_bins(&s, capped, cut_at, Duration::from_secs(1))
    );
    let recovered = s.now;
    s.run_for(Duration::from_secs(10));
    let bin = Duration::from_secs(2);
    let bins = video_bins(&s, capped, recovered, bin);
    assert!(
        bins.iter().all(|b| low_layer_whole(b, bin)),
        "stays on the low layer whole: {bins:?}"
    );
}

#[test]
fn a_long_round_trip_is_congestion_only_when_it_lasts_and_grows() {
    let mut s = with_simulcast_publisher(25);
    let receiver = s.add_client(addr(36, 6000), LinkConfig::CLEAN);
    s.subscribe(receiver, StreamKey(340), PUB, Selection::ALL)
        .expect("subscribe");
    s.run_for(Duration::from_secs(3));
    let id = s.sfu.key_id(StreamKey(340)).expect("the down stream");
    let cap = |s: &Sim| {
        let down = s.sfu.peer(id).and_then(|p| p.down());
        down.expect("down state").congestion_cap
    };
    let down = s.sfu.peer(id).and_then(|p| p.down()).expect("down state");
    let mid = down.tracks.first().expect("a track").mid;
    assert!(down.min_rtt.is_some_and(|m| m < Duration::from_millis(50)));
    let now = s.now;
    let report = |s: &mut Sim, acked: u64, rtt_ms: u64| {
        let rtt = Some(Duration::from_millis(rtt_ms));
        s.sfu
            .on_receiver_report(now, id, (mid, acked), Some(0.0), rtt);
    };
    // A probe's padding fills the queue for a moment: one long round trip.
    report(&mut s, 1, 400);
    // The queue drains (after a step down): still long, but shorter.
    report(&mut s, 2, 300);
    report(&mut s, 3, 250);
    assert_eq!(cap(&s), None);
    // A queue building up: long and growing, two reports in a row.
    report(&mut s, 4, 300);
    assert!(cap(&s).is_some());
}

/// A clean subscriber of the high layer, 15 s in (past the start-up grace): the down stream,
/// its link, its first m-line, the lowest round trip its reports gave, and what it carries.
fn carrying_the_high_layer(
    seed: u64,
    key: StreamKey,
) -> (Sim, PeerId, LinkKey, Mid, Duration, u64) {
    let mut s = with_simulcast_publisher(seed);
    let c = s.add_client(addr(seed as u8, 6000), LinkConfig::CLEAN);
    s.subscribe(c, key, PUB, Selection::ALL).expect("subscribe");
    s.run_for(Duration::from_secs(15));
    assert_eq!(video_layer(&s, key).sid, 1, "on the high layer");
    let id = s.sfu.key_id(key).expect("the down stream");
    let peer = s.sfu.peer(id).expect("the peer");
    let down = peer.down().expect("down state");
    let mid = down.tracks.first().expect("a track").mid;
    let (link, min_rtt) = (down.link, down.min_rtt.expect("reports came"));
    let carried = peer.carried();
    assert!(carried > 300_000, "carries the high layer: {carried}");
    (s, id, link, mid, min_rtt, carried)
}

/// Gives down stream `id` a fresh receiver report (`acked`, `loss`, `rtt`) and an estimate,
/// revisits its link, and returns the spatial layer its video track gets.
fn layer_after(
    s: &mut Sim,
    (id, link, mid): (PeerId, LinkKey, Mid),
    (acked, loss, rtt): (u64, f32, Duration),
    estimate: u64,
) -> Option<u8> {
    s.engine(|sfu, now| {
        sfu.on_receiver_report(now, id, (mid, acked), Some(loss), Some(rtt));
        sfu.on_estimate(id, estimate, false);
        sfu.adapt_link(now, link);
        let video = sfu.layer_stats(id, 1).or_else(|| sfu.layer_stats(id, 0));
        video.map(|l| l.sid)
    })
}

/// While the estimator is still finding the path after the start-up grace (str0m's ramps up
/// slowly on a busy host), its estimate alone does not take away a layer that fresh, clean
/// receiver reports show the link carrying; once a report shows loss, the same estimate does.
#[test]
fn a_ramping_estimate_alone_keeps_what_clean_reports_show_the_link_carrying() {
    let (mut s, id, link, mid, min_rtt, carried) = carrying_the_high_layer(44, StreamKey(440));
    // As for an estimator that has not reached what the stream carries since the grace.
    if let Some(down) = s.sfu.peer_mut(id).and_then(|p| p.down_mut()) {
        down.estimate_caught_up = false;
    }
    let slow = carried * 7 / 10;
    let clean = (1 << 40, 0.0, min_rtt);
    assert_eq!(
        layer_after(&mut s, (id, link, mid), clean, slow),
        Some(1),
        "kept"
    );
    let lossy = ((1 << 40) + 1, 0.05, min_rtt);
    assert_eq!(
        layer_after(&mut s, (id, link, mid), lossy, slow),
        Some(0),
        "left for the low layer once a report is not clean"
    );
}

/// Once the estimate has caught up with what the stream carries, a fall is believed at once,
/// clean reports or not: str0m's pacer then sends at the lower rate, so the queue builds in
/// the server, where the receiver's reports cannot see it.
#[test]
fn a_fall_of_an_estimate_that_had_caught_up_is_believed_at_once() {
    let (mut s, id, link, mid, min_rtt, carried) = carrying_the_high_layer(45, StreamKey(450));
    let caught_up = |s: &Sim| {
        s.sfu
            .peer(id)
            .and_then(|p| p.down())
            .is_some_and(|d| d.estimate_caught_up)
    };
    assert!(caught_up(&s), "the estimator found the clean link");
    let clean = (1 << 40, 0.0, min_rtt);
    let slow = carried * 7 / 10;
    assert_eq!(layer_after(&mut s, (id, link, mid), clean, slow), Some(0));
}

/// A subscriber held below its best layer keeps asking its estimator for probes (every
/// `RECOVERY_PROBE_INTERVAL`, by lowering the desired rate for a moment: str0m probes when it
/// rises again), so a link that gets its capacity back is found even when the reduced layers
/// leave the estimator nothing to learn from; none while it receives its best layer.
#[test]
fn a_subscriber_held_below_its_best_keeps_probing_for_room() {
    let key = StreamKey(420);
    let (mut s, _, _, _) = capped_to_300k(43, key);
    s.run_for(Duration::from_secs(10));
    assert_eq!(video_layer(&s, key).sid, 0, "on the low layer");
    let id = s.sfu.key_id(key).expect("the down stream");
    let clean = s
        .sfu
        .key_id(StreamKey(key.0 + 1))
        .expect("the clean down stream");
    let desired = |s: &Sim, id| {
        s.sfu
            .peer(id)
            .and_then(|p| p.down())
            .map_or(0, |d| d.desired)
    };
    // Sample the desired rate every 50 ms for 20 s and count the dips.
    let (mut dips, mut clean_dips) = (0, 0);
    let (mut last, mut clean_last) = (desired(&s, id), desired(&s, clean));
    for _ in 0..400 {
        s.run_for(Duration::from_millis(50));
        let (now, clean_now) = (desired(&s, id), desired(&s, clean));
        dips += usize::from(now < last / 3 * 2);
        clean_dips += usize::from(clean_now < clean_last / 3 * 2);
        (last, clean_last) = (now, clean_now);
    }
    let layer = video_layer(&s, key);
    assert!(
        layer.sid == 0 && (2..=5).contains(&dips),
        "held on the low layer, a probe every 5 s at most (trials reset the interval): {dips} dips, {layer:?}"
    );
    assert_eq!(
        clean_dips, 0,
        "the clean subscriber on its best layer never probes"
    );
}
