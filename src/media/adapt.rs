//! Downlink adaptation: what each subscriber's link carries, which layer each of its tracks
//! gets, and the rate each publisher is asked not to exceed.
//!
//! # The estimate
//!
//! Every down stream runs str0m's send-side bandwidth estimator: the receiver returns
//! transport-wide congestion control feedback (arrival times of our packets), from which str0m
//! estimates, delay first and loss second, what the path carries, and probes above the current
//! rate with padding when the application asks for more ([`DownState::desired`]). A browser's
//! own REMB, when it sends one, caps the estimate. One subscriber receives each stream on its
//! own `Rtc` but over one physical link, so the estimates of all of a subscriber's down
//! streams (one [`LinkKey`]) add up to that link's budget, and the budget is shared by all of
//! its tracks.
//!
//! The estimate alone is not trusted: it dips for seconds after a stream starts
//! ([`STARTUP_GRACE`]), undershoots after an overload, and reads a probe that a shaper's token
//! bucket let through as spare capacity. The receiver reports of each down stream
//! ([`Sfu::on_receiver_report`]) catch what it misses: heavy loss, or a round trip well above
//! its minimum and growing over two reports (a queue building up; not a queue draining after
//! a step down, nor one probe's burst), cap the link at what it carried; while they are
//! clean and the estimate is still finding the path after the start-up, it alone does not
//! take away what the link carries (`link_proven`); a track that was once forced down only
//! goes up again after a trial of padding that the reports found clean; and only reports of
//! loss, not the estimate nor a queue alone, can cost a track its frame rate (see
//! [`super::allocate`]).
//!
//! [`DownState::desired`]: super::peer::DownState::desired

//! # The choice
//!
//! [`super::allocate`] turns a budget and the measured rate of every layer (a [`LayerMeter`] per
//! up layer) into one layer per track: audio first, video layers cheapest first, temporal
//! layers of the lowest one when the receiver reports show loss and even it does not fit, down
//! at once, up with headroom and a hold. It runs every [`ADAPT_INTERVAL`] and whenever an estimate falls.
//!
//! [`LayerMeter`]: super::meter::LayerMeter
//! [`ADAPT_INTERVAL`]: super::meter::ADAPT_INTERVAL
//!
//! # Feedback to publishers
//!
//! Every [`REMB_INTERVAL`] each publisher gets a REMB: while some receiver of a simulcast video
//! could take its top layer, or nobody receives it, the limit is lifted; otherwise it is the sum
//! of the layers someone can receive, with headroom, so the browser stops spending its uplink
//! on a layer no one can carry. Browsers on a weak uplink also adapt by themselves from the
//! TWCC feedback every up stream returns.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid};

use super::Sfu;
use super::allocate::{self, Allocation, Choice, LayerOption, Options, TrackInput};
use super::deferred::Deferred;
use super::forward::VideoChoice;
use super::ids::{LinkKey, PeerId, SourceRef, Subscriber};
use super::meter::LAYER_TIMEOUT;
use super::peer::{DownState, LastReport, Peer, Role, UpLayer, peer_in};
use super::types::{LayerStats, MediaEvent};

