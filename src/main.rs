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

/// How often memory freed since is handed back to the system.
const TIDY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// mimalloc hands freed pages back to the system a while after they are
/// freed, but only when the allocator is next called, and a worker's empty
/// pages only when that worker collects: once a burst of connections has
/// closed and the process is quiet, their memory would stay resident. Each
/// worker collects when it goes idle (at most every `TIDY_EVERY`), and a
/// thread of its own hands back what is due every `TIDY_EVERY`; both calls
/// return at once when there is nothing to do.
fn collect_when_idle() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| {
        if last.get().is_none_or(|at| at.elapsed() >= TIDY_EVERY) {
            last.set(Some(std::time::Instant::now()));
            // SAFETY: mi_collect has no preconditions; it collects the calling thread's heap.
            unsafe { libmimalloc_sys::mi_collect(true) };
        }
    });
}

/// Transparent huge pages make the kernel back a 2 MiB range with memory
/// once a few of its pages are used: after a burst of connections has
/// closed, the pages the allocator gave back are filled in again and stay
/// resident. The gateway's heap is small enough that huge pages buy nothing.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn tidy_memory() {
    let spawned = std::thread::Builder::new().name("mfagate-tidy".into()).spawn(|| {
        loop {
            std::thread::sleep(TIDY_EVERY);
            // SAFETY: mi_collect has no preconditions; it may be called from any thread.
            unsafe { libmimalloc_sys::mi_collect(false) };
            // The TLS library allocates from the C heap, which keeps what is
            // freed below its top: hand back its free pages too.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the memory tidying thread");
    }
}

/// sysexits.h EX_CONFIG: the configuration is invalid.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    no_huge_pages();
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
    tidy_memory();
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
    let runtime = match runtime.enable_all().on_thread_park(collect_when_idle).build() {
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
