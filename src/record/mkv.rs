//! A WebM/Matroska muxer that writes nothing itself: frames in, [`FileOp`]s out (bytes to
//! append and small in-place patches), so that the file I/O stays in the runtime and a
//! failed write can be repaired from what the muxer knows.
//!
//! # Layout
//!
//! ```text
//! EBML header (DocType webm or matroska)
//! Segment (size unknown until finished)
//!   SeekHead: Info, Tracks, and a Void the size of a Cues entry (patched at the end)
//!   Info: TimestampScale 1 ms, MuxingApp, WritingApp, DateUTC, Duration (patched)
//!   Tracks: one TrackEntry per track (CodecPrivate, pixel size, sampling frequency)
//!   Cluster (size unknown until the next one starts, then patched)
//!     Timestamp, SimpleBlock, SimpleBlock, ...
//!   ...
//!   Cues (one CuePoint per cluster that starts with a video keyframe, or per cluster of
//!         an audio-only file)
//! ```
//!
//! Every size the muxer does not know yet is written as EBML's "unknown size", which
//! players read as "up to the next element": a file cut off anywhere (a crash, a full disk)
//! plays up to its last complete block. [`Muxer::finish`] patches in the Segment size, the
//! Duration, the last Cluster's size and the Cues entry of the SeekHead; [`Muxer::salvage`]
//! does what can be done without appending (sizes and Duration, no Cues) when the file must
//! end early at a given length.
//!
//! A cluster starts at every video keyframe, and at the latest after
//! [`MAX_CLUSTER_MS`] or [`MAX_CLUSTER_BYTES`]. Frames of different tracks are interleaved
//! by timestamp through a short queue ([`INTERLEAVE_MS`]), so blocks come in time order.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest cluster, in milliseconds (block timestamps are 16-bit offsets from the cluster's).
pub const MAX_CLUSTER_MS: u64 = 5_000;
/// Largest cluster, in bytes.
pub const MAX_CLUSTER_BYTES: u64 = 4 << 20;
/// How far the interleaving queue may reach before it writes the earliest frame whatever
/// the other tracks have sent.
pub const INTERLEAVE_MS: u64 = 1_000;

// Element ids (RFC 8794, RFC 9559).
const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const DATE_UTC: u32 = 0x4461;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const NAME: u32 = 0x536E;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_TRACK: u32 = 0xF7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;
const CUE_RELATIVE_POSITION: u32 = 0xF0;
const VOID: u32 = 0xEC;

/// EBML's 8-byte "unknown size".
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
/// The size of one Seek entry with an 8-byte position: its Void stand-in has the same size.
const SEEK_ENTRY_LEN: usize = 21;
/// Seconds from the Unix epoch to Matroska's (2001-01-01T00:00:00Z).
const MATROSKA_EPOCH: u64 = 978_307_200;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackType {
    /// A video track (Matroska track type 1).
    Video,
    /// An audio track (Matroska track type 2).
    Audio,
}

/// One track of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackHeader {
    /// Audio or video.
    pub kind: TrackType,
    /// The Matroska codec id (`A_OPUS`, `V_VP8`, `V_VP9`, `V_MPEG4/ISO/AVC`).
    pub codec_id: &'static str,
    /// CodecPrivate (OpusHead, avcC), if the codec has one.
    pub codec_private: Vec<u8>,
    /// Video: pixel width and height.
    pub pixels: (u16, u16),
    /// Audio: sampling frequency and channels.
    pub audio: (u32, u8),
    /// Audio: the codec's delay and seek pre-roll, in nanoseconds (Opus).
    pub delay_and_preroll: (u64, u64),
}

/// What a file holds: its tracks (numbered from 1 in this order) and its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// WebM (Opus, VP8, VP9) or Matroska (H.264).
    pub webm: bool,
    /// The tracks.
    pub tracks: Vec<TrackHeader>,
    /// When the recording of this file started (Info's DateUTC).
    pub date: SystemTime,
}

impl FileHeader {
    /// The file name extension: `webm` or `mkv`.
    pub fn extension(&self) -> &'static str {
        if self.webm { "webm" } else { "mkv" }
    }
}

