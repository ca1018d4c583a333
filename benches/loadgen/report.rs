//! Results: `results.json` (every row plus the run's metadata), `results.md` (medians per
//! step and target, headline, ratios) and `plot.svg` (CPU per forwarded packet and RSS
//! against N, fan-out, one line per target).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::options::{MAX_LOSS, MAX_P99_MS, SuiteOptions};
use crate::target::TargetKind;

/// Metrics shown in the table, with their headers and formats (decimals).
const COLUMNS: &[(&str, &str, usize)] = &[
    ("forwarded_pps", "fwd pkt/s", 0),
    ("cpu_pct", "CPU %", 1),
    ("us_per_packet", "µs/pkt", 2),
    ("rss_mib", "RSS MiB", 1),
    ("rss_per_sub_kib", "RSS/sub KiB", 0),
    ("threads", "threads", 0),
    ("loss", "loss %", 3),
    ("nacks", "NACKs", 0),
    ("latency_p50_ms", "lat p50 ms", 2),
    ("latency_p99_ms", "lat p99 ms", 2),
    ("join_p50_ms", "join p50 ms", 0),
    ("join_p99_ms", "join p99 ms", 0),
    ("generator_cpu_pct", "gen CPU %", 0),
    ("generator_core_busy_pct", "gen core %", 0),
    ("target_core_foreign_pct", "foreign on target core %", 0),
];

/// A row in one line, for the progress log.
pub fn one_line(row: &Value) -> String {
    if let Some(e) = row["error"].as_str() {
        return format!("error: {e}");
    }
    let capped = if row["scenario"] == "capped" {
        format!("\n   {}", capped_summary(|k| num(row, k)))
    } else {
        String::new()
    };
    format!(
        "{:.0} pkt/s, {:.1} % CPU, {:.2} µs/pkt, {:.1} MiB, loss {:.3} %, p50/p99 {:.2}/{:.2} ms, join p99 {:.0} ms, gen {:.0} % (core {:.0} %), foreign on target core {:.0} %{}",
        num(row, "forwarded_pps"),
        num(row, "cpu_pct"),
        num(row, "us_per_packet"),
        num(row, "rss_mib"),
        num(row, "loss") * 100.0,
        num(row, "latency_p50_ms"),
        num(row, "latency_p99_ms"),
        num(row, "join_p99_ms"),
        num(row, "generator_cpu_pct"),
        num(row, "generator_core_busy_pct"),
        num(row, "target_core_foreign_pct"),
        if row["valid"] == true {
            ""
        } else {
            "  INVALID"
        }
    ) + &capped
}

/// The per-class figures of a capped window, from `get(key)`.
fn capped_summary(get: impl Fn(&str) -> f64) -> String {
    let class = |c: &str| {
        format!(
            "{c}: video h/l {}/{} % of packets, frames whole {} % (on h {} %), loss video {} % audio {} %, p50/p99 {}/{} ms",
            fmt(get(&format!("{c}_high_share")) * 100.0, 0),
            fmt(get(&format!("{c}_low_share")) * 100.0, 0),
            fmt(get(&format!("{c}_frames_whole")) * 100.0, 1),
            fmt(get(&format!("{c}_frames_high")) * 100.0, 0),
            fmt(get(&format!("{c}_video_loss")) * 100.0, 2),
            fmt(get(&format!("{c}_audio_loss")) * 100.0, 2),
            fmt(get(&format!("{c}_latency_p50_ms")), 0),
            fmt(get(&format!("{c}_latency_p99_ms")), 0),
        )
    };
    format!(
        "{}; {}; capped links carried {} kb/s, tail drops {} %",
        class("capped"),
        class("clean"),
        fmt(get("capped_link_kbps"), 0),
        fmt(get("capped_tail_drop") * 100.0, 1)
    )
}

/// The median of `key` over the valid windows of one step (all windows without an error when
/// none is valid).
fn median_of(rows: &[Value], scenario: &str, target: &str, n: u64, key: &str) -> f64 {
    let all: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["scenario"] == scenario
                && r["target"] == target
                && r["n"] == n
                && r["error"].is_null()
        })
        .collect();
    let valid: Vec<&Value> = all.iter().copied().filter(|r| r["valid"] == true).collect();
    let used = if valid.is_empty() { &all } else { &valid };
    median(used.iter().map(|r| num(r, key)).collect())
}

fn num(row: &Value, key: &str) -> f64 {
    row[key].as_f64().unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m] // m < len
    } else {
        (v[m - 1] + v[m]) / 2.0 // len ≥ 2 here
    }
}

