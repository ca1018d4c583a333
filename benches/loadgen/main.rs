//! The load generator: sfubox, Janus and a null SFU under the same synthetic WebRTC load.
//!
//! Publishers send realistic RTP without encoding (VP8 with valid payload descriptors, a
//! keyframe every 3 s, ≈ 500 kb/s, plus Opus at 50 packets/s); subscribers count,
//! sequence-check and time packets without decoding. Every target runs pinned to its own core
//! and is restarted for every step; the generator runs on another. See `benches/run.sh` (the
//! one command) and `docs/benchmarks.md` (method and results).
//!
//! ```text
//! loadgen suite --out DIR [--quick] [--targets sfubox,sfubox-noest,janus,null,raw,galene]
//!               [--sfubox BIN] [--galene BIN]
//!               [--janus-config DIR] [--janus-ip 127.0.0.2] [--reps 3] [--target-cpu 1]
//!               [--generator-cpu 0] [--callgrind] [--append]
//!               [--scenarios fanout,meeting,storm,loss,capped] [--capped N]
//!               [--cap-kbps 300] [--cap-queue-ms 300] [--cap-loss 0.02]
//! loadgen null-sfu --http 127.0.0.1:PORT --udp 127.0.0.1:PORT
//! loadgen raw-relay --http 127.0.0.1:PORT --udp 127.0.0.1:PORT   (the floor: no str0m per packet)
//! loadgen report DIR          (rewrites results.md and plot.svg from results.json)
//! ```

mod null_sfu;
mod options;
mod peer;
mod procstat;
mod raw_srtp;
mod report;
mod scenario;
mod signal;
mod target;
mod world;

use std::path::PathBuf;

use options::{Cap, Scenario, SuiteOptions};
use target::TargetKind;

fn usage() {
    eprintln!(
        "usage: loadgen suite --out DIR [--quick] [--targets sfubox,sfubox-noest,janus,null,raw,galene]\n\
         \x20                   [--sfubox BIN] [--galene BIN] [--janus-config DIR] [--janus-ip IP] [--reps N]\n\
         \x20                   [--target-cpu N] [--generator-cpu N]\n\
         \x20                   [--scenarios fanout,meeting,storm,loss,capped]\n\
         \x20                   [--fanout 1,10,50] [--capped N] [--cap-kbps K] [--cap-queue-ms MS]\n\
         \x20                   [--cap-loss F] [--window S] [--warmup S] [--callgrind] [--append]\n\
         \x20      loadgen null-sfu --http ADDR --udp ADDR\n\
         \x20      loadgen raw-relay --http ADDR --udp ADDR\n\
         \x20      loadgen report DIR\n\
         Run through benches/run.sh."
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("suite") => suite(&args[1..]),
        Some("null-sfu") => null_sfu_main(&args[1..], false),
        Some("raw-relay") => null_sfu_main(&args[1..], true),
        Some("report") => match args.get(1) {
            Some(dir) => report::rewrite(&PathBuf::from(dir)),
            None => Err("report DIR".into()),
        },
        _ => {
            // `cargo bench` / `cargo test --all-targets` run this without a command.
            usage();
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

fn value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn null_sfu_main(args: &[String], raw: bool) -> Result<(), String> {
    let http = value(args, "--http").ok_or("--http ADDR")?;
    let udp = value(args, "--udp").ok_or("--udp ADDR")?;
    null_sfu::serve(
        http.parse().map_err(|e| format!("--http: {e}"))?,
        udp.parse().map_err(|e| format!("--udp: {e}"))?,
        raw,
    )
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.trim().parse().map_err(|_| format!("bad list item {p:?}")))
        .collect()
}

fn suite(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let out = PathBuf::from(value(args, "--out").ok_or("--out DIR")?);
    let targets: Vec<TargetKind> = list(value(args, "--targets").unwrap_or("sfubox,null"))?;
    let scenarios: Vec<Scenario> = list(value(args, "--scenarios").unwrap_or(if quick {
        "fanout,storm,loss,capped"
    } else {
        "fanout,meeting,storm,loss"
    }))?;
    let fanout: Vec<usize> = list(value(args, "--fanout").unwrap_or(if quick {
        "1,10"
    } else {
        "1,10,50,100,200,300,400,600,800"
    }))?;
    let meeting: Vec<usize> =
        list(value(args, "--meeting").unwrap_or(if quick { "4" } else { "4,8,12" }))?;
    let parse_secs = |name: &str, default: f64| -> Result<f64, String> {
        value(args, name)
            .map(|v| v.parse().map_err(|_| format!("{name}: seconds")))
            .unwrap_or(Ok(default))
    };
    let parse_num = |name: &str, default: f64| -> Result<f64, String> {
        value(args, name)
            .map(|v| v.parse().map_err(|_| format!("{name}: a number")))
            .unwrap_or(Ok(default))
    };
    let cap_kbps = parse_num("--cap-kbps", 300.0)?;
    let cap_queue_ms = parse_num("--cap-queue-ms", 300.0)?;
    let cap_loss = parse_num("--cap-loss", 0.02)?;
    if !(cap_kbps >= 10.0 && cap_queue_ms >= 1.0 && (0.0..1.0).contains(&cap_loss)) {
        return Err("--cap-kbps ≥ 10, --cap-queue-ms ≥ 1, 0 ≤ --cap-loss < 1".into());
    }
    let options = SuiteOptions {
        out,
        quick,
        targets,
        scenarios,
        fanout,
        meeting,
        storm: if quick { 10 } else { 50 },
        loss_subscribers: if quick { 2 } else { 10 },
        capped_subscribers: value(args, "--capped")
            .map(|v| v.parse().map_err(|_| "--capped N"))
            .unwrap_or(Ok(if quick { 4 } else { 40 }))?,
        cap: Cap {
            rate_bps: (cap_kbps * 1000.0) as u64,
            queue: std::time::Duration::from_secs_f64(cap_queue_ms / 1000.0),
            loss: cap_loss,
        },
        capped_warmup: if quick { 6.0 } else { 12.0 },
        reps: value(args, "--reps")
            .map(|v| v.parse().map_err(|_| "--reps N"))
            .unwrap_or(Ok(if quick { 1 } else { 3 }))?,
        warmup: parse_secs("--warmup", if quick { 2.0 } else { 5.0 })?,
        window: parse_secs("--window", if quick { 4.0 } else { 15.0 })?,
        sfubox: PathBuf::from(value(args, "--sfubox").unwrap_or("target/release/sfubox")),
        galene: value(args, "--galene").map(PathBuf::from),
        janus_config: value(args, "--janus-config").map(PathBuf::from),
        janus_ip: value(args, "--janus-ip")
            .unwrap_or("127.0.0.2")
            .parse()
            .map_err(|e| format!("--janus-ip: {e}"))?,
        target_cpu: value(args, "--target-cpu")
            .map(|v| v.parse().map_err(|_| "--target-cpu N"))
            .unwrap_or(Ok(1))?,
        generator_cpu: value(args, "--generator-cpu")
            .map(|v| v.parse().map_err(|_| "--generator-cpu N"))
            .unwrap_or(Ok(0))?,
        callgrind: args.iter().any(|a| a == "--callgrind"),
        append: args.iter().any(|a| a == "--append"),
    };
    scenario::run_suite(&options)
}
