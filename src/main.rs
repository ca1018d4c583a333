//! The `sfubox` binary: parses Galène's flags, sets up logging, and runs the server.

use std::process::ExitCode;

use sfubox::cli::{self, Command};
use sfubox::run::{self, Server};

fn main() -> ExitCode {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_else(|| "sfubox".to_owned());
    let options = match cli::parse(args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{}", cli::usage(&program));
            return ExitCode::SUCCESS;
        }
        Ok(Command::CheckConfig(options)) => {
            // Warnings of the parsers (skipped entries) go to stderr above the report.
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
                .init();
            let report = run::check::check_config(&options.groups_dir, &options.data_dir);
            print!("{report}");
            return if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Err(error) => {
            eprintln!("{program}: {error}");
            eprintln!("Run {program} -help for the list of flags.");
            return ExitCode::from(2);
        }
    };
    // Milliseconds: media traces (RUST_LOG=sfubox::media=trace) are read against RTCP timing.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    if options.turn != "auto" && !options.turn.is_empty() {
        log::warn!("-turn: the built-in TURN server is not implemented yet; ignoring it");
    }
    if options.mdns {
        log::warn!("-mdns is accepted and ignored");
    }

    let (app, embedded_group) = run::app_for(&options);
    let server = match Server::bind(&options, app) {
        Ok(server) => server,
        Err(error) => {
            log::error!("Cannot start the web server on {}: {error}", options.http);
            return ExitCode::FAILURE;
        }
    };
    let scheme = if options.insecure { "http" } else { "https" };
    match server.local_addr() {
        Ok(addr) => log::info!("Listening on {scheme}://{addr}/"),
        Err(error) => log::warn!("Listening (address unknown: {error})"),
    }
    if embedded_group {
        log::info!(
            "Serving the built-in group: {scheme}://localhost:{}/group/{}/",
            options.http.port,
            sfubox::config::dir::EMBEDDED_GROUP_NAME
        );
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
