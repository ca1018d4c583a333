//! The recorder in the whole application, on a fake clock: Galène clients, a str0m test peer
//! publishing Opus and VP8, `record`/`unrecord`, and the writer's work run through the real
//! muxer in memory.

use std::time::Duration;

use serde_json::{Value, json};
use str0m::format::Codec;
use str0m::media::Mid;

use super::mkv::{FileOp, Muxer};
use super::{RecordCommand, RecordReport};
use crate::conn::ConnId;
use crate::streams::tests::World;

/// Everyone is an operator of a group that allows recording.
const GROUP: &str = r#"{"allow-recording": true,
    "wildcard-user": {"password": "pw", "permissions": "op"}}"#;

/// A publisher's media: Opus every 20 ms, VP8 at 25 fps (two packets a frame), a keyframe
/// whenever one was asked for.
struct Camera {
    peer: usize,
    audio: Mid,
    video: Mid,
    audio_seq: u64,
    video_seq: u64,
    elapsed_ms: u64,
    keyframes_answered: usize,
    keyframes_sent: usize,
}

const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];

impl Camera {
    fn publish(w: &mut World, conn: ConnId, port: u16, id: &str) -> Camera {
        let peer = w.peer(port);
        let offer = w.peers[peer].publish_offer(true, true, &[]).expect("offer");
        w.send(
            conn,
            json!({"type": "offer", "id": id, "label": "camera", "sdp": offer.sdp}),
        );
        let answer = w.take(conn, "answer").expect("an answer");
        w.peers[peer]
            .accept_answer(answer["sdp"].as_str().expect("sdp"))
            .expect("accepted");
        w.drain_peer(peer);
        Camera {
            peer,
            audio: offer.audio.expect("audio"),
            video: offer.video.expect("video"),
            audio_seq: 0,
            video_seq: 0,
            elapsed_ms: 0,
            keyframes_answered: 0,
            keyframes_sent: 0,
        }
    }

    /// Sends `d` of media, 20 ms at a time.
    fn run(&mut self, w: &mut World, d: Duration) {
        let steps = d.as_millis() / 20;
        for _ in 0..steps {
            let now = w.now;
            let ms = self.elapsed_ms;
            let audio = vec![0xfc, (ms / 20) as u8, 0x11, 0x22];
            let written = w.peers[self.peer].write_rtp(
                Codec::Opus,
                self.audio,
                None,
                self.audio_seq,
                (ms * 48) as u32,
                now,
                false,
                audio,
            );
            self.audio_seq += u64::from(written);
            if ms.is_multiple_of(40) {
                let key = w.keyframe_requests[self.peer] > self.keyframes_answered;
                self.keyframes_answered = w.keyframe_requests[self.peer];
                let mut first = vec![0x10];
                if key {
                    first.extend_from_slice(&VP8_KEY);
                    self.keyframes_sent += 1;
                } else {
                    first.extend_from_slice(&[0x11, 0x02, 0x00, 0x33]);
                }
                first.resize(600, 0x44);
                let second = vec![0x00; 400];
                for (payload, marker) in [(first, false), (second, true)] {
                    let written = w.peers[self.peer].write_rtp(
                        Codec::Vp8,
                        self.video,
                        None,
                        self.video_seq,
                        (ms * 90) as u32,
                        now,
                        marker,
                        payload,
                    );
                    self.video_seq += u64::from(written);
                }
            }
            w.drain_peer(self.peer);
            w.run(Duration::from_millis(20));
            self.elapsed_ms += 20;
        }
    }
}

fn user_messages(w: &mut World, conn: ConnId) -> Vec<Value> {
    let mut found = Vec::new();
    while let Some(m) = w.take(conn, "usermessage") {
        found.push(m);
    }
    found
}

/// The next `user` message about the recorder that `conn` got.
fn recorder_user(w: &mut World, conn: ConnId) -> Option<Value> {
    let i = w
        .received
        .iter()
        .position(|(c, v)| *c == conn && v["type"] == "user" && v["username"] == "RECORDING")?;
    Some(w.received.remove(i).1)
}

fn commands(w: &mut World) -> Vec<RecordCommand> {
    std::iter::from_fn(|| w.app.poll_record_command()).collect()
}