/// How often publishers are sent their rate limit.
pub(crate) const REMB_INTERVAL: Duration = Duration::from_secs(1);
/// Rate assumed for an audio track not measured yet.
const DEFAULT_AUDIO_RATE: u64 = 64_000;
/// Headroom on the rate asked of a publisher, over what its receivers take.
const REMB_HEADROOM: f64 = 1.25;
/// The lowest limit sent to a publisher.
const MIN_REMB: u64 = 150_000;
/// Rounds of [`REMB_INTERVAL`] a limit must be wanted before it is sent.
const LIMIT_ROUNDS: u8 = 3;
/// The value that lifts a limit.
const UNLIMITED_REMB: u64 = 100_000_000;
/// An estimate fall that re-runs the choice at once (fraction of the last one).
const FALL_TRIGGER: f64 = 0.9;
/// A new down stream's estimate is ignored this long: the estimator starts high, reacts to the
/// first keyframe's burst as congestion and needs a few seconds to find the path (measured
/// with Chromium: 1.5 Mb/s, 290 kb/s after 2 s, back to 1.3 Mb/s 5 to 10 s later on an
/// unshaped link; the receiver reports still catch real congestion meanwhile).
const STARTUP_GRACE: Duration = Duration::from_secs(10);
/// Loss a receiver may report before its link counts as congested (random loss below this is
/// left to NACK/RTX, as a 5 % lossy Wi-Fi link is not a reason to drop a layer). It takes two
/// reports in a row above it: one report covers a second or less of packets, so 5 % random
/// loss now and then puts a single report above 10 %, while congestion keeps them all high.
const CONGESTION_LOSS: f32 = 0.10;
/// Round-trip time above the lowest seen that counts as a queue building up.
const CONGESTION_RTT: Duration = Duration::from_millis(200);
/// How long a report of congestion keeps a link congested.
const CONGESTION_MEMORY: Duration = Duration::from_secs(2);
/// On congestion, the budget falls to this share of what the link carried.
const CONGESTION_BACKOFF: f64 = 0.85;
/// What a stream carried at its peak counts this long as what it carried lately: the queue a
/// rate built is still in the reports seconds after the rate fell.
const PEAK_HOLD: Duration = Duration::from_secs(4);
/// The estimate may fall this far below what the current layers cost before they are left
/// (receiver reports of congestion act at once).
const KEEP_SLACK: f64 = 0.8;
/// How long a clean receiver report vouches for what its link carries (browsers report about
/// once a second, and str0m hands the reports on with its once-a-second stats).
const REPORT_FRESH: Duration = Duration::from_millis(2500);
/// The most loss a report may show and still be clean.
const CLEAN_LOSS: f32 = 0.02;
/// How far above the lowest seen a report's round trip may be and still be clean (no queue).
const CLEAN_RTT: Duration = Duration::from_millis(100);
/// A higher layer at fewer frames per second than this, and under 60 % of the lower layer's
/// rate, is worse than the lower one (a publisher short of uplink starves its high layer).
const POOR_FPS: f64 = 12.0;
/// The estimator is asked for this much more than the best layers cost.
const DESIRED_HEADROOM: f64 = 1.2;
/// While a subscriber's tracks are held below their best for lack of budget (and no hold,
/// trial or congestion is in force), the estimator is asked to probe this often. Without it
/// the estimate of a link that got its capacity back can stay where the reduced layers put
/// it: str0m's estimator reads little more than what is sent, and probes on its own only when
/// the sending is application-limited or the estimate has not moved for 15 s (measured with
/// Chromium after a 300 kb/s cap was lifted: over 20 s without a probe on the low layer).
const RECOVERY_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe that raised the estimate by this factor or more is followed by the next one after
/// [`RECOVERY_PROBE_FOLLOW_UP`] rather than a whole interval: str0m's allocation probe goes up
/// to twice the estimate at most, so a link that got much more capacity back is climbed in a
/// few steps (measured with Chromium after a 300 kb/s cap was lifted: 325 kb/s, 540, 606, then
/// 936 kb/s, 5 s apart).
const RECOVERY_PROBE_GROWTH: f64 = 1.25;
/// See [`RECOVERY_PROBE_GROWTH`].
const RECOVERY_PROBE_FOLLOW_UP: Duration = Duration::from_secs(1);
/// How long the desired rate stays lowered before it is raised again, which is what asks
/// str0m for a probe (`Bwe::set_bitrate`: a rise above the estimate probes); str0m's
/// estimator looks at the desired rate every 25 ms.
const RECOVERY_PROBE_DIP: Duration = Duration::from_millis(100);

/// The video layers of one m-line of an up stream, lowest first, by Galène's convention: rid
/// `l` is the lowest and `h` the highest, others rank by the order the publisher listed them,
/// the first listed highest. (Not by measured rate: a browser ramps its high layer up from
/// nothing, and a layer it paused keeps no rate.)
fn ranked_layers(layers: &[UpLayer], mline: usize) -> heapless::Vec<usize, 8> {
    let mut ranked: heapless::Vec<usize, 8> = heapless::Vec::new();
    for (i, l) in layers.iter().enumerate() {
        if l.mline == mline && l.kind == MediaKind::Video {
            let _ = ranked.push(i); // more than 8 layers in one m-line: the rest are ignored
        }
    }
    let named = |i: usize| match layers[i].rid.as_deref() {
        Some("l") => 0,
        Some("h") => 2,
        _ => 1,
    };
    ranked.sort_by_key(|&i| (named(i), std::cmp::Reverse(i)));
    ranked
}

/// The ways a track may receive `wanted` (the layer its selection names), cheapest first:
/// temporal layers of the lowest layer, then each layer up to `wanted`. With `video-low`, only
/// `wanted` and its temporal layers.
///
/// A layer not seen yet counts as arriving while the stream is younger than [`LAYER_TIMEOUT`]
/// (`young`): a receiver that joins with the publisher waits for the layer it asked for rather
/// than starting on whichever layer's first packet came first.
fn track_options(
    now: Instant,
    layers: &[UpLayer],
    wanted: usize,
    video: VideoChoice,
    young: bool,
) -> Options {
    let mut options = Options::new();
    let Some(top) = layers.get(wanted) else {
        return options;
    };
    let mut spatial: heapless::Vec<usize, 8> = heapless::Vec::new();
    if video == VideoChoice::High {
        for i in ranked_layers(layers, top.mline) {
            if i == wanted {
                break;
            }
            let _ = spatial.push(i);
        }
    }
    let _ = spatial.push(wanted); // at most 8 video layers per m-line, see ranked_layers
    let lowest_fps = spatial.first().map_or(0.0, |&i| layers[i].meter.fps);
    for (n, &i) in spatial.iter().enumerate() {
        let meter = &layers[i].meter;
        let starved = n > 0 && meter.fps > 0.0 && meter.fps < POOR_FPS.min(lowest_fps * 0.6);
        let available =
            (meter.available(now) || (young && meter.last_packet.is_none())) && !starved;
        if n == 0
            && let Some(max_tid) = meter.max_tid
        {
            for tid in 0..max_tid {
                let _ = options.push(LayerOption {
                    layer: i,
                    max_tid: Some(tid),
                    rate: meter.tid_rates[usize::from(tid)],
                    available,
                });
            }
        }
        let _ = options.push(LayerOption {
            layer: i,
            max_tid: None,
            rate: meter.rate,
            available,
        });
    }
    options
}

