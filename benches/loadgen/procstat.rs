//! CPU time, RSS and threads of a process, and per-core busy time, from `/proc`.

use std::fs;

/// Clock ticks per second of `/proc/*/stat` (USER_HZ; 100 on every Linux we run on).
const TICKS_PER_SECOND: f64 = 100.0;

/// A process sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU seconds so far.
    pub cpu_seconds: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Number of threads.
    pub threads: u64,
}

/// Samples process `pid` (`None` if it is gone).
pub fn process(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut rss_bytes = 0;
    let mut threads = 0;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss_bytes = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                * 1024;
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse().unwrap_or(0);
        }
    }
    Some(ProcSample {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        rss_bytes,
        threads,
    })
}

/// Busy and total ticks of one core (`/proc/stat` line `cpuN`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreSample {
    busy: u64,
    total: u64,
}

/// Samples core `cpu`.
pub fn core(cpu: usize) -> CoreSample {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return CoreSample::default();
    };
    let name = format!("cpu{cpu}");
    for line in stat.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() != Some(name.as_str()) {
            continue;
        }
        let v: Vec<u64> = parts.filter_map(|p| p.parse().ok()).collect();
        let total: u64 = v.iter().take(8).sum();
        // idle + iowait are not busy.
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        return CoreSample {
            busy: total.saturating_sub(idle),
            total,
        };
    }
    CoreSample::default()
}

/// Fraction of time core was busy between two samples.
pub fn busy_fraction(before: CoreSample, after: CoreSample) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    after.busy.saturating_sub(before.busy) as f64 / total as f64
}
