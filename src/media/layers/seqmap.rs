//! Sequence numbers without holes where packets were dropped on purpose.
//!
//! A down track that leaves packets out (a temporal layer it does not forward) must not leave
//! holes in its outgoing sequence numbers: the receiver would take them for losses and NACK them
//! forever. [`SeqMap`] maps extended (`u64`) incoming numbers to outgoing ones with every
//! dropped number removed from the space:
//!
//! `out = base_out + (seq - base_in) - (numbers dropped before seq)`
//!
//! Drops are kept as runs of consecutive numbers in a fixed-size ring, so one dropped frame of
//! several packets costs one entry. Reordering is handled: a late packet maps to the number it
//! would have had in order, and a late packet that was itself dropped, or is older than the ring
//! remembers, maps to `None`. A number that was already mapped keeps its outgoing value forever,
//! so a drop below the highest mapped number is refused (it stays a hole, which the receiver
//! treats as a loss: this only happens when packets of two frames arrive interleaved).
//!
//! The same type renumbers picture IDs ([`super::picture_id`]) once they are extended to `u64`.
//! It composes with an offset rewriter that keeps its own bases: call
//! [`SeqMap::dropped_before`] and subtract, or let the map keep the bases ([`SeqMap::rebase`],
//! [`SeqMap::map`]).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

/// A jump this far past everything seen so far forgets the recorded drops (they can no longer
/// matter: packets that old are not forwarded).
pub const FORGET_JUMP: u64 = 1 << 15;

/// One run of consecutive dropped numbers, `start..end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Run {
    start: u64,
    end: u64,
}

