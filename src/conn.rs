//! Signalling connections as every protocol sees them: their ids, what the runtime must do
//! for one ([`ConnOutput`]), the queue those outputs wait in ([`Outbox`]), the one heap of
//! connection deadlines ([`Deadlines`]), the pair of both that a protocol handler is lent
//! for each call ([`Effects`]), and the keepalive timings of the three protocols.
//!
//! This module sits below everything that speaks a protocol, so the core, the three
//! signalling adapters and the facade all share one vocabulary for "send this to that
//! connection" and "wake me at that time for that connection".

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The longest close reason a WebSocket close frame can carry, in bytes.
pub const MAX_CLOSE_REASON: usize = 123;

// Keepalive. Every protocol pings a connection that has been silent for a while and gives up
// on it when the silence goes on, but no two of the three do it the same way, so each keeps
// its own pair of timings, here side by side. They are not merged on purpose:
//
// | protocol  | ping                                 | after | gives up                        |
// |-----------|--------------------------------------|-------|---------------------------------|
// | Galène    | text `ping` message                  | 20 s  | 45 s after the last frame, 1011 |
// | GStreamer | WebSocket ping frame                 | 20 s  | 20 s after the ping, 1011       |
// | Camus     | text `ping` from ground control      | 30 s  | 30 s after the ping, `bye` 1000 |
//
// Galène's and the GStreamer protocol's 20 s are equal by coincidence: one is Galène's
// liveness rule, the other the Python websockets library's default ping interval that
// gst-examples' `simple_server.py` runs with. Changing one must not change the other. Galène
// measures its give-up time from the last frame received, the other two from the ping.

/// Galène: after this much silence the server sends a `ping` message (text, JSON), as Galène
/// does; its clients answer with `pong`.
pub const GALENE_PING_AFTER: Duration = Duration::from_secs(20);
/// Galène: after this much silence since the last frame received (not since the ping), the
/// connection is dropped with 1011 "client is dead".
pub const GALENE_DEAD_AFTER: Duration = Duration::from_secs(45);
/// GStreamer protocol: after this much silence from a registered peer the server sends a
/// WebSocket ping frame (the protocol has no text ping), as the websockets library under
/// gst-examples' `simple_server.py` does every 20 s by default.
pub const GST_PING_AFTER: Duration = Duration::from_secs(20);
/// GStreamer protocol: a peer that sends nothing (not even a pong) this long after the ping
/// is closed with 1011 `keepalive ping timeout` (the websockets library's default timeout).
pub const GST_PONG_TIMEOUT: Duration = Duration::from_secs(20);
/// Camus: after this much silence ground control sends a `ping` message (text, JSON, epoch
/// milliseconds), as Camus does; any frame from the client counts as the answer.
pub const CAMUS_PING_AFTER: Duration = Duration::from_secs(30);
/// Camus: a client that sends nothing this long after the ping is removed from its room
/// (`bye`, then close 1000), as Camus reaps it.
pub const CAMUS_REAP_AFTER_PING: Duration = Duration::from_secs(30);

/// A handle for one signalling connection (any protocol). Never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the runtime must do for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnOutput {
    /// Send one text frame.
    Text(String),
    /// Send one binary frame.
    Binary(Vec<u8>),
    /// Send a WebSocket ping; the pong comes back as a `handle_pong`.
    Ping,
    /// Send a close frame with this code and reason, then close the socket. Nothing more will
    /// be output for this connection.
    Close {
        /// WebSocket close code (1000, 1002, 1011, ...).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Everything queued for the runtime, plus the connections closed since the owner last
/// took them ([`Outbox::take_closed`]).
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<(ConnId, ConnOutput)>,
    closed: Vec<ConnId>,
}

impl Outbox {
    /// Queues a text frame.
    pub fn text(&mut self, conn: ConnId, text: String) {
        self.queue.push_back((conn, ConnOutput::Text(text)));
    }

    /// Queues a binary frame.
    pub fn binary(&mut self, conn: ConnId, data: Vec<u8>) {
        self.queue.push_back((conn, ConnOutput::Binary(data)));
    }

    /// Queues a WebSocket ping.
    pub fn ping(&mut self, conn: ConnId) {
        self.queue.push_back((conn, ConnOutput::Ping));
    }

    /// Queues a close frame; the reason is cut to what a close frame can carry.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.queue.push_back((
            conn,
            ConnOutput::Close {
                code,
                reason: reason[..end].to_owned(),
            },
        ));
        self.closed.push(conn);
    }

    /// The next output, oldest first.
    pub fn pop(&mut self) -> Option<(ConnId, ConnOutput)> {
        self.queue.pop_front()
    }

    /// The connections closed since the last call.
    pub fn take_closed(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.closed)
    }
}

