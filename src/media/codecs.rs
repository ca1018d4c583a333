//! The codec table: which codecs a group may use and the fixed payload types they get.
//!
//! Every codec gets a fixed payload type, as Galène does. Publishers' offers are answered with
//! the publisher's own payload types (str0m keeps the offerer's numbers), but every stream the
//! server *offers* uses this table, so subscribers always see the same numbers. Video codecs
//! also get an RTX payload type: str0m answers subscriber NACKs only through RTX.

use str0m::RtcConfig;
use str0m::format::{Codec, FormatParams};
use str0m::media::Pt;
use str0m::media::{Frequency, MediaKind};

/// A codec a group can allow (the names of Galène's `codecs` group setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaCodec {
    /// VP8 video, payload type 96 (RTX 97).
    Vp8,
    /// VP9 video, profile 0 on 98 (RTX 99) and profile 2 on 100 (RTX 101).
    Vp9,
    /// AV1 video, payload type 35 (RTX 36).
    Av1,
    /// H.264 constrained baseline, packetization mode 1, payload type 108 (RTX 109).
    H264,
    /// Opus audio, payload type 111.
    Opus,
    /// G.722 audio, payload type 9.
    G722,
    /// G.711 µ-law audio, payload type 0.
    Pcmu,
    /// G.711 A-law audio, payload type 8.
    Pcma,
}

impl MediaCodec {
    /// What a group allows when it does not list codecs: VP8 and Opus.
    pub const DEFAULT: &'static [MediaCodec] = &[MediaCodec::Vp8, MediaCodec::Opus];

    /// Parses a codec name as written in a group file (`"vp8"`, `"opus"`, ...), ignoring case.
    pub fn from_name(name: &str) -> Option<MediaCodec> {
        const NAMES: [(&str, MediaCodec); 8] = [
            ("vp8", MediaCodec::Vp8),
            ("vp9", MediaCodec::Vp9),
            ("av1", MediaCodec::Av1),
            ("h264", MediaCodec::H264),
            ("opus", MediaCodec::Opus),
            ("g722", MediaCodec::G722),
            ("pcmu", MediaCodec::Pcmu),
            ("pcma", MediaCodec::Pcma),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| *c)
    }

    /// The str0m codec this table entry describes.
    pub fn str0m_codec(self) -> Codec {
        match self {
            MediaCodec::Vp8 => Codec::Vp8,
            MediaCodec::Vp9 => Codec::Vp9,
            MediaCodec::Av1 => Codec::Av1,
            MediaCodec::H264 => Codec::H264,
            MediaCodec::Opus => Codec::Opus,
            MediaCodec::G722 => Codec::G722,
            MediaCodec::Pcmu => Codec::PCMU,
            MediaCodec::Pcma => Codec::PCMA,
        }
    }

    /// The table entry for a str0m codec, if the table has one.
    pub fn from_str0m(codec: Codec) -> Option<MediaCodec> {
        Some(match codec {
            Codec::Vp8 => MediaCodec::Vp8,
            Codec::Vp9 => MediaCodec::Vp9,
            Codec::Av1 => MediaCodec::Av1,
            Codec::H264 => MediaCodec::H264,
            Codec::Opus => MediaCodec::Opus,
            Codec::G722 => MediaCodec::G722,
            Codec::PCMU => MediaCodec::Pcmu,
            Codec::PCMA => MediaCodec::Pcma,
            _ => return None,
        })
    }

    /// Audio or video.
    pub fn kind(self) -> MediaKind {
        match self {
            MediaCodec::Vp8 | MediaCodec::Vp9 | MediaCodec::Av1 | MediaCodec::H264 => {
                MediaKind::Video
            }
            MediaCodec::Opus | MediaCodec::G722 | MediaCodec::Pcmu | MediaCodec::Pcma => {
                MediaKind::Audio
            }
        }
    }
}

/// Replaces the codec configuration of `config` with exactly `codecs`, at their fixed payload
/// types. Duplicates in `codecs` are ignored.
pub(crate) fn configure_codecs(mut config: RtcConfig, codecs: &[MediaCodec]) -> RtcConfig {
    config = config.clear_codecs();
    let table = config.codec_config();
    let mut done: Vec<MediaCodec> = Vec::with_capacity(codecs.len());
    for &codec in codecs {
        if done.contains(&codec) {
            continue;
        }
        done.push(codec);
        let ninety = Frequency::NINETY_KHZ;
        match codec {
            MediaCodec::Vp8 => table.add_config(
                pt(96),
                Some(pt(97)),
                Codec::Vp8,
                ninety,
                None,
                FormatParams::default(),
            ),
            MediaCodec::Vp9 => {
                for (main, rtx, profile) in [(98, 99, 0), (100, 101, 2)] {
                    table.add_config(
                        pt(main),
                        Some(pt(rtx)),
                        Codec::Vp9,
                        ninety,
                        None,
                        FormatParams {
                            profile_id: Some(profile),
                            ..FormatParams::default()
                        },
                    );
                }
            }
            MediaCodec::Av1 => table.add_config(
                pt(35),
                Some(pt(36)),
                Codec::Av1,
                ninety,
                None,
                FormatParams::default(),
            ),
            MediaCodec::H264 => table.add_h264(pt(108), Some(pt(109)), true, 0x42e01f),
            MediaCodec::Opus => table.add_config(
                pt(111),
                None,
                Codec::Opus,
                Frequency::FORTY_EIGHT_KHZ,
                Some(2),
                FormatParams {
                    min_p_time: Some(10),
                    use_inband_fec: Some(true),
                    stereo: Some(true),
                    sprop_stereo: Some(true),
                    ..FormatParams::default()
                },
            ),
            MediaCodec::G722 => table.enable_g722(true, false),
            MediaCodec::Pcmu => table.enable_pcmu(true, false),
            MediaCodec::Pcma => table.enable_pcma(true, false),
        }
    }
    config
}

fn pt(value: u8) -> Pt {
    Pt::new_with_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::Rtc;

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(MediaCodec::from_name("VP8"), Some(MediaCodec::Vp8));
        assert_eq!(MediaCodec::from_name("opus"), Some(MediaCodec::Opus));
        assert_eq!(MediaCodec::from_name("h265"), None);
        for c in [
            MediaCodec::Vp8,
            MediaCodec::Vp9,
            MediaCodec::Av1,
            MediaCodec::H264,
            MediaCodec::Opus,
            MediaCodec::G722,
            MediaCodec::Pcmu,
            MediaCodec::Pcma,
        ] {
            assert_eq!(MediaCodec::from_str0m(c.str0m_codec()), Some(c));
        }
    }

    #[test]
    fn configured_payload_types_are_galenes() {
        let config = configure_codecs(
            Rtc::builder(),
            &[
                MediaCodec::Vp8,
                MediaCodec::Vp9,
                MediaCodec::Av1,
                MediaCodec::H264,
                MediaCodec::Opus,
                MediaCodec::Opus,
            ],
        );
        let mut config = config;
        let pts: Vec<(u8, Option<u8>)> = config
            .codec_config()
            .params()
            .iter()
            .map(|p| (*p.pt(), p.resend().map(|r| *r)))
            .collect();
        assert_eq!(
            pts,
            vec![
                (96, Some(97)),
                (98, Some(99)),
                (100, Some(101)),
                (35, Some(36)),
                (108, Some(109)),
                (111, None)
            ]
        );
    }
}
