//! Command-line flags, with Galène's spelling and defaults (docs/configuration.md, "Command line").
//!
//! Go's `flag` package accepts `-name value`, `-name=value`, and the same with two dashes;
//! boolean flags take no separate value (`-insecure` or `-insecure=false`). This parser
//! follows those rules by hand. [`parse`] never exits the process: it returns a
//! [`Command`] or a [`CliError`] and `main` turns the error into exit code 2.

use std::fmt;
use std::path::PathBuf;

/// Where the HTTP(S) server listens (`-http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAddress {
    /// The host part; `None` for `:port`, which means every interface.
    pub host: Option<String>,
    /// The TCP port (0 lets the system choose one).
    pub port: u16,
}

impl fmt::Display for HttpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, ":{}", self.port),
            Some(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Some(host) => write!(f, "{host}:{}", self.port),
        }
    }
}

/// The UDP ports the media plane may use (`-udp-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpPorts {
    /// One port shared by every peer connection (ICE UDP multiplexing).
    Single(u16),
    /// An inclusive range of ports, one per peer connection.
    Range {
        /// First port of the range.
        first: u16,
        /// Last port of the range (inclusive, not below `first`).
        last: u16,
    },
}

/// Everything the flags configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-http`: listen address (default `:8443`).
    pub http: HttpAddress,
    /// `-insecure`: plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// `-static`: web root; `None` serves the site embedded in the binary.
    pub static_dir: Option<PathBuf>,
    /// `-data`: data directory (default `./data/`).
    pub data_dir: PathBuf,
    /// `-groups`: group definitions (default `./groups/`).
    pub groups_dir: PathBuf,
    /// `-recordings`: recordings directory (default `./recordings/`).
    pub recordings_dir: PathBuf,
    /// `-udp-range`: the UDP port (or the first free one of a range) of the one media
    /// socket; `None` means the HTTP port's number (any free port if that one is taken).
    pub udp_ports: Option<UdpPorts>,
    /// `-public-ip`: addresses to announce to browsers besides the local ones (a box behind
    /// a 1:1 NAT or a port forward).
    pub public_ips: Vec<std::net::IpAddr>,
    /// `-turn`: built-in TURN server address (default `auto`; not implemented yet).
    pub turn: String,
    /// `-relay-only`: force ICE transport policy `relay`.
    pub relay_only: bool,
    /// `-mdns`: gather mDNS candidates (accepted and ignored).
    pub mdns: bool,
    /// `-camus-client`: the Camus web client's `static/` directory (served under `/static/`
    /// for the Camus room pages); `None` when not given.
    pub camus_client: Option<PathBuf>,
    /// `-downlink-estimation`: estimate each subscriber's downlink and fit its layers to it
    /// (sfubox only; default on). Off, every receiver gets the layer it asked for.
    pub downlink_estimation: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            http: HttpAddress {
                host: None,
                port: 8443,
            },
            insecure: false,
            static_dir: None,
            data_dir: PathBuf::from("./data/"),
            groups_dir: PathBuf::from("./groups/"),
            recordings_dir: PathBuf::from("./recordings/"),
            udp_ports: None,
            public_ips: Vec::new(),
            turn: "auto".to_owned(),
            relay_only: false,
            mdns: false,
            camus_client: None,
            downlink_estimation: true,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server with these options.
    Run(Options),
    /// `-check-config`: validate the `-groups` and `-data` directories of these options,
    /// print a report and exit (0 when there is no error, 1 otherwise).
    CheckConfig(Options),
    /// Print [`usage`] and exit successfully.
    Help,
}