/// The median row of one (scenario, n, target): over valid repetitions if any.
struct Median {
    values: BTreeMap<&'static str, f64>,
    valid: usize,
    reps: usize,
    instructions_per_packet: f64,
    nack_repair: f64,
    loss_video: f64,
    loss_audio: f64,
    generator_cpu_pct: f64,
}

fn medians(rows: &[Value], scenario: &str, target: &str, n: u64) -> Option<Median> {
    let all: Vec<&Value> = rows
        .iter()
        .filter(|r| r["scenario"] == scenario && r["target"] == target && r["n"] == n)
        .collect();
    if all.is_empty() {
        return None;
    }
    let ok: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|r| r["error"].is_null())
        .collect();
    let valid: Vec<&Value> = ok.iter().copied().filter(|r| r["valid"] == true).collect();
    let used = if valid.is_empty() { &ok } else { &valid };
    let med = |k: &str| median(used.iter().map(|r| num(r, k)).collect());
    let mut values = BTreeMap::new();
    for (key, _, _) in COLUMNS {
        values.insert(*key, med(key));
    }
    Some(Median {
        values,
        valid: valid.len(),
        reps: all.len(),
        instructions_per_packet: med("instructions_per_packet"),
        nack_repair: med("nack_repair"),
        loss_video: med("loss_video"),
        loss_audio: med("loss_audio"),
        generator_cpu_pct: med("generator_cpu_pct"),
    })
}

fn passes(m: &Median) -> bool {
    let loss = m.values.get("loss").copied().unwrap_or(f64::NAN);
    let p99 = m.values.get("latency_p99_ms").copied().unwrap_or(f64::NAN);
    m.valid > 0 && loss < MAX_LOSS && p99 < MAX_P99_MS
}

/// Whether `target` failed the quality bar at fan-out `n` (measured, or in every window when
/// none was valid), could not be measured at all, or the generator itself ran out of CPU.
pub fn step_broken(rows: &[Value], scenario: &str, target: TargetKind, n: usize) -> bool {
    let Some(m) = medians(rows, scenario, &target.to_string(), n as u64) else {
        return true;
    };
    let loss = m.values.get("loss").copied().unwrap_or(f64::NAN);
    let p99 = m.values.get("latency_p99_ms").copied().unwrap_or(f64::NAN);
    let generator = m.generator_cpu_pct;
    !(loss < MAX_LOSS && p99 < MAX_P99_MS) || generator > 80.0
}

fn meta(o: Option<&SuiteOptions>) -> Value {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut m = json!({
        "date": chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        "commit": commit,
        "machine": format!("{model}, {cores} cores, Linux {}", kernel.trim()),
    });
    if let Some(o) = o {
        m["quick"] = json!(o.quick);
        m["reps"] = json!(o.reps);
        m["warmup_s"] = json!(o.warmup);
        m["capped_warmup_s"] = json!(o.warmup.max(o.capped_warmup));
        m["window_s"] = json!(o.window);
        m["callgrind"] = json!(o.callgrind);
        m["target_cpu"] = json!(o.target_cpu);
        m["generator_cpu"] = json!(o.generator_cpu);
    }
    m
}

/// Writes results.json, results.md and plot.svg into `dir`.
pub fn write_all(dir: &Path, rows: &[Value], o: &SuiteOptions) -> Result<(), String> {
    let doc = json!({"meta": meta(Some(o)), "rows": rows});
    write(dir, &doc)
}

/// Rewrites results.md and plot.svg from `dir/results.json`.
pub fn rewrite(dir: &Path) -> Result<(), String> {
    let text = fs::read_to_string(dir.join("results.json")).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    write(dir, &doc)
}

fn write(dir: &Path, doc: &Value) -> Result<(), String> {
    let pretty = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    fs::write(dir.join("results.json"), pretty).map_err(|e| e.to_string())?;
    let rows = doc["rows"].as_array().cloned().unwrap_or_default();
    fs::write(dir.join("results.md"), markdown(&doc["meta"], &rows)).map_err(|e| e.to_string())?;
    fs::write(dir.join("plot.svg"), svg(&rows)).map_err(|e| e.to_string())?;
    Ok(())
}

