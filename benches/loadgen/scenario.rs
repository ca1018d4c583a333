//! The scenarios and one measured step: start the target, build the load, warm up, measure
//! one window from `/proc` and the receivers, stop the target.
//!
//! Scenarios: `fanout` (1 publisher → N subscribers, N rising until the quality bar breaks),
//! `meeting` (M clients each publishing and receiving all others), `storm` (N subscribers asked
//! for at once: join → first packet), `loss` (5 % dropped on subscriber links: NACK repair) and
//! `capped` (1 simulcast publisher → N subscribers, every fourth behind an emulated capped,
//! lossy downlink: does the server fit each subscriber's layer to its link; sfubox only).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::options::{Scenario, SuiteOptions};
use crate::peer::{Camera, Link, LinkStats};
use crate::procstat;
use crate::report;
use crate::signal::{Client, Galene, Janus};
use crate::target::{Launch, Target, TargetKind};
use crate::world::World;

/// A window where the generator's core is busier than this is invalid.
const MAX_GENERATOR_BUSY: f64 = 0.8;
/// How long after the window packets sent in it may still arrive.
const GRACE: Duration = Duration::from_millis(300);
/// Loss injected on subscriber links in the loss scenario.
const INJECTED_LOSS: f64 = 0.05;
/// In the capped scenario, every this many subscribers one is capped.
const CAPPED_EVERY: usize = 4;
/// Grace after a capped window: a capped link queues up to its delay, and repairs take RTTs.
const CAPPED_GRACE: Duration = Duration::from_secs(1);

/// Runs every scenario, step, repetition and target; writes results as it goes.
pub fn run_suite(o: &SuiteOptions) -> Result<(), String> {
    std::fs::create_dir_all(&o.out).map_err(|e| e.to_string())?;
    let scratch = o.out.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let launch = Launch {
        sfubox: &o.sfubox,
        galene: o.galene.as_deref(),
        janus_config: o.janus_config.as_deref(),
        janus_ip: o.janus_ip,
        cpu: o.target_cpu,
        dir: &scratch,
        callgrind: o.callgrind,
    };
    let mut rows: Vec<Value> = Vec::new();
    if o.append {
        // Keep the windows of an earlier run (e.g. a ramp re-run on a quieter machine).
        if let Ok(text) = std::fs::read_to_string(o.out.join("results.json"))
            && let Ok(doc) = serde_json::from_str::<Value>(&text)
            && let Some(old) = doc["rows"].as_array()
        {
            rows.extend(old.iter().cloned());
        }
    }
    let mut slot = 0u16;
    for &scenario in &o.scenarios {
        let steps: Vec<usize> = match scenario {
            Scenario::Fanout => o.fanout.clone(),
            Scenario::Meeting => o.meeting.clone(),
            Scenario::Storm => vec![o.storm],
            Scenario::Loss => vec![o.loss_subscribers],
            Scenario::Capped => vec![o.capped_subscribers],
        };
        let mut broken: Vec<TargetKind> = Vec::new();
        for &n in &steps {
            for rep in 0..o.reps {
                for &kind in &o.targets {
                    if broken.contains(&kind) {
                        continue;
                    }
                    if scenario == Scenario::Capped && !kind.is_sfubox() {
                        // Simulcast publishing and layer choice: Galène's signalling, sfubox's.
                        if rep == 0 {
                            eprintln!("== capped n={n} target={kind}: skipped (sfubox only)");
                        }
                        continue;
                    }
                    slot = slot.wrapping_add(1);
                    eprintln!("== {} n={n} rep={rep} target={kind}", scenario.name());
                    let row = match run_step(o, &launch, kind, scenario, n, slot) {
                        Ok(mut row) => {
                            row["rep"] = json!(rep);
                            row
                        }
                        Err(e) => {
                            eprintln!("   failed: {e}");
                            json!({"scenario": scenario.name(), "target": kind.to_string(),
                                   "n": n, "rep": rep, "error": e, "valid": false})
                        }
                    };
                    eprintln!("   {}", report::one_line(&row));
                    rows.push(row);
                    report::write_all(&o.out, &rows, o)?;
                }
            }
            if scenario == Scenario::Fanout {
                for &kind in &o.targets {
                    if !broken.contains(&kind) && report::step_broken(&rows, "fanout", kind, n) {
                        eprintln!("   {kind} broke at n={n}: not driven further");
                        broken.push(kind);
                    }
                }
                if broken.len() == o.targets.len() {
                    break;
                }
            }
        }
    }
    if o.quick {
        // The smoke test: every step ran and delivered media (no timing is asserted).
        let failed: Vec<String> = rows
            .iter()
            .filter(|r| !r["error"].is_null() || r["forwarded_pps"].as_f64().unwrap_or(0.0) <= 0.0)
            .map(|r| format!("{} n={} {}", r["scenario"], r["n"], r["target"]))
            .collect();
        if !failed.is_empty() {
            return Err(format!("no media delivered in: {}", failed.join(", ")));
        }
    }
    Ok(())
}

