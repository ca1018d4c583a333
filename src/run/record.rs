//! The recording writer: one thread that runs the muxer ([`crate::record::mkv`]) and writes
//! the recordings under `-recordings DIR/<group>/`.
//!
//! The executor thread hands it [`RecordCommand`]s through [`RecordWriter::submit`] and never
//! waits for the disk: frames are refused once [`MAX_QUEUED_BYTES`] of them wait (the
//! application then stops that recording and warns its operators), opening and closing are
//! always accepted. The thread answers with [`RecordReport`]s on a channel the executor reads.
//!
//! Files are created with `O_EXCL` and mode 0600 (the next `-NN` name when one is taken),
//! directories with mode 0700, as Galène does. Appends go through a buffer of
//! [`FLUSH_BYTES`]; every flush that succeeds moves the file's known-good length. When a write
//! fails (a full disk, an I/O error), the file is cut back to that length, its Segment size
//! and Duration are patched in place (which takes no new space), and it is closed: what was
//! written plays up to there.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::record::mkv::{FileHeader, FileOp, Muxer};
use crate::record::naming::{MAX_COLLISIONS, candidate};
use crate::record::{RecordCommand, RecordReport, RecordingId};

/// Frame bytes that may wait for the writer; a frame beyond that is refused.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Bytes gathered before they are written to the file.
pub const FLUSH_BYTES: usize = 256 << 10;

/// The queue refused a frame: the disk does not keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The executor's handle on the writer thread.
pub struct RecordWriter {
    commands: Option<mpsc::Sender<RecordCommand>>,
    queued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl RecordWriter {
    /// Starts the thread, writing under `dir`; its reports go to `reports`.
    pub fn start(
        dir: PathBuf,
        reports: smol::channel::Sender<RecordReport>,
    ) -> io::Result<RecordWriter> {
        let (commands, requests) = mpsc::channel::<RecordCommand>();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("sfubox-recorder".into())
            .spawn(move || {
                let mut writer = Writer {
                    dir,
                    files: HashMap::new(),
                    reports,
                };
                for command in requests {
                    let bytes = command.queued_bytes();
                    writer.handle(command);
                    counter.fetch_sub(bytes, Ordering::AcqRel);
                }
                writer.close_all();
            })?;
        Ok(RecordWriter {
            commands: Some(commands),
            queued,
            thread: Some(thread),
        })
    }

    /// Queues a command. A frame is refused when [`MAX_QUEUED_BYTES`] wait already.
    pub fn submit(&self, command: RecordCommand) -> Result<(), QueueFull> {
        let bytes = command.queued_bytes();
        if bytes > 0 {
            let waiting = self.queued.load(Ordering::Acquire);
            if waiting + bytes > MAX_QUEUED_BYTES {
                return Err(QueueFull);
            }
            self.queued.fetch_add(bytes, Ordering::AcqRel);
        }
        let Some(commands) = &self.commands else {
            return Err(QueueFull);
        };
        // The thread only ends once this sender is dropped.
        if commands.send(command).is_err() {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(QueueFull);
        }
        Ok(())
    }

    /// Frame bytes waiting for the thread.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// No more commands: the thread finishes what it has (every open file is closed) and
    /// ends. Waits for it until `deadline`; returns whether it ended.
    pub fn finish(&mut self, deadline: Instant) -> bool {
        self.commands = None;
        let Some(thread) = self.thread.take() else {
            return true;
        };
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                log::warn!("the recording writer is still busy; its files stay playable");
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = thread.join();
        true
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        self.commands = None;
    }
}

/// One open file.
struct OpenFile {
    path: PathBuf,
    file: File,
    muxer: Muxer,
    /// Appended bytes not yet written.
    pending: Vec<u8>,
    /// Bytes written to the file so far.
    written: u64,
    /// The muxer's written milliseconds when `written` was reached.
    written_ms: u64,
    /// The length of the header: a file no longer than that holds no frame.
    header_len: u64,
}

/// The thread's state.
struct Writer {
    dir: PathBuf,
    files: HashMap<RecordingId, OpenFile>,
    reports: smol::channel::Sender<RecordReport>,
}

impl Writer {
    fn handle(&mut self, command: RecordCommand) {
        match command {
            RecordCommand::Open {
                recording,
                group,
                stem,
                header,
            } => {
                self.close(recording);
                match self.open(&group, &stem, &header) {
                    Ok(file) => {
                        let path = file.path.display().to_string();
                        self.files.insert(recording, file);
                        self.report(RecordReport::Opened { recording, path });
                    }
                    Err(e) => self.report(RecordReport::Failed {
                        recording,
                        error: e.to_string(),
                    }),
                }
            }
            RecordCommand::Frame { recording, frame } => {
                let Some(file) = self.files.get_mut(&recording) else {
                    return;
                };
                let mut ops = Vec::new();
                file.muxer.push(frame, &mut ops);
                if let Err(e) = file.apply(ops) {
                    self.fail(recording, e);
                }
            }
            RecordCommand::Close { recording } => self.close(recording),
        }
    }