/// What a protocol handler is lent for one call: the queue its outputs go to and the
/// deadlines of every connection, in which it keeps its own connections' deadlines.
///
/// The facade (`App`) owns both and builds one of these around each call into
/// a hub; when a connection's deadline passes it calls that hub's `handle_timeout` for that
/// connection.
#[derive(Debug)]
pub struct Effects<'a> {
    /// Where outputs go.
    pub out: &'a mut Outbox,
    /// One deadline per connection, all protocols together.
    pub deadlines: &'a mut Deadlines<ConnId>,
}

/// One deadline per key, earliest first, with lazy invalidation.
///
/// [`Deadlines::schedule`] replaces a key's deadline in O(log n) without searching the heap:
/// the old entry stays behind and is dropped when it reaches the top, because it no longer
/// matches the key's current deadline. [`Deadlines::cancel`] works the same way. Stale
/// entries are dropped from the top after every change, so the top is always live and
/// [`Deadlines::earliest`] needs no `&mut`. The heap is rebuilt from the current deadlines
/// when stale entries outnumber live ones four to one, so its size stays proportional to the
/// number of keys.
#[derive(Debug)]
pub struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    current: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            current: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// `key` is due at `at` (replacing whatever deadline it had).
    pub fn schedule(&mut self, key: K, at: Instant) {
        if self.current.insert(key, at) == Some(at) {
            return;
        }
        self.heap.push(Reverse((at, key)));
        if self.heap.len() > 64 && self.heap.len() > 4 * self.current.len() {
            self.heap = self
                .current
                .iter()
                .map(|(key, at)| Reverse((*at, *key)))
                .collect();
        }
        self.drop_stale();
    }

    /// `key` is due at `at` unless it is already due earlier.
    pub fn schedule_earlier(&mut self, key: K, at: Instant) {
        if self.current.get(&key).is_none_or(|current| at < *current) {
            self.schedule(key, at);
        }
    }

    /// `key` has no deadline any more.
    pub fn cancel(&mut self, key: K) {
        if self.current.remove(&key).is_some() {
            self.drop_stale();
        }
    }

    /// The earliest deadline.
    pub fn earliest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes out one key due at or before `now` (its deadline is cleared). Keys due at the
    /// same instant come out in key order.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.current.remove(&key);
        self.drop_stale();
        Some(key)
    }

    /// Number of keys with a deadline.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// Whether no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Number of heap entries, stale ones included (for tests of the bound).
    pub fn entries(&self) -> usize {
        self.heap.len()
    }

    /// Pops stale entries off the top, so that the top is live (or the heap empty).
    fn drop_stale(&mut self) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.current.get(key) == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn deadlines_pop_in_order_and_skip_replaced_entries() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut deadlines = Deadlines::default();
        deadlines.schedule(ConnId(1), ms(30));
        deadlines.schedule(ConnId(2), ms(10));
        deadlines.schedule(ConnId(3), ms(20));
        deadlines.schedule(ConnId(2), ms(40)); // moved later: the 10 ms entry is stale
        deadlines.schedule_earlier(ConnId(3), ms(50)); // not earlier: kept at 20
        deadlines.cancel(ConnId(1));
        assert_eq!(deadlines.earliest(), Some(ms(20)));
        assert_eq!(deadlines.pop_due(ms(5)), None);
        assert_eq!(deadlines.pop_due(ms(100)), Some(ConnId(3)));
        assert_eq!(deadlines.pop_due(ms(100)), Some(ConnId(2)));
        assert_eq!(deadlines.pop_due(ms(100)), None);
        assert!(deadlines.is_empty());
    }

    #[test]
    fn the_earliest_deadline_is_live_after_every_change() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut deadlines = Deadlines::default();
        deadlines.schedule(ConnId(1), ms(10));
        deadlines.schedule(ConnId(2), ms(30));
        deadlines.schedule(ConnId(1), ms(40)); // the 10 ms entry on top is stale
        assert_eq!(deadlines.earliest(), Some(ms(30)));
        deadlines.cancel(ConnId(2));
        assert_eq!(deadlines.earliest(), Some(ms(40)));
        assert_eq!(deadlines.pop_due(ms(40)), Some(ConnId(1)));
        assert_eq!(deadlines.earliest(), None);
        assert_eq!(deadlines.entries(), 0);
    }

    #[test]
    fn deadlines_stay_bounded_when_one_key_moves_often() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        for n in 0..10_000u64 {
            deadlines.schedule(ConnId(n % 3), t0 + Duration::from_millis(n));
        }
        assert!(deadlines.entries() <= 65, "{}", deadlines.entries());
        assert_eq!(deadlines.len(), 3);
    }

    #[test]
    fn a_close_reason_is_cut_at_a_character_boundary() {
        let mut outbox = Outbox::default();
        outbox.close(ConnId(1), 1000, &"é".repeat(100));
        let Some((_, ConnOutput::Close { reason, .. })) = outbox.pop() else {
            panic!("no close");
        };
        assert!(reason.len() <= MAX_CLOSE_REASON && reason.chars().all(|c| c == 'é'));
        assert_eq!(outbox.take_closed(), [ConnId(1)]);
    }
}
