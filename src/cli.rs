//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// The egress proxy's interception CA.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Write a new interception CA into DIR (ca.pem, and ca.key with mode 0600) and print how to trust it.
    Init(CaInit),
}

#[derive(Debug, Args)]
pub struct CaInit {
    /// Directory for ca.pem and ca.key (created with mode 0700 if missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Let the CA vouch only for this DNS name and the names below it (repeatable; X.509 name constraints).
    /// Without it the CA is unconstrained.
    #[arg(long, value_name = "DNS_NAME")]
    pub permit: Vec<String>,
    /// Validity of the CA certificate in days.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}