/// One frame to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The track's number (1-based, the order of [`FileHeader::tracks`]).
    pub track: u8,
    /// Milliseconds from the start of the file; never decreasing within a track.
    pub ms: u64,
    /// A keyframe (every audio frame is one).
    pub keyframe: bool,
    /// The codec data.
    pub data: Vec<u8>,
}

/// What the caller does to the file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// Append these bytes at the end.
    Append(Vec<u8>),
    /// Overwrite bytes at this offset (always inside what was appended before).
    Patch {
        /// Offset from the start of the file.
        at: u64,
        /// The new bytes.
        bytes: Vec<u8>,
    },
}

/// A cluster being written.
#[derive(Debug, Clone, Copy)]
struct OpenCluster {
    /// Offset of the cluster's element id in the file.
    at: u64,
    /// Its timestamp (ms).
    ms: u64,
    /// Bytes of its content so far.
    len: u64,
}

/// A Cues entry.
#[derive(Debug, Clone, Copy)]
struct Cue {
    ms: u64,
    track: u8,
    /// Cluster offset relative to the Segment's data.
    cluster: u64,
    /// The block's offset inside the cluster's data.
    relative: u64,
}

/// The muxer of one file. See the module documentation.
#[derive(Debug)]
pub struct Muxer {
    /// Bytes handed out with `Append` so far.
    len: u64,
    /// Offset of the Segment's size field.
    segment_size_at: u64,
    /// Offset of the Segment's data (positions in SeekHead and Cues are relative to it).
    segment_data_at: u64,
    /// Offset of the Cues entry's stand-in in the SeekHead.
    cues_seek_at: u64,
    /// Offset of Duration's 8-byte float.
    duration_at: u64,
    /// Which track number is the video track, if any.
    video_track: Option<u8>,
    cluster: Option<OpenCluster>,
    cues: Vec<Cue>,
    /// Frames waiting to be interleaved, per track (index = number − 1).
    queues: Vec<VecDeque<Frame>>,
    /// Per track, the timestamp of its last block and the interval before it, once it has one.
    ends: Vec<Option<(u64, u64)>>,
    /// The end of the last complete block in the file: what survives a cut at `len`.
    written_ms: u64,
    /// [`Muxer::finish`] ran.
    finished: bool,
}

