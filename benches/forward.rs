//! Packets per second through the media engine with 1, 10 and 50 subscribers.
//!
//! One VP8+Opus publisher (≈ 90 video + 50 audio packets/s) and N subscribers run in the
//! in-memory simulation (`sfubox::media::sim`). After everyone is connected, the subscribers'
//! links are cut on the receiving side (their datagrams are counted, not decrypted) and only the
//! time spent inside the engine is measured with `Instant`, together with the heap allocations
//! the engine makes. Nothing is asserted: run `cargo bench --bench forward` and read the table.
//! `FORWARD_SUBS=50` runs one size only: under `valgrind --tool=callgrind` that gives the
//! engine's instructions per forwarded datagram at fan-outs a real-time run under callgrind
//! cannot keep up with (see docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sfubox::media::sim::{LinkConfig, Sim};
use sfubox::media::{Selection, StreamKey};
use str0m::media::MediaKind;

/// Counts allocations made while the engine runs, and the live heap size.
///
/// `kB/down` is the engine's heap per down stream in steady state (NACK history full), measured
/// against a run without subscribers.
struct CountingAlloc;

static IN_ENGINE: AtomicBool = AtomicBool::new(false);
static ENGINE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(bytes: i64) {
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    if IN_ENGINE.load(Ordering::Relaxed) {
        ENGINE_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

thread_local! {
    static ENTERED: Cell<Option<Instant>> = const { Cell::new(None) };
    static ENGINE_TIME: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

fn probe(entering: bool) {
    if entering {
        ENTERED.with(|e| e.set(Some(Instant::now())));
        IN_ENGINE.store(true, Ordering::Relaxed);
    } else {
        IN_ENGINE.store(false, Ordering::Relaxed);
        if let Some(started) = ENTERED.with(|e| e.take()) {
            ENGINE_TIME.with(|t| t.set(t.get() + started.elapsed()));
        }
    }
}

/// Marks the start of the measured window: under callgrind,
/// `--zero-before='forward::measurement_starts'` counts only what follows.
#[inline(never)]
fn measurement_starts() {
    std::hint::black_box(());
}

fn addr(a: u8, b: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, a, b], port))
}

struct Row {
    subscribers: usize,
    packets_in: u64,
    datagrams_out: u64,
    engine: Duration,
    allocs: u64,
    /// Live heap with the engine in steady state and the simulated clients dropped.
    engine_heap: i64,
}

fn run(subscribers: usize) -> Row {
    let mut sim = Sim::new(Instant::now(), addr(0, 1, 8443), 42).expect("engine");
    let publisher = sim.add_client(addr(0, 2, 5000), LinkConfig::CLEAN);
    let mids = sim
        .publish(publisher, StreamKey(1), true, true, &[])
        .expect("publish");
    sim.add_source(
        publisher,
        mids.audio.expect("audio"),
        None,
        MediaKind::Audio,
        0,
    );
    sim.add_source(
        publisher,
        mids.video.expect("video"),
        None,
        MediaKind::Video,
        0,
    );
    sim.run_for(Duration::from_millis(500));

    for i in 0..subscribers {
        let c = sim.add_client(
            addr(1 + (i / 200) as u8, (i % 200) as u8, 6000),
            LinkConfig::CLEAN,
        );
        sim.subscribe(c, StreamKey(100 + i as u64), StreamKey(1), Selection::ALL)
            .expect("subscribe");
    }
    // Connect and fill every NACK history (256 packets ≈ 3 s of this video).
    sim.run_for(Duration::from_secs(4));
    for c in &mut sim.clients {
        c.received = Vec::new();
    }

    sim.deliver_to_clients = false;
    measurement_starts();
    sim.set_engine_probe(probe);
    ENGINE_TIME.with(|t| t.set(Duration::ZERO));
    ENGINE_ALLOCS.store(0, Ordering::Relaxed);
    let sent_before: u64 = sim.sources.iter().map(|s| s.sent).sum();
    let out_before = sim.server_datagrams;
    sim.run_for(Duration::from_secs(10));
    let packets_in = sim.sources.iter().map(|s| s.sent).sum::<u64>() - sent_before;
    // What stays when the simulated browsers are gone is the engine's (plus the sim's tables).
    drop(std::mem::take(&mut sim.clients));
    let engine_heap = LIVE_BYTES.load(Ordering::Relaxed);
    Row {
        subscribers,
        packets_in,
        datagrams_out: sim.server_datagrams - out_before,
        engine: ENGINE_TIME.with(|t| t.get()),
        allocs: ENGINE_ALLOCS.load(Ordering::Relaxed),
        engine_heap,
    }
}

fn main() {
    println!(
        "{:>5} {:>10} {:>12} {:>14} {:>14} {:>12} {:>14}",
        "subs", "pkts in", "dgrams out", "in pkts/s", "out dgrams/s", "allocs/out", "kB/down"
    );
    // `FORWARD_SUBS=50,100` runs only those sizes (e.g. under callgrind, where the simulated
    // clock makes any fan-out affordable).
    let sizes: Vec<usize> = std::env::var("FORWARD_SUBS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 50]);
    let baseline = run(0).engine_heap;
    for n in sizes {
        let r = run(n);
        let heap_per_down = (r.engine_heap - baseline) / n as i64;
        let secs = r.engine.as_secs_f64().max(1e-9);
        println!(
            "{:>5} {:>10} {:>12} {:>14.0} {:>14.0} {:>12.2} {:>14.1}",
            r.subscribers,
            r.packets_in,
            r.datagrams_out,
            r.packets_in as f64 / secs,
            r.datagrams_out as f64 / secs,
            r.allocs as f64 / r.datagrams_out.max(1) as f64,
            heap_per_down as f64 / 1024.0,
        );
    }
}