/// A command line that cannot be accepted; the text is meant for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The help text: every flag with its default, and what is not implemented yet.
pub fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [flags]\n\
         \n\
         Flags (one or two dashes; `-flag value` or `-flag=value`):\n\
         \x20 -http address        web server address: :port, host:port or [v6]:port (default \":8443\")\n\
         \x20 -insecure            serve plain HTTP instead of HTTPS (default false)\n\
         \x20 -static directory    web server root (default: the site built into the binary)\n\
         \x20 -data directory      data directory: config.json, cert.pem, key.pem, ... (default \"./data/\")\n\
         \x20 -groups directory    group description directory (default \"./groups/\")\n\
         \x20 -recordings directory\n\
         \x20                      recordings directory (default \"./recordings/\"; recording is not implemented yet)\n\
         \x20 -udp-range N|N1-N2   UDP port for media, shared by every stream; with a range, the first\n\
         \x20                      free port of it (default: the HTTP port's number, else any port)\n\
         \x20 -public-ip IP[,IP]   also announce these addresses to browsers, for a server behind a\n\
         \x20                      1:1 NAT or port forwarding (forward the UDP port too)\n\
         \x20 -turn address        built-in TURN server: \"\", :port, IP:port or auto (default \"auto\"; not implemented yet)\n\
         \x20 -relay-only          force ICE transport policy relay (default false)\n\
         \x20 -mdns                gather mDNS candidates (default false; accepted and ignored)\n\
         \x20 -downlink-estimation\n\
         \x20                      estimate each subscriber's downlink and send it the simulcast layers\n\
         \x20                      that fit it (default true; if false, each gets the layer it asked for)\n\
         \x20 -camus-client directory\n\
         \x20                      Camus chat client: the static/ directory of an unpacked camus-chat\n\
         \x20                      wheel, served for the room pages /chat/<room> and /room/<room>\n\
         \x20                      (default: none; rooms are in data/camus-rooms.json)\n\
         \x20 -check-config        check the groups and data directories, print a report and exit\n\
         \x20 -help                print this help\n"
    )
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut options = Options::default();
    let mut check_config = false;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(CliError(format!("unexpected argument {arg:?}")));
        };
        if flag.is_empty() || flag.starts_with('-') || flag.starts_with('=') {
            return Err(CliError(format!("bad flag syntax: {arg}")));
        }
        let (name, inline_value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        if name == "help" || name == "h" {
            return Ok(Command::Help);
        }
        let target = match name {
            "check-config" => Some(&mut check_config),
            _ => bool_flag(&mut options, name),
        };
        if let Some(target) = target {
            *target = match inline_value {
                None => true,
                Some(value) => parse_bool(&value).ok_or_else(|| {
                    CliError(format!("invalid boolean value {value:?} for -{name}"))
                })?,
            };
            continue;
        }
        if !VALUE_FLAGS.contains(&name) {
            return Err(CliError(format!(
                "flag provided but not defined: -{name} (try -help)"
            )));
        }
        let value = match inline_value {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| CliError(format!("flag needs an argument: -{name}")))?,
        };
        set_value(&mut options, name, value)?;
    }
    if check_config {
        return Ok(Command::CheckConfig(options));
    }
    Ok(Command::Run(options))
}

/// Flags that take a value.
const VALUE_FLAGS: [&str; 9] = [
    "http",
    "static",
    "data",
    "groups",
    "recordings",
    "udp-range",
    "turn",
    "camus-client",
    "public-ip",
];

fn bool_flag<'a>(options: &'a mut Options, name: &str) -> Option<&'a mut bool> {
    match name {
        "insecure" => Some(&mut options.insecure),
        "relay-only" => Some(&mut options.relay_only),
        "mdns" => Some(&mut options.mdns),
        "downlink-estimation" => Some(&mut options.downlink_estimation),
        _ => None,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn set_value(options: &mut Options, name: &str, value: String) -> Result<(), CliError> {
    match name {
        "http" => options.http = parse_http_address(&value)?,
        "static" => options.static_dir = Some(PathBuf::from(value)),
        "data" => options.data_dir = PathBuf::from(value),
        "groups" => options.groups_dir = PathBuf::from(value),
        "recordings" => options.recordings_dir = PathBuf::from(value),
        "udp-range" => options.udp_ports = parse_udp_range(&value)?,
        "turn" => options.turn = value,
        "camus-client" => options.camus_client = Some(PathBuf::from(value)),
        "public-ip" => {
            for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let ip = part.parse().map_err(|_| {
                    CliError(format!(
                        "invalid value {part:?} for -public-ip: not an IP address"
                    ))
                })?;
                options.public_ips.push(ip);
            }
        }
        _ => return Err(CliError(format!("flag provided but not defined: -{name}"))),
    }
    Ok(())
}

