//! What the caller drains after each input: datagrams ([`Sfu::poll_transmit`]), events
//! ([`Sfu::poll_event`], [`Sfu::has_events`], and the packets of local sinks) and the next
//! deadline ([`Sfu::poll_timeout`]), and the bounded queues behind them.

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

    /// Whether [`Sfu::poll_event`] would return an event or [`Sfu::poll_sink_packet`] a
    /// packet (without taking it): a caller can skip its signalling work after an input that
    /// produced neither.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || !self.sink_packets.is_empty()
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use str0m::Rtc;
    use str0m::media::{Direction, MediaKind};

    use super::*;
    use crate::media::{SfuConfig, StreamKey};

    #[test]
    fn has_events_tells_whether_poll_event_has_something() {
        let now = Instant::now();
        let local = "10.0.0.1:8443".parse().expect("a literal address");
        let mut sfu = Sfu::new(SfuConfig::new(vec![local])).expect("engine starts");
        assert!(!sfu.has_events());

        let mut publisher = Rtc::builder().build(now);
        let mut api = publisher.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _pending) = api.apply().expect("an offer");
        sfu.accept_offer(now, StreamKey(1), &offer.to_sdp_string(), &[])
            .expect("answered");

        // The answer announces the publisher's tracks.
        assert!(sfu.has_events());
        assert!(sfu.has_events(), "asking does not take the event");
        let mut taken = 0;
        while sfu.poll_event().is_some() {
            taken += 1;
        }
        assert!(taken > 0);
        assert!(!sfu.has_events());
    }
}
