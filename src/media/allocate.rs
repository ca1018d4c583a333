//! Downlink adaptation policy: which layer of each video track fits in one subscriber's link.
//!
//! A subscriber's link has one budget (the bandwidth estimate of every stream it receives,
//! added up, see [`super::Sfu`]). Audio is reserved first and never dropped. What is left is
//! shared by the subscriber's video tracks, each of which can be received in a few ways,
//! its [`LayerOption`]s, cheapest first: the lowest simulcast layer with fewer temporal
//! layers, the lowest layer whole, then each higher layer. [`allocate`] picks one option per
//! track:
//!
//! - A track keeps its option while everything still fits in the budget; when it does not,
//!   the track on the most expensive option steps down, one option at a time, until it fits
//!   (down quickly: congestion hurts everyone on the link, audio included).
//! - A track steps up only when the next option fits with [`UPGRADE_HEADROOM`] to spare and no
//!   hold is in force. A step down holds upgrades for [`UPGRADE_HOLD`], doubled for each step
//!   down that follows an upgrade within [`FLAP_WINDOW`] (up cautiously, and do not flap).
//! - A track that was once stepped down for lack of budget steps up again only after a trial:
//!   for [`TRIAL_TIME`] the link is filled with padding up to what the next option would cost
//!   ([`Allocation::probe`]), and the step happens only if no congestion was reported meanwhile.
//!   An estimate that grew from a short probe (a shaper's token bucket lets a burst through at
//!   line rate) is not trusted with a keyframe and a higher layer until then; a failed trial
//!   counts as a flap.
//! - Frame rate goes only when the receiver reports show loss ([`Budgets::losing`]): the
//!   estimate alone, or a queue that does not overflow, takes a track down to its lowest layer
//!   whole, never below (behind a shaper's token bucket the estimate swings far below what the
//!   link carries), and a track below that layer comes
//!   back up to it (after the hold and a trial) once the estimate would keep it, without an
//!   upgrade's headroom (an estimator that sends little reads little more than it sends).
//! - Options whose layer is not arriving are skipped; a track whose option stops arriving moves
//!   to the nearest one that arrives.
//!
//! Everything here is plain data and arithmetic: the caller supplies time and rates.

use std::time::{Duration, Instant};

/// Spare budget an upgrade must leave: the new total may use at most this share of it.
pub(crate) const UPGRADE_HEADROOM: f64 = 0.85;
/// Upgrades wait this long after a step down.
pub(crate) const UPGRADE_HOLD: Duration = Duration::from_secs(4);
/// A step down this soon after an upgrade doubles the next hold.
pub(crate) const FLAP_WINDOW: Duration = Duration::from_secs(15);
/// The longest hold.
pub(crate) const MAX_UPGRADE_HOLD: Duration = Duration::from_secs(32);
/// Options kept per track, at most.
pub(crate) const MAX_OPTIONS: usize = 8;
/// How long an upgrade is tried with padding before it is made.
pub(crate) const TRIAL_TIME: Duration = Duration::from_millis(2500);

/// One way to receive a video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerOption {
    /// The up layer (an index into the publisher's layers).
    pub layer: usize,
    /// The highest temporal layer forwarded, `None` for all of them.
    pub max_tid: Option<u8>,
    /// Bits per second it costs (measured; the last measurement if it is not arriving now).
    pub rate: u64,
    /// Whether its packets are arriving.
    pub available: bool,
}

impl LayerOption {
    fn same_choice(&self, choice: Choice) -> bool {
        self.layer == choice.layer && self.max_tid == choice.max_tid
    }

    fn choice(&self) -> Choice {
        Choice {
            layer: self.layer,
            max_tid: self.max_tid,
        }
    }
}

/// The options of one track, cheapest first; the last one is the best the receiver asked for.
pub(crate) type Options = heapless::Vec<LayerOption, MAX_OPTIONS>;

/// What a track receives: a layer and the highest temporal layer of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The up layer.
    pub layer: usize,
    /// The highest temporal layer, `None` for all.
    pub max_tid: Option<u8>,
}

