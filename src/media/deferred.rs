//! Work for another stream (or for the one being drained) that comes up in the middle of a
//! drain: a keyframe request to a publisher, an unsubscription, a removal. It waits in a queue
//! that runs once the drains of the current input are over, so no peer is removed or re-drained
//! while it is borrowed.

use str0m::media::Mid;

use super::ids::{PeerId, SourceRef, Subscriber};
use super::types::GoneReason;

/// Work that crosses from one `Rtc` to another, run after the current mutation is drained.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// Ask the publisher of this layer for a keyframe (throttled).
    Keyframe(SourceRef),
    /// A down stream's receiver asked for a keyframe on this m-line.
    KeyframeForTrack { down: PeerId, mid: Mid },
    /// A down track no longer listens to this layer.
    Unsubscribe(SourceRef, Subscriber),
    /// Drop a stream.
    Remove(PeerId, GoneReason),
}
