use std::process::ExitCode;

use clap::Parser;
use mfagate::app::App;
use mfagate::cli::{CaCommand, CaInit, Cli, Command};
use mfagate::config::{Config, LogConfig, Source};
use mfagate::egress::{ca, hosts};
use mfagate::serving::{Purpose, Serving, Shared};
use mfagate::{shutdown, telemetry, tls, tools};

// The request path allocates and frees many small buffers per request from
// every worker; mimalloc does that with less CPU and less fragmentation than
// the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sysexits.h EX_CONFIG: the configuration is invalid.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = Source::resolve(cli.config.as_deref());
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => check_config(&source),
        Command::CheckToken(args) => tools::check_token::run(&source, &args),
        Command::Replay(args) => tools::replay::run(&source, &args),
        // Only a configuration named on purpose: the report is about the log.
        Command::Report(args) => tools::report::run(cli.config.as_deref(), &args),
        Command::Demo(args) => tools::demo::run(&args),
        Command::Run => run(&source),
        Command::Ca { command: CaCommand::Init(args) } => ca_init(&args),
    }
}

fn ca_init(args: &CaInit) -> ExitCode {
    let mut permit = Vec::with_capacity(args.permit.len());
    for name in &args.permit {
        match hosts::normalize(name) {
            Ok(n) => permit.push(n),
            Err(_) => {
                eprintln!("ca init: --permit {name}: not a DNS name");
                return ExitCode::from(2);
            }
        }
    }
    let options = ca::CaOptions { permit, days: args.days, ..ca::CaOptions::default() };
    let files = match ca::init(&args.out, &options) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("ca init: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fingerprint = rustls_pki_types::pem::PemObject::from_pem_file(&files.cert)
        .map(|der: rustls_pki_types::CertificateDer<'_>| tls::fingerprint(&der))
        .unwrap_or_default();
    println!("Wrote {} (certificate) and {} (private key, mode 0600).", files.cert.display(), files.key.display());
    println!("SHA-256 fingerprint: {fingerprint}");
    if options.permit.is_empty() {
        println!(
            "The CA is not name-constrained: it can vouch for any host. Consider --permit for each guarded domain."
        );
    } else {
        println!("The CA can only vouch for: {}", options.permit.join(", "));
    }
    println!();
    print!("{}", ca::trust_instructions(&files.cert));
    println!();
    println!("Configure the gateway with:");
    println!();
    println!("[egress]");
    println!("listen = \"0.0.0.0:3128\"");
    println!("ca_cert = {:?}", files.cert.display().to_string());
    println!("ca_key = {:?}", files.key.display().to_string());
    ExitCode::SUCCESS
}

/// Loads the configuration and builds everything `run` builds before it
/// serves (certificates, upstream TLS, the interception CA and its checks
/// of every guarded host, the decision log's path), without binding
/// sockets, fetching keys or writing files.
fn check_config(source: &Source) -> ExitCode {
    let config = match Config::load(source) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error in {}: {e}", source.describe());
            return ExitCode::FAILURE;
        }
    };
    let effective = toml::to_string_pretty(&config.effective).unwrap_or_default();
    let warnings = config.warnings();
    let built = Shared::new(&config)
        .map_err(|e| e.to_string())
        .and_then(|shared| Serving::build(config, &shared, Purpose::Check).map_err(|e| e.to_string()));
    if let Err(e) = built {
        eprintln!("configuration error in {}: {e}", source.describe());
        return ExitCode::FAILURE;
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!("configuration OK: {}", source.describe());
    print!("{effective}");
    ExitCode::SUCCESS
}

/// Serves until SIGTERM. A configuration it cannot use (one that does not
/// load, or whose files do not) exits `EX_CONFIG`, which service managers
/// are told not to restart on; a bind or runtime failure exits 1.
fn run(source: &Source) -> ExitCode {
    let config = match Config::load(source) {
        Ok(config) => config,
        Err(e) => {
            let _log = telemetry::init(&LogConfig::of_unloadable(source, std::env::vars()));
            tracing::error!(config = %source.describe(), key = e.key().unwrap_or(""), error = %e, "configuration error");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let _log = telemetry::init(&config.log);
    tracing::info!(config = %source.describe(), version = env!("CARGO_PKG_VERSION"), "configuration loaded");
    for warning in config.warnings() {
        tracing::warn!(%warning, "configuration warning");
    }
    // One worker: a single-threaded runtime, which costs less per request
    // than a multi-threaded one with one thread (no work stealing, no
    // cross-thread wake-ups).
    let mut runtime = match config.server.workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match App::build(config).await {
            Ok(app) => {
                let app = app.with_source(source.clone());
                app.run(shutdown::signal()).await;
                ExitCode::SUCCESS
            }
            Err(e) if e.is_configuration() => {
                tracing::error!(key = e.key().unwrap_or(""), error = %e, "startup failed: configuration error");
                ExitCode::from(EX_CONFIG)
            }
            Err(e) => {
                tracing::error!(error = %e, "startup failed");
                ExitCode::FAILURE
            }
        }
    })
}