fn connect(kind: TargetKind, target: &Target, id: &str) -> Result<Box<dyn Client>, String> {
    Ok(match kind {
        TargetKind::Janus => Box::new(Janus::connect(&target.ws_url, 1000)?),
        _ => Box::new(Galene::join(&target.ws_url, "bench", id)?),
    })
}

/// Files and bytes under a recordings directory (its group directories).
fn recorded(dir: &std::path::Path) -> (usize, u64) {
    let mut found = (0, 0);
    for group in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(meta) = file.metadata() {
                found.0 += 1;
                found.1 += meta.len();
            }
        }
    }
    found
}

/// Runs one step and returns its row.
fn run_step(
    o: &SuiteOptions,
    launch: &Launch,
    kind: TargetKind,
    scenario: Scenario,
    n: usize,
    slot: u16,
) -> Result<Value, String> {
    let simulcast = scenario == Scenario::Capped;
    let target = Target::start(kind, launch, slot)?;
    let idle = procstat::process(target.pid).unwrap_or_default();
    let mut world = World::new(target.peer_ip)?;
    let (publishers, subscribers, per_camera) = match scenario {
        Scenario::Meeting => (n, 0, n.saturating_sub(1)),
        _ => (1, n, n),
    };
    if kind == TargetKind::Janus {
        let mut admin = Janus::connect(&target.ws_url, 1000)?;
        admin.create_room(1000, publishers as u64 + 1)?;
        world.clients.push(Box::new(admin));
    }
    let first_client = world.clients.len();

    // Publishers (meeting: everybody).
    for p in 0..publishers {
        world
            .clients
            .push(connect(kind, &target, &format!("pub{p}"))?);
        world.with_client(first_client + p, |c, env| c.publish(env, simulcast))?;
    }
    let pubs: Vec<usize> = (first_client..first_client + publishers).collect();
    let all_published = world.run_until(Instant::now() + Duration::from_secs(20), |w| {
        pubs.iter().all(|&c| {
            w.clients[c]
                .published()
                .is_some_and(|p| w.peers[p.peer].connected())
        })
    })?;
    if !all_published {
        return Err("publishers not connected within 20 s".into());
    }
    if kind == TargetKind::SfuboxRec {
        // An operator starts recording every stream of the group.
        let mut recorder = Galene::join(&target.ws_url, "bench", "rec")?;
        recorder.group_action("record")?;
        world.clients.push(Box::new(recorder));
    }
    let mut feeds = Vec::new();
    for (k, &c) in pubs.iter().enumerate() {
        let p = world.clients[c].published().ok_or("not published")?;
        feeds.push(p.feed);
        let ids = (2 * k as u16, 2 * k as u16 + 1);
        world
            .cameras
            .push(Camera::new(p.peer, p.audio, p.video, ids, simulcast));
    }
    world.meter.window_start = vec![0; 2 * publishers];
    world.meter.low_window_start = vec![0; 2 * publishers];
    if kind.needs_camera_settle() {
        // Galène offers a track to subscribers only once its first packets arrived.
        world.run_for(Duration::from_secs(1))?;
    }

    // Subscribers.
    let first_sub = world.clients.len();
    let storm = scenario == Scenario::Storm;
    for s in 0..subscribers {
        world
            .clients
            .push(connect(kind, &target, &format!("sub{s}"))?);
        if !storm {
            world.with_client(first_sub + s, |c, env| c.subscribe(env, &feeds))?;
            // Keep media flowing while the others join.
            world.run_for(Duration::from_millis(2))?;
        }
    }
    if storm {
        for s in 0..subscribers {
            world.with_client(first_sub + s, |c, env| c.subscribe(env, &feeds))?;
        }
    }
    if scenario == Scenario::Meeting {
        for &c in &pubs {
            world.with_client(c, |client, env| client.subscribe(env, &feeds))?;
        }
    }
    let expected_receivers = publishers * per_camera;
    let receivers =
        |w: &World| -> Vec<usize> { w.clients.iter().flat_map(|c| c.receivers()).collect() };
    let join_limit = Instant::now() + Duration::from_secs(30 + n as u64 / 5);
    let all_receiving = world.run_until(join_limit, |w| {
        let r = receivers(w);
        r.len() >= expected_receivers && r.iter().all(|&p| w.peers[p].join_time.is_some())
    })?;
    let recv_peers = receivers(&world);
    let receiving = recv_peers
        .iter()
        .filter(|&&p| world.peers[p].join_time.is_some())
        .count();
    let mut join_ms: Vec<f64> = recv_peers
        .iter()
        .filter_map(|&p| world.peers[p].join_time)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    join_ms.sort_by(f64::total_cmp);
    if scenario == Scenario::Loss {
        for &p in &recv_peers {
            world.peers[p].loss = INJECTED_LOSS;
        }
    }
    // Capped: every fourth subscriber (in joining order) from now on.
    let capped: Vec<usize> = if scenario == Scenario::Capped {
        let mut order: Vec<usize> = Vec::new();
        for c in &world.clients[first_sub..] {
            order.extend(c.receivers());
        }
        order
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % CAPPED_EVERY == CAPPED_EVERY - 1)
            .map(|(_, p)| p)
            .collect()
    } else {
        Vec::new()
    };
    for &p in &capped {
        let link = Link::new(o.cap.rate_bps, o.cap.queue, o.cap.loss, p as u64);
        world.shape(p, link);
    }

    let warmup = if scenario == Scenario::Capped {
        o.warmup.max(o.capped_warmup)
    } else {
        o.warmup
    };
    world.run_for(Duration::from_secs_f64(warmup))?;

    // The window.
    let nacks_before: u64 = recv_peers.iter().map(|&p| world.peers[p].nacks).sum();
    let packets_before: u64 = recv_peers.iter().map(|&p| world.peers[p].packets()).sum();
    for cam in &world.cameras {
        if let Some(s) = world.meter.window_start.get_mut(usize::from(cam.ids.0)) {
            *s = cam.next_index.0;
        }
        if let Some(s) = world.meter.window_start.get_mut(usize::from(cam.ids.1)) {
            *s = cam.next_index.1;
        }
        if let (Some(s), Some(low)) = (
            world.meter.low_window_start.get_mut(usize::from(cam.ids.1)),
            cam.next_low_index(),
        ) {
            *s = low;
        }
    }
    let frames_start = world.cameras.first().map_or(0, |c| c.frames);
    let links_before: Vec<LinkStats> = capped.iter().map(|&p| link_stats(&world, p)).collect();
    for p in &recv_peers {
        world.peers[*p].tracks.clear();
        world.peers[*p].video = None;
    }
    world.meter.latency_us.clear();
    world.meter.latency_linked_us.clear();
    world.meter.dropped = 0;
    world.meter.lossy_arrived = 0;
    world.meter.measuring = true;
    target.instrument(true)?;
    let t0 = Instant::now();
    let target0 = procstat::process(target.pid).ok_or("target died")?;
    let self0 = procstat::process(std::process::id()).unwrap_or_default();
    let gen_core0 = procstat::core(o.generator_cpu);
    let tgt_core0 = procstat::core(o.target_cpu);
    world.run_for(Duration::from_secs_f64(o.window))?;
    let elapsed = t0.elapsed().as_secs_f64();
    let target1 = procstat::process(target.pid).ok_or("target died")?;
    let self1 = procstat::process(std::process::id()).unwrap_or_default();
    let gen_busy = procstat::busy_fraction(gen_core0, procstat::core(o.generator_cpu));
    let tgt_busy = procstat::busy_fraction(tgt_core0, procstat::core(o.target_cpu));
    let window_end: Vec<u64> = world
        .cameras
        .iter()
        .flat_map(|c| [c.next_index.0, c.next_index.1])
        .collect();
    let low_end: Vec<u64> = world
        .cameras
        .iter()
        .map(|c| c.next_low_index().unwrap_or(0))
        .collect();
    let frames_end = world.cameras.first().map_or(0, |c| c.frames);
    let links_after: Vec<LinkStats> = capped.iter().map(|&p| link_stats(&world, p)).collect();
    let instructions = target.instrument(false)?;
    world.run_for(if scenario == Scenario::Capped {
        CAPPED_GRACE
    } else {
        GRACE
    })?;
    world.meter.measuring = false;
    drop(target);
    if kind == TargetKind::SfuboxRec {
        let (files, bytes) = recorded(&launch.dir.join("recordings"));
        eprintln!("   recorded: {files} files, {bytes} bytes");
        if files == 0 {
            return Err("sfubox-rec wrote no recording".into());
        }
    }

    // Receive-side accounting.
    let mut expected = [0u64; 2]; // audio, video
    let mut received = [0u64; 2];
    // Source ids: 2k is camera k's audio, 2k + 1 its video.
    for id in 0..2 * world.cameras.len() {
        let start = world.meter.window_start.get(id).copied().unwrap_or(0);
        let end = window_end.get(id).copied().unwrap_or(0);
        expected[id % 2] += end.saturating_sub(start) * per_camera as u64;
    }
    for &p in &recv_peers {
        for t in &world.peers[p].tracks {
            let id = usize::from(t.source);
            let end = window_end.get(id).copied().unwrap_or(0);
            received[id % 2] += t.unique_below(end);
        }
    }
    let total_expected = (expected[0] + expected[1]).max(1);
    // Simulcast: the low layer's packets are forwarded packets too.
    let low_received: u64 = recv_peers
        .iter()
        .filter_map(|&p| world.peers[p].video.as_ref())
        .map(|v| {
            let k = usize::from(v.low.source & !crate::peer::LOW_LAYER) / 2;
            v.low.unique_below(low_end.get(k).copied().unwrap_or(0))
        })
        .sum();
    let total_received = received[0] + received[1] + low_received;
    let mut loss = 1.0 - total_received as f64 / total_expected as f64;
    let kind_loss = |k: usize| 1.0 - received[k] as f64 / expected[k].max(1) as f64;
    let nacks = recv_peers
        .iter()
        .map(|&p| world.peers[p].nacks)
        .sum::<u64>()
        - nacks_before;
    let datagrams = recv_peers
        .iter()
        .map(|&p| world.peers[p].packets())
        .sum::<u64>()
        - packets_before;
    let mut lat = std::mem::take(&mut world.meter.latency_us);
    lat.sort_unstable();
    let mut lat_linked = std::mem::take(&mut world.meter.latency_linked_us);
    lat_linked.sort_unstable();
    let pct = |v: &[u32], q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
    };
    let pctf = |v: &[f64], q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).copied().unwrap_or(f64::NAN)
    };
    let cpu = target1.cpu_seconds - target0.cpu_seconds;
    let forwarded_per_s = total_received as f64 / elapsed;
    let us_per_packet = if total_received > 0 {
        cpu * 1e6 / total_received as f64
    } else {
        f64::NAN
    };
    let subs_for_rss = (publishers * per_camera).max(1) as f64;
    let injected = if world.meter.lossy_arrived > 0 {
        world.meter.dropped as f64 / world.meter.lossy_arrived as f64
    } else {
        0.0
    };
    let mut problems = Vec::new();
    if gen_busy > MAX_GENERATOR_BUSY {
        problems.push(format!("generator core {:.0} % busy", gen_busy * 100.0));
    }
    if !all_receiving {
        problems.push(format!(
            "only {receiving} of {expected_receivers} receivers got media"
        ));
    }
    let foreign = (tgt_busy - cpu / elapsed).max(0.0);
    // Capped: per class of subscriber (capped, clean).
    let mut classes = serde_json::Map::new();
    if scenario == Scenario::Capped {
        let window = Window {
            start: &world.meter.window_start,
            low_start: &world.meter.low_window_start,
            end: &window_end,
            low_end: &low_end,
            frames: (frames_start, frames_end),
        };
        let (capped_peers, clean_peers): (Vec<usize>, Vec<usize>) =
            recv_peers.iter().partition(|p| capped.contains(p));
        let mut link = LinkStats::default();
        for (before, after) in links_before.iter().zip(&links_after) {
            link.arrived += after.arrived - before.arrived;
            link.random_drops += after.random_drops - before.random_drops;
            link.tail_drops += after.tail_drops - before.tail_drops;
            link.delivered_bytes += after.delivered_bytes - before.delivered_bytes;
        }
        let capped_class = class(&world, &capped_peers, &window, &lat_linked);
        let clean_class = class(&world, &clean_peers, &window, &lat);
        // The loss a subscriber sees: audio indices and video sequence numbers missing.
        let missing = capped_class.missing + clean_class.missing;
        let span = (capped_class.span + clean_class.span).max(1);
        loss = missing as f64 / span as f64;
        for (name, c) in [("capped", &capped_class), ("clean", &clean_class)] {
            for (k, v) in c.fields() {
                classes.insert(format!("{name}_{k}"), v);
            }
        }
        let subs = capped_peers.len().max(1) as f64;
        classes.insert(
            "capped_link_kbps".into(),
            json!(link.delivered_bytes as f64 * 8.0 / 1000.0 / elapsed / subs),
        );
        classes.insert(
            "capped_random_drop".into(),
            json!(link.random_drops as f64 / link.arrived.max(1) as f64),
        );
        classes.insert(
            "capped_tail_drop".into(),
            json!(link.tail_drops as f64 / link.arrived.max(1) as f64),
        );
        classes.insert("cap_kbps".into(), json!(o.cap.rate_bps as f64 / 1000.0));
        classes.insert(
            "cap_queue_ms".into(),
            json!(o.cap.queue.as_secs_f64() * 1000.0),
        );
        classes.insert("cap_loss".into(), json!(o.cap.loss));
    }
    let mut row = json!({
        "scenario": scenario.name(),
        "target": kind.to_string(),
        "n": n,
        "publishers": publishers,
        "receivers": expected_receivers,
        "receiving": receiving,
        "window_s": elapsed,
        "forwarded_pps": forwarded_per_s,
        "datagrams_pps": datagrams as f64 / elapsed,
        "cpu_pct": cpu / elapsed * 100.0,
        "us_per_packet": us_per_packet,
        "rss_mib": target1.rss_bytes as f64 / 1048576.0,
        "rss_idle_mib": idle.rss_bytes as f64 / 1048576.0,
        "rss_per_sub_kib": (target1.rss_bytes as f64 - idle.rss_bytes as f64) / 1024.0 / subs_for_rss,
        "threads": target1.threads,
        "loss": loss,
        "loss_audio": kind_loss(0),
        "loss_video": kind_loss(1),
        "injected_loss": injected,
        "nack_repair": if injected > 0.0 { Some(1.0 - kind_loss(1) / injected) } else { None },
        "nacks": nacks,
        "latency_p50_ms": pct(&lat, 0.5),
        "latency_p99_ms": pct(&lat, 0.99),
        "join_p50_ms": pctf(&join_ms, 0.5),
        "join_p99_ms": pctf(&join_ms, 0.99),
        "generator_cpu_pct": (self1.cpu_seconds - self0.cpu_seconds) / elapsed * 100.0,
        "generator_core_busy_pct": gen_busy * 100.0,
        "target_core_busy_pct": tgt_busy * 100.0,
        "target_core_foreign_pct": foreign * 100.0,
        "instructions": instructions,
        "instructions_per_packet": instructions.map(|i| if total_received > 0 { i as f64 / total_received as f64 } else { f64::NAN }),
        "valid": problems.is_empty(),
        "problems": problems,
    });
    if let Some(r) = row.as_object_mut() {
        r.extend(classes);
    }
    Ok(row)
}