impl Run {
    fn len(self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// Maps extended incoming numbers to outgoing ones, leaving out the numbers dropped on purpose.
///
/// `N` is how many runs of dropped numbers are remembered (a run is typically one dropped
/// frame); older drops are folded into a count and numbers before them can no longer be mapped.
#[derive(Debug, Clone)]
pub struct SeqMap<const N: usize = 64> {
    base_in: u64,
    base_out: u64,
    /// Runs of dropped numbers, oldest first, starting at `runs[head]`.
    runs: [Run; N],
    head: usize,
    len: usize,
    /// Numbers below this are too old to map (or predate the base).
    horizon: u64,
    /// Numbers dropped since the base, listed or not.
    total: u64,
    /// The highest number mapped so far: drops at or below it would renumber sent packets.
    highest_mapped: Option<u64>,
    /// The highest number seen (mapped or dropped).
    highest_seen: u64,
}

impl<const N: usize> Default for SeqMap<N> {
    fn default() -> Self {
        SeqMap::new()
    }
}

impl<const N: usize> SeqMap<N> {
    /// The identity map: number `n` maps to `n` until something is dropped.
    pub fn new() -> Self {
        const { assert!(N > 0, "a SeqMap needs room for at least one run") };
        SeqMap {
            base_in: 0,
            base_out: 0,
            runs: [Run::default(); N],
            head: 0,
            len: 0,
            horizon: 0,
            total: 0,
            highest_mapped: None,
            highest_seen: 0,
        }
    }

    /// Starts a new mapping where `first_in` maps to `first_out` (a new source). Drops and
    /// everything before `first_in` are forgotten.
    pub fn rebase(&mut self, first_in: u64, first_out: u64) {
        self.base_in = first_in;
        self.base_out = first_out;
        self.head = 0;
        self.len = 0;
        self.horizon = first_in;
        self.total = 0;
        self.highest_mapped = None;
        self.highest_seen = first_in;
    }

    /// Removes `seq` from the outgoing space. Returns whether it is (now or already) removed;
    /// `false` if it is too old or a later number was already mapped, in which case it stays a
    /// hole in the outgoing numbers.
    pub fn drop(&mut self, seq: u64) -> bool {
        if seq < self.horizon {
            return false;
        }
        if self.dropped_before(seq).is_none() {
            return true;
        }
        if self.highest_mapped.is_some_and(|h| seq <= h) {
            return false;
        }
        let Some(end) = seq.checked_add(1) else {
            return false;
        };
        self.note(seq);
        // Position of the first run that starts after `seq`.
        let k = (0..self.len)
            .rev()
            .find(|&i| self.run(i).start <= seq)
            .map_or(0, |i| i + 1);
        if let Some(prev) = k.checked_sub(1).map(|i| self.run(i)) {
            if seq < prev.end {
                return true;
            }
            if seq == prev.end {
                self.total = self.total.saturating_add(1);
                let next = (k < self.len).then(|| self.run(k));
                match next {
                    Some(next) if next.start == end => {
                        self.set(
                            k - 1,
                            Run {
                                end: next.end,
                                ..prev
                            },
                        );
                        self.remove(k);
                    }
                    _ => self.set(k - 1, Run { end, ..prev }),
                }
                return true;
            }
        }
        if k < self.len {
            let next = self.run(k);
            if next.start == end {
                self.total = self.total.saturating_add(1);
                self.set(k, Run { start: seq, ..next });
                return true;
            }
        }
        self.total = self.total.saturating_add(1);
        let mut k = k;
        if self.len == N {
            if k == 0 {
                // Older than every listed run: count it, and forget what lies before it.
                self.horizon = end;
                return true;
            }
            self.horizon = self.run(0).end;
            self.head = (self.head + 1) % N;
            self.len -= 1;
            k -= 1;
        }
        self.insert(k, Run { start: seq, end });
        true
    }

    /// The outgoing number of `seq`, or `None` if it was dropped, predates the base or is too
    /// old to know.
    pub fn map(&mut self, seq: u64) -> Option<u64> {
        if seq < self.base_in {
            return None;
        }
        self.note(seq);
        let before = self.dropped_before(seq)?;
        let out = self
            .base_out
            .checked_add(seq - self.base_in)?
            .checked_sub(before)?;
        self.highest_mapped = Some(self.highest_mapped.map_or(seq, |h| h.max(seq)));
        Some(out)
    }

    /// How many numbers before `seq` (since the base) were dropped, or `None` if `seq` itself
    /// was dropped or is too old to know.
    pub fn dropped_before(&self, seq: u64) -> Option<u64> {
        if seq < self.horizon {
            return None;
        }
        let mut before = self.total;
        for i in (0..self.len).rev() {
            let run = self.run(i);
            if run.start > seq {
                before = before.saturating_sub(run.len());
            } else if seq < run.end {
                return None;
            } else {
                break;
            }
        }
        Some(before)
    }

    /// How many numbers were dropped since the base.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.total
    }

    /// Records that `seq` was seen; a big jump forgets the listed runs.
    fn note(&mut self, seq: u64) {
        if seq > self.highest_seen.saturating_add(FORGET_JUMP) {
            self.len = 0;
            self.horizon = self.horizon.max(seq);
        }
        self.highest_seen = self.highest_seen.max(seq);
    }

    fn slot(&self, i: usize) -> usize {
        (self.head + i) % N
    }

    fn run(&self, i: usize) -> Run {
        self.runs.get(self.slot(i)).copied().unwrap_or_default()
    }

    fn set(&mut self, i: usize, run: Run) {
        let slot = self.slot(i);
        if let Some(r) = self.runs.get_mut(slot) {
            *r = run;
        }
    }

    /// Inserts at position `k` (`len < N`), shifting later runs up.
    fn insert(&mut self, k: usize, run: Run) {
        for i in (k..self.len).rev() {
            self.set(i + 1, self.run(i));
        }
        self.set(k, run);
        self.len += 1;
    }

    /// Removes position `k`, shifting later runs down.
    fn remove(&mut self, k: usize) {
        for i in k..self.len.saturating_sub(1) {
            self.set(i, self.run(i + 1));
        }
        self.len = self.len.saturating_sub(1);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::media::layers::test_rng::Rng;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn a_fresh_map_is_the_identity() {
        let mut m = SeqMap::<4>::new();
        assert_eq!(m.map(0), Some(0));
        assert_eq!(m.map(65_535), Some(65_535));
        assert_eq!(m.dropped(), 0);
    }

    #[test]
    fn drops_close_the_gap_across_the_16_bit_wrap() {
        let mut m = SeqMap::<8>::new();
        m.rebase(65_533, 1000);
        let mut out = Vec::new();
        for seq in 65_533..65_545u64 {
            // Drop a three-packet frame straddling 65535 -> 65536.
            if (65_535..65_538).contains(&seq) {
                assert!(m.drop(seq));
            } else {
                out.push(m.map(seq).unwrap());
            }
        }
        let expected: Vec<u64> = (1000..1009).collect();
        assert_eq!(out, expected);
        // The low 16 bits of the outgoing numbers are what goes on the wire.
        let mut m = SeqMap::<8>::new();
        m.rebase(10, 65_534);
        assert!(m.drop(11));
        assert_eq!(m.map(10).map(|s| s as u16), Some(65_534));
        assert_eq!(m.map(12).map(|s| s as u16), Some(65_535));
        assert_eq!(m.map(13).map(|s| s as u16), Some(0));
    }

    #[test]
    fn late_packets_map_to_their_in_order_numbers() {
        let mut m = SeqMap::<8>::new();
        m.rebase(100, 0);
        assert_eq!(m.map(100), Some(0));
        // 101 is late; 102..104 are a dropped frame; 105 arrives before 101.
        for s in 102..105 {
            assert!(m.drop(s));
        }
        assert_eq!(m.map(105), Some(2));
        assert_eq!(m.map(101), Some(1));
        // A retransmission maps to the same number; a dropped one stays dropped.
        assert_eq!(m.map(105), Some(2));
        assert_eq!(m.map(103), None);
        assert!(m.drop(103));
        // Before the base: not ours.
        assert_eq!(m.map(99), None);
    }

    #[test]
    fn drops_below_a_mapped_number_are_refused() {
        let mut m = SeqMap::<8>::new();
        m.rebase(0, 0);
        assert_eq!(m.map(5), Some(5));
        assert!(!m.drop(3));
        assert!(!m.drop(5));
        assert_eq!(m.map(4), Some(4));
        assert_eq!(m.map(5), Some(5));
        assert!(m.drop(6));
        assert_eq!(m.map(7), Some(6));
    }

    #[test]
    fn out_of_order_drops_merge_into_runs() {
        let mut m = SeqMap::<2>::new();
        m.rebase(0, 0);
        assert_eq!(m.map(0), Some(0));
        assert!(m.drop(3));
        assert!(m.drop(1));
        assert!(m.drop(2)); // joins 1 and 3 into one run
        assert_eq!(m.len, 1);
        assert!(m.drop(5));
        assert!(m.drop(4)); // joins 1..4 and 5
        assert_eq!(m.len, 1);
        assert_eq!(m.map(6), Some(1));
        assert_eq!(m.dropped(), 5);
    }

    #[test]
    fn the_ring_forgets_the_oldest_runs_but_keeps_their_count() {
        let mut m = SeqMap::<3>::new();
        m.rebase(0, 0);
        // Forward one, drop one, five times: runs at 1, 3, 5, 7, 9.
        for i in 0..5u64 {
            assert_eq!(m.map(2 * i), Some(i));
            assert!(m.drop(2 * i + 1));
        }
        assert_eq!(m.len, 3);
        assert_eq!(m.map(10), Some(5));
        // 6 is still known (after the oldest listed run at 5); 2 is too old.
        assert_eq!(m.map(6), Some(3));
        assert_eq!(m.map(2), None);
        assert_eq!(m.dropped_before(2), None);
    }

    #[test]
    fn a_full_ring_counts_a_drop_older_than_every_run() {
        let mut m = SeqMap::<2>::new();
        m.rebase(0, 0);
        assert!(m.drop(10));
        assert!(m.drop(20));
        assert!(m.drop(5)); // older than both: folded, 0..=5 is forgotten
        assert_eq!(m.map(4), None);
        assert_eq!(m.map(6), Some(5));
        assert_eq!(m.map(21), Some(18));
    }

    #[test]
    fn a_big_jump_forgets_old_drops_but_not_their_count() {
        let mut m = SeqMap::<4>::new();
        m.rebase(0, 0);
        assert_eq!(m.map(0), Some(0));
        assert!(m.drop(1));
        let far = 1 + FORGET_JUMP + 10;
        assert_eq!(m.map(far), Some(far - 1));
        assert_eq!(m.len, 0);
        // Anything before the jump is gone.
        assert_eq!(m.map(2), None);
        assert!(!m.drop(3));
        assert!(m.drop(far + 1));
        assert_eq!(m.map(far + 2), Some(far));
    }

    #[test]
    fn extreme_numbers_do_not_panic() {
        let mut m = SeqMap::<2>::new();
        m.rebase(u64::MAX - 1, u64::MAX - 1);
        assert!(!m.drop(u64::MAX));
        assert_eq!(m.map(u64::MAX), Some(u64::MAX));
        assert!(m.map(u64::MAX - 2).is_none());
        m.rebase(0, u64::MAX);
        assert_eq!(m.map(1), None); // would overflow
    }

    /// Random drops and maps around a moving front, against a plain model: mapped numbers never
    /// change, agree with the model while it can tell, and accepted forwarded numbers are
    /// strictly increasing in the incoming order.
    #[test]
    fn random_operations_agree_with_a_model() {
        let mut rng = Rng::new(7);
        for round in 0..200 {
            let mut m = SeqMap::<8>::new();
            let base = rng.below(1 << 20) + if round % 2 == 0 { 65_000 } else { 0 };
            let out0 = rng.below(1 << 16);
            m.rebase(base, out0);
            let mut dropped = BTreeSet::new();
            let mut mapped: BTreeMap<u64, u64> = BTreeMap::new();
            let mut front = base;
            for _ in 0..400 {
                let seq = if rng.one_in(4) {
                    front.saturating_sub(rng.below(40))
                } else {
                    front += rng.below(3);
                    front
                };
                if rng.one_in(3) {
                    let accepted = m.drop(seq);
                    let below_mapped = mapped.keys().next_back().is_some_and(|&h| seq <= h);
                    if below_mapped || seq < base {
                        assert!(!accepted || dropped.contains(&seq), "seq {seq}");
                    }
                    if accepted {
                        dropped.insert(seq);
                    }
                } else if let Some(out) = m.map(seq) {
                    assert!(!dropped.contains(&seq));
                    if let Some(&prev) = mapped.get(&seq) {
                        assert_eq!(prev, out, "a mapped number changed");
                    }
                    let before = dropped.range(..seq).count() as u64;
                    assert_eq!(out, out0 + (seq - base) - before);
                    mapped.insert(seq, out);
                } else {
                    // Only dropped, pre-base or forgotten numbers are refused.
                    assert!(dropped.contains(&seq) || seq < m.horizon, "seq {seq}");
                }
            }
            // Outgoing numbers are injective and ordered like the incoming ones.
            let outs: Vec<u64> = mapped.values().copied().collect();
            assert!(outs.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
