//! The `sfubox` binary's command line: help, errors and exit codes.

use std::process::Command;

mod binary;
use binary::spawn_sfubox;

fn sfubox(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sfubox"))
        .args(args)
        .output()
        .expect("run the sfubox binary")
}

#[test]
fn help_lists_every_flag_and_exits_zero() {
    for flag in ["-help", "--help"] {
        let output = sfubox(&[flag]);
        assert_eq!(output.status.code(), Some(0));
        let help = String::from_utf8_lossy(&output.stdout);
        for name in [
            "-http",
            "-insecure",
            "-static",
            "-data",
            "-groups",
            "-recordings",
            "-udp-range",
            "-turn",
            "-relay-only",
            "-mdns",
        ] {
            assert!(help.contains(name), "{name} missing from:\n{help}");
        }
        assert!(help.contains("not implemented yet"));
    }
}

#[test]
fn bad_flags_exit_with_code_2_and_a_message() {
    for (args, message) in [
        (&["-bogus"][..], "flag provided but not defined: -bogus"),
        (&["-udp-range", "9-1"][..], "-udp-range"),
        (&["--http=nonsense"][..], "-http"),
        (&["-data"][..], "flag needs an argument: -data"),
    ] {
        let output = sfubox(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn downlink_estimation_is_a_boolean_flag_on_by_default() {
    let help = String::from_utf8_lossy(&sfubox(&["-help"]).stdout).into_owned();
    assert!(help.contains("-downlink-estimation"), "{help}");
    assert!(help.contains("(default true"), "{help}");
    let output = sfubox(&["-downlink-estimation=maybe"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid boolean value \"maybe\" for -downlink-estimation"),
        "{stderr}"
    );
    // Like Go's boolean flags, a separate word is not its value.
    assert_eq!(
        sfubox(&["--downlink-estimation", "false"]).status.code(),
        Some(2)
    );
    let default = started_server_log(&[]);
    assert!(default.contains("Listening on"), "{default}");
    assert!(!default.contains("Downlink estimation is off"), "{default}");
    for off in ["-downlink-estimation=false", "--downlink-estimation=0"] {
        let log = started_server_log(&[off]);
        assert!(log.contains("Downlink estimation is off"), "{off}: {log}");
    }
}

/// Starts the server on loopback with `extra` flags, returns its log up to the "Listening"
/// line (at most 10 s), and kills it.
fn started_server_log(extra: &[&str]) -> String {
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!(
        "sfubox-cli-{}-{}",
        std::process::id(),
        extra.join("").replace(['-', '='], "")
    ));
    std::fs::create_dir_all(dir.join("groups")).expect("temporary groups directory");
    std::fs::create_dir_all(dir.join("data")).expect("temporary data directory");
    let mut args = vec!["-udp-range", ""];
    args.extend_from_slice(extra);
    let (mut child, received) = spawn_sfubox(&dir, &args);
    let mut log = String::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(10)) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("Listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    log
}