/// Parses `:port`, `host:port` or `[v6]:port`.
pub fn parse_http_address(value: &str) -> Result<HttpAddress, CliError> {
    let bad = |why: &str| CliError(format!("invalid value {value:?} for -http: {why}"));
    if value.starts_with('/') {
        return Err(bad("Unix-domain sockets are not supported"));
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' in address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing port in address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address between brackets"));
        }
        (Some(host.to_owned()), port)
    } else {
        let (host, port) = value
            .rsplit_once(':')
            .ok_or_else(|| bad("missing port in address"))?;
        if host.contains(':') {
            return Err(bad("IPv6 addresses must be written [address]:port"));
        }
        ((!host.is_empty()).then(|| host.to_owned()), port)
    };
    let port = parse_port(port).ok_or_else(|| bad("the port must be a number from 0 to 65535"))?;
    Ok(HttpAddress { host, port })
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `-udp-range`: `""` (any port), `N` or `N1-N2` with `0 < N1 <= N2`.
pub fn parse_udp_range(value: &str) -> Result<Option<UdpPorts>, CliError> {
    let bad = |why: &str| CliError(format!("invalid value {value:?} for -udp-range: {why}"));
    if value.is_empty() {
        return Ok(None);
    }
    let nonzero_port = |text: &str| {
        parse_port(text)
            .filter(|port| *port != 0)
            .ok_or_else(|| bad("ports must be numbers from 1 to 65535"))
    };
    match value.split_once('-') {
        None => Ok(Some(UdpPorts::Single(nonzero_port(value)?))),
        Some((first, last)) => {
            let (first, last) = (nonzero_port(first)?, nonzero_port(last)?);
            if first > last {
                return Err(bad("the first port is above the last one"));
            }
            Ok(Some(UdpPorts::Range { first, last }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().copied()) {
            Ok(Command::Run(options)) => options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(CliError(text)) => text,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn defaults_match_galene() {
        let options = run(&[]);
        assert_eq!(options.http.to_string(), ":8443");
        assert!(!options.insecure);
        assert_eq!(options.static_dir, None);
        assert_eq!(options.data_dir, PathBuf::from("./data/"));
        assert_eq!(options.groups_dir, PathBuf::from("./groups/"));
        assert_eq!(options.recordings_dir, PathBuf::from("./recordings/"));
        assert_eq!(options.udp_ports, None);
        assert_eq!(options.turn, "auto");
        assert!(!options.relay_only && !options.mdns);
        assert!(options.downlink_estimation);
    }

    #[test]
    fn one_or_two_dashes_and_both_value_forms() {
        let options = run(&[
            "-http",
            "127.0.0.1:1234",
            "--insecure",
            "-data=/d",
            "--groups",
            "/g",
            "--static=/s",
            "-recordings",
            "/r",
            "-turn=",
            "-relay-only",
            "--mdns=true",
        ]);
        assert_eq!(
            options.http,
            HttpAddress {
                host: Some("127.0.0.1".into()),
                port: 1234
            }
        );
        assert!(options.insecure && options.relay_only && options.mdns);
        assert_eq!(options.data_dir, PathBuf::from("/d"));
        assert_eq!(options.groups_dir, PathBuf::from("/g"));
        assert_eq!(options.static_dir, Some(PathBuf::from("/s")));
        assert_eq!(options.recordings_dir, PathBuf::from("/r"));
        assert_eq!(options.turn, "");
    }

    #[test]
    fn boolean_flags_take_go_booleans_inline_only() {
        assert_eq!(
            run(&["-camus-client", "/c/static"]).camus_client,
            Some(PathBuf::from("/c/static"))
        );
        assert_eq!(run(&[]).camus_client, None);
        assert!(usage("sfubox").contains("-camus-client directory"));
        assert!(!run(&["-insecure=false"]).insecure);
        assert!(run(&["-insecure=T"]).insecure);
        assert!(!run(&["-insecure=0"]).insecure);
        assert!(error(&["-insecure=yes"]).contains("invalid boolean"));
        assert!(!run(&["-downlink-estimation=false"]).downlink_estimation);
        assert!(!run(&["--downlink-estimation=0"]).downlink_estimation);
        assert!(run(&["-downlink-estimation"]).downlink_estimation);
        assert!(error(&["-downlink-estimation=off"]).contains("invalid boolean"));
        // Like Go, a separate word after a boolean flag is not its value.
        assert!(error(&["-insecure", "false"]).contains("unexpected argument"));
    }

    #[test]
    fn http_address_forms() {
        let parse = |text| parse_http_address(text).map(|a| (a.host, a.port));
        assert_eq!(parse(":8443"), Ok((None, 8443)));
        assert_eq!(parse("localhost:80"), Ok((Some("localhost".into()), 80)));
        assert_eq!(parse("[::1]:0"), Ok((Some("::1".into()), 0)));
        assert_eq!(
            parse_http_address("[::1]:9").map(|a| a.to_string()),
            Ok("[::1]:9".into())
        );
        for bad in [
            "8443", ":", ":x", ":65536", "::1:80", "[::1]", "[zz]:1", "/run/s", ":-1",
        ] {
            assert!(parse_http_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn udp_range_is_validated() {
        assert_eq!(parse_udp_range(""), Ok(None));
        assert_eq!(parse_udp_range("5000"), Ok(Some(UdpPorts::Single(5000))));
        assert_eq!(
            parse_udp_range("5000-5010"),
            Ok(Some(UdpPorts::Range {
                first: 5000,
                last: 5010
            }))
        );
        for bad in ["0", "x", "5010-5000", "1-", "-1", "1-70000", "1-2-3"] {
            assert!(parse_udp_range(bad).is_err(), "{bad}");
        }
        assert_eq!(
            run(&["--udp-range=7000"]).udp_ports,
            Some(UdpPorts::Single(7000))
        );
    }

    #[test]
    fn check_config_is_a_boolean_command_flag() {
        let Ok(Command::CheckConfig(options)) = parse(["-check-config", "-groups", "/g"]) else {
            panic!("-check-config not recognised");
        };
        assert_eq!(options.groups_dir, PathBuf::from("/g"));
        assert!(matches!(
            parse(["--check-config=true"]),
            Ok(Command::CheckConfig(_))
        ));
        assert!(matches!(
            parse(["-check-config=false"]),
            Ok(Command::Run(_))
        ));
        assert!(usage("sfubox").contains("-check-config"));
    }

    #[test]
    fn public_ip_takes_addresses_separated_by_commas() {
        let Ok(Command::Run(options)) = parse(["-public-ip", "203.0.113.7,2001:db8::1"]) else {
            panic!("-public-ip not accepted");
        };
        assert_eq!(
            options.public_ips,
            [
                "203.0.113.7".parse::<std::net::IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(parse(["-public-ip=example.org"]).is_err());
        assert!(usage("sfubox").contains("-public-ip"));
    }

    #[test]
    fn help_and_errors() {
        assert_eq!(parse(["-help"]), Ok(Command::Help));
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["-h"]), Ok(Command::Help));
        assert!(error(&["-nope"]).contains("not defined: -nope"));
        assert!(error(&["-http"]).contains("needs an argument"));
        assert!(error(&["---http=:1"]).contains("bad flag syntax"));
        assert!(error(&["-"]).contains("bad flag syntax"));
        assert!(error(&["stray"]).contains("unexpected argument"));
        let help = usage("sfubox");
        for flag in [
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
            "-downlink-estimation",
        ] {
            assert!(help.contains(flag), "{flag}");
        }
        assert!(help.contains("not implemented yet"));
        assert!(help.contains("\":8443\""));
    }
}
