//! Names: the caller's keys for streams ([`StreamKey`]) and subscriber links ([`LinkKey`]), and
//! the engine's own handles for a peer ([`PeerId`]), one of its incoming layers ([`SourceRef`])
//! and one of its down tracks ([`Subscriber`]). Plain values that every other file may use.

/// The caller's name for one stream (one `Rtc`). Up and down streams share one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey(pub u64);

/// The caller's name for one subscriber's network path: every down stream created with the
/// same key shares one bandwidth budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkKey(pub u64);

/// Handle of a peer slot: index plus generation, so a stale handle never reaches a new peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PeerId {
    index: u32,
    generation: u32,
}

impl PeerId {
    /// A handle for slot `index` in its `generation`.
    pub(crate) fn new(index: u32, generation: u32) -> PeerId {
        PeerId { index, generation }
    }

    /// The slot index.
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    /// The slot generation.
    pub(crate) fn generation(self) -> u32 {
        self.generation
    }
}

/// One incoming layer of one up stream: the up peer and the index of the layer in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceRef {
    /// The up stream's peer.
    pub up: PeerId,
    /// Index into that peer's layers.
    pub layer: usize,
}

/// A down track fed by a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subscriber {
    /// The down stream's peer.
    pub down: PeerId,
    /// Index into its tracks.
    pub track: usize,
}