fn keys(rows: &[Value]) -> Vec<(String, u64, String)> {
    let order = ["fanout", "meeting", "storm", "loss", "capped"];
    let torder = [
        "sfubox",
        "sfubox-noest",
        "sfubox-rec",
        "galene",
        "janus",
        "null",
        "raw",
    ];
    let mut k: Vec<(String, u64, String)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["scenario"].as_str()?.to_owned(),
                r["n"].as_u64()?,
                r["target"].as_str()?.to_owned(),
            ))
        })
        .collect();
    k.sort_by_key(|(s, n, t)| {
        (
            order.iter().position(|o| o == s),
            *n,
            torder.iter().position(|o| o == t),
        )
    });
    k.dedup();
    k
}

fn fmt(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "–".into()
    }
}

fn markdown(meta: &Value, rows: &[Value]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Run {} on {} at commit `{}`{}; median of {} repetition(s), {} s windows after {} s warm-up; \
         target pinned to CPU {}, generator to CPU {}.\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["machine"].as_str().unwrap_or("?"),
        meta["commit"].as_str().unwrap_or("?"),
        if meta["quick"] == true {
            " (quick mode)"
        } else {
            ""
        },
        meta["reps"],
        meta["window_s"],
        meta["warmup_s"],
        meta["target_cpu"],
        meta["generator_cpu"],
    );
    // Headline.
    let _ = writeln!(
        s,
        "**Headline** (largest fan-out N at ≈ 500 kb/s on one core with < {} % loss and p99 added latency < {} ms):\n",
        MAX_LOSS * 100.0,
        MAX_P99_MS
    );
    let all = keys(rows);
    for t in ["sfubox", "sfubox-noest", "galene", "janus", "null", "raw"] {
        let ns: Vec<u64> = all
            .iter()
            .filter(|(sc, _, tt)| sc == "fanout" && tt == t)
            .map(|(_, n, _)| *n)
            .collect();
        if ns.is_empty() {
            continue;
        }
        let best = ns
            .iter()
            .filter(|&&n| medians(rows, "fanout", t, n).is_some_and(|m| passes(&m)))
            .max();
        let tried = ns.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "- {t}: {} (largest N tried: {tried})",
            best.map_or("none passed".to_owned(), |n| format!("N = {n}"))
        );
    }
    // Ratios.
    let _ = writeln!(
        s,
        "\n**Ratios of CPU per forwarded packet** (fan-out, medians; > 1 means sfubox is cheaper):\n"
    );
    let _ = writeln!(
        s,
        "| N | Galène ÷ sfubox | Janus ÷ sfubox | null SFU ÷ sfubox | raw relay ÷ sfubox |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let mut fan: Vec<u64> = all
        .iter()
        .filter(|(sc, _, _)| sc == "fanout")
        .map(|(_, n, _)| *n)
        .collect();
    fan.dedup();
    for n in fan {
        let us = |t: &str| {
            medians(rows, "fanout", t, n)
                .filter(|m| m.valid > 0)
                .and_then(|m| m.values.get("us_per_packet").copied())
                .unwrap_or(f64::NAN)
        };
        let ours = us("sfubox");
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} | {} |",
            fmt(us("galene") / ours, 2),
            fmt(us("janus") / ours, 2),
            fmt(us("null") / ours, 2),
            fmt(us("raw") / ours, 2)
        );
    }
    estimation_tables(&mut s, meta, rows, &all);
    // The table.
    let _ = writeln!(
        s,
        "\n**Per step** (medians; `valid/reps`: windows that passed the generator-core and receiver checks):\n"
    );
    let mut header = "| scenario | N | target | valid/reps |".to_owned();
    let mut rule = "|---|---|---|---|".to_owned();
    for (_, h, _) in COLUMNS {
        header.push_str(&format!(" {h} |"));
        rule.push_str("---|");
    }
    header.push_str(" extra |");
    rule.push_str("---|");
    let _ = writeln!(s, "{header}\n{rule}");
    for (sc, n, t) in &all {
        let Some(m) = medians(rows, sc, t, *n) else {
            continue;
        };
        let mut line = format!("| {sc} | {n} | {t} | {}/{} |", m.valid, m.reps);
        for (key, _, d) in COLUMNS {
            let v = m.values.get(key).copied().unwrap_or(f64::NAN);
            let v = if *key == "loss" { v * 100.0 } else { v };
            line.push_str(&format!(" {} |", fmt(v, *d)));
        }
        let mut extra = Vec::new();
        if m.instructions_per_packet.is_finite() {
            extra.push(format!("{:.0} instr/pkt", m.instructions_per_packet));
        }
        if sc == "capped" {
            extra.push(capped_summary(|k| median_of(rows, sc, t, *n, k)));
        }
        if sc == "loss" {
            extra.push(format!(
                "video loss {} %, audio loss {} %, NACK repair {} %",
                fmt(m.loss_video * 100.0, 2),
                fmt(m.loss_audio * 100.0, 2),
                fmt(m.nack_repair * 100.0, 1)
            ));
        }
        line.push_str(&format!(" {} |", extra.join("; ")));
        let _ = writeln!(s, "{line}");
    }
    let problems: Vec<String> = rows
        .iter()
        .filter(|r| r["valid"] != true)
        .map(|r| {
            format!(
                "- {} N={} {} rep {}: {}",
                r["scenario"].as_str().unwrap_or("?"),
                r["n"],
                r["target"].as_str().unwrap_or("?"),
                r["rep"],
                r["error"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| r["problems"].to_string())
            )
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(
            s,
            "\nInvalid windows (not used in medians when a valid one exists):\n"
        );
        for p in problems {
            let _ = writeln!(s, "{p}");
        }
    }
    s
}

