//! What the caller drains after each input: datagrams ([`Sfu::poll_transmit`]), events
//! ([`Sfu::poll_event`]) and the next deadline ([`Sfu::poll_timeout`]), and the bounded queues
//! behind them.

use std::time::Instant;

use super::Sfu;
use super::peer::scheduled;
use super::types::{MediaEvent, Transmit};

impl Sfu {
    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for signalling.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] must be called next (`None`: no stream).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        let next = self
            .timers
            .next_deadline(|at, id| scheduled(slots, id) == Some(at));
        match (next, self.next_adapt_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Queues a datagram of an `Rtc` for the caller, dropping the oldest when the queue is full.
    pub(super) fn push_transmit(&mut self, t: str0m::net::Transmit) {
        if self.transmits.len() >= self.config.max_queued_transmits {
            self.transmits.pop_front();
            self.dropped_transmits += 1;
        }
        self.transmits.push_back(Transmit {
            source: t.source,
            destination: t.destination,
            contents: t.contents.into(),
        });
    }

    /// Queues an event for signalling, dropping the oldest when the queue is full.
    pub(super) fn push_event(&mut self, event: MediaEvent) {
        if self.events.len() >= self.config.max_queued_events {
            log::warn!("media event queue full, dropping {:?}", self.events.front());
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}
