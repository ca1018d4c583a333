//! The recording of one stream: its tracks' packets put back in order and into frames, the
//! wait for the first video keyframe (asked for, and asked again), the alignment of audio and
//! video on the publisher's clock, and the files: one opened at the first keyframe, a new one
//! when the picture size (or the codec) changes, the last one closed when the recording
//! ends. It produces [`RecordOutput`]s; it never touches a file.
//!
//! # Time
//!
//! A file's time 0 is its first video keyframe (its first audio frame, without video). Each
//! track's frames are placed by their RTP timestamps from a base set by the track's first
//! frame in the file, so a track's timeline never jumps. That base comes from the RTCP
//! sender reports when every track of the file has one (the publisher's wall clock relates
//! the tracks' RTP clocks, which is what keeps lips and voice together); before they are
//! known the file waits up to [`SYNC_WAIT`] (frames are held), then falls back to the times
//! the frames arrived.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::conn::ConnId;
use crate::core::WallClock;
use crate::media::{MediaCodec, SenderClock, SinkPacket, StreamKey};

use super::bitstream::{avc_decoder_configuration, opus_head};
use super::depacketize::{Assembled, AssembledFrame, Depacketizer, RecordCodec};
use super::mkv::{FileHeader, Frame, TrackHeader, TrackType};
use super::naming::file_stem;
use super::reorder::{Released, Reorder};
use super::{RecordCommand, RecordOutput, RecordingId};

/// How long a new file waits for the sender reports of all its tracks before it aligns them
/// on arrival times instead.
pub const SYNC_WAIT: Duration = Duration::from_secs(3);
/// Keyframe requests while waiting for one: at most one per this interval (the engine's own
/// limit per publisher layer, which down streams share).
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(500);
/// A keyframe is asked for when none came for this long (cues every few seconds; Galène's
/// interval).
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(4);
/// Audio kept from before a file's first keyframe, to start the file with (frames from
/// before its time 0 are dropped then).
const PREROLL: Duration = Duration::from_secs(1);
/// Bytes held while waiting for sender reports, at most.
const MAX_HELD_BYTES: usize = 8 << 20;
/// Reorder windows (packets past a gap), as Galène's sample builder.
const AUDIO_WINDOW: usize = 32;
const VIDEO_WINDOW: usize = 256;

/// One recorded track.
#[derive(Debug)]
struct Track {
    codec: RecordCodec,
    /// Its number in the file (1-based).
    number: u8,
    clock_rate: u32,
    reorder: Reorder,
    depacketizer: Depacketizer,
    epoch: Option<u32>,
    /// The publisher's clock from the latest sender report.
    clock: Option<SenderClock>,
    /// RTP time and millisecond of the track's first frame in the current file.
    base: Option<(u64, u64)>,
    /// The millisecond of its last frame written.
    last_ms: u64,
    /// H.264: the latest parameter sets.
    parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
}

impl Track {
    fn new(codec: RecordCodec, number: u8) -> Track {
        let window = if codec.is_video() {
            VIDEO_WINDOW
        } else {
            AUDIO_WINDOW
        };
        Track {
            codec,
            number,
            clock_rate: if codec.is_video() { 90_000 } else { 48_000 },
            reorder: Reorder::new(window),
            depacketizer: Depacketizer::new(codec),
            epoch: None,
            clock: None,
            base: None,
            last_ms: 0,
            parameter_sets: None,
        }
    }

    /// Starts over (a new SSRC, a new codec): nothing in flight survives.
    fn restart(&mut self, codec: RecordCodec) {
        let number = self.number;
        *self = Track::new(codec, number);
    }
}

/// The frame a file starts at.
#[derive(Debug, Clone, Copy)]
struct Origin {
    track: usize,
    time: u64,
    arrival: Instant,
    /// The publisher's wall-clock time of it (seconds since the Unix epoch), when every
    /// track of the file has sender reports.
    sender: Option<f64>,
}

#[derive(Debug)]
enum State {
    /// No file yet: waiting for a video keyframe.
    Waiting,
    /// A file starts at `origin`; frames are held until the tracks can be aligned.
    Syncing {
        origin: Origin,
        held: Vec<(usize, AssembledFrame)>,
        held_bytes: usize,
    },
    /// A file is open.
    Writing { origin: Origin },
    /// Finished or failed: nothing more is written.
    Stopped,
}

/// What the current file was opened with (a change of it needs a new file).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileShape {
    size: Option<(u16, u16)>,
    parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
}

