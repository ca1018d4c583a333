//! The servers under test, each started fresh for one step, pinned to one core.

use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// sfubox (release build).
    Sfubox,
    /// sfubox with `-downlink-estimation=false` (no TWCC on down streams, no layer choice by
    /// bandwidth, no REMB).
    SfuboxNoEst,
    /// sfubox recording every stream of the group (an operator sends `record` once the
    /// publishers are up) into `-recordings` under the scratch directory.
    SfuboxRec,
    /// Janus 1.1 from Debian, VideoRoom, `event_loops = 1`.
    Janus,
    /// Our null SFU (decrypt → re-encrypt per subscriber → send, through str0m).
    Null,
    /// The raw relay: the null SFU with no WebRTC stack on the packet path (the floor).
    Raw,
    /// Galène, from a binary the user built (`--galene BIN`); launched with sfubox's flags,
    /// which are Galène's.
    Galene,
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<TargetKind, String> {
        match s {
            "sfubox" => Ok(TargetKind::Sfubox),
            "sfubox-noest" => Ok(TargetKind::SfuboxNoEst),
            "sfubox-rec" => Ok(TargetKind::SfuboxRec),
            "janus" => Ok(TargetKind::Janus),
            "null" => Ok(TargetKind::Null),
            "raw" => Ok(TargetKind::Raw),
            "galene" => Ok(TargetKind::Galene),
            _ => Err(format!(
                "unknown target {s:?} (sfubox, sfubox-noest, sfubox-rec, janus, null, raw, galene)"
            )),
        }
    }
}

impl TargetKind {
    /// sfubox, with or without downlink estimation, recording or not.
    pub fn is_sfubox(self) -> bool {
        matches!(
            self,
            TargetKind::Sfubox | TargetKind::SfuboxNoEst | TargetKind::SfuboxRec
        )
    }

    /// Whether cameras must send for a moment before anyone subscribes: Galène creates an up
    /// track on its first RTP packet and offers it (debounced) only to the members present
    /// when the offer arrived, so a `request` landing before the first packets gets `close`.
    pub fn needs_camera_settle(self) -> bool {
        self == TargetKind::Galene
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Sfubox => "sfubox",
            TargetKind::SfuboxNoEst => "sfubox-noest",
            TargetKind::SfuboxRec => "sfubox-rec",
            TargetKind::Janus => "janus",
            TargetKind::Null => "null",
            TargetKind::Raw => "raw",
            TargetKind::Galene => "galene",
        })
    }
}

/// How to start targets.
pub struct Launch<'a> {
    /// The sfubox binary.
    pub sfubox: &'a Path,
    /// The Galène binary, if given.
    pub galene: Option<&'a Path>,
    /// Janus's private configuration directory (made by run.sh).
    pub janus_config: Option<&'a Path>,
    /// The address Janus gathers on (spec B3: not a loopback-flagged interface).
    pub janus_ip: IpAddr,
    /// The core targets are pinned to.
    pub cpu: usize,
    /// Where logs and scratch directories go.
    pub dir: &'a Path,
    /// Run under callgrind with instrumentation off until [`Target::instrument`].
    pub callgrind: bool,
}