impl Sfu {
    /// Registers down peer `id` on `link`.
    pub(crate) fn join_link(&mut self, link: LinkKey, id: PeerId) {
        let downs = self.links.entry(link).or_default();
        if !downs.contains(&id) {
            downs.push(id);
        }
    }

    /// Removes down peer `id` from `link`; the link's other tracks may now have more room.
    pub(crate) fn leave_link(&mut self, link: LinkKey, id: PeerId) {
        if let Some(downs) = self.links.get_mut(&link) {
            downs.retain(|d| *d != id);
            if downs.is_empty() {
                self.links.remove(&link);
            } else {
                self.link_changed(link);
            }
        }
    }

    /// Marks `link` for a new layer choice at the end of the current input.
    pub(crate) fn link_changed(&mut self, link: LinkKey) {
        if !self.dirty_links.contains(&link) {
            self.dirty_links.push(link);
        }
    }

    /// A new estimate for down peer `id`: TWCC (`from_receiver` false) or the receiver's REMB.
    pub(crate) fn on_estimate(&mut self, id: PeerId, bitrate: u64, from_receiver: bool) {
        let Some(down) = self.peer_mut(id).and_then(|p| p.down_mut()) else {
            return;
        };
        let slot = if from_receiver {
            &mut down.remb
        } else {
            &mut down.estimate
        };
        let fell = slot.is_none_or(|old| (bitrate as f64) < old as f64 * FALL_TRIGGER);
        log::trace!("down {id:?}: estimate {bitrate} (receiver's: {from_receiver})");
        *slot = Some(bitrate);
        if fell {
            let link = down.link;
            self.link_changed(link);
        }
    }

    /// A receiver report on down peer `id`: loss above [`CONGESTION_LOSS`] in this report and
    /// the one before, or a queue building up (a round-trip time [`CONGESTION_RTT`] above the
    /// lowest seen in this report and the one before of the same m-line, and higher in this
    /// one), marks its link congested.
    ///
    /// A single report of a long round trip is not enough: the padding of a probe or a trial
    /// fills a shaper's queue for a moment. Nor is a long round trip that is shorter than the
    /// one before: that is a queue draining, typically the queue an old, higher rate built
    /// before the last step down (behind a 300 ms queue at 300 kb/s, draining it takes seconds
    /// when the new rate is close to the capacity).
    ///
    /// The first report of an episode caps this stream at [`CONGESTION_BACKOFF`] of the most it
    /// carried in the last [`PEAK_HOLD`] (the rate that built the queue, which the estimator's
    /// pacing or a step down may have cut already); while reports keep showing congestion, the
    /// cap is lowered to that share of what it sends now at most every [`CONGESTION_MEMORY`]
    /// (a lower rate needs that long to show in the reports). The cap lapses
    /// [`CONGESTION_MEMORY`] after the last congested report.
    pub(crate) fn on_receiver_report(
        &mut self,
        now: Instant,
        id: PeerId,
        (mid, acked): (Mid, u64),
        loss: Option<f32>,
        rtt: Option<Duration>,
    ) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let carried = peer.carried();
        let Some(down) = peer.down_mut() else {
            return;
        };
        log::trace!(
            "down {id:?}: report on {mid}: acked {acked} loss {loss:?} rtt {rtt:?} carried {carried}"
        );
        let fresh = LastReport {
            mid,
            acked,
            rtt,
            loss,
            at: now,
        };
        let previous_rtt = match down.reports.iter_mut().find(|r| r.mid == mid) {
            Some(last) if last.acked == acked => return, // the same report again
            Some(last) => std::mem::replace(last, fresh).rtt,
            None => {
                let _ = down.reports.push(fresh); // more m-lines: always fresh
                None
            }
        };
        if let Some(rtt) = rtt {
            down.min_rtt = Some(down.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        // The most the stream sent lately: by the time a report shows congestion the
        // estimator's pacing, or a step down, has often cut the sending already.
        let peak_expired = down
            .carried_peak_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PEAK_HOLD);
        if peak_expired || carried >= down.carried_peak {
            down.carried_peak = carried;
            down.carried_peak_at = Some(now);
        }
        let queued = |rtt: Option<Duration>, min: Option<Duration>| {
            rtt.zip(min)
                .is_some_and(|(rtt, min)| rtt > min + CONGESTION_RTT)
        };
        let building = queued(rtt, down.min_rtt) && rtt > previous_rtt;
        let queue = building && queued(previous_rtt, down.min_rtt);
        let lossy = loss.is_some_and(|l| l > CONGESTION_LOSS);
        let sustained_loss = lossy && down.last_report_lossy;
        down.last_report_lossy = lossy;
        // A trial fails on one report of a queue building up: its padding did it, and a
        // higher layer on a link that cannot carry it costs a keyframe and a freeze.
        let trial_failed = down.probing > 0 && building;
        if sustained_loss || queue || trial_failed {
            if down.probing > 0 {
                // Our own trial padding did it: the trial fails (the allocation sees the
                // congestion) and the padding stops; what the stream sent before is no worse.
                log::debug!("down {id:?}: congestion during a trial (loss {loss:?}, rtt {rtt:?})");
                down.trial_failed_at = Some(now);
                let link = down.link;
                self.link_changed(link);
                return;
            }
            let lapsed = down
                .congested_at
                .is_none_or(|at| now.saturating_duration_since(at) >= CONGESTION_MEMORY);
            let lower_again = down
                .congestion_cap
                .is_some_and(|(set, _)| now.saturating_duration_since(set) >= CONGESTION_MEMORY);
            down.congested_at = Some(now);
            if sustained_loss {
                down.losing_at = Some(now);
            }
            if lapsed || down.congestion_cap.is_none() {
                let cap = (down.carried_peak as f64 * CONGESTION_BACKOFF) as u64;
                down.congestion_cap = Some((now, cap));
            } else if lower_again && let Some((_, old)) = down.congestion_cap {
                let cap = (carried as f64 * CONGESTION_BACKOFF) as u64;
                down.congestion_cap = Some((now, old.min(cap)));
            } else {
                return;
            }
            log::debug!(
                "down {id:?}: congestion (loss {loss:?}, rtt {rtt:?}): capped at {:?}",
                down.congestion_cap.map(|(_, c)| c)
            );
            let link = down.link;
            self.link_changed(link);
        }
    }

