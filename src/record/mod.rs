//! The recorder (Galène's disk writer; docs/recording.md): a pseudo-client per group that
//! receives every stream of the group through local sinks of the media engine and turns each
//! into WebM (Opus, VP8, VP9) or Matroska (H.264) files.
//!
//! This layer is sans-IO like the rest: it takes the packets of the sinks
//! ([`Recorders::handle_packet`]) and what the media session layer tells the recorder client
//! ([`Recorders::handle_notice`]), and hands out [`RecordOutput`]s: keyframe requests and
//! warnings for the application, and [`RecordCommand`]s (open a file, write a frame, close
//! it) for the runtime's writer thread, which runs the muxer ([`mkv`]) and does the file
//! I/O, and answers with [`RecordReport`]s ([`Recorders::handle_report`]).
//!
//! - [`reorder`] puts a track's packets back in order and waits for retransmissions;
//! - [`depacketize`] makes frames of them; [`bitstream`] reads sizes and codec headers;
//! - `recording` is one stream's recording: keyframes, alignment, files;
//! - [`mkv`] writes the container; [`naming`] names the files.
//!
//! # Run loop
//!
//! The owner (the application) calls, with `now`: [`Recorders::start`] when a recorder joins
//! a group, [`Recorders::handle_notice`] for every stream notice of a recorder client,
//! [`Recorders::handle_packet`] for every packet of the engine's sinks,
//! [`Recorders::handle_report`] for every writer report, [`Recorders::handle_overflow`] when
//! the writer's queue refused a frame, and [`Recorders::remove`] when a recorder leaves; after
//! each, it drains [`Recorders::poll_output`].

pub mod bitstream;
pub mod depacketize;
pub mod mkv;
pub mod naming;
mod recording;
pub mod reorder;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::conn::ConnId;
use crate::core::WallClock;
use crate::media::{SinkPacket, StreamKey, TrackKind};
use crate::streams::{LocalStream, StreamNotice};

use mkv::{FileHeader, Frame};
use recording::{Recording, mime_type, record_codec};

/// One recorded stream (files may follow one another within it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

/// Work for the writer thread, in order per recording.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordCommand {
    /// Start a file (closing the recording's current one, if any): in the group's directory,
    /// named from `stem` (plus `-NN` if taken) and the header's extension.
    Open {
        /// The recording.
        recording: RecordingId,
        /// The group (its directory under the recordings directory).
        group: String,
        /// The file name before any collision number and the extension.
        stem: String,
        /// The container and its tracks.
        header: FileHeader,
    },
    /// Write a frame into the recording's file.
    Frame {
        /// The recording.
        recording: RecordingId,
        /// The frame.
        frame: Frame,
    },
    /// Finish the recording's file.
    Close {
        /// The recording.
        recording: RecordingId,
    },
}

impl RecordCommand {
    /// The recording it is about.
    pub fn recording(&self) -> RecordingId {
        match self {
            RecordCommand::Open { recording, .. }
            | RecordCommand::Frame { recording, .. }
            | RecordCommand::Close { recording } => *recording,
        }
    }

    /// The media bytes it carries (what the writer's queue is bounded by).
    pub fn queued_bytes(&self) -> usize {
        match self {
            RecordCommand::Frame { frame, .. } => frame.data.len(),
            _ => 0,
        }
    }
}

/// What the writer thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordReport {
    /// A file was created.
    Opened {
        /// The recording.
        recording: RecordingId,
        /// Its path.
        path: String,
    },
    /// Writing failed (a full disk, an I/O error): the file was cut at its last complete
    /// block and closed; the recording is over.
    Failed {
        /// The recording.
        recording: RecordingId,
        /// What went wrong.
        error: String,
    },
    /// A file was finished.
    Closed {
        /// The recording.
        recording: RecordingId,
        /// Its path.
        path: String,
    },
}