/// A running target.
pub struct Target {
    child: Child,
    /// Its pid (taskset and valgrind exec in place).
    pub pid: u32,
    /// Where the WebSocket is.
    pub ws_url: String,
    /// The address generator peers must bind to.
    pub peer_ip: IpAddr,
    callgrind_out: Option<PathBuf>,
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Target {
    /// Starts `kind`; `slot` varies the ports from step to step.
    pub fn start(kind: TargetKind, launch: &Launch, slot: u16) -> Result<Target, String> {
        let port = 20_000 + 10 * (slot % 100) + 3000;
        let log = fs::File::create(launch.dir.join(format!("{kind}.log")))
            .map_err(|e| format!("log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(launch.cpu.to_string());
        let callgrind_out = launch
            .callgrind
            .then(|| launch.dir.join(format!("callgrind.{kind}.out")));
        if let Some(out) = &callgrind_out {
            let _ = fs::remove_file(out);
            cmd.args(["valgrind", "--tool=callgrind", "--instr-atstart=no"])
                .arg(format!("--callgrind-out-file={}", out.display()));
        }
        let (ws_url, peer_ip, probe) = match kind {
            TargetKind::Sfubox
            | TargetKind::SfuboxNoEst
            | TargetKind::SfuboxRec
            | TargetKind::Galene => {
                let groups = launch.dir.join("groups");
                let data = launch.dir.join("data");
                fs::create_dir_all(&groups).map_err(|e| e.to_string())?;
                fs::create_dir_all(&data).map_err(|e| e.to_string())?;
                // `rec` (password `pw`) may record; everyone else presents.
                fs::write(
                    groups.join("bench.json"),
                    r#"{"allow-recording": true,
                        "users": {"rec": {"password": "pw", "permissions": "op"}},
                        "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
                )
                .map_err(|e| e.to_string())?;
                let recordings = launch.dir.join("recordings");
                let _ = fs::remove_dir_all(&recordings);
                let binary = if kind == TargetKind::Galene {
                    launch
                        .galene
                        .ok_or("the galene target needs --galene BIN")?
                } else {
                    launch.sfubox
                };
                cmd.arg(binary)
                    .args(["-insecure", "-http", &format!("127.0.0.1:{port}")])
                    .args(["-udp-range", &(port + 1).to_string()])
                    .arg("-groups")
                    .arg(&groups)
                    .arg("-data")
                    .arg(&data);
                if kind == TargetKind::SfuboxNoEst {
                    cmd.arg("-downlink-estimation=false");
                }
                cmd.arg("-recordings").arg(&recordings);
                if kind == TargetKind::Galene {
                    // No built-in TURN server (Galène starts one by default).
                    cmd.args(["-turn", ""]);
                }
                (format!("ws://127.0.0.1:{port}/ws"), LOCALHOST, port)
            }
            TargetKind::Null | TargetKind::Raw => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mode = if kind == TargetKind::Raw {
                    "raw-relay"
                } else {
                    "null-sfu"
                };
                cmd.arg(exe)
                    .args([mode, "--http", &format!("127.0.0.1:{port}")])
                    .args(["--udp", &format!("127.0.0.1:{}", port + 1)]);
                (format!("ws://127.0.0.1:{port}/ws"), LOCALHOST, port)
            }
            TargetKind::Janus => {
                let cfg = launch
                    .janus_config
                    .ok_or("janus needs --janus-config (benches/run.sh makes one)")?;
                cmd.arg("janus")
                    .arg("-F")
                    .arg(cfg)
                    .arg("-C")
                    .arg(cfg.join("janus.jcfg"))
                    .arg("-o");
                ("ws://127.0.0.1:8188/".to_owned(), launch.janus_ip, 8188)
            }
        };
        if kind == TargetKind::Janus {
            // A previous Janus may still hold the port for a moment.
            wait_port_free(8188);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {kind}: {e}"))?;
        let pid = child.id();
        let mut target = Target {
            child,
            pid,
            ws_url,
            peer_ip,
            callgrind_out,
        };
        let limit = if launch.callgrind { 60 } else { 15 };
        let until = Instant::now() + Duration::from_secs(limit);
        while TcpStream::connect(("127.0.0.1", probe)).is_err() {
            if Instant::now() > until || matches!(target.child.try_wait(), Ok(Some(_))) {
                target.stop();
                return Err(format!("{kind} did not start (see {kind}.log)"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(target)
    }

    /// Callgrind: switches instrumentation on (window start) or off and dumps (window end),
    /// returning the instructions counted while it was on.
    pub fn instrument(&self, on: bool) -> Result<Option<u64>, String> {
        let Some(out) = &self.callgrind_out else {
            return Ok(None);
        };
        let pid = self.pid.to_string();
        let run = |args: &[&str]| {
            Command::new("callgrind_control")
                .args(args)
                .arg(&pid)
                .output()
                .map_err(|e| format!("callgrind_control: {e}"))
        };
        if on {
            run(&["-z"])?;
            run(&["-i", "on"])?;
            return Ok(None);
        }
        run(&["-i", "off"])?;
        run(&["-d"])?;
        // Dumps are written as <out>.<n>; take the largest "totals:" of them.
        let dir = out.parent().unwrap_or(Path::new("."));
        let stem = out
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut best = None;
        for entry in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&stem) {
                continue;
            }
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                if let Some(v) = line
                    .strip_prefix("totals:")
                    .or_else(|| line.strip_prefix("summary:"))
                    && let Ok(n) = v.split_whitespace().next().unwrap_or("").parse::<u64>()
                {
                    best = Some(best.map_or(n, |b: u64| b.max(n)));
                }
            }
        }
        Ok(best)
    }

    /// Kills the target and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_port_free(port: u16) {
    let until = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
}