impl Muxer {
    /// Starts a file: returns the muxer and what to write first.
    pub fn new(header: &FileHeader) -> (Muxer, Vec<FileOp>) {
        let mut out = Vec::with_capacity(512);
        let doc_type = if header.webm { "webm" } else { "matroska" };
        let mut ebml = Vec::new();
        put_uint(&mut ebml, EBML_VERSION, 1);
        put_uint(&mut ebml, EBML_READ_VERSION, 1);
        put_uint(&mut ebml, EBML_MAX_ID_LENGTH, 4);
        put_uint(&mut ebml, EBML_MAX_SIZE_LENGTH, 8);
        put_bytes(&mut ebml, DOC_TYPE, doc_type.as_bytes());
        put_uint(&mut ebml, DOC_TYPE_VERSION, 4);
        put_uint(&mut ebml, DOC_TYPE_READ_VERSION, 2);
        put_element(&mut out, EBML, &ebml);

        put_id(&mut out, SEGMENT);
        let segment_size_at = out.len() as u64;
        out.extend_from_slice(&UNKNOWN_SIZE);
        let segment_data_at = out.len() as u64;

        // Info and Tracks first, into their own buffers, so the SeekHead can point at them.
        let mut info = Vec::new();
        put_uint(&mut info, TIMESTAMP_SCALE, 1_000_000);
        put_bytes(&mut info, MUXING_APP, b"sfubox");
        put_bytes(&mut info, WRITING_APP, b"sfubox");
        put_int(&mut info, DATE_UTC, date_utc(header.date));
        put_id(&mut info, DURATION);
        put_size(&mut info, 8);
        let duration_in_info = info.len() as u64;
        info.extend_from_slice(&0f64.to_be_bytes());
        let mut info_element = Vec::new();
        put_element(&mut info_element, INFO, &info);

        let mut tracks = Vec::new();
        let mut video_track = None;
        for (i, track) in header.tracks.iter().enumerate() {
            // Tracks are numbered 1.. in order; a file has a handful at most.
            let number = (i + 1) as u8;
            if track.kind == TrackType::Video && video_track.is_none() {
                video_track = Some(number);
            }
            put_element(&mut tracks, TRACK_ENTRY, &track_entry(number, track));
        }
        let mut tracks_element = Vec::new();
        put_element(&mut tracks_element, TRACKS, &tracks);

        let seek_head_len = (4 + 1 + 3 * SEEK_ENTRY_LEN) as u64;
        let info_pos = seek_head_len;
        let tracks_pos = info_pos + info_element.len() as u64;
        let mut seeks = Vec::new();
        seeks.extend_from_slice(&seek_entry(INFO, info_pos));
        seeks.extend_from_slice(&seek_entry(TRACKS, tracks_pos));
        let cues_seek_in_head = seeks.len();
        seeks.extend_from_slice(&void(SEEK_ENTRY_LEN));
        let seek_head_at = out.len();
        put_element(&mut out, SEEK_HEAD, &seeks);
        debug_assert_eq!((out.len() - seek_head_at) as u64, seek_head_len);
        // The SeekHead's header is 4 (id) + 1 (size) bytes.
        let cues_seek_at = (seek_head_at + 5 + cues_seek_in_head) as u64;
        let info_at = out.len() as u64;
        // Info's header is 4 (id) + 1 or 2 (size) bytes: find the float from the end.
        let duration_at =
            info_at + info_element.len() as u64 - (info.len() as u64 - duration_in_info);
        out.extend_from_slice(&info_element);
        out.extend_from_slice(&tracks_element);

        let muxer = Muxer {
            len: out.len() as u64,
            segment_size_at,
            segment_data_at,
            cues_seek_at,
            duration_at,
            video_track,
            cluster: None,
            cues: Vec::new(),
            queues: vec![VecDeque::new(); header.tracks.len()],
            ends: vec![None; header.tracks.len()],
            written_ms: 0,
            finished: false,
        };
        (muxer, vec![FileOp::Append(out)])
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was appended (never: the header is always there).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a frame; appends whatever the interleaving lets out. A frame of an unknown
    /// track is ignored.
    pub fn push(&mut self, frame: Frame, out: &mut Vec<FileOp>) {
        let index = usize::from(frame.track).wrapping_sub(1);
        if self.finished {
            return;
        }
        let Some(queue) = self.queues.get_mut(index) else {
            return;
        };
        queue.push_back(frame);
        self.release(false, out);
    }

    /// Ends the file: writes what is queued, the Cues, and patches the sizes, the Duration
    /// and the SeekHead. Anything pushed afterwards is ignored.
    pub fn finish(&mut self, out: &mut Vec<FileOp>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.release(true, out);
        self.close_cluster(out);
        let cues_at = self.len;
        if !self.cues.is_empty() {
            let mut points = Vec::new();
            for cue in &self.cues {
                let mut positions = Vec::new();
                put_uint(&mut positions, CUE_TRACK, u64::from(cue.track));
                put_uint(&mut positions, CUE_CLUSTER_POSITION, cue.cluster);
                put_uint(&mut positions, CUE_RELATIVE_POSITION, cue.relative);
                let mut point = Vec::new();
                put_uint(&mut point, CUE_TIME, cue.ms);
                put_element(&mut point, CUE_TRACK_POSITIONS, &positions);
                put_element(&mut points, CUE_POINT, &point);
            }
            let mut cues = Vec::new();
            put_element(&mut cues, CUES, &points);
            self.append(cues, out);
            out.push(FileOp::Patch {
                at: self.cues_seek_at,
                bytes: seek_entry(CUES, cues_at - self.segment_data_at).to_vec(),
            });
        }
        self.patch_ends(self.len, self.end_ms(), out);
    }

    /// The end of the blocks appended so far, in milliseconds (the Duration of a file cut
    /// right here).
    pub fn written_ms(&self) -> u64 {
        self.written_ms
    }

    /// The patches that end the file at `len` bytes (a cut after an append failed): the
    /// Segment's size and the Duration (`duration_ms`: [`Muxer::written_ms`] when the file
    /// was `len` long), and nothing appended. `len` must be the length before one of the
    /// `Append`s this muxer produced.
    pub fn salvage(&self, len: u64, duration_ms: u64) -> Vec<FileOp> {
        let mut out = Vec::new();
        if len >= self.segment_data_at {
            self.patch_ends(len, duration_ms, &mut out);
        }
        out
    }

    /// Segment size for a file of `len` bytes, and the Duration.
    fn patch_ends(&self, len: u64, duration_ms: u64, out: &mut Vec<FileOp>) {
        out.push(FileOp::Patch {
            at: self.segment_size_at,
            bytes: size8(len - self.segment_data_at).to_vec(),
        });
        out.push(FileOp::Patch {
            at: self.duration_at,
            bytes: (duration_ms as f64).to_be_bytes().to_vec(),
        });
    }

    /// The end of the latest block written: its timestamp plus its track's last interval.
    fn end_ms(&self) -> u64 {
        self.ends
            .iter()
            .flatten()
            .map(|(last, step)| last + step)
            .max()
            .unwrap_or(0)
    }

    /// Writes queued frames in time order: the earliest, as long as every track has
    /// something queued, or the queues span more than [`INTERLEAVE_MS`] (a track that sends
    /// nothing holds the others back that long at most); everything when `all`.
    fn release(&mut self, all: bool, out: &mut Vec<FileOp>) {
        loop {
            // The earliest frame; at equal times a video keyframe first, so that it starts
            // the cluster.
            let video = self.video_track;
            let earliest = self
                .queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| {
                    let f = q.front()?;
                    let key_first = !(f.keyframe && Some(f.track) == video);
                    Some((f.ms, key_first, i))
                })
                .min();
            let Some((first_ms, _, track)) = earliest else {
                return;
            };
            if !all {
                let latest = self
                    .queues
                    .iter()
                    .filter_map(|q| q.back().map(|f| f.ms))
                    .max()
                    .unwrap_or(first_ms);
                let waiting = self.queues.iter().any(VecDeque::is_empty);
                if waiting && latest.saturating_sub(first_ms) < INTERLEAVE_MS {
                    return;
                }
            }
            let Some(frame) = self.queues.get_mut(track).and_then(VecDeque::pop_front) else {
                return;
            };
            self.write_block(frame, out);
        }
    }

