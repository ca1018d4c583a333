//! The drain: after every mutation of an `Rtc`, its `poll_output` is read until
//! `Output::Timeout` and each output dispatched (datagrams queued, packets forwarded, events
//! turned into ours); expired deadlines wake only their own `Rtc`; work for other streams runs
//! once the current drain is over.

use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::{Event, IceConnectionState, Input, Output};

use super::Sfu;
use super::deferred::Deferred;
use super::guard::guarded;
use super::ids::{PeerId, SourceRef};
use super::meter::ADAPT_INTERVAL;
use super::peer::{Role, scheduled};
use super::types::{GoneReason, MediaEvent};

/// Due timeouts one drain hands to an `Rtc` before leaving the rest to the timer heap (str0m
/// rarely asks for one during a drain; the bound only guards against a deadline that never
/// moves).
const MAX_IMMEDIATE_TIMEOUTS: u32 = 4;

impl Sfu {
    /// Wakes the streams whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        loop {
            let slots = &self.slots;
            let Some(id) = self
                .timers
                .pop_due(now, |at, id| scheduled(slots, id) == Some(at))
            else {
                break;
            };
            if let Some(peer) = self.peer_mut(id) {
                peer.deadline = None;
            }
            due.push(id);
        }
        for &id in &due {
            self.wake(now, id);
        }
        self.due = due;
        if self.next_adapt_at.is_some_and(|at| now >= at) {
            self.next_adapt_at = (!self.keys.is_empty()).then_some(now + ADAPT_INTERVAL);
            self.adapt_tick(now);
        }
        self.run_deferred(now);
    }

    /// Hands an expired deadline to peer `id`: its `Rtc`'s timeout, or the report of an ICE
    /// failure.
    fn wake(&mut self, now: Instant, id: PeerId) {
        let failure_after = self.config.ice_failure_after;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut failed = None;
        if let Some(since) = peer.ice_down_since
            && !peer.ice_failure_reported
            && now >= since + failure_after
        {
            peer.ice_failure_reported = true;
            failed = Some(match peer.role {
                Role::Up(_) => MediaEvent::UpIceFailed { stream: peer.key },
                Role::Down(_) => MediaEvent::DownIceFailed { stream: peer.key },
            });
        }
        if now >= peer.rtc_deadline {
            let handled = guarded(|| peer.rtc.handle_input(Input::Timeout(now)));
            if !matches!(handled, Ok(Ok(()))) {
                log::debug!("stream {}: timeout handling failed", peer.key.0);
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
            }
        }
        if let Some(event) = failed {
            self.push_event(event);
        }
        self.drain(now, id);
    }

    /// Polls `id`'s `Rtc` until it returns a timeout, dispatching everything it outputs.
    ///
    /// Media written with `write_rtp` comes out of the next `poll_output` (our str0m patch,
    /// vendor/str0m/PATCHES.md). A deadline that is already due (a new stream's first timeout,
    /// a pacer's next send) is given here, followed by its own drain, rather than through the
    /// timer heap and another turn of the caller's loop: a forwarded packet leaves in the same
    /// call that received it.
    pub(super) fn drain(&mut self, now: Instant, id: PeerId) {
        let mut immediate_timeouts = 0;
        loop {
            let Some(peer) = self.peer_mut(id) else {
                return;
            };
            let polled = guarded(|| peer.rtc.poll_output());
            match polled {
                Ok(Ok(Output::Timeout(at)))
                    if at <= now && immediate_timeouts < MAX_IMMEDIATE_TIMEOUTS =>
                {
                    immediate_timeouts += 1;
                    let handled = guarded(|| peer.rtc.handle_input(Input::Timeout(now)));
                    if !matches!(handled, Ok(Ok(()))) {
                        log::debug!("stream {}: timeout handling failed", peer.key.0);
                        self.deferred
                            .push_back(Deferred::Remove(id, GoneReason::EngineError));
                        return;
                    }
                }
                Ok(Ok(Output::Timeout(at))) => {
                    peer.rtc_deadline = at;
                    self.reschedule(id);
                    return;
                }
                Ok(Ok(Output::Transmit(t))) => self.push_transmit(t),
                Ok(Ok(Output::Event(event))) => self.on_event(now, id, event),
                Ok(Err(e)) => {
                    log::debug!("stream {}: engine error {e}", peer.key.0);
                    self.deferred
                        .push_back(Deferred::Remove(id, GoneReason::EngineError));
                    return;
                }
                Err(_) => {
                    self.deferred
                        .push_back(Deferred::Remove(id, GoneReason::EngineError));
                    return;
                }
            }
        }
    }

    /// Puts `id`'s current deadline into the timer heap if it changed.
    fn reschedule(&mut self, id: PeerId) {
        let failure_after = self.config.ice_failure_after;
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut at = peer.rtc_deadline;
        if let Some(since) = peer.ice_down_since
            && !peer.ice_failure_reported
        {
            at = at.min(since + failure_after);
        }
        if peer.deadline == Some(at) {
            return;
        }
        peer.deadline = Some(at);
        self.timers.schedule(at, id);
        let live = self.keys.len();
        if self.timers.len() > 4 * live + 64 {
            let slots = &self.slots;
            self.timers
                .compact(|at, id| scheduled(slots, id) == Some(at));
        }
    }

    /// Acts on one event of peer `id`'s `Rtc`.
    fn on_event(&mut self, now: Instant, id: PeerId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(now, id, packet),
            Event::KeyframeRequest(request) => {
                self.deferred.push_back(Deferred::KeyframeForTrack {
                    down: id,
                    mid: request.mid,
                });
            }
            Event::Connected => {
                let mut deferred_keyframes: Vec<SourceRef> = Vec::new();
                let Some(peer) = self.peer_mut(id) else {
                    return;
                };
                peer.connected = true;
                let key = peer.key;
                if let Some(down) = peer.down_mut() {
                    // A new receiver needs a keyframe to start.
                    for slot in &down.tracks {
                        for source in slot.track.keyframe_targets() {
                            deferred_keyframes.push(source);
                        }
                    }
                }
                for source in deferred_keyframes.drain(..) {
                    self.deferred.push_back(Deferred::Keyframe(source));
                }
                self.push_event(MediaEvent::Connected { stream: key });
            }
            Event::IceConnectionStateChange(state) => {
                let Some(peer) = self.peer_mut(id) else {
                    return;
                };
                match state {
                    IceConnectionState::Disconnected if peer.ice_down_since.is_none() => {
                        peer.ice_down_since = Some(now);
                        peer.ice_failure_reported = false;
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        peer.ice_down_since = None;
                    }
                    _ => {}
                }
            }
            Event::MediaIngressStats(report) => {
                let jitter = report.jitter;
                let sample = (report.mid, report.rid, report.bytes, report.timestamp);
                self.record_stats(id, sample, report.loss, Some(jitter), report.rtt);
            }
            Event::MediaEgressStats(report) => {
                let jitter = report.remote.as_ref().map(|r| r.jitter);
                let acked = report.remote.as_ref().map(|r| *r.maximum_sequence_number);
                let sample = (report.mid, report.rid, report.bytes, report.timestamp);
                self.record_stats(id, sample, report.loss, jitter, report.rtt);
                if let Some(acked) = acked {
                    self.on_receiver_report(now, id, (report.mid, acked), report.loss, report.rtt);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.on_estimate(id, estimate.as_u64(), false);
            }
            Event::EgressBitrateEstimate(BweKind::Remb { estimate, .. }) => {
                self.on_estimate(id, estimate.as_u64(), true);
            }
            Event::Closed => self
                .deferred
                .push_back(Deferred::Remove(id, GoneReason::RemoteClosed)),
            _ => {}
        }
    }

    /// Runs the work queued for other streams, and the layer choices of links that changed.
    pub(super) fn run_deferred(&mut self, now: Instant) {
        loop {
            let Some(work) = self.deferred.pop_front() else {
                if self.dirty_links.is_empty() {
                    return;
                }
                // Layer choices may request keyframes and subscribe: deferred work again.
                self.adapt_dirty_links(now);
                continue;
            };
            match work {
                Deferred::Keyframe(source) => self.request_keyframe(now, source),
                Deferred::KeyframeForTrack { down, mid } => {
                    let targets: heapless::Vec<SourceRef, 2> = self
                        .peer(down)
                        .and_then(|p| match &p.role {
                            Role::Down(d) => d.tracks.iter().find(|t| t.mid == mid),
                            Role::Up(_) => None,
                        })
                        .map(|slot| slot.track.keyframe_targets().collect())
                        .unwrap_or_default();
                    for source in targets {
                        self.request_keyframe(now, source);
                    }
                }
                Deferred::Unsubscribe(source, sub) => self.unsubscribe(source, sub),
                Deferred::Remove(id, reason) => self.remove_peer(id, Some(reason)),
            }
        }
    }
}