fn link_stats(world: &World, p: usize) -> LinkStats {
    world
        .peers
        .get(p)
        .and_then(|peer| peer.link.as_ref())
        .map(|l| l.stats)
        .unwrap_or_default()
}

/// A measured window's bounds, per source.
struct Window<'a> {
    start: &'a [u64],
    /// Low layers' starts, by the video's source id.
    low_start: &'a [u64],
    end: &'a [u64],
    low_end: &'a [u64],
    /// Frames `[first, end)` sent in the window (the first camera's).
    frames: (u64, u64),
}

/// What one class of subscribers received in a capped window.
#[derive(Debug, Default)]
struct Class {
    subscribers: usize,
    audio_expected: u64,
    audio_received: u64,
    high: u64,
    low: u64,
    /// Audio indices and video sequence numbers spanned, and missing.
    span: u64,
    missing: u64,
    video_span: u64,
    video_missing: u64,
    frames: u64,
    frames_whole: u64,
    frames_high: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

impl Class {
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { f64::NAN };
        let video = self.high + self.low;
        vec![
            ("subscribers", json!(self.subscribers)),
            (
                "audio_loss",
                json!(1.0 - ratio(self.audio_received, self.audio_expected)),
            ),
            (
                "video_loss",
                json!(ratio(self.video_missing, self.video_span)),
            ),
            ("high_share", json!(ratio(self.high, video))),
            ("low_share", json!(ratio(self.low, video))),
            ("frames_whole", json!(ratio(self.frames_whole, self.frames))),
            ("frames_high", json!(ratio(self.frames_high, self.frames))),
            (
                "video_pps",
                json!(video as f64 / self.subscribers.max(1) as f64),
            ),
            ("latency_p50_ms", json!(self.latency_p50_ms)),
            ("latency_p99_ms", json!(self.latency_p99_ms)),
        ]
    }
}