/// What the policy remembers about one track between runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrackPolicy {
    /// The option chosen last time.
    pub current: Option<Choice>,
    /// No upgrade before this time.
    hold_until: Option<Instant>,
    /// The current hold length (doubles on flapping).
    hold: Option<Duration>,
    /// When the last upgrade happened.
    last_upgrade: Option<Instant>,
    /// When the last step down happened.
    last_down: Option<Instant>,
    /// The budget once forced this track down: upgrades go through trials.
    recovering: bool,
    /// The trial of the next upgrade runs until then.
    trial_until: Option<Instant>,
}

impl TrackPolicy {
    /// Whether no hold forbids an upgrade at `now`.
    pub(crate) fn may_upgrade(&self, now: Instant) -> bool {
        self.hold_until.is_none_or(|h| now >= h)
    }
}

/// The outcome of one run for one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Allocation {
    /// Index of the chosen option (`None`: no option is arriving; leave the track as it is).
    pub chosen: Option<usize>,
    /// Whether a better available option exists that the budget does not allow.
    pub reduced: bool,
    /// The best option the budget would allow if every layer were arriving (what the
    /// publisher is worth asking for).
    pub ceiling: usize,
    /// An upgrade is on trial: keep the link busy up to this much video, bits per second.
    pub probe: Option<u64>,
}

/// One track as [`allocate`] sees it.
pub(crate) struct TrackInput<'a> {
    /// Its options, cheapest first.
    pub options: &'a [LayerOption],
    /// Its memory.
    pub policy: &'a mut TrackPolicy,
}

/// What one link may carry, in bits per second (`None`: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budgets {
    /// What new choices must fit in (with [`UPGRADE_HEADROOM`] for upgrades).
    pub budget: Option<u64>,
    /// What current choices must fit in to be kept (at least `budget`).
    pub keep: Option<u64>,
    /// The receiver reports show sustained loss (a queue overflowing): only then may a track go
    /// below the lowest layer whole (lose frame rate). The estimate alone, noisy behind a
    /// shaper's token bucket, or a queue that fills without overflowing (our own padding, or
    /// the queue an old rate built draining), may take a track down to that layer but not
    /// below it, and coming back up to it needs only what `keep` allows, not the headroom of
    /// an upgrade.
    pub losing: bool,
}

impl Budgets {
    /// One figure for both, as after receiver reports of loss.
    #[cfg(test)]
    pub(crate) fn same(budget: Option<u64>) -> Budgets {
        Budgets {
            budget,
            keep: budget,
            losing: true,
        }
    }
}

