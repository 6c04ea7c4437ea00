//! The `warden` command: build, call, list, inspect plugins, send them
//! events, and deploy them (canary, promote, rollback, status, history). Exit codes: 0 success, 1 the plugin failed (returned an error or
//! trapped), 2 a usage or input error.

mod args;
mod commands;
mod config;
mod host;
#[cfg(test)]
mod reference;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Up(_) | Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    // Before anything builds an HTTP client: the OTLP exporter's and the
    // registry client's share one that needs the process's TLS provider.
    warden_oci::install_tls_provider();
    let telemetry = telemetry::init(cli.global.verbose, &cli.command);
    let result = match &cli.command {
        Command::New(a) => commands::new::run(a),
        Command::Compose(a) => commands::compose::run(a),
        Command::Build(a) => commands::build::run(a),
        Command::Call(a) => commands::call::run(&cli.global, a),
        Command::List(a) => commands::list::run(&cli.global, a),
        Command::Inspect(a) => commands::inspect::run(&cli.global, a),
        Command::Event(a) => commands::event::run(&cli.global, a),
        Command::Audit(a) => commands::audit::run(&cli.global, a),
        Command::Deploy(a) => commands::deploy::deploy(&cli.global, a),
        Command::Canary(a) => commands::deploy::canary(&cli.global, a),
        Command::Promote(a) => commands::deploy::promote(&cli.global, a),
        Command::Rollback(a) => commands::deploy::rollback(&cli.global, a),
        Command::Reload(a) => commands::deploy::reload(&cli.global, a),
        Command::Status(a) => commands::status::status(&cli.global, a),
        Command::History(a) => commands::status::history(&cli.global, a),
        Command::ReleaseName(a) => commands::deploy::release_name(&cli.global, a),
        Command::Keygen(a) => commands::sign::keygen(a),
        Command::Sign(a) => commands::sign::sign(a),
        Command::Verify(a) => commands::sign::verify(a),
        Command::Cluster(a) => commands::cluster::list(a),
        Command::Push(a) => commands::oci::push(&cli.global, a),
        Command::Pull(a) => commands::oci::pull(&cli.global, a),
        Command::Up(a) => commands::serve::up(&cli.global, a, &telemetry),
        Command::Serve(a) => commands::serve::serve(&cli.global, a, &telemetry),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err, cli.global.verbose);
            exit_code_for(&err)
        }
    }
}

/// Prints `err` as one line (the first line of its message); `--verbose`
/// adds the rest (guest backtraces, build output).
fn report(err: &anyhow::Error, verbose: bool) {
    let text = chain_text(err);
    let mut lines = text.lines();
    eprintln!("error: {}", lines.next().unwrap_or("unknown error"));
    let rest: Vec<&str> = lines.collect();
    let is_build = matches!(
        err.downcast_ref::<warden_build::Error>(),
        Some(warden_build::Error::Build { .. })
    );
    if !rest.is_empty() && (verbose || is_build) {
        eprintln!("{}", rest.join("\n"));
    }
}

/// The error and its causes, `: `-separated, each cause left out when the
/// message before already says it (errors that show their source).
fn chain_text(err: &anyhow::Error) -> String {
    err.chain().fold(String::new(), |text, cause| {
        let cause = cause.to_string();
        match (text.is_empty(), text.contains(&cause)) {
            (true, _) => cause,
            (false, true) => text,
            (false, false) => format!("{text}: {cause}"),
        }
    })
}

/// Output piped into a reader that stops early (`warden list | head`) ends
/// the command quietly, as for other Unix tools, instead of a panic in
/// `println!`. Not for the server, whose sockets must see the error instead.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<warden::Error>() {
        Some(e) if e.is_plugin_failure() => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}
