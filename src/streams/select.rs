//! Which tracks of a published stream a receiver gets, from what it asked for.
//!
//! A publisher names its stream with one label (`camera`, `screenshare`, ...) or, in the
//! older dialect of Galène's protocol, labels each track (`audio`, `video`, `screenshare`).
//! A receiver asks either by stream label (a map from label to the tracks it wants, `""`
//! standing for every other label) or by track label (a list). A per-stream override
//! replaces both.

use crate::core::{StreamRequest, TrackSelection};
use crate::media::{Selection, TrackInfo, TrackKind, VideoChoice};

/// What the receiver sees of a published stream when it decides.
pub(super) struct Published<'a> {
    /// The stream's label.
    pub label: &'a str,
    /// Track label per mid, when the publisher labelled tracks rather than the stream.
    pub track_labels: &'a [(String, String)],
    /// The stream's tracks.
    pub tracks: &'a [TrackInfo],
}

/// The stream label that per-track labels stand for.
pub(super) fn stream_label_of_tracks(labels: &[(String, String)]) -> String {
    if labels.iter().any(|(_, l)| l == "screenshare") {
        "screenshare".to_owned()
    } else {
        "camera".to_owned()
    }
}

/// Whether the stream carries a screen rather than a camera.
pub(super) fn is_screenshare(label: &str, track_labels: &[(String, String)]) -> bool {
    label == "screenshare" || track_labels.iter().any(|(_, l)| l == "screenshare")
}

/// What a receiver gets of `published`: its override, else what its request says.
pub(super) fn select(
    request: &StreamRequest,
    requested: Option<TrackSelection>,
    published: &Published<'_>,
) -> Selection {
    let wanted = match (requested, request) {
        (Some(selection), _) => selection,
        (None, StreamRequest::ByStreamLabel(map)) => map
            .get(published.label)
            .or_else(|| map.get(""))
            .copied()
            .unwrap_or_default(),
        (None, StreamRequest::ByTrackLabel(labels)) => {
            let mut selection = TrackSelection::default();
            for track in published.tracks {
                if labels.contains(track_label(published, track)) {
                    match track.kind {
                        TrackKind::Audio => selection.audio = true,
                        TrackKind::Video => selection.video = true,
                    }
                }
            }
            selection
        }
    };
    Selection {
        audio: wanted.audio,
        video: if wanted.video {
            VideoChoice::High
        } else if wanted.video_low {
            VideoChoice::Low
        } else {
            VideoChoice::None
        },
    }
}

/// A track's label: the publisher's own, else its kind (`screenshare` for a screen's video).
fn track_label<'a>(published: &Published<'a>, track: &TrackInfo) -> &'a str {
    if !published.track_labels.is_empty() {
        return published
            .track_labels
            .iter()
            .find(|(mid, _)| *mid == track.mid)
            .map(|(_, l)| l.as_str())
            .unwrap_or("");
    }
    match track.kind {
        TrackKind::Audio => "audio",
        TrackKind::Video if published.label == "screenshare" => "screenshare",
        TrackKind::Video => "video",
    }
}

/// The kind and mid of every audio/video m-line of an SDP, in order.
pub(super) fn sdp_media(sdp: &str) -> Vec<(TrackKind, String)> {
    let mut media = Vec::new();
    let mut kind = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            kind = if rest.starts_with("audio") {
                Some(TrackKind::Audio)
            } else if rest.starts_with("video") {
                Some(TrackKind::Video)
            } else {
                None
            };
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(k) = kind.take()
        {
            media.push((k, mid.to_owned()));
        }
    }
    media
}
