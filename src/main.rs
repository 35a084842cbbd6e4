//! The `hookd` command line: parses arguments, loads the config, and hands
//! over to the library. Exit codes: 0 success, 1 runtime error, 2 usage or
//! config error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hookd::config::{self, DEFAULT_CONFIG_PATH, Settings};

/// A sidecar that stores outbound webhooks durably and delivers them signed.
#[derive(Parser)]
#[command(name = "hookd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar: the ingest API, the admin API and delivery.
    Serve(ConfigArgs),
    /// Load and check the config; print the effective config with secrets
    /// redacted, or one line per problem (exit 2).
    CheckConfig(ConfigArgs),
}

#[derive(Args)]
struct ConfigArgs {
    /// The config file (TOML; YAML when it ends in .yaml or .yml).
    #[arg(long, env = "HOOKD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match load(&args) {
            Ok(settings) => serve(settings),
            Err(code) => code,
        },
        Command::CheckConfig(args) => match load(&args) {
            Ok(settings) => {
                print!("{}", settings.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// Loads the config, or prints every problem and gives the exit code.
fn load(args: &ConfigArgs) -> Result<Settings, ExitCode> {
    config::load(&args.config).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(settings: Settings) -> ExitCode {
    hookd::telemetry::init_logging(&settings.telemetry);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookd: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(serve_until_signalled(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("hookd: {error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

async fn serve_until_signalled(settings: Settings) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let path = settings.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || hookd::store::Store::open(&path))
        .await?
        .with_context(|| {
            format!(
                "cannot open the store at storage.path {}",
                settings.storage.path.display()
            )
        })?;
    let listeners = hookd::Listeners::bind(&settings).await?;
    hookd::run(settings, store, listeners, shutdown_signal()).await
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