/// The cost of downlink estimation (fan-out, sfubox with and without it) and the capped
/// scenario's per-class table, when the rows hold them.
fn estimation_tables(s: &mut String, meta: &Value, rows: &[Value], all: &[(String, u64, String)]) {
    let mut fan: Vec<u64> = all
        .iter()
        .filter(|(sc, _, t)| sc == "fanout" && t == "sfubox-noest")
        .map(|(_, n, _)| *n)
        .collect();
    fan.dedup();
    if !fan.is_empty() {
        let _ = writeln!(
            s,
            "\n**Cost of downlink estimation** (fan-out, one non-simulcast publisher; sfubox as \
             built, and with `-downlink-estimation=false`; medians):\n"
        );
        let _ = writeln!(
            s,
            "| N | µs/pkt on | µs/pkt off | on ÷ off | CPU % on | CPU % off | RSS MiB on | RSS MiB off | loss % on | loss % off |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for n in fan {
            let on = |k: &str| median_of(rows, "fanout", "sfubox", n, k);
            let off = |k: &str| median_of(rows, "fanout", "sfubox-noest", n, k);
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(on("us_per_packet"), 2),
                fmt(off("us_per_packet"), 2),
                fmt(on("us_per_packet") / off("us_per_packet"), 2),
                fmt(on("cpu_pct"), 1),
                fmt(off("cpu_pct"), 1),
                fmt(on("rss_mib"), 1),
                fmt(off("rss_mib"), 1),
                fmt(on("loss") * 100.0, 3),
                fmt(off("loss") * 100.0, 3),
            );
        }
    }
    let capped: Vec<&(String, u64, String)> =
        all.iter().filter(|(sc, _, _)| sc == "capped").collect();
    if capped.is_empty() {
        return;
    }
    let first = capped.first().map(|(_, n, t)| (*n, t.as_str()));
    let (cap, queue, loss) = first.map_or((f64::NAN, f64::NAN, f64::NAN), |(n, t)| {
        (
            median_of(rows, "capped", t, n, "cap_kbps"),
            median_of(rows, "capped", t, n, "cap_queue_ms"),
            median_of(rows, "capped", t, n, "cap_loss"),
        )
    });
    let _ = writeln!(
        s,
        "\n**Capped downlinks** (one simulcast publisher, `h` ≈ 700 kb/s and `l` ≈ 120 kb/s, \
         to N subscribers; every fourth behind an emulated {} kb/s link with a {} ms queue, \
         tail drop, and {} % random loss before it, from the end of joining; windows after \
         {} s of warm-up; medians). Loss is what the subscribers saw after retransmissions \
         (video: gaps in the down stream's sequence numbers; audio is not retransmitted); \
         frames whole: frames of the window that arrived complete on some layer; h/l: share \
         of video packets from each layer; fwd pkt/s and µs/pkt count packets that reached \
         the subscribers (not those lost on a capped link). The per-step table's latency \
         columns are the clean subscribers'.\n",
        fmt(cap, 0),
        fmt(queue, 0),
        fmt(loss * 100.0, 1),
        meta["capped_warmup_s"]
            .as_f64()
            .map_or("?".to_owned(), |w| fmt(w, 0)),
    );
    let _ = writeln!(
        s,
        "| N | target | µs/pkt | CPU % | RSS MiB | fwd pkt/s | class | subs | h/l % pkts | frames whole % | frames on h % | video loss % | audio loss % | lat p50/p99 ms | link kb/s | tail drop % |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (_, n, t) in capped {
        let m = |k: &str| median_of(rows, "capped", t, *n, k);
        for class in ["capped", "clean"] {
            let c = |k: &str| m(&format!("{class}_{k}"));
            let (link, tail) = if class == "capped" {
                (
                    fmt(m("capped_link_kbps"), 0),
                    fmt(m("capped_tail_drop") * 100.0, 1),
                )
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                s,
                "| {n} | {t} | {} | {} | {} | {} | {class} | {} | {}/{} | {} | {} | {} | {} | {}/{} | {link} | {tail} |",
                fmt(m("us_per_packet"), 2),
                fmt(m("cpu_pct"), 1),
                fmt(m("rss_mib"), 1),
                fmt(m("forwarded_pps"), 0),
                fmt(c("subscribers"), 0),
                fmt(c("high_share") * 100.0, 0),
                fmt(c("low_share") * 100.0, 0),
                fmt(c("frames_whole") * 100.0, 1),
                fmt(c("frames_high") * 100.0, 0),
                fmt(c("video_loss") * 100.0, 2),
                fmt(c("audio_loss") * 100.0, 2),
                fmt(c("latency_p50_ms"), 0),
                fmt(c("latency_p99_ms"), 0),
            );
        }
    }
}

