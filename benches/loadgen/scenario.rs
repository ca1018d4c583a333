//! The scenarios and one measured step: start the target, build the load, warm up, measure
//! one window from `/proc` and the receivers, stop the target.
//!
//! Scenarios: `fanout` (1 publisher → N subscribers, N rising until the quality bar breaks),
//! `meeting` (M clients each publishing and receiving all others), `storm` (N subscribers asked
//! for at once: join → first packet) and `loss` (5 % dropped on subscriber links: NACK repair).

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::peer::Camera;
use crate::procstat;
use crate::report;
use crate::signal::{Client, Galene, Janus};
use crate::target::{Launch, Target, TargetKind};
use crate::world::World;

/// Loss above which a step fails the quality bar.
pub const MAX_LOSS: f64 = 0.005;
/// p99 added latency above which a step fails the quality bar.
pub const MAX_P99_MS: f64 = 50.0;
/// A window where the generator's core is busier than this is invalid.
const MAX_GENERATOR_BUSY: f64 = 0.8;
/// How long after the window packets sent in it may still arrive.
const GRACE: Duration = Duration::from_millis(300);
/// Loss injected on subscriber links in the loss scenario.
const INJECTED_LOSS: f64 = 0.05;

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 1 → N.
    Fanout,
    /// M × M.
    Meeting,
    /// N subscribers at once.
    Storm,
    /// 1 → N with 5 % loss on subscriber links.
    Loss,
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        match s {
            "fanout" => Ok(Scenario::Fanout),
            "meeting" => Ok(Scenario::Meeting),
            "storm" => Ok(Scenario::Storm),
            "loss" => Ok(Scenario::Loss),
            _ => Err(format!("unknown scenario {s:?}")),
        }
    }
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Meeting => "meeting",
            Scenario::Storm => "storm",
            Scenario::Loss => "loss",
        }
    }
}

/// Everything the suite was asked for.
pub struct SuiteOptions {
    /// Results directory.
    pub out: PathBuf,
    /// Quick mode (smoke test).
    pub quick: bool,
    /// Targets, interleaved in this order.
    pub targets: Vec<TargetKind>,
    /// Scenarios, in this order.
    pub scenarios: Vec<Scenario>,
    /// Fan-out sizes.
    pub fanout: Vec<usize>,
    /// Meeting sizes.
    pub meeting: Vec<usize>,
    /// Join storm size.
    pub storm: usize,
    /// Subscribers in the loss scenario.
    pub loss_subscribers: usize,
    /// Repetitions per step.
    pub reps: usize,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Window seconds.
    pub window: f64,
    /// sfubox binary.
    pub sfubox: PathBuf,
    /// Janus config directory.
    pub janus_config: Option<PathBuf>,
    /// Janus's ICE address.
    pub janus_ip: IpAddr,
    /// Core of the target.
    pub target_cpu: usize,
    /// Core of the generator.
    pub generator_cpu: usize,
    /// Callgrind mode (instructions per packet; timing meaningless).
    pub callgrind: bool,
    /// Add to the rows already in `out/results.json` instead of starting afresh.
    pub append: bool,
}

/// Runs every scenario, step, repetition and target; writes results as it goes.
pub fn run_suite(o: &SuiteOptions) -> Result<(), String> {
    std::fs::create_dir_all(&o.out).map_err(|e| e.to_string())?;
    let scratch = o.out.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let launch = Launch {
        sfubox: &o.sfubox,
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
        };
        let mut broken: Vec<TargetKind> = Vec::new();
        for &n in &steps {
            for rep in 0..o.reps {
                for &kind in &o.targets {
                    if broken.contains(&kind) {
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

/// Runs one step and returns its row.
fn run_step(
    o: &SuiteOptions,
    launch: &Launch,
    kind: TargetKind,
    scenario: Scenario,
    n: usize,
    slot: u16,
) -> Result<Value, String> {
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
        world.with_client(first_client + p, |c, env| c.publish(env))?;
    }
    let pubs: Vec<usize> = (first_client..first_client + publishers).collect();
    let all_published = world.run_until(Instant::now() + Duration::from_secs(20), |w| {
        pubs.iter().all(|&c| {
            w.clients[c]
                .published()
                .is_some_and(|p| w.peers[p.peer].connected)
        })
    })?;
    if !all_published {
        return Err("publishers not connected within 20 s".into());
    }
    let mut feeds = Vec::new();
    for (k, &c) in pubs.iter().enumerate() {
        let p = world.clients[c].published().ok_or("not published")?;
        feeds.push(p.feed);
        let ids = (2 * k as u16, 2 * k as u16 + 1);
        world
            .cameras
            .push(Camera::new(p.peer, p.audio, p.video, ids));
    }
    world.meter.window_start = vec![0; 2 * publishers];

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

    world.run_for(Duration::from_secs_f64(o.warmup))?;

    // The window.
    let nacks_before: u64 = recv_peers.iter().map(|&p| world.peers[p].nacks).sum();
    let packets_before: u64 = recv_peers.iter().map(|&p| world.peers[p].packets).sum();
    for cam in &world.cameras {
        if let Some(s) = world.meter.window_start.get_mut(usize::from(cam.ids.0)) {
            *s = cam.next_index.0;
        }
        if let Some(s) = world.meter.window_start.get_mut(usize::from(cam.ids.1)) {
            *s = cam.next_index.1;
        }
    }
    for p in &recv_peers {
        world.peers[*p].tracks.clear();
    }
    world.meter.latency_us.clear();
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
    let instructions = target.instrument(false)?;
    world.run_for(GRACE)?;
    world.meter.measuring = false;
    drop(target);

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
    let total_received = received[0] + received[1];
    let loss = 1.0 - total_received as f64 / total_expected as f64;
    let kind_loss = |k: usize| 1.0 - received[k] as f64 / expected[k].max(1) as f64;
    let nacks = recv_peers
        .iter()
        .map(|&p| world.peers[p].nacks)
        .sum::<u64>()
        - nacks_before;
    let datagrams = recv_peers
        .iter()
        .map(|&p| world.peers[p].packets)
        .sum::<u64>()
        - packets_before;
    let mut lat = std::mem::take(&mut world.meter.latency_us);
    lat.sort_unstable();
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
    Ok(json!({
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
    }))
}