/// Runs one recording's commands through the muxer: the file's bytes.
fn mux(commands: &[RecordCommand]) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut current: Option<(Muxer, Vec<FileOp>)> = None;
    let finish = |current: &mut Option<(Muxer, Vec<FileOp>)>, files: &mut Vec<Vec<u8>>| {
        if let Some((mut muxer, mut ops)) = current.take() {
            muxer.finish(&mut ops);
            let mut file = Vec::new();
            for op in ops {
                match op {
                    FileOp::Append(bytes) => file.extend_from_slice(&bytes),
                    FileOp::Patch { at, bytes } => {
                        let at = at as usize;
                        file[at..at + bytes.len()].copy_from_slice(&bytes);
                    }
                }
            }
            files.push(file);
        }
    };
    for command in commands {
        match command {
            RecordCommand::Open { header, .. } => {
                finish(&mut current, &mut files);
                current = Some(Muxer::new(header));
            }
            RecordCommand::Frame { frame, .. } => {
                if let Some((muxer, ops)) = current.as_mut() {
                    muxer.push(frame.clone(), ops);
                }
            }
            RecordCommand::Close { .. } => finish(&mut current, &mut files),
        }
    }
    files
}

#[test]
fn an_operator_records_a_stream_from_its_first_keyframe_to_unrecord() {
    let mut w = World::with_group(GROUP);
    let boss = w.client("boss");
    let alice = w.client("alice");
    let mut camera = Camera::publish(&mut w, alice, 1, "cam");
    camera.run(&mut w, Duration::from_secs(2));
    assert_eq!(camera.keyframes_sent, 0, "nobody asked for a keyframe yet");
    w.received.clear();

    w.send(boss, json!({"type": "groupaction", "kind": "record"}));
    // Everyone sees the recorder join.
    for conn in [boss, alice] {
        let user = recorder_user(&mut w, conn).expect("user add");
        assert_eq!(user["kind"], "add");
        assert_eq!(user["username"], "RECORDING");
        assert_eq!(user["permissions"], json!(["system"]));
        assert_eq!(user["id"].as_str().map(str::len), Some(32));
    }
    // A second record is refused.
    w.send(boss, json!({"type": "groupaction", "kind": "record"}));
    let refused = user_messages(&mut w, boss);
    assert_eq!(refused[0]["value"], "already recording");

    camera.run(&mut w, Duration::from_secs(5));
    assert!(
        camera.keyframes_sent >= 1,
        "the recorder asked for a keyframe"
    );
    w.send(boss, json!({"type": "groupaction", "kind": "unrecord"}));
    let gone = recorder_user(&mut w, alice).expect("user delete");
    assert_eq!(
        (gone["kind"].as_str(), gone["username"].as_str()),
        (Some("delete"), Some("RECORDING"))
    );

    let commands = commands(&mut w);
    let RecordCommand::Open {
        group,
        stem,
        header,
        ..
    } = &commands[0]
    else {
        panic!("{:?}", commands.first());
    };
    assert_eq!(group, "g");
    assert!(stem.ends_with("-alice"), "{stem}");
    assert!(header.webm);
    assert_eq!(header.tracks.len(), 2);
    assert_eq!(header.tracks[0].codec_id, "A_OPUS");
    assert_eq!(
        (header.tracks[1].codec_id, header.tracks[1].pixels),
        ("V_VP8", (640, 360))
    );
    assert!(matches!(commands.last(), Some(RecordCommand::Close { .. })));
    let frames: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            RecordCommand::Frame { frame, .. } => Some(frame),
            _ => None,
        })
        .collect();
    // The file starts at a video keyframe; audio starts with it (within a frame or two).
    assert_eq!(
        (frames[0].track, frames[0].ms, frames[0].keyframe),
        (2, 0, true)
    );
    let first_audio = frames.iter().find(|f| f.track == 1).expect("audio");
    assert!(
        first_audio.ms <= 40,
        "audio starts at {} ms",
        first_audio.ms
    );
    let video: Vec<u64> = frames
        .iter()
        .filter(|f| f.track == 2)
        .map(|f| f.ms)
        .collect();
    let audio: Vec<u64> = frames
        .iter()
        .filter(|f| f.track == 1)
        .map(|f| f.ms)
        .collect();
    // Close to 5 s of each, in 40 ms and 20 ms steps, without holes.
    assert!(video.windows(2).all(|p| p[1] - p[0] == 40), "{video:?}");
    assert!(audio.windows(2).all(|p| p[1] - p[0] == 20));
    let span = *video.last().unwrap_or(&0);
    assert!((4_000..5_000).contains(&span), "video spans {span} ms");
    // Audio and video of the same instant land at the same time in the file.
    let last_audio = *audio.last().unwrap_or(&0);
    assert!(last_audio.abs_diff(span) <= 60, "{last_audio} vs {span}");
    let files = mux(&commands);
    assert_eq!(files.len(), 1);
    assert!(files[0].len() > 100_000);
}