    /// The down streams of `link` that are still there, with their peers.
    fn link_downs(&self, link: LinkKey) -> impl Iterator<Item = (&Peer, &DownState)> {
        let downs = self.links.get(&link).map_or(&[][..], |d| d.as_slice());
        downs
            .iter()
            .filter_map(|&id| self.peer(id))
            .filter_map(|peer| peer.down().map(|down| (peer, down)))
    }

    /// Whether a receiver on `link` reported congestion lately, and then the most the link
    /// may carry (the congestion caps of its down streams, and what the others carry) and
    /// whether that congestion lost packets (a queue overflowing: only then does a track lose
    /// frame rate, see [`allocate::Budgets::losing`]).
    fn link_congestion(&self, now: Instant, link: LinkKey) -> Option<(u64, bool)> {
        let mut congested = false;
        let mut losing = false;
        let mut limit: u64 = 0;
        for (peer, down) in self.link_downs(link) {
            let active = down
                .congested_at
                .is_some_and(|at| now.saturating_duration_since(at) < CONGESTION_MEMORY);
            congested |= active;
            losing |= down
                .losing_at
                .is_some_and(|at| now.saturating_duration_since(at) < CONGESTION_MEMORY);
            let carried = peer.carried();
            limit += match down.congestion_cap {
                Some((_, cap)) if active => cap,
                // Not congested: what it sends now (with a margin for the once-a-second
                // measurement).
                _ => carried + carried / 10,
            };
        }
        congested.then_some((limit, losing))
    }

    /// Whether a trial's padding met congestion on `link` lately (the trial fails, nothing is
    /// capped: the padding stops).
    fn trial_failed(&self, now: Instant, link: LinkKey) -> bool {
        self.links.get(&link).is_some_and(|downs| {
            downs.iter().any(|&id| {
                self.peer(id).and_then(|p| p.down()).is_some_and(|d| {
                    d.trial_failed_at
                        .is_some_and(|at| now.saturating_duration_since(at) < CONGESTION_MEMORY)
                })
            })
        })
    }

    /// The budget of `link`: the estimates of its down streams added up (`None` while none is
    /// known, or all are younger than [`STARTUP_GRACE`]).
    fn link_budget(&self, now: Instant, link: LinkKey) -> Option<u64> {
        let downs = self.links.get(&link)?;
        let mut total = None;
        for &id in downs {
            let Some(down) = self.peer(id).and_then(|p| p.down()) else {
                continue;
            };
            if now.saturating_duration_since(down.created) < STARTUP_GRACE {
                continue;
            }
            let estimate = match (down.estimate, down.remb) {
                (Some(e), Some(r)) => Some(e.min(r)),
                (e, r) => e.or(r),
            };
            if let Some(e) = estimate {
                total = Some(total.unwrap_or(0) + e);
            }
        }
        total
    }

