//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mfagate",
    version,
    about = "Enforces Microsoft's partner security requirements (MFA, Secure Application Model) on Partner Center and AOBO calls."
)]
pub struct Cli {
    /// Configuration file [default: config/mfagate.toml if present, else the built-in default]
    #[arg(long, short, env = "MFAGATE_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the configuration and print the effective settings; exit 0 when valid, 1 when not.
    CheckConfig,
}