/// What the recorder needs done.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutput {
    /// For the writer thread.
    Command(RecordCommand),
    /// Ask the publisher feeding this sink for a keyframe.
    Keyframe(StreamKey),
    /// Warn the group's operators.
    WallOps {
        /// The group.
        group: String,
        /// The warning.
        text: String,
    },
    /// The recorder client stops receiving this stream (its recording is over).
    StopReceiving {
        /// The recorder client.
        recorder: ConnId,
        /// The stream id.
        id: String,
    },
}

/// Every recorder and what it records. See the module documentation.
pub struct Recorders {
    clock: WallClock,
    /// Recorder clients and their groups.
    recorders: HashMap<ConnId, String>,
    /// Recordings by sink.
    recordings: HashMap<StreamKey, Recording>,
    /// Sinks by recording.
    sinks: HashMap<RecordingId, StreamKey>,
    outputs: VecDeque<RecordOutput>,
    next_id: u64,
}

impl Recorders {
    /// No recorder yet; file names take their local time from `clock`.
    pub fn new(clock: WallClock) -> Recorders {
        Recorders {
            clock,
            recorders: HashMap::new(),
            recordings: HashMap::new(),
            sinks: HashMap::new(),
            outputs: VecDeque::new(),
            next_id: 0,
        }
    }

    /// `recorder` records `group` from now on.
    pub fn start(&mut self, recorder: ConnId, group: &str) {
        self.recorders.insert(recorder, group.to_owned());
    }

    /// Whether `conn` is a recorder.
    pub fn is_recorder(&self, conn: ConnId) -> bool {
        self.recorders.contains_key(&conn)
    }

    /// The recorders of `group`.
    pub fn recorders_of(&self, group: &str) -> Vec<ConnId> {
        let mut found: Vec<ConnId> = self
            .recorders
            .iter()
            .filter(|(_, g)| g.as_str() == group)
            .map(|(c, _)| *c)
            .collect();
        found.sort();
        found
    }

    /// Recordings in progress.
    pub fn recording_count(&self) -> usize {
        self.recordings.len()
    }

    /// `recorder` is gone: its recordings are finished.
    pub fn remove(&mut self, now: Instant, recorder: ConnId) {
        if self.recorders.remove(&recorder).is_none() {
            return;
        }
        let mut sinks: Vec<StreamKey> = self
            .recordings
            .iter()
            .filter(|(_, r)| r.recorder == recorder)
            .map(|(k, _)| *k)
            .collect();
        sinks.sort();
        for sink in sinks {
            self.end(now, sink);
        }
    }

    /// A stream notice for `recorder`.
    pub fn handle_notice(&mut self, now: Instant, recorder: ConnId, notice: StreamNotice) {
        if !self.recorders.contains_key(&recorder) {
            return;
        }
        match notice {
            StreamNotice::Local(stream) => self.begin(now, recorder, *stream),
            StreamNotice::Close { id } => {
                if let Some(sink) = self.sink_of(recorder, &id) {
                    self.end(now, sink);
                }
            }
            _ => {}
        }
    }

    /// A packet of a sink.
    pub fn handle_packet(&mut self, packet: SinkPacket) {
        if let Some(recording) = self.recordings.get_mut(&packet.sink) {
            recording.handle_packet(packet, &mut self.outputs);
        }
    }

    /// A report of the writer thread.
    pub fn handle_report(&mut self, report: RecordReport) {
        match report {
            RecordReport::Opened { recording, path } => {
                log::info!("Recording {}: {path}", recording.0);
            }
            RecordReport::Closed { recording, path } => {
                log::info!("Recording {}: {path} finished", recording.0);
            }
            RecordReport::Failed { recording, error } => {
                log::warn!("Recording {}: {error}", recording.0);
                self.fail(recording, &format!("Write to disk: {error}"), false);
            }
        }
    }

