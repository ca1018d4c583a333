//! Puts one track's packets back in sequence order before depacketising, and waits a little
//! for the ones missing: the engine asks the publisher to retransmit lost packets (NACK), and
//! a repaired packet arrives late, so a gap is held open until it is filled, until the
//! window holds [`Reorder::new`]'s capacity of packets past it, or until it has been open for
//! [`MAX_GAP_WAIT`]. Then it is given up ([`Released::Lost`]). The recorder sends no NACKs
//! of its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::SinkPacket;

/// How long a gap is held open for a retransmission.
pub const MAX_GAP_WAIT: Duration = Duration::from_secs(1);

/// What comes out of the buffer, in sequence order.
#[derive(Debug)]
pub enum Released {
    /// The next packet.
    Packet(SinkPacket),
    /// One or more packets before the next one were given up.
    Lost,
}

/// The reorder buffer of one track.
#[derive(Debug)]
pub struct Reorder {
    /// Packets from `next` on; `None` for a hole.
    window: VecDeque<Option<SinkPacket>>,
    /// The sequence number of the window's first slot.
    next: Option<u64>,
    /// Most slots held.
    capacity: usize,
    /// Since when the first slot has been a hole with packets behind it.
    gap_since: Option<Instant>,
}

impl Reorder {
    /// A buffer holding at most `capacity` packets past a gap (at least 1).
    pub fn new(capacity: usize) -> Reorder {
        Reorder {
            window: VecDeque::new(),
            next: None,
            capacity: capacity.max(1),
            gap_since: None,
        }
    }

    /// Takes one packet; appends to `out` what can be released.
    pub fn push(&mut self, packet: SinkPacket, out: &mut Vec<Released>) {
        let now = packet.arrival;
        let seq = packet.seq;
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            return; // a duplicate, or too late
        }
        let mut index = seq - next;
        // Past the window: give up on what is in the way.
        while index >= self.capacity as u64 && !self.window.is_empty() {
            self.pop_front(out);
            index -= 1;
        }
        if index >= self.capacity as u64 {
            out.push(Released::Lost);
            self.next = Some(seq);
            index = 0;
        }
        // index < capacity here.
        let index = index as usize;
        if self.window.len() <= index {
            self.window.resize(index + 1, None);
        }
        // The window was just made longer than `index`.
        if self.window[index].is_none() {
            self.window[index] = Some(packet);
        }
        self.release(out);
        if self.window.front().is_some_and(Option::is_none) {
            let since = *self.gap_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= MAX_GAP_WAIT {
                self.skip_hole(out);
                self.release(out);
                if self.window.front().is_some_and(Option::is_none) {
                    self.gap_since = Some(now);
                }
            }
        }
    }

    /// Releases everything held, holes given up (the track ends).
    pub fn flush(&mut self, out: &mut Vec<Released>) {
        while !self.window.is_empty() {
            self.pop_front(out);
        }
        self.gap_since = None;
    }

    /// Releases the packets at the front, up to the first hole.
    fn release(&mut self, out: &mut Vec<Released>) {
        while self.window.front().is_some_and(Option::is_some) {
            self.pop_front(out);
        }
        if self.window.is_empty() {
            self.gap_since = None;
        }
    }

    /// Gives up the hole at the front (one `Lost` for the run).
    fn skip_hole(&mut self, out: &mut Vec<Released>) {
        let mut skipped = false;
        while self.window.front().is_some_and(Option::is_none) {
            self.window.pop_front();
            self.advance();
            skipped = true;
        }
        if skipped {
            out.push(Released::Lost);
        }
        self.gap_since = None;
    }

    /// Takes the first slot: a packet, or a hole given up.
    fn pop_front(&mut self, out: &mut Vec<Released>) {
        match self.window.pop_front() {
            Some(Some(packet)) => out.push(Released::Packet(packet)),
            Some(None) => {
                if !matches!(out.last(), Some(Released::Lost)) {
                    out.push(Released::Lost);
                }
            }
            None => return,
        }
        self.advance();
    }

    fn advance(&mut self) {
        if let Some(next) = self.next.as_mut() {
            *next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::StreamKey;
    use std::sync::Arc;

    fn packet(seq: u64, at: Instant) -> SinkPacket {
        SinkPacket {
            sink: StreamKey(1),
            track: 0,
            codec: None,
            clock_rate: 90_000,
            epoch: 0,
            seq,
            time: seq * 3000,
            marker: true,
            payload: Arc::from(&[seq as u8][..]),
            arrival: at,
            sender_clock: None,
        }
    }

    fn seqs(out: &[Released]) -> Vec<Option<u64>> {
        out.iter()
            .map(|r| match r {
                Released::Packet(p) => Some(p.seq),
                Released::Lost => None,
            })
            .collect()
    }

    #[test]
    fn reordered_and_retransmitted_packets_come_out_in_order() {
        let t0 = Instant::now();
        let mut r = Reorder::new(8);
        let mut out = Vec::new();
        for seq in [10, 12, 13, 11, 14, 14, 9] {
            r.push(packet(seq, t0), &mut out);
        }
        assert_eq!(seqs(&out), [10, 11, 12, 13, 14].map(Some));
    }

    #[test]
    fn a_gap_is_given_up_when_the_window_is_full_or_after_the_wait() {
        let t0 = Instant::now();
        let mut r = Reorder::new(4);
        let mut out = Vec::new();
        r.push(packet(1, t0), &mut out);
        // 2 is lost; 3, 4, 5 wait for it; 6 does not fit: 2 is given up.
        for seq in [3, 4, 5] {
            r.push(packet(seq, t0), &mut out);
        }
        assert_eq!(seqs(&out), [Some(1)]);
        r.push(packet(6, t0), &mut out);
        assert_eq!(
            seqs(&out),
            [Some(1), None, Some(3), Some(4), Some(5), Some(6)]
        );

        // 7 is lost; 8 waits until a packet arrives a second later.
        out.clear();
        r.push(packet(8, t0), &mut out);
        r.push(packet(9, t0 + Duration::from_millis(500)), &mut out);
        assert!(out.is_empty());
        r.push(packet(10, t0 + MAX_GAP_WAIT), &mut out);
        assert_eq!(seqs(&out), [None, Some(8), Some(9), Some(10)]);

        // A jump far ahead: one loss, then on from there.
        out.clear();
        r.push(packet(1000, t0 + MAX_GAP_WAIT), &mut out);
        assert_eq!(seqs(&out), [None, Some(1000)]);
        // The end: what waits behind a hole comes out.
        out.clear();
        r.push(packet(1002, t0 + MAX_GAP_WAIT), &mut out);
        r.flush(&mut out);
        assert_eq!(seqs(&out), [None, Some(1002)]);
    }
}