/// The recording of one stream. See the module documentation.
#[derive(Debug)]
pub(super) struct Recording {
    pub id: RecordingId,
    pub sink: StreamKey,
    pub recorder: ConnId,
    /// The stream's id.
    pub stream: String,
    pub group: String,
    /// The publisher's username (in file names and warnings).
    pub username: String,
    /// Per track of the sink, the recorded track (`None`: not recorded).
    tracks: Vec<Option<Track>>,
    /// The index of the video track, if one is recorded.
    video: Option<usize>,
    state: State,
    shape: Option<FileShape>,
    preroll: VecDeque<(usize, AssembledFrame)>,
    last_request: Option<Instant>,
    last_keyframe: Option<Instant>,
    /// Video frames are dropped until the next keyframe (one was lost).
    needs_keyframe: bool,
    clock: WallClock,
    // Reused buffers.
    released: Vec<Released>,
    assembled: Vec<Assembled>,
}

/// The codec the recorder writes for a table codec, if it records it.
pub(super) fn record_codec(codec: MediaCodec) -> Option<RecordCodec> {
    match codec {
        MediaCodec::Opus => Some(RecordCodec::Opus),
        MediaCodec::Vp8 => Some(RecordCodec::Vp8),
        MediaCodec::Vp9 => Some(RecordCodec::Vp9),
        MediaCodec::H264 => Some(RecordCodec::H264),
        MediaCodec::Av1 | MediaCodec::G722 | MediaCodec::Pcmu | MediaCodec::Pcma => None,
    }
}

/// The MIME type of a table codec, for warnings.
pub(super) fn mime_type(codec: MediaCodec) -> &'static str {
    match codec {
        MediaCodec::Opus => "audio/opus",
        MediaCodec::Vp8 => "video/VP8",
        MediaCodec::Vp9 => "video/VP9",
        MediaCodec::Av1 => "video/AV1",
        MediaCodec::H264 => "video/H264",
        MediaCodec::G722 => "audio/G722",
        MediaCodec::Pcmu => "audio/PCMU",
        MediaCodec::Pcma => "audio/PCMA",
    }
}

/// The publisher's wall-clock time of RTP time `time` (seconds since the Unix epoch).
fn sender_seconds(clock: SenderClock, time: u64, rate: u32) -> f64 {
    let ntp = match clock.ntp.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    // The report is recent: the difference fits in 31 bits of the RTP clock.
    let ticks = (time as u32).wrapping_sub(clock.rtp) as i32;
    ntp + f64::from(ticks) / f64::from(rate.max(1))
}

/// Milliseconds from `earlier` to `later` (negative if before).
fn signed_ms(later: Instant, earlier: Instant) -> i64 {
    if later >= earlier {
        (later - earlier).as_millis() as i64
    } else {
        -((earlier - later).as_millis() as i64)
    }
}

