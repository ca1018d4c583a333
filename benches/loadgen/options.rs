//! What the suite is asked for ([`SuiteOptions`], [`Scenario`], [`Cap`]) and the quality bar
//! a step must meet ([`MAX_LOSS`], [`MAX_P99_MS`]): shared by the scenarios that run the steps
//! (`scenario`) and the report that judges and writes them (`report`), which import from here
//! and not from each other.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::target::TargetKind;

/// Loss above which a step fails the quality bar.
pub const MAX_LOSS: f64 = 0.005;
/// p99 added latency above which a step fails the quality bar.
pub const MAX_P99_MS: f64 = 50.0;

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
    /// 1 simulcast publisher → N, a quarter of them behind a capped, lossy downlink.
    Capped,
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        match s {
            "fanout" => Ok(Scenario::Fanout),
            "meeting" => Ok(Scenario::Meeting),
            "storm" => Ok(Scenario::Storm),
            "loss" => Ok(Scenario::Loss),
            "capped" => Ok(Scenario::Capped),
            _ => Err(format!("unknown scenario {s:?}")),
        }
    }
}

impl Scenario {
    /// The scenario's name in results and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Meeting => "meeting",
            Scenario::Storm => "storm",
            Scenario::Loss => "loss",
            Scenario::Capped => "capped",
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
    /// Subscribers in the capped scenario (a quarter of them capped).
    pub capped_subscribers: usize,
    /// The capped subscribers' emulated downlink.
    pub cap: Cap,
    /// Warm-up seconds of the capped scenario (the estimators need time to settle).
    pub capped_warmup: f64,
    /// Repetitions per step.
    pub reps: usize,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Window seconds.
    pub window: f64,
    /// sfubox binary.
    pub sfubox: PathBuf,
    /// Galène binary (the `galene` target).
    pub galene: Option<PathBuf>,
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

/// A capped subscriber's emulated downlink.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    /// Link rate, bits per second.
    pub rate_bps: u64,
    /// The longest a datagram may queue (tail drop beyond it).
    pub queue: Duration,
    /// Random loss before the queue.
    pub loss: f64,
}