    /// Creates the file of a new recording: the group's directory (mode 0700), then the
    /// first free name (mode 0600, `O_EXCL`), with the header written.
    fn open(&self, group: &str, stem: &str, header: &FileHeader) -> io::Result<OpenFile> {
        let dir = self.dir.join(group);
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let (path, file) = create_exclusive(&dir, stem, header.extension())?;
        let (muxer, ops) = Muxer::new(header);
        let mut open = OpenFile {
            path,
            file,
            muxer,
            pending: Vec::with_capacity(FLUSH_BYTES),
            written: 0,
            written_ms: 0,
            header_len: 0,
        };
        let header = open.apply(ops).and_then(|()| open.flush());
        if let Err(e) = header {
            // Not even the header fits: no file rather than a file that does not parse.
            let _ = std::fs::remove_file(&open.path);
            return Err(e);
        }
        open.header_len = open.written;
        Ok(open)
    }

    /// Finishes the recording's file, if it has one.
    fn close(&mut self, recording: RecordingId) {
        let Some(mut file) = self.files.remove(&recording) else {
            return;
        };
        let mut ops = Vec::new();
        let path = file.path.display().to_string();
        let salvage = file.muxer.salvage(file.written, file.written_ms);
        file.muxer.finish(&mut ops);
        let finished = file
            .apply(ops)
            .and_then(|()| file.flush())
            .and_then(|()| file.file.sync_data());
        match finished {
            Ok(()) => self.report(RecordReport::Closed { recording, path }),
            Err(e) => {
                file.cut(salvage);
                self.report(RecordReport::Failed {
                    recording,
                    error: e.to_string(),
                });
            }
        }
    }

    /// A write failed: the file is cut back to what was written whole, and closed.
    fn fail(&mut self, recording: RecordingId, error: io::Error) {
        if let Some(file) = self.files.remove(&recording) {
            let salvage = file.muxer.salvage(file.written, file.written_ms);
            log::warn!(
                "{}: {error}; cut at {} bytes",
                file.path.display(),
                file.written
            );
            file.cut(salvage);
        }
        self.report(RecordReport::Failed {
            recording,
            error: error.to_string(),
        });
    }

    /// Closes every file (the server is stopping).
    fn close_all(&mut self) {
        let mut open: Vec<RecordingId> = self.files.keys().copied().collect();
        open.sort();
        for recording in open {
            self.close(recording);
        }
    }

    fn report(&self, report: RecordReport) {
        // The executor may be gone (shutting down): the report is for logs only then.
        if self.reports.try_send(report.clone()).is_err() {
            log::debug!("recording report after shutdown: {report:?}");
        }
    }
}

impl OpenFile {
    /// Applies the muxer's output: appends are gathered, patches written in place (after
    /// what is gathered).
    fn apply(&mut self, ops: Vec<FileOp>) -> io::Result<()> {
        for op in ops {
            match op {
                FileOp::Append(bytes) => self.pending.extend_from_slice(&bytes),
                FileOp::Patch { at, bytes } => {
                    self.flush()?;
                    self.file.write_all_at(&bytes, at)?;
                }
            }
        }
        if self.pending.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is gathered; on success the file is good up to here.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        self.written_ms = self.muxer.written_ms();
        Ok(())
    }

    /// Ends the file at its good length with the salvage patches (best effort: each step
    /// needs no new space, and a failure leaves a file that still plays). A file that holds
    /// no frame yet is removed instead: there is nothing to play.
    fn cut(self, salvage: Vec<FileOp>) {
        if self.written <= self.header_len {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("{}: cannot remove: {e}", self.path.display());
            }
            return;
        }
        if let Err(e) = self.file.set_len(self.written) {
            log::warn!("{}: cannot cut: {e}", self.path.display());
            return;
        }
        for op in salvage {
            if let FileOp::Patch { at, bytes } = op
                && let Err(e) = self.file.write_all_at(&bytes, at)
            {
                log::warn!("{}: cannot patch: {e}", self.path.display());
            }
        }
        let _ = self.file.sync_data();
    }
}

