//! A timer heap keyed by deadline, with lazy invalidation.
//!
//! Every `Rtc` reports one deadline after each drain. Pushing a new entry is O(log n); entries
//! whose deadline no longer matches the peer's current one are skipped when they reach the top
//! ("lazy invalidation"), so a deadline change never searches the heap. [`TimerHeap::compact`]
//! bounds the garbage: the owner calls it when the heap grows far beyond the number of peers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::ids::PeerId;

/// Deadlines of peers, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, PeerId)>>,
}

impl TimerHeap {
    /// Records that `peer` wants to be woken at `at`. Older entries for it become stale.
    pub(crate) fn schedule(&mut self, at: Instant, peer: PeerId) {
        self.heap.push(Reverse((at, peer)));
    }

    /// The earliest deadline that is still current, dropping stale entries on the way.
    pub(crate) fn next_deadline(
        &mut self,
        is_current: impl Fn(Instant, PeerId) -> bool,
    ) -> Option<Instant> {
        while let Some(Reverse((at, peer))) = self.heap.peek().copied() {
            if is_current(at, peer) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one peer whose current deadline is at or before `now`.
    pub(crate) fn pop_due(
        &mut self,
        now: Instant,
        is_current: impl Fn(Instant, PeerId) -> bool,
    ) -> Option<PeerId> {
        let at = self.next_deadline(&is_current)?;
        if at > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, peer))| peer)
    }

    /// Drops every stale entry.
    pub(crate) fn compact(&mut self, is_current: impl Fn(Instant, PeerId) -> bool) {
        self.heap
            .retain(|Reverse((at, peer))| is_current(*at, *peer));
    }

    /// Number of entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let t0 = Instant::now();
        let a = PeerId::new(0, 0);
        let b = PeerId::new(1, 0);
        let mut current: HashMap<PeerId, Instant> = HashMap::new();
        let mut heap = TimerHeap::default();
        for (peer, ms) in [(a, 10), (b, 20), (a, 30)] {
            let at = t0 + Duration::from_millis(ms);
            current.insert(peer, at);
            heap.schedule(at, peer);
        }
        let check = |at: Instant, p: PeerId| current.get(&p) == Some(&at);
        // a's 10 ms entry is stale (a moved to 30 ms).
        assert_eq!(
            heap.next_deadline(check),
            Some(t0 + Duration::from_millis(20))
        );
        assert_eq!(heap.pop_due(t0 + Duration::from_millis(19), check), None);
        assert_eq!(heap.pop_due(t0 + Duration::from_millis(25), check), Some(b));
        current.remove(&b);
        heap.schedule(t0 + Duration::from_millis(5), b); // b is gone: stale at once
        let check = |at: Instant, p: PeerId| current.get(&p) == Some(&at);
        heap.compact(check);
        assert_eq!(heap.len(), 1);
        assert_eq!(heap.pop_due(t0 + Duration::from_secs(1), check), Some(a));
    }
}
