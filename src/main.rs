use std::process::ExitCode;

use clap::Parser;
use mfagate::app::App;
use mfagate::cli::{Cli, Command};
use mfagate::config::{Config, Source};
use mfagate::{shutdown, telemetry};

/// sysexits.h EX_CONFIG: the configuration is invalid.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = Source::resolve(cli.config.as_deref());
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => check_config(&source),
        Command::Run => run(&source),
    }
}

fn check_config(source: &Source) -> ExitCode {
    match Config::load(source) {
        Ok(config) => {
            eprintln!("configuration OK: {}", source.describe());
            print!("{}", toml::to_string_pretty(&config.effective).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("configuration error in {}: {e}", source.describe());
            ExitCode::FAILURE
        }
    }
}

fn run(source: &Source) -> ExitCode {
    let config = match Config::load(source) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error in {}: {e}", source.describe());
            return ExitCode::from(EX_CONFIG);
        }
    };
    telemetry::init(&config.log);
    tracing::info!(config = %source.describe(), version = env!("CARGO_PKG_VERSION"), "configuration loaded");
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.workers > 0 {
        runtime.worker_threads(config.server.workers);
    }
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
            Err(e) => {
                tracing::error!(error = %e, "startup failed");
                ExitCode::FAILURE
            }
        }
    })
}