/// Creates `dir/stem.ext`, or the first of `stem-01.ext` … `stem-99.ext` that does not exist.
fn create_exclusive(dir: &Path, stem: &str, extension: &str) -> io::Result<(PathBuf, File)> {
    for attempt in 0..=MAX_COLLISIONS {
        let path = dir.join(candidate(stem, attempt, extension));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "couldn't create file",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::mkv::{Frame, TrackHeader, TrackType};
    use std::os::unix::fs::PermissionsExt;

    fn header() -> FileHeader {
        FileHeader {
            webm: true,
            tracks: vec![TrackHeader {
                kind: TrackType::Audio,
                codec_id: "A_OPUS",
                codec_private: crate::record::bitstream::opus_head(2),
                pixels: (0, 0),
                audio: (48_000, 2),
                delay_and_preroll: (0, 80_000_000),
            }],
            date: std::time::UNIX_EPOCH,
        }
    }

    fn open(recording: u64, stem: &str) -> RecordCommand {
        RecordCommand::Open {
            recording: RecordingId(recording),
            group: "a/b".into(),
            stem: stem.into(),
            header: header(),
        }
    }

    fn frame(recording: u64, ms: u64) -> RecordCommand {
        RecordCommand::Frame {
            recording: RecordingId(recording),
            frame: Frame {
                track: 1,
                ms,
                keyframe: true,
                data: vec![0xfc; 40],
            },
        }
    }

    #[test]
    fn files_are_created_exclusively_with_private_modes_and_finished() {
        let scratch = crate::config::scratch::Scratch::new("record", "writer");
        let dir = scratch.0.join("recordings");
        let (reports, received) = smol::channel::unbounded();
        let mut writer = RecordWriter::start(dir.clone(), reports).expect("thread");
        // Two recordings with the same stem at once: the second gets -01.
        for command in [open(1, "stem"), open(2, "stem")] {
            writer.submit(command).expect("accepted");
        }
        for ms in (0..2000).step_by(20) {
            writer.submit(frame(1, ms)).expect("accepted");
            writer.submit(frame(2, ms)).expect("accepted");
        }
        writer
            .submit(RecordCommand::Close {
                recording: RecordingId(1),
            })
            .expect("accepted");
        // A frame larger than the whole queue is refused; a close never is.
        let huge = RecordCommand::Frame {
            recording: RecordingId(2),
            frame: Frame {
                track: 1,
                ms: 3000,
                keyframe: true,
                data: vec![0; MAX_QUEUED_BYTES + 1],
            },
        };
        assert_eq!(writer.submit(huge), Err(QueueFull));
        assert!(writer.finish(Instant::now() + Duration::from_secs(10)));
        let reports: Vec<RecordReport> = std::iter::from_fn(|| received.try_recv().ok()).collect();
        let group = dir.join("a/b");
        let first = group.join("stem.webm");
        let second = group.join("stem-01.webm");
        assert!(
            reports.contains(&RecordReport::Closed {
                recording: RecordingId(1),
                path: first.display().to_string()
            }),
            "{reports:?}"
        );
        // The second was closed when the writer stopped.
        assert!(reports.contains(&RecordReport::Closed {
            recording: RecordingId(2),
            path: second.display().to_string()
        }));
        for path in [&first, &second] {
            let meta = std::fs::metadata(path).expect("file");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            let bytes = std::fs::read(path).expect("read");
            assert_eq!(&bytes[..4], &[0x1a, 0x45, 0xdf, 0xa3]);
            // The Segment's size was patched in (no more "unknown").
            assert_ne!(
                &bytes[44..52],
                &[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
            );
        }
        for d in [dir.join("a"), group] {
            let mode = std::fs::metadata(&d).expect("dir").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn a_recording_that_cannot_be_created_is_reported() {
        let scratch = crate::config::scratch::Scratch::new("record", "writer-fail");
        let dir = scratch.0.join("recordings");
        // The group's directory is a file: nothing can be created under it.
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("g"), b"x").expect("file");
        let (reports, received) = smol::channel::unbounded();
        let mut writer = RecordWriter::start(dir.clone(), reports).expect("thread");
        writer
            .submit(RecordCommand::Open {
                recording: RecordingId(7),
                group: "g".into(),
                stem: "s".into(),
                header: header(),
            })
            .expect("accepted");
        writer.submit(frame(7, 0)).expect("accepted");
        assert!(writer.finish(Instant::now() + Duration::from_secs(10)));
        let report = received.try_recv().expect("a report");
        assert!(
            matches!(&report, RecordReport::Failed { recording, .. } if *recording == RecordingId(7)),
            "{report:?}"
        );
        assert!(received.try_recv().is_err());
    }
}