    /// The writer's queue was full: the recording stops, with what it wrote so far.
    pub fn handle_overflow(&mut self, recording: RecordingId) {
        self.fail(
            recording,
            "Write to disk: the disk cannot keep up, recording stopped",
            true,
        );
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<RecordOutput> {
        self.outputs.pop_front()
    }

    /// Starts recording a stream the recorder now receives.
    fn begin(&mut self, now: Instant, recorder: ConnId, stream: LocalStream) {
        let Some(group) = self.recorders.get(&recorder).cloned() else {
            return;
        };
        if let Some(old) = stream
            .replace
            .as_ref()
            .and_then(|id| self.sink_of(recorder, id))
        {
            self.end(now, old);
        }
        if self.recordings.contains_key(&stream.key) {
            // The same sink with new tracks: the old recording ends, a new one starts.
            self.end(now, stream.key);
        }
        let audio_layers = stream
            .published
            .iter()
            .filter(|t| t.kind == TrackKind::Audio)
            .count();
        let mut video_mids: Vec<&str> = stream
            .published
            .iter()
            .filter(|t| t.kind == TrackKind::Video)
            .map(|t| t.mid.as_str())
            .collect();
        video_mids.dedup();
        if audio_layers > 1 {
            self.wall_ops(&group, "Multiple audio tracks, recording just one");
        }
        if video_mids.len() > 1 {
            self.wall_ops(&group, "Multiple video tracks, recording just one");
        }
        let mut codecs = Vec::with_capacity(stream.tracks.len());
        for track in &stream.tracks {
            let codec = track.codec.and_then(record_codec);
            if codec.is_none() {
                let mime = track.codec.map(mime_type).unwrap_or("unknown");
                self.wall_ops(&group, &format!("Unknown codec, {mime}, not recording"));
            }
            codecs.push(codec);
        }
        if codecs.iter().all(Option::is_none) {
            self.wall_ops(&group, "Write to disk: no usable tracks found");
            self.outputs.push_back(RecordOutput::StopReceiving {
                recorder,
                id: stream.id,
            });
            return;
        }
        self.next_id += 1;
        let id = RecordingId(self.next_id);
        let recording = Recording::new(
            now,
            id,
            stream.key,
            recorder,
            stream.id,
            group,
            stream.username.unwrap_or_default(),
            &codecs,
            self.clock,
            &mut self.outputs,
        );
        self.sinks.insert(id, stream.key);
        self.recordings.insert(stream.key, recording);
    }

    /// Ends the recording of `sink`: its file is finished.
    fn end(&mut self, now: Instant, sink: StreamKey) {
        if let Some(mut recording) = self.recordings.remove(&sink) {
            recording.finish(now, &mut self.outputs);
            self.sinks.remove(&recording.id);
        }
    }

    /// A recording cannot go on: operators are warned, the recorder stops receiving the
    /// stream, and (when the writer does not know yet) its file is closed.
    fn fail(&mut self, id: RecordingId, text: &str, close: bool) {
        let Some(sink) = self.sinks.remove(&id) else {
            return;
        };
        let Some(mut recording) = self.recordings.remove(&sink) else {
            return;
        };
        recording.stop();
        let text = if recording.username.is_empty() {
            text.to_owned()
        } else {
            format!("{text} ({})", recording.username)
        };
        self.wall_ops(&recording.group, &text);
        if close {
            self.outputs
                .push_back(RecordOutput::Command(RecordCommand::Close {
                    recording: id,
                }));
        }
        self.outputs.push_back(RecordOutput::StopReceiving {
            recorder: recording.recorder,
            id: recording.stream,
        });
    }

    fn wall_ops(&mut self, group: &str, text: &str) {
        self.outputs.push_back(RecordOutput::WallOps {
            group: group.to_owned(),
            text: text.to_owned(),
        });
    }

    /// The sink of `recorder`'s recording of stream `id`.
    fn sink_of(&self, recorder: ConnId, id: &str) -> Option<StreamKey> {
        self.recordings
            .iter()
            .find(|(_, r)| r.recorder == recorder && r.stream == id)
            .map(|(k, _)| *k)
    }
}

#[cfg(test)]
mod tests;