#[test]
fn recorders_are_not_chat_partners_nor_real_users_and_leave_when_kicked() {
    let mut w = World::with_group(GROUP);
    let boss = w.client("boss");
    w.send(boss, json!({"type": "groupaction", "kind": "record"}));
    let recorder = recorder_user(&mut w, boss).expect("the recorder joined");
    let id = recorder["id"].as_str().expect("id").to_owned();
    w.send(
        boss,
        json!({"type": "chat", "dest": id, "value": "hello", "kind": ""}),
    );
    w.send(
        boss,
        json!({"type": "useraction", "kind": "present", "dest": id}),
    );
    let errors: Vec<Value> = user_messages(&mut w, boss)
        .into_iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(
        errors,
        [
            json!("this user doesn't chat"),
            json!("this is not a real user")
        ]
    );
    // Kicking the recorder stops recording, as unrecord does.
    w.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": id}),
    );
    let gone = recorder_user(&mut w, boss).expect("user delete");
    assert_eq!(gone["kind"], "delete");
    assert_eq!(w.app.recorders().recorders_of("g"), []);
    // Recording again is possible.
    w.send(boss, json!({"type": "groupaction", "kind": "record"}));
    assert!(recorder_user(&mut w, boss).is_some());
    assert!(user_messages(&mut w, boss).is_empty());
}

#[test]
fn a_write_failure_stops_that_recording_and_warns_the_operators_only() {
    let mut w = World::with_group(
        r#"{"allow-recording": true,
            "users": {"boss": {"password": "pw", "permissions": "op"}},
            "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let boss = w.client("boss");
    let alice = w.client("alice");
    let mut camera = Camera::publish(&mut w, alice, 1, "cam");
    camera.run(&mut w, Duration::from_secs(1));
    w.send(boss, json!({"type": "groupaction", "kind": "record"}));
    // Only operators may record.
    w.send(alice, json!({"type": "groupaction", "kind": "record"}));
    assert_eq!(user_messages(&mut w, alice)[0]["value"], "not authorised");
    camera.run(&mut w, Duration::from_secs(2));
    let before = commands(&mut w);
    let recording = before[0].recording();
    assert_eq!(w.app.recorders().recording_count(), 1);
    w.received.clear();

    let now = w.now;
    w.app.handle_record_report(
        now,
        RecordReport::Failed {
            recording,
            error: "No space left on device (os error 28)".into(),
        },
    );
    w.collect();
    let warnings = user_messages(&mut w, boss);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["kind"], "warning");
    assert_eq!(
        warnings[0]["value"],
        "Write to disk: No space left on device (os error 28) (alice)"
    );
    assert!(
        user_messages(&mut w, alice).is_empty(),
        "not for non-operators"
    );
    assert_eq!(w.app.recorders().recording_count(), 0);
    // The meeting goes on; nothing more is written for that recording.
    camera.run(&mut w, Duration::from_secs(1));
    assert!(commands(&mut w).iter().all(|c| c.recording() != recording));
    assert!(w.peers[camera.peer].connected);

    // The publisher comes back with a new stream: a new recording, which then overflows.
    w.send(alice, json!({"type": "close", "id": "cam"}));
    let mut camera = Camera::publish(&mut w, alice, 2, "cam2");
    camera.run(&mut w, Duration::from_secs(2));
    let started = commands(&mut w);
    let second = started[0].recording();
    assert_ne!(second, recording);
    w.app.handle_record_overflow(now, second);
    w.collect();
    assert!(matches!(
        commands(&mut w).as_slice(),
        [RecordCommand::Close { recording }] if *recording == second
    ));
    let warnings = user_messages(&mut w, boss);
    assert_eq!(
        warnings[0]["value"],
        "Write to disk: the disk cannot keep up, recording stopped (alice)"
    );
}

#[test]
fn recordings_are_open_to_the_group_users_who_may_record() {
    use crate::core::RecordingAccess;
    let mut w = World::with_group(
        r#"{"allow-recording": true,
            "users": {"boss": {"password": "op", "permissions": "op"},
                      "ann": {"password": "pw", "permissions": "present"}},
            "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let now = w.now;
    let mut access = |group: &str, user: &str, password: &str| {
        w.app.recording_access(now, group, user, password)
    };
    assert_eq!(access("g", "boss", "op"), RecordingAccess::Allowed);
    assert_eq!(access("g", "boss", "wrong"), RecordingAccess::BadPassword);
    assert_eq!(access("g", "ann", "pw"), RecordingAccess::Denied);
    assert_eq!(access("g", "someone", "pw"), RecordingAccess::Denied);
    assert_eq!(access("nope", "boss", "op"), RecordingAccess::Denied);
}