/// Two panels: µs per forwarded packet and RSS against fan-out N (log x), one line per target.
fn svg(rows: &[Value]) -> String {
    let targets = [
        ("sfubox", "#1f77b4"),
        ("sfubox-noest", "#9467bd"),
        ("janus", "#d62728"),
        ("null", "#2ca02c"),
        ("raw", "#7f7f7f"),
        ("galene", "#ff7f0e"),
    ];
    let all = keys(rows);
    let mut ns: Vec<u64> = all
        .iter()
        .filter(|(s, _, _)| s == "fanout")
        .map(|(_, n, _)| *n)
        .collect();
    ns.sort_unstable();
    ns.dedup();
    let (w, h, pad) = (460.0, 320.0, 55.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * w,
        h + 30.0
    );
    s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    let xmax = ns.last().copied().unwrap_or(1).max(2) as f64;
    let x_of = |n: u64, x0: f64| x0 + pad + ((n.max(1) as f64).ln() / xmax.ln()) * (w - 2.0 * pad);
    for (panel, (key, title)) in [
        ("us_per_packet", "CPU µs per forwarded packet"),
        ("rss_mib", "RSS MiB"),
    ]
    .iter()
    .enumerate()
    {
        let x0 = panel as f64 * w;
        let mut series = Vec::new();
        let mut ymax: f64 = 0.0;
        for (t, color) in targets {
            let pts: Vec<(u64, f64)> = ns
                .iter()
                .filter_map(|&n| {
                    let m = medians(rows, "fanout", t, n)?;
                    let v = m.values.get(key).copied()?;
                    v.is_finite().then_some((n, v))
                })
                .collect();
            for (_, v) in &pts {
                ymax = ymax.max(*v);
            }
            if !pts.is_empty() {
                series.push((t, color, pts));
            }
        }
        let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
        let y_of = |v: f64| h - pad + 20.0 - v / ymax * (h - 2.0 * pad);
        let _ = write!(
            s,
            r#"<text x="{}" y="18" text-anchor="middle" font-size="13">{title} vs fan-out N</text>"#,
            x0 + w / 2.0
        );
        let (bx, by, bw, bh) = (x0 + pad, y_of(ymax), w - 2.0 * pad, y_of(0.0) - y_of(ymax));
        let _ = write!(
            s,
            r##"<rect x="{bx}" y="{by}" width="{bw}" height="{bh}" fill="none" stroke="#888"/>"##
        );
        for i in 0..=4 {
            let v = ymax * f64::from(i) / 4.0;
            let y = y_of(v);
            let _ = write!(
                s,
                r##"<line x1="{bx}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                bx + bw,
                bx - 4.0,
                y + 4.0,
                fmt(v, if ymax < 10.0 { 1 } else { 0 })
            );
        }
        for &n in &ns {
            let x = x_of(n, x0);
            let _ = write!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle">{n}</text>"#,
                y_of(0.0) + 14.0
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">subscribers N (log scale)</text>"#,
            x0 + w / 2.0,
            h + 24.0
        );
        for (i, (t, color, pts)) in series.iter().enumerate() {
            let path: Vec<String> = pts
                .iter()
                .map(|(n, v)| format!("{:.1},{:.1}", x_of(*n, x0), y_of(*v)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
            }
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" fill="{color}">{t}</text>"#,
                bx + 8.0,
                by + 14.0 + 14.0 * i as f64
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