    /// Appends one SimpleBlock, starting a cluster first when needed.
    fn write_block(&mut self, frame: Frame, out: &mut Vec<FileOp>) {
        let is_video_key = frame.keyframe && Some(frame.track) == self.video_track;
        let needs_cluster = match self.cluster {
            None => true,
            Some(c) => {
                is_video_key
                    || frame.ms >= c.ms + MAX_CLUSTER_MS
                    || c.len >= MAX_CLUSTER_BYTES
                    || frame.ms + MAX_CLUSTER_MS <= c.ms
            }
        };
        if needs_cluster {
            self.close_cluster(out);
            let mut head = Vec::new();
            put_id(&mut head, CLUSTER);
            head.extend_from_slice(&UNKNOWN_SIZE);
            let mut timestamp = Vec::new();
            put_uint(&mut timestamp, TIMESTAMP, frame.ms);
            head.extend_from_slice(&timestamp);
            let at = self.len;
            self.append(head, out);
            self.cluster = Some(OpenCluster {
                at,
                ms: frame.ms,
                len: timestamp.len() as u64,
            });
            let cue_track = self.video_track.unwrap_or(frame.track);
            if is_video_key || (self.video_track.is_none() && frame.track == cue_track) {
                self.cues.push(Cue {
                    ms: frame.ms,
                    track: cue_track,
                    cluster: at - self.segment_data_at,
                    relative: timestamp.len() as u64,
                });
            }
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        // Within MAX_CLUSTER_MS either side of the cluster's start: fits in 16 bits. (A frame
        // of another track may come a little before the keyframe that started the cluster.)
        let relative = (frame.ms as i64 - cluster.ms as i64)
            .clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
        let mut block = Vec::with_capacity(frame.data.len() + 16);
        put_id(&mut block, SIMPLE_BLOCK);
        put_size(&mut block, frame.data.len() as u64 + 4);
        block.push(0x80 | frame.track);
        block.extend_from_slice(&relative.to_be_bytes());
        block.push(if frame.keyframe { 0x80 } else { 0x00 });
        block.extend_from_slice(&frame.data);
        cluster.len += block.len() as u64;
        let index = usize::from(frame.track) - 1;
        if let Some(end) = self.ends.get_mut(index) {
            *end = Some(match *end {
                None => (frame.ms, 0),
                Some((last, _)) if frame.ms > last => (frame.ms, frame.ms - last),
                Some((last, step)) => (last.max(frame.ms), step),
            });
        }
        self.append(block, out);
        self.written_ms = self.written_ms.max(self.end_ms());
    }

    /// Patches the open cluster's size, if one is open.
    fn close_cluster(&mut self, out: &mut Vec<FileOp>) {
        if let Some(cluster) = self.cluster.take() {
            out.push(FileOp::Patch {
                at: cluster.at + 4,
                bytes: size8(cluster.len).to_vec(),
            });
        }
    }

    fn append(&mut self, bytes: Vec<u8>, out: &mut Vec<FileOp>) {
        self.len += bytes.len() as u64;
        out.push(FileOp::Append(bytes));
    }
}

/// Nanoseconds from Matroska's epoch to `date` (negative before it).
fn date_utc(date: SystemTime) -> i64 {
    let nanos = match date.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let from = nanos - i128::from(MATROSKA_EPOCH) * 1_000_000_000;
    from.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The content of one TrackEntry.
fn track_entry(number: u8, track: &TrackHeader) -> Vec<u8> {
    let mut e = Vec::new();
    put_uint(&mut e, TRACK_NUMBER, u64::from(number));
    put_uint(&mut e, TRACK_UID, u64::from(number));
    put_uint(
        &mut e,
        TRACK_TYPE,
        match track.kind {
            TrackType::Video => 1,
            TrackType::Audio => 2,
        },
    );
    put_uint(&mut e, FLAG_LACING, 0);
    put_bytes(&mut e, CODEC_ID, track.codec_id.as_bytes());
    put_bytes(
        &mut e,
        NAME,
        match track.kind {
            TrackType::Video => b"Video",
            TrackType::Audio => b"Audio",
        },
    );
    if !track.codec_private.is_empty() {
        put_bytes(&mut e, CODEC_PRIVATE, &track.codec_private);
    }
    match track.kind {
        TrackType::Video => {
            let mut video = Vec::new();
            put_uint(&mut video, PIXEL_WIDTH, u64::from(track.pixels.0));
            put_uint(&mut video, PIXEL_HEIGHT, u64::from(track.pixels.1));
            put_element(&mut e, VIDEO, &video);
        }
        TrackType::Audio => {
            let (delay, preroll) = track.delay_and_preroll;
            if delay > 0 {
                put_uint(&mut e, CODEC_DELAY, delay);
            }
            if preroll > 0 {
                put_uint(&mut e, SEEK_PRE_ROLL, preroll);
            }
            let mut audio = Vec::new();
            put_float(&mut audio, SAMPLING_FREQUENCY, f64::from(track.audio.0));
            put_uint(&mut audio, CHANNELS, u64::from(track.audio.1));
            put_element(&mut e, AUDIO, &audio);
        }
    }
    e
}

/// A Seek entry pointing at element `id` at `position` (relative to the Segment's data),
/// always [`SEEK_ENTRY_LEN`] bytes.
fn seek_entry(id: u32, position: u64) -> [u8; SEEK_ENTRY_LEN] {
    let mut content = Vec::with_capacity(18);
    put_id(&mut content, SEEK_ID);
    put_size(&mut content, 4);
    content.extend_from_slice(&id.to_be_bytes());
    put_id(&mut content, SEEK_POSITION);
    put_size(&mut content, 8);
    content.extend_from_slice(&position.to_be_bytes());
    let mut entry = Vec::with_capacity(SEEK_ENTRY_LEN);
    put_element(&mut entry, SEEK, &content);
    let mut fixed = [0u8; SEEK_ENTRY_LEN];
    // Id 2 bytes, size 1 byte, content 18 bytes: exactly SEEK_ENTRY_LEN.
    fixed.copy_from_slice(&entry[..SEEK_ENTRY_LEN]);
    fixed
}

/// A Void element of `total` bytes (at least 2, less than 129).
fn void(total: usize) -> Vec<u8> {
    let mut v = vec![0u8; total.clamp(2, 128)];
    // At least two bytes: the id and a one-byte size.
    v[0] = VOID as u8;
    v[1] = 0x80 | (v.len() - 2) as u8;
    v
}

/// An 8-byte EBML size (for patches into fields written as [`UNKNOWN_SIZE`]).
fn size8(size: u64) -> [u8; 8] {
    let mut bytes = size.to_be_bytes();
    bytes[0] = 0x01;
    bytes
}

/// Appends an element id (its bytes carry their own length marker).
fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a size as the shortest EBML variable-length integer.
fn put_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    // A length of n bytes holds 7n bits, all ones being reserved for "unknown".
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

fn put_element(out: &mut Vec<u8>, id: u32, content: &[u8]) {
    put_id(out, id);
    put_size(out, content.len() as u64);
    out.extend_from_slice(content);
}

fn put_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    put_element(out, id, &bytes[skip..]);
}

fn put_int(out: &mut Vec<u8>, id: u32, value: i64) {
    put_element(out, id, &value.to_be_bytes());
}

fn put_float(out: &mut Vec<u8>, id: u32, value: f64) {
    put_element(out, id, &value.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, id: u32, value: &[u8]) {
    put_element(out, id, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Applies ops to an in-memory file.
    fn apply(file: &mut Vec<u8>, ops: &[FileOp]) {
        for op in ops {
            match op {
                FileOp::Append(bytes) => file.extend_from_slice(bytes),
                FileOp::Patch { at, bytes } => {
                    let at = *at as usize;
                    file[at..at + bytes.len()].copy_from_slice(bytes);
                }
            }
        }
    }

    /// Reads one element header at `pos`: (id, size or None if unknown, header length).
    fn header(file: &[u8], pos: usize) -> (u32, Option<u64>, usize) {
        let first = file[pos];
        let id_len = first.leading_zeros() as usize + 1;
        let id = file[pos..pos + id_len]
            .iter()
            .fold(0u32, |a, b| (a << 8) | u32::from(*b));
        let s = pos + id_len;
        let size_len = file[s].leading_zeros() as usize + 1;
        let mask = (0xFFu16 >> size_len) as u8;
        let mut size = u64::from(file[s] & mask);
        let mut all_ones = size == u64::from(mask);
        for b in &file[s + 1..s + size_len] {
            size = (size << 8) | u64::from(*b);
            all_ones &= *b == 0xFF;
        }
        (
            id,
            if all_ones { None } else { Some(size) },
            id_len + size_len,
        )
    }

    /// The children of the element whose content is `start..end`: (id, content offset, size).
    fn children(file: &[u8], start: usize, end: usize) -> Vec<(u32, usize, usize)> {
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let (id, size, head) = header(file, pos);
            let size = size.expect("every size patched") as usize;
            out.push((id, pos + head, size));
            pos += head + size;
        }
        assert_eq!(pos, end, "children fill their parent exactly");
        out
    }

    fn uint(file: &[u8], at: usize, size: usize) -> u64 {
        file[at..at + size]
            .iter()
            .fold(0, |a, b| (a << 8) | u64::from(*b))
    }

    fn header_av() -> FileHeader {
        FileHeader {
            webm: true,
            tracks: vec![
                TrackHeader {
                    kind: TrackType::Audio,
                    codec_id: "A_OPUS",
                    codec_private: b"OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00".to_vec(),
                    pixels: (0, 0),
                    audio: (48_000, 2),
                    delay_and_preroll: (0, 80_000_000),
                },
                TrackHeader {
                    kind: TrackType::Video,
                    codec_id: "V_VP8",
                    codec_private: Vec::new(),
                    pixels: (640, 480),
                    audio: (0, 0),
                    delay_and_preroll: (0, 0),
                },
            ],
            date: UNIX_EPOCH + Duration::from_secs(MATROSKA_EPOCH + 60),
        }
    }

    /// Ten seconds of 20 ms audio and 33 ms video with a keyframe every 3 s.
    fn ten_seconds(muxer: &mut Muxer, out: &mut Vec<FileOp>) {
        let (mut audio, mut video) = (0u64, 0u64);
        while audio < 10_000 || video < 10_000 {
            if audio <= video {
                let frame = Frame {
                    track: 1,
                    ms: audio,
                    keyframe: true,
                    data: vec![0xA0; 80],
                };
                muxer.push(frame, out);
                audio += 20;
            } else {
                let frame = Frame {
                    track: 2,
                    ms: video,
                    keyframe: video % 3000 < 33,
                    data: vec![0xB0; 1200],
                };
                muxer.push(frame, out);
                video += 33;
            }
        }
    }

    #[test]
    fn a_finished_file_has_sizes_duration_cues_and_ordered_blocks() {
        let (mut muxer, mut ops) = Muxer::new(&header_av());
        ten_seconds(&mut muxer, &mut ops);
        muxer.finish(&mut ops);
        let mut file = Vec::new();
        apply(&mut file, &ops);

        let top = children(&file, 0, file.len());
        assert_eq!(top.iter().map(|c| c.0).collect::<Vec<_>>(), [EBML, SEGMENT]);
        let ebml = children(&file, top[0].1, top[0].1 + top[0].2);
        let doc_type = ebml.iter().find(|c| c.0 == DOC_TYPE).unwrap();
        assert_eq!(&file[doc_type.1..doc_type.1 + doc_type.2], b"webm");
        let segment_data = top[1].1;
        let segment = children(&file, segment_data, segment_data + top[1].2);
        let ids: Vec<u32> = segment.iter().map(|c| c.0).collect();
        assert_eq!(&ids[..3], [SEEK_HEAD, INFO, TRACKS]);
        assert_eq!(*ids.last().unwrap(), CUES);
        let clusters: Vec<_> = segment.iter().filter(|c| c.0 == CLUSTER).collect();
        // Keyframes at 0, 3, 6 and 9 s: four clusters.
        assert_eq!(clusters.len(), 4);

        // The SeekHead points at Info, Tracks and Cues.
        let seeks = children(&file, segment[0].1, segment[0].1 + segment[0].2);
        assert_eq!(seeks.len(), 3);
        for (seek, wanted) in seeks.iter().zip([INFO, TRACKS, CUES]) {
            let fields = children(&file, seek.1, seek.1 + seek.2);
            assert_eq!(uint(&file, fields[0].1, 4) as u32, wanted);
            let position = uint(&file, fields[1].1, 8) as usize;
            assert_eq!(header(&file, segment_data + position).0, wanted);
        }

        // Duration: the last video frame (9999 ms) plus one frame interval.
        let info = children(&file, segment[1].1, segment[1].1 + segment[1].2);
        let duration = info.iter().find(|c| c.0 == DURATION).unwrap();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&file[duration.1..duration.1 + 8]);
        assert_eq!(f64::from_be_bytes(bytes), 10_032.0);

        // Blocks come in time order and every cluster starts with a video keyframe.
        let mut last = 0u64;
        let mut blocks = 0;
        for cluster in &clusters {
            let items = children(&file, cluster.1, cluster.1 + cluster.2);
            let base = uint(&file, items[0].1, items[0].2);
            for (n, block) in items[1..].iter().enumerate() {
                let track = file[block.1] & 0x7F;
                let rel = i16::from_be_bytes([file[block.1 + 1], file[block.1 + 2]]);
                let ms = (base as i64 + i64::from(rel)) as u64;
                assert!(ms >= last, "{ms} after {last}");
                last = ms;
                if n == 0 {
                    assert_eq!(track, 2);
                    assert_eq!(file[block.1 + 3], 0x80);
                }
                blocks += 1;
            }
        }
        assert_eq!(blocks, 500 + 304);

        // Cues: one per cluster, pointing at its keyframe.
        let cues = segment.last().unwrap();
        let points = children(&file, cues.1, cues.1 + cues.2);
        assert_eq!(points.len(), 4);
        for (point, cluster) in points.iter().zip(&clusters) {
            let fields = children(&file, point.1, point.1 + point.2);
            let positions = children(&file, fields[1].1, fields[1].1 + fields[1].2);
            let cluster_pos = uint(&file, positions[1].1, positions[1].2) as usize;
            assert_eq!(
                segment_data + cluster_pos + header(&file, segment_data + cluster_pos).2,
                cluster.1
            );
        }
    }

    #[test]
    fn a_file_cut_after_any_append_is_salvaged_with_sizes_and_duration() {
        let (mut muxer, mut ops) = Muxer::new(&header_av());
        ten_seconds(&mut muxer, &mut ops);
        // Cut in the middle: after the last complete append before 60 % of the bytes.
        let mut file = Vec::new();
        let mut cut = 0;
        for op in &ops {
            if let FileOp::Append(bytes) = op
                && file.len() + bytes.len() > muxer.len() as usize * 6 / 10
            {
                break;
            }
            apply(&mut file, std::slice::from_ref(op));
            cut = file.len();
        }
        // Before salvage the file parses up to its end thanks to unknown sizes.
        let (_, size, _) = header(&file, children_len_of_ebml(&file));
        assert_eq!(size, None, "the segment's size is unknown until patched");
        apply(&mut file, &muxer.salvage(cut as u64, 1000));
        let top = children(&file, 0, file.len());
        assert_eq!(top[1].0, SEGMENT);
        // The last cluster's size is still unknown; the segment's is right.
        assert_eq!(top[1].1 + top[1].2, file.len());
    }

    fn children_len_of_ebml(file: &[u8]) -> usize {
        let (_, size, head) = header(file, 0);
        head + size.unwrap() as usize
    }

    #[test]
    fn audio_only_files_get_a_cue_per_cluster() {
        let mut header = header_av();
        header.tracks.truncate(1);
        let (mut muxer, mut ops) = Muxer::new(&header);
        for n in 0..600u64 {
            let frame = Frame {
                track: 1,
                ms: n * 20,
                keyframe: true,
                data: vec![1; 60],
            };
            muxer.push(frame, &mut ops);
        }
        muxer.finish(&mut ops);
        let mut file = Vec::new();
        apply(&mut file, &ops);
        let top = children(&file, 0, file.len());
        let segment = children(&file, top[1].1, top[1].1 + top[1].2);
        let clusters = segment.iter().filter(|c| c.0 == CLUSTER).count();
        assert_eq!(clusters, 3); // 12 s in clusters of 5 s
        let cues = segment.iter().find(|c| c.0 == CUES).unwrap();
        assert_eq!(children(&file, cues.1, cues.1 + cues.2).len(), 3);
    }

    #[test]
    fn sizes_are_the_shortest_ebml_integers() {
        let encode = |n| {
            let mut v = Vec::new();
            put_size(&mut v, n);
            v
        };
        assert_eq!(encode(0), [0x80]);
        assert_eq!(encode(126), [0xFE]);
        // 127 would be all ones in one byte ("unknown"): two bytes.
        assert_eq!(encode(127), [0x40, 0x7F]);
        assert_eq!(encode(16_382), [0x7F, 0xFE]);
        assert_eq!(encode(16_383), [0x20, 0x3F, 0xFF]);
        assert_eq!(size8(5), [1, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(void(SEEK_ENTRY_LEN).len(), SEEK_ENTRY_LEN);
        assert_eq!(seek_entry(CUES, 7).len(), SEEK_ENTRY_LEN);
    }
}