    /// Marks the down streams of `link` whose estimate, past the start-up grace, has reached
    /// what they carry (see `DownState::estimate_caught_up`).
    fn note_caught_up(&mut self, now: Instant, link: LinkKey) {
        let Some(downs) = self.links.get(&link) else {
            return;
        };
        for id in downs.clone() {
            let Some(peer) = self.peer_mut(id) else {
                continue;
            };
            let carried = peer.carried();
            let Some(down) = peer.down_mut() else {
                continue;
            };
            if !down.estimate_caught_up
                && carried > 0
                && down.estimate.is_some_and(|e| e >= carried)
                && now.saturating_duration_since(down.created) >= STARTUP_GRACE
            {
                down.estimate_caught_up = true;
            }
        }
    }

    /// What `link` carries now (with a margin for the once-a-second measurement), when fresh
    /// receiver reports vouch for it while its estimates are still finding the path: at
    /// least one report younger than [`REPORT_FRESH`], every such report clean (loss up to
    /// [`CLEAN_LOSS`], a round trip within [`CLEAN_RTT`] of the lowest seen), and no down
    /// stream's estimate has yet reached what it carries since the start-up grace. `None`
    /// otherwise.
    ///
    /// A link that carries its layers without loss or a queue carries at least that much,
    /// whatever a ramping estimate says: the estimator ramps up slowly after a stream starts
    /// on a busy host (measured with Chromium under load: 458 kb/s at the end of
    /// [`STARTUP_GRACE`] on an unshaped link carrying 640 kb/s cleanly). Once it has caught
    /// up, a fall is news, and it is believed: str0m's pacer then sends at the lower
    /// estimate, so the queue builds in the server, where no receiver report can see it
    /// (measured with the 300 kb/s cap: vouching for the old rate there delayed the step
    /// down by seconds).
    fn link_proven(&self, now: Instant, link: LinkKey) -> Option<u64> {
        let mut vouched = false;
        let mut carried: u64 = 0;
        for (peer, down) in self.link_downs(link) {
            if down.estimate_caught_up {
                return None;
            }
            for report in &down.reports {
                if now.saturating_duration_since(report.at) > REPORT_FRESH {
                    continue;
                }
                let lossless = report.loss.is_none_or(|l| l <= CLEAN_LOSS);
                let unqueued = report
                    .rtt
                    .zip(down.min_rtt)
                    .is_none_or(|(rtt, min)| rtt <= min + CLEAN_RTT);
                if !(lossless && unqueued) {
                    return None;
                }
                vouched = true;
            }
            carried += peer.carried();
        }
        vouched.then_some(carried + carried / 10)
    }

