//! Codec-aware forwarding for one down track: which frames of a scalable stream a receiver
//! gets, and the codec headers it sees.
//!
//! A receiver whose link cannot carry even the lowest simulcast layer gets fewer frames rather
//! than a frozen picture, and the numbers in what it receives stay consistent:
//!
//! - [`vp8`] and [`vp9`] read the RTP payload descriptors (RFC 7741, RFC 9628) and write new
//!   picture IDs and TL0PICIDX values into them.
//! - [`temporal`] decides per packet whether a down track forwards it, following a target
//!   temporal (and for VP9 spatial) layer, switching only where the decoder can follow.
//! - [`picture_id`] renumbers picture IDs and TL0PICIDX per down track so they have no gaps
//!   where frames were left out on purpose, and continue across source switches.
//! - [`seqmap`] does the same for RTP sequence numbers.
//!
//! Everything is fixed-size plain data: nothing allocates per packet and no input panics.
//! [`super::forward::DownTrack`] puts them together.

pub(crate) mod picture_id;
pub(crate) mod seqmap;
pub(crate) mod temporal;
pub(crate) mod vp8;
pub(crate) mod vp9;

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
pub(crate) mod test_rng;

use picture_id::CodecIds;
use temporal::LayerPacket;
use vp8::Vp8Descriptor;
use vp9::Vp9Descriptor;

/// What the forwarding decision knows of a packet's codec, parsed once per incoming packet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CodecMeta {
    /// VP8 with its payload descriptor.
    Vp8(Vp8Descriptor),
    /// VP9 with its payload descriptor.
    Vp9(Vp9Descriptor),
    /// Audio, another codec, or a descriptor that did not parse: forwarded as it is.
    Other,
}

impl CodecMeta {
    /// Parses the descriptor of a VP8 or VP9 payload.
    pub(crate) fn parse(codec: str0m::format::Codec, payload: &[u8]) -> CodecMeta {
        match codec {
            str0m::format::Codec::Vp8 => Vp8Descriptor::parse(payload)
                .map(CodecMeta::Vp8)
                .unwrap_or(CodecMeta::Other),
            str0m::format::Codec::Vp9 => Vp9Descriptor::parse(payload)
                .map(CodecMeta::Vp9)
                .unwrap_or(CodecMeta::Other),
            _ => CodecMeta::Other,
        }
    }

    /// The packet as the temporal filter sees it (`None` for [`CodecMeta::Other`]).
    pub(crate) fn layer(&self, ts: u32, marker: bool) -> Option<LayerPacket> {
        match self {
            CodecMeta::Vp8(d) => Some(LayerPacket::vp8(d, ts, marker)),
            CodecMeta::Vp9(d) => Some(LayerPacket::vp9(d, ts, marker)),
            CodecMeta::Other => None,
        }
    }

    /// The picture ID and TL0PICIDX it carries.
    pub(crate) fn ids(&self) -> CodecIds {
        match self {
            CodecMeta::Vp8(d) => d.ids(),
            CodecMeta::Vp9(d) => d.ids(),
            CodecMeta::Other => CodecIds::default(),
        }
    }

    /// Its temporal layer, if the stream has temporal layers.
    pub(crate) fn tid(&self) -> Option<u8> {
        match self {
            CodecMeta::Vp8(d) => d.tid,
            CodecMeta::Vp9(d) => d.layers.map(|l| l.tid),
            CodecMeta::Other => None,
        }
    }

    /// Whether the receiver needs picture IDs without gaps (all but VP9's flexible mode,
    /// whose references are picture ID differences).
    pub(crate) fn dense_ids(&self) -> bool {
        match self {
            CodecMeta::Vp8(_) => true,
            CodecMeta::Vp9(d) => !d.flexible,
            CodecMeta::Other => false,
        }
    }

    /// Writes `ids` into a copy of the payload's descriptor (VP9; VP8 is patched by str0m).
    pub(crate) fn write_into(&self, payload: &mut [u8], ids: CodecIds) -> bool {
        match self {
            CodecMeta::Vp8(d) => d.write_into(payload, ids),
            CodecMeta::Vp9(d) => d.write_into(payload, ids),
            CodecMeta::Other => false,
        }
    }
}