fn class(world: &World, peers: &[usize], w: &Window, latency_us: &[u32]) -> Class {
    let mut c = Class {
        subscribers: peers.len(),
        ..Class::default()
    };
    for &p in peers {
        let peer = &world.peers[p]; // receivers are peers of this world
        for k in 0..world.cameras.len() {
            let (a, v) = (2 * k, 2 * k + 1);
            let (first, end) = (
                w.start.get(a).copied().unwrap_or(0),
                w.end.get(a).copied().unwrap_or(0),
            );
            c.audio_expected += end.saturating_sub(first);
            let got = |id: usize| {
                peer.tracks
                    .iter()
                    .find(|t| usize::from(t.source) == id)
                    .map_or(0, |t| t.unique_below(w.end.get(id).copied().unwrap_or(0)))
            };
            c.audio_received += got(a);
            c.high += got(v);
        }
        if let Some(v) = &peer.video {
            // One stream per receiving peer: its camera is the first one (capped: the only).
            let video = 1;
            let bound = |s: &[u64], i: usize| s.get(i).copied().unwrap_or(0);
            let low_end = bound(w.low_end, 0);
            c.low += v.low.unique_below(low_end);
            let (span, got) = v.seq_span(
                (bound(w.start, video), bound(w.end, video)),
                (bound(w.low_start, video), low_end),
            );
            c.video_span += span;
            c.video_missing += span.saturating_sub(got);
            let (whole, high) = v.whole_frames(w.frames.0, w.frames.1);
            c.frames_whole += whole;
            c.frames_high += high;
        }
        c.frames += w.frames.1.saturating_sub(w.frames.0);
    }
    c.span = c.audio_expected + c.video_span;
    c.missing = c.audio_expected.saturating_sub(c.audio_received) + c.video_missing;
    let pct = |q: f64| -> f64 {
        if latency_us.is_empty() {
            return f64::NAN;
        }
        let i = ((latency_us.len() - 1) as f64 * q).round() as usize;
        latency_us
            .get(i)
            .map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
    };
    c.latency_p50_ms = pct(0.5);
    c.latency_p99_ms = pct(0.99);
    c
}