/// Chooses an option for every track of one link. `budgets` are the link's (with `None`, every
/// track gets its best available option); `audio` is the rate reserved for audio; `congested`
/// says the link reported congestion lately (no upgrade, and a running trial fails). Returns
/// one [`Allocation`] per track, in order.
pub(crate) fn allocate(
    now: Instant,
    budgets: Budgets,
    audio: u64,
    congested: bool,
    tracks: &mut [TrackInput<'_>],
) -> heapless::Vec<Allocation, 16> {
    let budget = budgets.budget;
    if congested {
        for t in tracks.iter_mut() {
            if t.policy.trial_until.take().is_some() {
                fail_trial(now, t.policy);
            }
        }
    }
    let mut chosen: heapless::Vec<Option<usize>, 16> = heapless::Vec::new();
    for t in tracks.iter() {
        // capacity 16: callers pass at most 16 tracks (extra ones are left out below)
        let _ = chosen.push(start_option(t.options, t.policy.current));
    }
    let count = chosen.len();
    let Some(budget) = budget else {
        let mut out = heapless::Vec::new();
        for (i, t) in tracks.iter_mut().take(count).enumerate() {
            let best = best_available(t.options);
            chosen[i] = best;
            let ceiling = t.options.len().saturating_sub(1);
            let _ = out.push(settle(now, t, best, false, false, ceiling, None));
        }
        return out;
    };
    let video_budget = budget.saturating_sub(audio);
    let keep_budget = budgets
        .keep
        .unwrap_or(budget)
        .max(budget)
        .saturating_sub(audio);
    let cost = |chosen: &[Option<usize>], tracks: &[TrackInput<'_>]| -> u64 {
        chosen
            .iter()
            .zip(tracks)
            .map(|(c, t)| c.map_or(0, |i| t.options[i].rate))
            .sum()
    };
    let mut stepped_down: heapless::Vec<bool, 16> = heapless::Vec::new();
    for _ in 0..count {
        let _ = stepped_down.push(false);
    }
    // The lowest option each track may be taken to (see `Budgets::losing`).
    let floor = |options: &[LayerOption]| {
        if budgets.losing {
            0
        } else {
            lowest_whole(options)
        }
    };
    // Down: while over budget, the track on the most expensive option steps down.
    while cost(&chosen, tracks) > keep_budget {
        let victim = (0..count)
            .filter_map(|i| {
                let c = chosen[i]?;
                let below = available_below(tracks[i].options, c)?;
                if below < floor(tracks[i].options) {
                    return None;
                }
                Some((tracks[i].options[c].rate, i, below))
            })
            .max_by_key(|&(rate, i, _)| (rate, i));
        let Some((_, i, below)) = victim else {
            break; // everyone is on their cheapest option
        };
        chosen[i] = Some(below);
        stepped_down[i] = true;
    }
    // Up: the track on the cheapest option first, while the next one fits with headroom.
    let allowed = (video_budget as f64 * UPGRADE_HEADROOM) as u64;
    let mut probes: heapless::Vec<Option<u64>, 16> = heapless::Vec::new();
    for _ in 0..count {
        let _ = probes.push(None);
    }
    loop {
        let total = cost(&chosen, tracks);
        let candidate = (0..count)
            .filter(|&i| !stepped_down[i] && probes[i].is_none())
            .filter(|&i| tracks[i].policy.may_upgrade(now))
            .filter_map(|i| {
                let c = chosen[i]?;
                let options = tracks[i].options;
                // Back up to the lowest layer whole, what fits is what the estimate would keep.
                let limit = |o: usize| {
                    if !budgets.losing && o <= lowest_whole(options) {
                        keep_budget
                    } else {
                        allowed
                    }
                };
                let fits =
                    |o: usize| total + options[o].rate.saturating_sub(options[c].rate) <= limit(o);
                let mut above = available_above(options, c).filter(|&o| fits(o))?;
                if tracks[i].policy.recovering {
                    // One trial for the whole way up to what fits, not one per step.
                    while let Some(next) = available_above(options, above).filter(|&o| fits(o)) {
                        above = next;
                    }
                }
                Some((c, i, above))
            })
            .min_by_key(|&(c, i, _)| (c, i));
        let Some((_, i, above)) = candidate else {
            break;
        };
        let policy = &mut *tracks[i].policy;
        if policy.recovering {
            if congested {
                break;
            }
            match policy.trial_until {
                Some(until) if now >= until => policy.trial_until = None, // passed
                Some(_) => {
                    probes[i] = Some(
                        total - chosen[i].map_or(0, |c| tracks[i].options[c].rate)
                            + tracks[i].options[above].rate,
                    );
                    continue;
                }
                None => {
                    policy.trial_until = Some(now + TRIAL_TIME);
                    probes[i] = Some(
                        total - chosen[i].map_or(0, |c| tracks[i].options[c].rate)
                            + tracks[i].options[above].rate,
                    );
                    continue;
                }
            }
        }
        chosen[i] = Some(above);
    }
    // The ceiling: the best option each track could afford alone on what is left.
    let total = cost(&chosen, tracks);
    let mut out = heapless::Vec::new();
    for (i, t) in tracks.iter_mut().take(count).enumerate() {
        let mine = chosen[i].map_or(0, |c| t.options[c].rate);
        let room = video_budget.saturating_sub(total - mine);
        let ceiling = t.options.iter().rposition(|o| o.rate <= room).unwrap_or(0);
        let best = best_available(t.options);
        let reduced = match (chosen[i], best) {
            (Some(c), Some(b)) => c < b,
            _ => false,
        };
        if probes[i].is_none() {
            t.policy.trial_until = None; // the upgrade no longer fits: no trial
        }
        let _ = out.push(settle(
            now,
            t,
            chosen[i],
            stepped_down[i],
            reduced,
            ceiling,
            probes[i],
        ));
    }
    out
}

/// Records the choice in the track's memory, updating holds, and builds its allocation.
/// `budget_down` says the budget forced a step down (a layer that stopped arriving does not
/// hold upgrades).
fn settle(
    now: Instant,
    track: &mut TrackInput<'_>,
    chosen: Option<usize>,
    budget_down: bool,
    reduced: bool,
    ceiling: usize,
    probe: Option<u64>,
) -> Allocation {
    let previous = track
        .policy
        .current
        .and_then(|c| track.options.iter().position(|o| o.same_choice(c)));
    let policy = &mut *track.policy;
    match (previous, chosen) {
        (Some(p), Some(c)) if c < p && budget_down => {
            // A step down. Flapping (down soon after an up) doubles the hold, once per up:
            // the steps of one fall are one flap.
            let flapped = policy.last_upgrade.is_some_and(|u| {
                now.saturating_duration_since(u) < FLAP_WINDOW
                    && policy.last_down.is_none_or(|d| d < u)
            });
            policy.last_down = Some(now);
            let hold = match policy.hold {
                Some(h) if flapped => (h * 2).min(MAX_UPGRADE_HOLD),
                _ => UPGRADE_HOLD,
            };
            policy.hold = Some(hold);
            policy.hold_until = Some(now + hold);
            policy.recovering = true;
            policy.trial_until = None;
        }
        (Some(p), Some(c)) if c > p => policy.last_upgrade = Some(now),
        _ => {}
    }
    policy.current = chosen.map(|c| track.options[c].choice());
    Allocation {
        chosen,
        reduced,
        ceiling,
        probe,
    }
}

/// A trial saw congestion: hold upgrades as after a flap.
fn fail_trial(now: Instant, policy: &mut TrackPolicy) {
    let hold = policy
        .hold
        .map_or(UPGRADE_HOLD, |h| (h * 2).min(MAX_UPGRADE_HOLD));
    policy.hold = Some(hold);
    policy.hold_until = Some(now + hold);
}

/// Where a track starts this run: its previous option if it is still offered and arriving,
/// else the nearest arriving one below it, else above it; a new track starts on its cheapest.
fn start_option(options: &[LayerOption], current: Option<Choice>) -> Option<usize> {
    let previous = current.and_then(|c| options.iter().position(|o| o.same_choice(c)));
    match previous {
        Some(p) if options[p].available => Some(p),
        Some(p) => available_below(options, p).or_else(|| available_above(options, p)),
        None => options.iter().position(|o| o.available),
    }
}

/// The lowest layer whole: the first option that keeps every temporal layer.
fn lowest_whole(options: &[LayerOption]) -> usize {
    options
        .iter()
        .position(|o| o.max_tid.is_none())
        .unwrap_or(0)
}

fn best_available(options: &[LayerOption]) -> Option<usize> {
    options.iter().rposition(|o| o.available)
}

fn available_below(options: &[LayerOption], index: usize) -> Option<usize> {
    options[..index].iter().rposition(|o| o.available)
}

fn available_above(options: &[LayerOption], index: usize) -> Option<usize> {
    options
        .iter()
        .enumerate()
        .skip(index + 1)
        .find(|(_, o)| o.available)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Low layer 0 with tids 0, 1 and all; high layer 1.
    fn simulcast(low: u64, high: u64) -> Options {
        let mut o = Options::new();
        for (layer, max_tid, rate) in [
            (0, Some(0), low / 2),
            (0, Some(1), low * 3 / 4),
            (0, None, low),
            (1, None, high),
        ] {
            let _ = o.push(LayerOption {
                layer,
                max_tid,
                rate,
                available: true,
            });
        }
        o
    }

    fn run(
        now: Instant,
        budget: Option<u64>,
        options: &[&Options],
        policies: &mut [TrackPolicy],
    ) -> Vec<Allocation> {
        let mut inputs: Vec<TrackInput<'_>> = options
            .iter()
            .zip(policies.iter_mut())
            .map(|(o, p)| TrackInput {
                options: o.as_slice(),
                policy: p,
            })
            .collect();
        allocate(now, Budgets::same(budget), 50_000, false, &mut inputs).to_vec()
    }

    #[test]
    fn a_new_track_gets_the_best_layer_that_fits_and_audio_comes_first() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        // 900 kb/s: 850k for video, and the high layer must fit in 85 % of that (722k): no.
        let a = run(t0, Some(900_000), &[&o], &mut p);
        assert_eq!(a[0].chosen.unwrap(), 2);
        assert!(a[0].reduced);
        let mut p = [TrackPolicy::default()];
        let a = run(t0, Some(1_100_000), &[&o], &mut p);
        assert_eq!(a[0].chosen.unwrap(), 3);
        assert!(!a[0].reduced);
        // Unknown budget: the best.
        let mut p = [TrackPolicy::default()];
        assert_eq!(run(t0, None, &[&o], &mut p)[0].chosen.unwrap(), 3);
        // 300 kb/s less 50k audio: the whole low layer fits with headroom.
        let mut p = [TrackPolicy::default()];
        assert_eq!(run(t0, Some(300_000), &[&o], &mut p)[0].chosen.unwrap(), 2);
        // 140 kb/s: audio takes 50k, tid 0 of the low layer (75k) fits, tid 1 (112k) does not.
        let mut p = [TrackPolicy::default()];
        assert_eq!(run(t0, Some(140_000), &[&o], &mut p)[0].chosen.unwrap(), 0);
    }

    #[test]
    fn congestion_steps_down_at_once_and_recovery_waits_for_the_hold() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        assert_eq!(
            run(t0, Some(2_000_000), &[&o], &mut p)[0].chosen.unwrap(),
            3
        );
        // The link drops to 300k: straight to the low layer.
        let t1 = t0 + Duration::from_secs(20);
        let a = run(t1, Some(300_000), &[&o], &mut p);
        assert_eq!(a[0].chosen.unwrap(), 2);
        assert!(a[0].reduced);
        // It recovers at once, but the hold keeps the low layer for UPGRADE_HOLD.
        let t2 = t1 + Duration::from_secs(1);
        let a = run(t2, Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), None));
        // Then a trial: padding up to what the high layer costs, still on the low layer.
        let t3 = t1 + UPGRADE_HOLD;
        let a = run(t3, Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), Some(800_000)));
        let a = run(t3 + TRIAL_TIME / 2, Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), Some(800_000)));
        // The trial saw no congestion: up.
        let a = run(t3 + TRIAL_TIME, Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(3), None));
    }

    #[test]
    fn recovery_tries_the_whole_way_up_to_what_fits_at_once() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        run(t0, Some(2_000_000), &[&o], &mut p);
        // Severe congestion: down to the base temporal layer.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(run(t1, Some(120_000), &[&o], &mut p)[0].chosen, Some(0));
        // Room for the whole low layer (not the high one): one trial for it, then up.
        let t2 = t1 + UPGRADE_HOLD;
        let a = run(t2, Some(400_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(0), Some(150_000)));
        let a = run(t2 + TRIAL_TIME, Some(400_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), None));
    }

    fn run_congested(now: Instant, budget: u64, o: &Options, p: &mut TrackPolicy) -> Allocation {
        let mut inputs = [TrackInput {
            options: o.as_slice(),
            policy: p,
        }];
        allocate(now, Budgets::same(Some(budget)), 50_000, true, &mut inputs)[0]
    }

    #[test]
    fn a_trial_that_meets_congestion_fails_and_holds_longer() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        run(t0, Some(2_000_000), &[&o], &mut p);
        let t1 = t0 + Duration::from_secs(30);
        run(t1, Some(300_000), &[&o], &mut p); // down, hold 4 s
        let t2 = t1 + UPGRADE_HOLD;
        assert_eq!(
            run(t2, Some(2_000_000), &[&o], &mut p)[0].probe,
            Some(800_000)
        );
        // The receiver reports loss while the padding runs: the trial fails.
        let a = run_congested(t2 + Duration::from_secs(1), 2_000_000, &o, &mut p[0]);
        assert_eq!((a.chosen, a.probe), (Some(2), None));
        // The hold doubled (8 s): no new trial before it ends.
        let t3 = t2 + Duration::from_secs(1);
        let a = run(t3 + Duration::from_secs(7), Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), None));
        let a = run(t3 + Duration::from_secs(8), Some(2_000_000), &[&o], &mut p);
        assert_eq!((a[0].chosen, a[0].probe), (Some(2), Some(800_000)));
        // A track that was never forced down needs no trial.
        let mut fresh = [TrackPolicy::default()];
        assert_eq!(
            run(t3, Some(2_000_000), &[&o], &mut fresh)[0].chosen,
            Some(3)
        );
    }

    #[test]
    fn hysteresis_keeps_a_layer_that_still_fits() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        assert_eq!(
            run(t0, Some(1_100_000), &[&o], &mut p)[0].chosen.unwrap(),
            3
        );
        // 900k: would not be chosen fresh (850k > 0.85 * 900k) but still fits: kept.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(run(t1, Some(900_000), &[&o], &mut p)[0].chosen.unwrap(), 3);
        // 840k: no longer fits.
        assert_eq!(run(t1, Some(840_000), &[&o], &mut p)[0].chosen.unwrap(), 2);
    }

    #[test]
    fn a_keep_budget_above_the_estimate_keeps_the_current_layer_but_allows_no_upgrade() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        assert_eq!(run(t0, Some(1_100_000), &[&o], &mut p)[0].chosen, Some(3));
        let lenient = Budgets {
            budget: Some(700_000),
            keep: Some(875_000),
            losing: true,
        };
        let mut inputs = [TrackInput {
            options: o.as_slice(),
            policy: &mut p[0],
        }];
        let a = allocate(t0, lenient, 50_000, false, &mut inputs)[0];
        assert_eq!(a.chosen, Some(3), "850k still fits the keep budget");
        // A new track on the same budgets does not get the high layer.
        let mut fresh = TrackPolicy::default();
        let mut inputs = [TrackInput {
            options: o.as_slice(),
            policy: &mut fresh,
        }];
        assert_eq!(
            allocate(t0, lenient, 50_000, false, &mut inputs)[0].chosen,
            Some(2)
        );
    }

    #[test]
    fn flapping_doubles_the_hold() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        run(t0, Some(2_000_000), &[&o], &mut p);
        let mut t = t0 + Duration::from_secs(30);
        run(t, Some(300_000), &[&o], &mut p); // down: hold 4 s
        t += UPGRADE_HOLD;
        run(t, Some(2_000_000), &[&o], &mut p); // trial
        t += TRIAL_TIME;
        assert_eq!(run(t, Some(2_000_000), &[&o], &mut p)[0].chosen, Some(3)); // up
        t += Duration::from_secs(2);
        assert_eq!(run(t, Some(300_000), &[&o], &mut p)[0].chosen, Some(2)); // down again: hold 8 s
        t += UPGRADE_HOLD;
        assert_eq!(run(t, Some(2_000_000), &[&o], &mut p)[0].probe, None);
        t += UPGRADE_HOLD;
        assert_eq!(
            run(t, Some(2_000_000), &[&o], &mut p)[0].probe,
            Some(800_000)
        );
        t += TRIAL_TIME;
        assert_eq!(run(t, Some(2_000_000), &[&o], &mut p)[0].chosen, Some(3));
    }

    #[test]
    fn a_layer_that_stops_arriving_is_left_for_the_nearest_that_arrives() {
        let t0 = Instant::now();
        let mut o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default()];
        assert_eq!(
            run(t0, Some(5_000_000), &[&o], &mut p)[0].chosen.unwrap(),
            3
        );
        o[3].available = false;
        let a = run(t0, Some(5_000_000), &[&o], &mut p);
        assert_eq!(a[0].chosen.unwrap(), 2);
        assert!(
            !a[0].reduced,
            "not the network's fault: the publisher stopped the layer"
        );
        // The ceiling still says the high layer would be received.
        assert_eq!(a[0].ceiling, 3);
        o[3].available = true;
        assert_eq!(
            run(t0, Some(5_000_000), &[&o], &mut p)[0].chosen.unwrap(),
            3
        );
    }

    /// One run on `budget` as a TWCC estimate (`losing` false) or after receiver reports of
    /// loss.
    fn run_estimate(
        now: Instant,
        budget: u64,
        losing: bool,
        o: &Options,
        p: &mut TrackPolicy,
    ) -> Allocation {
        let budgets = Budgets {
            budget: Some(budget),
            keep: Some((budget as f64 / 0.8) as u64),
            losing,
        };
        let mut inputs = [TrackInput {
            options: o.as_slice(),
            policy: p,
        }];
        allocate(now, budgets, 50_000, false, &mut inputs)[0]
    }

    #[test]
    fn only_reported_loss_costs_frame_rate_and_the_estimate_does_not_keep_it_away() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = TrackPolicy::default();
        assert_eq!(
            run_estimate(t0, 2_000_000, false, &o, &mut p).chosen,
            Some(3)
        );
        // An estimate far below the low layer (a dip behind a token bucket): the low layer
        // whole, no further.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(run_estimate(t1, 100_000, false, &o, &mut p).chosen, Some(2));
        assert_eq!(run_estimate(t1, 60_000, false, &o, &mut p).chosen, Some(2));
        // The receiver reports show loss: temporal layers go.
        let a = run_estimate(t1, 120_000, true, &o, &mut p);
        assert_eq!(a.chosen, Some(0));
        // The reports are clean again and the estimate reads 170k: the low layer whole plus
        // audio (200k) fits what it would keep (212k), not the headroom of an upgrade (102k of
        // video): after the hold, a trial, then up.
        let t2 = t1 + UPGRADE_HOLD;
        let a = run_estimate(t2, 170_000, false, &o, &mut p);
        assert_eq!((a.chosen, a.probe), (Some(0), Some(150_000)));
        // The estimate dips during the trial, as far as it would still keep it: it goes on.
        let a = run_estimate(t2 + TRIAL_TIME / 2, 160_000, false, &o, &mut p);
        assert_eq!((a.chosen, a.probe), (Some(0), Some(150_000)));
        let a = run_estimate(t2 + TRIAL_TIME, 170_000, false, &o, &mut p);
        assert_eq!((a.chosen, a.probe), (Some(2), None));
        // Back on it, a dip of the estimate alone does not take it away again.
        assert_eq!(
            run_estimate(t2 + TRIAL_TIME, 60_000, false, &o, &mut p).chosen,
            Some(2)
        );
        // Above the lowest layer whole, an upgrade still needs its headroom.
        let t3 = t2 + Duration::from_secs(100);
        assert_eq!(run_estimate(t3, 900_000, false, &o, &mut p).probe, None);
    }

    #[test]
    fn two_tracks_share_the_budget_cheapest_first() {
        let t0 = Instant::now();
        let o = simulcast(150_000, 800_000);
        let mut p = [TrackPolicy::default(), TrackPolicy::default()];
        // 1.1M: 1.05M for video, upgrades up to 892k: one high (800k) and one low (150k) is
        // 950k, too much: both low.
        let a = run(t0, Some(1_100_000), &[&o, &o], &mut p);
        assert_eq!((a[0].chosen.unwrap(), a[1].chosen.unwrap()), (2, 2));
        let mut p = [TrackPolicy::default(), TrackPolicy::default()];
        let a = run(t0, Some(1_300_000), &[&o, &o], &mut p);
        assert_eq!((a[0].chosen.unwrap(), a[1].chosen.unwrap()), (3, 2));
        // Congestion: the expensive one steps down first.
        let t1 = t0 + Duration::from_secs(1);
        let a = run(t1, Some(500_000), &[&o, &o], &mut p);
        assert_eq!((a[0].chosen.unwrap(), a[1].chosen.unwrap()), (2, 2));
        // Severe congestion: both lose temporal layers, the audio stays reserved.
        let a = run(t1, Some(250_000), &[&o, &o], &mut p);
        assert!(
            a[0].chosen.unwrap() <= 1 && a[1].chosen.unwrap() <= 1,
            "{a:?}"
        );
    }
}