impl Recording {
    /// A recording of sink `sink`'s tracks `codecs` (in the sink's track order; `None` for
    /// tracks not recorded). Asks for a keyframe when there is video.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        id: RecordingId,
        sink: StreamKey,
        recorder: ConnId,
        stream: String,
        group: String,
        username: String,
        codecs: &[Option<RecordCodec>],
        clock: WallClock,
        out: &mut VecDeque<RecordOutput>,
    ) -> Recording {
        let mut number = 0u8;
        let mut video = None;
        let tracks = codecs
            .iter()
            .enumerate()
            .map(|(i, codec)| {
                let codec = (*codec)?;
                number += 1;
                if codec.is_video() && video.is_none() {
                    video = Some(i);
                }
                Some(Track::new(codec, number))
            })
            .collect();
        let mut recording = Recording {
            id,
            sink,
            recorder,
            stream,
            group,
            username,
            tracks,
            video,
            state: State::Waiting,
            shape: None,
            preroll: VecDeque::new(),
            last_request: None,
            last_keyframe: None,
            needs_keyframe: false,
            clock,
            released: Vec::new(),
            assembled: Vec::new(),
        };
        if recording.video.is_some() {
            recording.request_keyframe(now, out);
        }
        recording
    }

    /// One packet of the sink.
    pub fn handle_packet(&mut self, packet: SinkPacket, out: &mut VecDeque<RecordOutput>) {
        if matches!(self.state, State::Stopped) {
            return;
        }
        let index = usize::from(packet.track);
        let now = packet.arrival;
        let Some(Some(track)) = self.tracks.get_mut(index) else {
            return;
        };
        let codec = packet.codec.and_then(record_codec);
        if codec.is_some_and(|c| c != track.codec) {
            // The publisher switched codecs: a new file with the new one.
            let codec = codec.unwrap_or(track.codec);
            track.restart(codec);
            self.close_file(out);
            self.state = State::Waiting;
            self.request_keyframe(now, out);
        }
        let Some(Some(track)) = self.tracks.get_mut(index) else {
            return;
        };
        if codec.is_none() {
            return; // a payload type the recorder cannot write
        }
        if track.epoch.is_some_and(|e| e != packet.epoch) {
            // The publisher restarted the encoding: numbering starts over; the track's
            // place in the file is found again from its clock.
            let codec = track.codec;
            let (number, last_ms) = (track.number, track.last_ms);
            *track = Track::new(codec, number);
            track.last_ms = last_ms;
            if Some(index) == self.video {
                self.needs_keyframe = true;
            }
        }
        let Some(Some(track)) = self.tracks.get_mut(index) else {
            return;
        };
        track.epoch = Some(packet.epoch);
        track.clock_rate = packet.clock_rate.max(1);
        if packet.sender_clock.is_some() {
            track.clock = packet.sender_clock;
        }
        let mut released = std::mem::take(&mut self.released);
        let mut assembled = std::mem::take(&mut self.assembled);
        track.reorder.push(packet, &mut released);
        for item in released.drain(..) {
            match item {
                Released::Packet(p) => track.depacketizer.push(&p, &mut assembled),
                Released::Lost => track.depacketizer.lost(),
            }
        }
        for item in assembled.drain(..) {
            match item {
                Assembled::Frame(frame) => self.on_frame(index, frame, out),
                Assembled::Lost => self.on_lost(index, now, out),
            }
        }
        self.released = released;
        self.assembled = assembled;
        if Some(index) == self.video {
            self.keyframe_policy(now, out);
        }
    }

    /// Ends the recording: what is held is written and the file closed.
    pub fn finish(&mut self, now: Instant, out: &mut VecDeque<RecordOutput>) {
        if matches!(self.state, State::Stopped) {
            return;
        }
        let mut released = Vec::new();
        let mut assembled = Vec::new();
        for index in 0..self.tracks.len() {
            let Some(Some(track)) = self.tracks.get_mut(index) else {
                continue;
            };
            track.reorder.flush(&mut released);
            for item in released.drain(..) {
                match item {
                    Released::Packet(p) => track.depacketizer.push(&p, &mut assembled),
                    Released::Lost => track.depacketizer.lost(),
                }
            }
            for item in assembled.drain(..) {
                match item {
                    Assembled::Frame(frame) => self.on_frame(index, frame, out),
                    Assembled::Lost => self.on_lost(index, now, out),
                }
            }
        }
        if matches!(self.state, State::Syncing { .. }) {
            self.start_file(true, out);
        }
        self.close_file(out);
        self.state = State::Stopped;
        self.preroll.clear();
    }

    /// The writer gave up on the file: nothing more is sent for it.
    pub fn stop(&mut self) {
        self.state = State::Stopped;
    }

    fn on_lost(&mut self, index: usize, now: Instant, out: &mut VecDeque<RecordOutput>) {
        if Some(index) != self.video || self.needs_keyframe {
            return;
        }
        self.needs_keyframe = true;
        if self
            .last_request
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY)
        {
            self.request_keyframe(now, out);
        }
    }

    /// Asks for a keyframe when one is needed and none was asked for lately.
    fn keyframe_policy(&mut self, now: Instant, out: &mut VecDeque<RecordOutput>) {
        let wanted = match self.state {
            State::Waiting => true,
            State::Writing { .. } => {
                self.needs_keyframe
                    || self
                        .last_keyframe
                        .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_INTERVAL)
            }
            State::Syncing { .. } | State::Stopped => false,
        };
        let due = self
            .last_request
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY);
        if wanted && due {
            self.request_keyframe(now, out);
        }
    }

    fn request_keyframe(&mut self, now: Instant, out: &mut VecDeque<RecordOutput>) {
        self.last_request = Some(now);
        out.push_back(RecordOutput::Keyframe(self.sink));
    }

    /// A complete frame of track `index`.
    fn on_frame(&mut self, index: usize, frame: AssembledFrame, out: &mut VecDeque<RecordOutput>) {
        let is_video = Some(index) == self.video;
        if is_video && frame.keyframe {
            self.last_keyframe = Some(frame.arrival);
            if let Some(Some(track)) = self.tracks.get_mut(index)
                && frame.parameter_sets.is_some()
            {
                track.parameter_sets = frame.parameter_sets.clone();
            }
        }
        let usable_keyframe = is_video && frame.keyframe && self.shape_of(index, &frame).is_some();
        if is_video && self.needs_keyframe {
            if !usable_keyframe {
                return;
            }
            self.needs_keyframe = false;
        }
        enum Step {
            Drop,
            Begin,
            Preroll,
            Hold,
            Write,
            Rotate,
        }
        let step = match self.state {
            State::Stopped => Step::Drop,
            State::Waiting if usable_keyframe || (self.video.is_none() && !is_video) => Step::Begin,
            State::Waiting if !is_video => Step::Preroll,
            State::Waiting => Step::Drop,
            State::Syncing { .. } => Step::Hold,
            State::Writing { .. }
                if usable_keyframe && self.shape_of(index, &frame) != self.shape =>
            {
                Step::Rotate
            }
            State::Writing { .. } => Step::Write,
        };
        match step {
            Step::Drop => {}
            Step::Begin => self.begin(index, frame, out),
            Step::Preroll => self.keep_preroll(index, frame),
            Step::Hold => {
                if let State::Syncing {
                    held, held_bytes, ..
                } = &mut self.state
                {
                    *held_bytes += frame.data.len();
                    held.push((index, frame));
                }
                self.start_file(false, out);
            }
            Step::Write => self.write(index, frame, out),
            Step::Rotate => {
                // A new picture size (or new parameter sets): a new file from here.
                self.close_file(out);
                self.begin(index, frame, out);
            }
        }
    }

    /// Keeps an audio frame for the start of the next file (the last [`PREROLL`] of them).
    fn keep_preroll(&mut self, index: usize, frame: AssembledFrame) {
        let arrival = frame.arrival;
        self.preroll.push_back((index, frame));
        while self
            .preroll
            .front()
            .is_some_and(|(_, f)| f.arrival + PREROLL < arrival)
        {
            self.preroll.pop_front();
        }
    }

    /// What a file starting at this keyframe would be opened with; `None` when the frame
    /// does not say enough (no size; H.264 without parameter sets).
    fn shape_of(&self, index: usize, frame: &AssembledFrame) -> Option<FileShape> {
        let track = self.tracks.get(index)?.as_ref()?;
        let parameter_sets = if track.codec == RecordCodec::H264 {
            Some(
                frame
                    .parameter_sets
                    .clone()
                    .or(track.parameter_sets.clone())?,
            )
        } else {
            None
        };
        Some(FileShape {
            size: Some(frame.size?),
            parameter_sets,
        })
    }

    /// A file starts at `frame` (a usable keyframe, or the first audio frame without video).
    fn begin(&mut self, index: usize, frame: AssembledFrame, out: &mut VecDeque<RecordOutput>) {
        self.shape = if Some(index) == self.video {
            self.shape_of(index, &frame)
        } else {
            None
        };
        for track in self.tracks.iter_mut().flatten() {
            track.base = None;
            track.last_ms = 0;
        }
        let origin = Origin {
            track: index,
            time: frame.time,
            arrival: frame.arrival,
            sender: None,
        };
        let held_bytes = frame.data.len();
        let mut held: Vec<(usize, AssembledFrame)> = self
            .preroll
            .drain(..)
            .filter(|(_, f)| f.arrival + PREROLL >= frame.arrival)
            .collect();
        held.push((index, frame));
        self.state = State::Syncing {
            origin,
            held,
            held_bytes,
        };
        self.start_file(false, out);
    }

    /// Opens the file once the tracks can be aligned (or when `force`d, or after
    /// [`SYNC_WAIT`]), and writes what was held.
    fn start_file(&mut self, force: bool, out: &mut VecDeque<RecordOutput>) {
        let State::Syncing {
            origin,
            held,
            held_bytes,
        } = &self.state
        else {
            return;
        };
        let recorded = self.tracks.iter().flatten().count();
        let clocks = self.tracks.iter().flatten().all(|t| t.clock.is_some());
        let waited = held
            .last()
            .map(|(_, f)| f.arrival.saturating_duration_since(origin.arrival))
            .unwrap_or_default();
        let ready = force
            || recorded <= 1
            || clocks
            || waited >= SYNC_WAIT
            || *held_bytes >= MAX_HELD_BYTES;
        if !ready {
            return;
        }
        let mut origin = *origin;
        if clocks && let Some(Some(track)) = self.tracks.get(origin.track) {
            origin.sender = track
                .clock
                .map(|c| sender_seconds(c, origin.time, track.clock_rate));
        }
        log::debug!(
            "recording {}: a file starts, tracks aligned on {}",
            self.id.0,
            if origin.sender.is_some() {
                "the sender reports"
            } else {
                "arrival times"
            }
        );
        let State::Syncing { held, .. } = std::mem::replace(&mut self.state, State::Stopped) else {
            return;
        };
        let started = self.clock.at(origin.arrival);
        let local = chrono::DateTime::<chrono::Local>::from(started);
        let header = self.file_header(started);
        out.push_back(RecordOutput::Command(RecordCommand::Open {
            recording: self.id,
            group: self.group.clone(),
            stem: file_stem(&local, &self.username),
            header,
        }));
        self.state = State::Writing { origin };
        if let Some(Some(track)) = self.tracks.get_mut(origin.track) {
            track.base = Some((origin.time, 0));
        }
        // The origin first, so that the file starts with it; then the rest in order.
        let mut rest = Vec::with_capacity(held.len());
        for (index, frame) in held {
            if index == origin.track && frame.time == origin.time {
                self.write(index, frame, out);
            } else {
                rest.push((index, frame));
            }
        }
        for (index, frame) in rest {
            self.write(index, frame, out);
        }
    }

    /// The header of a file started at `date`.
    fn file_header(&self, date: SystemTime) -> FileHeader {
        let mut tracks = Vec::new();
        let mut webm = true;
        for track in self.tracks.iter().flatten() {
            let (size, parameter_sets) = match &self.shape {
                Some(shape) => (shape.size.unwrap_or((0, 0)), shape.parameter_sets.clone()),
                None => ((0, 0), None),
            };
            tracks.push(match track.codec {
                RecordCodec::Opus => TrackHeader {
                    kind: TrackType::Audio,
                    codec_id: "A_OPUS",
                    codec_private: opus_head(2),
                    pixels: (0, 0),
                    audio: (48_000, 2),
                    delay_and_preroll: (0, 80_000_000),
                },
                RecordCodec::Vp8 | RecordCodec::Vp9 => TrackHeader {
                    kind: TrackType::Video,
                    codec_id: if track.codec == RecordCodec::Vp8 {
                        "V_VP8"
                    } else {
                        "V_VP9"
                    },
                    codec_private: Vec::new(),
                    pixels: size,
                    audio: (0, 0),
                    delay_and_preroll: (0, 0),
                },
                RecordCodec::H264 => {
                    webm = false;
                    TrackHeader {
                        kind: TrackType::Video,
                        codec_id: "V_MPEG4/ISO/AVC",
                        codec_private: parameter_sets
                            .and_then(|(sps, pps)| avc_decoder_configuration(&sps, &pps))
                            .unwrap_or_default(),
                        pixels: size,
                        audio: (0, 0),
                        delay_and_preroll: (0, 0),
                    }
                }
            });
        }
        FileHeader { webm, tracks, date }
    }

    /// Writes one frame at its place on the file's timeline (dropped if before the start).
    fn write(&mut self, index: usize, frame: AssembledFrame, out: &mut VecDeque<RecordOutput>) {
        let State::Writing { origin } = self.state else {
            return;
        };
        let Some(Some(track)) = self.tracks.get_mut(index) else {
            return;
        };
        let rate = u64::from(track.clock_rate.max(1));
        let keyframe = frame.keyframe;
        let ms = match track.base {
            Some((time, ms)) => {
                if frame.time < time {
                    return;
                }
                ms + ((frame.time - time) * 1000 + rate / 2) / rate
            }
            None => {
                let ms = match (origin.sender, track.clock) {
                    (Some(start), Some(clock)) => {
                        let at = sender_seconds(clock, frame.time, track.clock_rate);
                        ((at - start) * 1000.0).round() as i64
                    }
                    _ => signed_ms(frame.arrival, origin.arrival),
                };
                let Ok(ms) = u64::try_from(ms) else {
                    return; // before the file's start
                };
                track.base = Some((frame.time, ms));
                ms
            }
        };
        if ms < track.last_ms {
            return;
        }
        track.last_ms = ms;
        let (number, is_audio) = (track.number, !track.codec.is_video());
        let data = if self.video.is_some() && is_audio {
            // Kept a little: a new file (a new picture size) starts with the audio of its
            // first moments, which arrived before its keyframe did.
            let data = frame.data.clone();
            self.keep_preroll(index, frame);
            data
        } else {
            frame.data
        };
        out.push_back(RecordOutput::Command(RecordCommand::Frame {
            recording: self.id,
            frame: Frame {
                track: number,
                ms,
                keyframe: keyframe || is_audio,
                data,
            },
        }));
    }

    /// Closes the open file, if any.
    fn close_file(&mut self, out: &mut VecDeque<RecordOutput>) {
        if matches!(self.state, State::Writing { .. }) {
            out.push_back(RecordOutput::Command(RecordCommand::Close {
                recording: self.id,
            }));
        }
        self.state = State::Waiting;
    }
}