    /// The periodic part: measure the layers, revisit every link, and every
    /// [`REMB_INTERVAL`] tell publishers their limit.
    pub(crate) fn adapt_tick(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if let Some(up) = slot.peer.as_mut().and_then(|p| p.up_mut()) {
                for layer in &mut up.layers {
                    layer.meter.roll(now);
                }
            }
        }
        let links: Vec<LinkKey> = self.links.keys().copied().collect();
        for link in links {
            self.adapt_link(now, link);
        }
        if self.next_remb_at.is_none_or(|at| now >= at) {
            self.next_remb_at = Some(now + REMB_INTERVAL);
            self.send_rate_limits(now);
        }
    }

    /// Re-runs the choice for links whose estimate fell or whose tracks changed.
    pub(crate) fn adapt_dirty_links(&mut self, now: Instant) {
        while let Some(link) = self.dirty_links.pop() {
            self.adapt_link(now, link);
        }
    }

    /// Chooses a layer for every video track of `link` and applies it.
    pub(crate) fn adapt_link(&mut self, now: Instant, link: LinkKey) {
        let (estimate, congestion, trial_failed) = if self.config.downlink_estimation {
            self.note_caught_up(now, link);
            (
                self.link_budget(now, link),
                self.link_congestion(now, link),
                self.trial_failed(now, link),
            )
        } else {
            (None, None, false)
        };
        // Keeping a layer tolerates an estimate somewhat below its cost ([`KEEP_SLACK`]): after
        // an overload the estimator undershoots for seconds while the receiver reports
        // already show a clean link.
        let mut budget = estimate;
        let mut keep = estimate.map(|e| (e as f64 / KEEP_SLACK) as u64);
        // Nor does the estimate alone take away what clean receiver reports show the link
        // carrying: it may only be slow to find the path.
        if congestion.is_none()
            && !trial_failed
            && let (Some(k), Some(proven)) = (keep, self.link_proven(now, link))
        {
            keep = Some(k.max(proven));
        }
        if let Some((cap, _)) = congestion.filter(|&(c, _)| c > 0) {
            // The estimate missed it (a standing queue, loss): what got through is the limit.
            budget = Some(budget.map_or(cap, |b| b.min(cap)));
            keep = Some(keep.map_or(cap, |k| k.min(cap)));
        }
        let Some(downs) = self.links.get(&link).cloned() else {
            return;
        };
        // Gather: each video track's options and policy; audio rates reserved.
        struct Gathered {
            down: PeerId,
            track: usize,
            source: PeerId,
            options: Options,
            policy: allocate::TrackPolicy,
            previous: Option<Choice>,
        }
        let mut gathered: Vec<Gathered> = Vec::new();
        let mut audio = 0u64;
        for &id in &downs {
            let Some(down) = self.peer(id).and_then(|p| p.down()) else {
                continue;
            };
            let Some(source) = down.source else {
                continue;
            };
            let Some(up) = self.peer(source).and_then(|p| p.up()) else {
                continue;
            };
            for (index, slot) in down.tracks.iter().enumerate() {
                if !slot.active {
                    continue;
                }
                let Some(wanted) = slot.wanted else {
                    continue;
                };
                if slot.track.kind == MediaKind::Audio {
                    let rate = up.layers.get(wanted).map_or(0, |l| l.meter.rate);
                    audio += if rate > 0 { rate } else { DEFAULT_AUDIO_RATE };
                    continue;
                }
                if gathered.len() >= 16 {
                    break;
                }
                let young = up
                    .created
                    .is_some_and(|c| now.saturating_duration_since(c) < LAYER_TIMEOUT);
                gathered.push(Gathered {
                    down: id,
                    track: index,
                    source,
                    options: track_options(now, &up.layers, wanted, down.selection.video, young),
                    policy: slot.policy.clone(),
                    previous: slot.choice,
                });
            }
        }
        if gathered.is_empty() {
            return;
        }
        let allocations: heapless::Vec<Allocation, 16> = {
            let mut inputs: Vec<TrackInput<'_>> = gathered
                .iter_mut()
                .map(|g| TrackInput {
                    options: g.options.as_slice(),
                    policy: &mut g.policy,
                })
                .collect();
            let congested = congestion.is_some() || trial_failed;
            let budgets = allocate::Budgets {
                budget,
                keep,
                losing: congestion.is_some_and(|(_, losing)| losing),
            };
            allocate::allocate(now, budgets, audio, congested, &mut inputs)
        };
        let video_budget = budget.map(|b| b.saturating_sub(audio));
        // Per down stream: the rate its best layers cost, the padding floor of a trial, and
        // whether a track is held below its best for lack of budget, free to go up (no hold).
        let mut desired: Vec<(PeerId, u64, u64, bool)> = Vec::new();
        for (g, a) in gathered.into_iter().zip(allocations) {
            log::trace!(
                "link {}: budget {budget:?} congestion {congestion:?} audio {audio}: track {}/{} \
                 chosen {:?} ceiling {} probe {:?} of {:?}",
                link.0,
                g.down.index(),
                g.track,
                a.chosen,
                a.ceiling,
                a.probe,
                g.options
                    .iter()
                    .map(|o| (o.layer, o.max_tid, o.rate / 1000, o.available))
                    .collect::<Vec<_>>()
            );
            let top_rate = g.options.last().map_or(0, |o| o.rate);
            let probe = a.probe.unwrap_or(0);
            let held_below = a.reduced && g.policy.may_upgrade(now);
            match desired.iter_mut().find(|(d, _, _, _)| *d == g.down) {
                Some((_, rate, floor, below)) => {
                    *rate += top_rate;
                    *floor = (*floor).max(probe);
                    *below |= held_below;
                }
                None => desired.push((g.down, top_rate, probe, held_below)),
            }
            let Some(option) = a.chosen.and_then(|c| g.options.get(c)).copied() else {
                continue;
            };
            let ceiling = g.options.get(a.ceiling).map(|o| o.layer);
            // A step down for lack of budget leaves the old layer at once (see
            // DownTrack::leave_current_now); one by the receiver's choice waits for the keyframe.
            let previous = g.previous.and_then(|p| {
                g.options
                    .iter()
                    .position(|o| o.layer == p.layer && o.max_tid == p.max_tid)
            });
            let forced_down = a.reduced && previous.zip(a.chosen).is_some_and(|(p, c)| p > c);
            let target = SourceRef {
                up: g.source,
                layer: option.layer,
            };
            self.apply_choice(
                g.down,
                g.track,
                target,
                Choice {
                    layer: option.layer,
                    max_tid: option.max_tid,
                },
                g.policy,
                a.reduced && option.available,
                video_budget,
                ceiling,
                forced_down,
            );
        }
        if self.config.downlink_estimation {
            let calm = congestion.is_none() && !trial_failed;
            for (id, video, probe, held_below) in desired {
                let floor = if probe > 0 { probe + audio } else { 0 };
                let looking = calm && held_below && probe == 0;
                if self.recovery_probe(now, id, looking) {
                    continue;
                }
                self.set_desired(now, id, video + audio, floor);
            }
        }
    }

    /// Asks the estimator of down stream `id` for a probe every [`RECOVERY_PROBE_INTERVAL`]
    /// while `looking` (its tracks are held below their best for lack of budget, and nothing
    /// forbids an upgrade): lowers its desired rate for [`RECOVERY_PROBE_DIP`], and the next
    /// [`Self::set_desired`] raises it back, which str0m answers with a probe. What the probe
    /// finds goes through a trial before any layer changes (see [`allocate`]). Returns whether
    /// the desired rate is lowered now (it is left so).
    fn recovery_probe(&mut self, now: Instant, id: PeerId, looking: bool) -> bool {
        let Some(peer) = self.peer_mut(id) else {
            return false;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return false;
        };
        if let Some(until) = down.recovery_dip_until {
            if now < until {
                return true;
            }
            down.recovery_dip_until = None;
        }
        if !looking {
            down.next_recovery_probe = None;
            return false;
        }
        let estimate = down.estimate.unwrap_or(0);
        match down.next_recovery_probe {
            // Held below just now: the first probe waits a whole interval.
            None => {
                down.next_recovery_probe = Some(now + RECOVERY_PROBE_INTERVAL);
                down.recovery_probe_base = u64::MAX;
                return false;
            }
            Some(at) if now < at => {
                // The last probe found room: follow it up soon.
                let since = RECOVERY_PROBE_INTERVAL.saturating_sub(at - now);
                let grew =
                    estimate as f64 >= down.recovery_probe_base as f64 * RECOVERY_PROBE_GROWTH;
                if !(grew && since >= RECOVERY_PROBE_FOLLOW_UP) {
                    return false;
                }
            }
            Some(_) => {}
        }
        down.next_recovery_probe = Some(now + RECOVERY_PROBE_INTERVAL);
        down.recovery_probe_base = estimate;
        down.recovery_dip_until = Some(now + RECOVERY_PROBE_DIP);
        down.desired /= 2;
        down.probing = 0;
        log::trace!("down {id:?}: recovery probe");
        rtc.bwe()
            .set_bitrate(Bitrate::ZERO, Bitrate::bps(down.desired.max(1)));
        self.drain(now, id);
        true
    }

    /// Points one down track at `target` with `choice`'s temporal layers, and records the
    /// outcome; a change of layer subscribes to it and asks for its keyframe.
    #[allow(clippy::too_many_arguments)]
    fn apply_choice(
        &mut self,
        id: PeerId,
        track: usize,
        target: SourceRef,
        choice: Choice,
        policy: allocate::TrackPolicy,
        reduced: bool,
        max_bitrate: Option<u64>,
        ceiling: Option<usize>,
        forced_down: bool,
    ) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Peer {
            rtc,
            role,
            connected,
            key,
            ..
        } = peer;
        let (connected, key) = (*connected, *key);
        let Role::Down(down) = role else {
            return;
        };
        let was_reduced = down.tracks.iter().any(|t| t.reduced);
        let Some(slot) = down.tracks.get_mut(track) else {
            return;
        };
        slot.policy = policy;
        slot.choice = Some(choice);
        slot.reduced = reduced;
        slot.max_bitrate = max_bitrate;
        slot.ceiling = ceiling;
        slot.track.set_max_tid(choice.max_tid);
        let already = slot.track.pending == Some(target)
            || (slot.track.pending.is_none() && slot.track.current == Some(target));
        let dropped = if already {
            heapless::Vec::new()
        } else {
            slot.track.select(Some(target))
        };
        if !already && forced_down {
            slot.track.leave_current_now();
            // What the pacer still holds of the old layer would reach the receiver after it
            // left, late, ahead of the new layer's keyframe.
            let mid = slot.mid;
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                let dropped = tx.drop_unsent();
                log::debug!(
                    "stream {}: track {track} left its layer, {dropped} unsent dropped",
                    key.0
                );
            }
        }
        let is_reduced = down.tracks.iter().any(|t| t.reduced);
        if !already {
            let sub = Subscriber { down: id, track };
            self.subscribe(target, sub);
            for old in dropped {
                self.unsubscribe(old, sub);
            }
            if connected {
                self.deferred.push_back(Deferred::Keyframe(target));
            }
            log::debug!(
                "stream {}: track {track} now on layer {} (tid {:?})",
                key.0,
                target.layer,
                choice.max_tid
            );
        }
        if is_reduced != was_reduced {
            self.push_event(MediaEvent::LayerReduced {
                stream: key,
                reduced: is_reduced,
            });
        }
    }

    /// Tells down peer `id`'s estimator how much we would like to send (it probes towards it)
    /// and the floor padding must keep the link at (an upgrade on trial; 0: none).
    fn set_desired(&mut self, now: Instant, id: PeerId, rate: u64, floor: u64) {
        let desired = ((rate as f64 * DESIRED_HEADROOM) as u64).max(300_000);
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let Peer { rtc, role, .. } = peer;
        let Role::Down(down) = role else {
            return;
        };
        let old = down.desired as f64;
        let same_desired = old > 0.0 && (desired as f64 - old).abs() < old * 0.1;
        if same_desired && floor == down.probing {
            return;
        }
        down.desired = desired;
        down.probing = floor;
        rtc.bwe()
            .set_bitrate(Bitrate::bps(floor.min(desired)), Bitrate::bps(desired));
        self.drain(now, id);
    }

    /// Sends every publisher the most its layers are worth (see the module docs).
    fn send_rate_limits(&mut self, now: Instant) {
        if !self.config.downlink_estimation {
            return;
        }
        let ups: Vec<PeerId> = self
            .keys
            .values()
            .copied()
            .filter(|&id| {
                self.peer(id)
                    .is_some_and(|p| p.up().is_some() && p.connected)
            })
            .collect();
        for id in ups {
            let limit = self.rate_limit(id);
            let Some(peer) = peer_in(&mut self.slots, id) else {
                continue;
            };
            let Peer { rtc, role, .. } = peer;
            let Role::Up(up) = role else {
                continue;
            };
            // A limit must hold for a few rounds before it is sent (a receiver's estimate
            // dips for a moment); lifting it is immediate.
            up.limit_rounds = if limit.is_some() {
                up.limit_rounds.saturating_add(1)
            } else {
                0
            };
            let value = match (limit, up.remb) {
                (Some(limit), _) if up.limit_rounds >= LIMIT_ROUNDS => limit,
                (Some(_), _) => continue,
                (None, Some(_)) => UNLIMITED_REMB,
                (None, None) => continue, // never limited: nothing to lift
            };
            let Some(layer) = up
                .layers
                .iter()
                .find(|l| l.kind == MediaKind::Video && l.meter.last_packet.is_some())
            else {
                continue;
            };
            let (mid, rid) = (layer.mid, layer.rid);
            let mut api = rtc.direct_api();
            let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
                continue;
            };
            log::trace!("up {}: rate limit {value}", id.index());
            rx.request_remb(Bitrate::bps(value));
            up.remb = Some(value);
            self.drain(now, id);
        }
    }

    /// The limit for up peer `id`: `None` when some receiver can take the top layer of each
    /// simulcast m-line (or nobody receives it), else the layers receivers can take.
    fn rate_limit(&self, id: PeerId) -> Option<u64> {
        let up = self.peer(id)?.up()?;
        let mut total = 0u64;
        let mut mlines: heapless::Vec<usize, 8> = heapless::Vec::new();
        for layer in &up.layers {
            if layer.kind == MediaKind::Audio {
                total += layer.meter.rate.max(DEFAULT_AUDIO_RATE);
            } else if !mlines.contains(&layer.mline) {
                let _ = mlines.push(layer.mline);
            }
        }
        let mut limited = false;
        for mline in mlines {
            let ranked = ranked_layers(&up.layers, mline);
            if ranked.len() < 2 {
                return None;
            }
            // The best rank any receiver could take; a local sink (the recorder) takes the
            // layer it is attached to.
            let mut best: Option<usize> = None;
            for (rank, &i) in ranked.iter().enumerate() {
                if !up.layers[i].sinks.is_empty() {
                    best = Some(best.map_or(rank, |b: usize| b.max(rank)));
                }
                for sub in &up.layers[i].subscribers {
                    let ceiling = self
                        .peer(sub.down)
                        .and_then(|p| p.down())
                        .and_then(|d| d.tracks.get(sub.track))
                        .and_then(|t| t.ceiling);
                    let rank = ceiling.and_then(|c| ranked.iter().position(|&r| r == c));
                    let rank = rank.unwrap_or(ranked.len() - 1);
                    best = Some(best.map_or(rank, |b: usize| b.max(rank)));
                }
            }
            let best = best?;
            if best + 1 >= ranked.len() {
                return None;
            }
            let rates = ranked[..=best].iter().map(|&i| up.layers[i].meter.rate);
            if rates.clone().any(|r| r == 0) {
                return None; // not measured yet: no grounds for a limit
            }
            limited = true;
            total += (rates.sum::<u64>() as f64 * REMB_HEADROOM) as u64;
        }
        limited.then_some(total.max(MIN_REMB))
    }

    /// The layer choice of track `mid` of down stream `id`, for stats.
    pub(crate) fn layer_stats(&self, id: PeerId, track: usize) -> Option<LayerStats> {
        let down = self.peer(id)?.down()?;
        let slot = down.tracks.get(track)?;
        let choice = slot.choice?;
        let up = self.peer(down.source?)?.up()?;
        let layer = up.layers.get(choice.layer)?;
        let ranked = ranked_layers(&up.layers, layer.mline);
        let sid = ranked.iter().position(|&i| i == choice.layer).unwrap_or(0);
        let (tid, max_tid) = slot.track.temporal_layers();
        Some(LayerStats {
            sid: sid as u8,
            max_sid: ranked.len().saturating_sub(1) as u8,
            tid,
            max_tid,
            max_bitrate: slot.max_bitrate,
            reduced: slot.reduced,
        })
    }
}
