//! The `sfubox` binary's command line: help, errors and exit codes.

use std::process::Command;

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
