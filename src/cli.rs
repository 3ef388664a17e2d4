//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Decode a token and show every rule's verdict on it, with hints; exit 0 allow, 2 deny, 1 error.
    CheckToken(CheckTokenArgs),
    /// Show which decisions of a decision log would change under the configuration; exit 0 when none
    /// would be newly denied, 2 when some would, 1 on error.
    Replay(ReplayArgs),
    /// The egress proxy's interception CA.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Summarise a decision log: MFA compliance per day and application, and every principal and
    /// application denied or that would be denied (with --config, also the staged routes' enforce
    /// dates and the exemptions' expiry); exit 0 when none was, 2 when some were, 1 on error.
    Report(ReportArgs),
    /// Start a local identity provider, an echo upstream and the gateway, and print curl commands
    /// to try it.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct CheckTokenArgs {
    /// The route whose policy applies; it must take --path [default: the gateway's route for --path (and a Host header), else the first route accepting the token's audience]
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Do not check the signature (no key set is fetched); the claim rules still apply
    #[arg(long)]
    pub no_verify: bool,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// The request path and query, for rules that read it (Partner Center's /v1/customers/{customer-id}/...)
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// A request header besides the token's Authorization (repeatable), e.g.
    /// 'x-ms-authorization-auxiliary: Bearer ...' or a second 'Authorization: ...'
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// The access token, or - for standard input [default: standard input]; prefer standard input,
    /// since arguments are visible to other users of the machine
    #[arg(value_name = "TOKEN|-")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Decide every record at this RFC 3339 instant instead of its own time (e.g. an enforce_after date)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// The decision logs (JSON lines; one per replica, merged by time), or - for standard input
    #[arg(value_name = "AUDIT.jsonl", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
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

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// With --format csv (and signins with --format text): which table to print
    #[arg(long, value_enum, default_value_t = ReportTable::Compliance)]
    pub table: ReportTable,
    /// Only records at or after this instant: RFC 3339, a date (2026-04-01), or a duration back from now (7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records at or before this instant (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Write the report to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The decision logs (JSON lines; one per replica, merged by time), or - for standard input
    #[arg(value_name = "AUDIT.jsonl", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Csv,
    Json,
    /// One self-contained page (inline CSS and SVG charts, no script) to hand an auditor
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportTable {
    /// loginDate, applicationId, mfaCompliantRequestCount, totalRequestCount
    Compliance,
    /// Principals and applications denied, would be denied or exempt, by reason
    Denials,
    /// ARM compute requests compute_guard flagged, by customer, principal and application
    Compute,
    /// Token requests on login routes per tenant, client, grant and client authentication
    Signins,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The gateway's TLS listener
    #[arg(long, env = "MFAGATE_DEMO_LISTEN", default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// The gateway's admin listener (/metrics, /healthz, /readyz)
    #[arg(long, env = "MFAGATE_DEMO_ADMIN_LISTEN", default_value = "127.0.0.1:9090", value_name = "ADDR")]
    pub admin_listen: std::net::SocketAddr,
    /// Where to write the demo's certificate authority and decision log [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
