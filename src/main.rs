//! The `hookd` command line: parses arguments, loads the config, and hands
//! over to the library. Exit codes: 0 success, 1 runtime error, 2 usage or
//! config error.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hookd::cli::admin_client::{AdminClient, DEFAULT_ADMIN_URL};
use hookd::cli::operator::{self, EndpointFilters, ListFilters};
use hookd::config::{self, DEFAULT_CONFIG_PATH, Settings};

/// jemalloc for every allocation (see Cargo.toml): with glibc's malloc,
/// RocksDB's and hyper's many small allocations across threads cost more
/// CPU and leave more memory fragmented.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Exit 0 when the sidecar's /readyz answers 200 (for container probes;
    /// with --live, /healthz: the process answers, ready or not).
    Healthcheck {
        /// Ask /healthz instead of /readyz (for liveness probes: a full disk
        /// makes hookd unready, and a restart would not help).
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the X-Webhook-Signature of the body read on stdin.
    Sign {
        /// The environment variable holding the endpoint's secret.
        #[arg(long)]
        secret_env: String,
    },
    /// A small local subscriber: prints each webhook and whether its
    /// signature verifies (answers 200, or 401 when it does not).
    Receive {
        /// Where to listen, like 127.0.0.1:9000.
        #[arg(long)]
        listen: SocketAddr,
        /// The environment variable holding the endpoint's secret.
        #[arg(long)]
        secret_env: String,
    },
    /// Deliveries of a running sidecar (token from HOOKD_ADMIN_TOKEN).
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Endpoints of a running sidecar (token from HOOKD_ADMIN_TOKEN).
    #[command(subcommand)]
    Endpoints(EndpointsCommand),
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// Newest first, with filters.
    List {
        /// pending, succeeded, failed or paused.
        #[arg(long)]
        status: Option<String>,
        /// An endpoint id.
        #[arg(long)]
        endpoint: Option<String>,
        /// An event type, like payment.completed.
        #[arg(long)]
        event: Option<String>,
        /// A tenant id; "" for events without a tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// The deliveries of this event id (one per endpoint it went to).
        #[arg(long)]
        event_id: Option<String>,
        /// 1 to 1000 (default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Where the previous page stopped.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// One delivery with its payload and attempts.
    Show {
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Retry a failed delivery now: one extra attempt.
    Retry {
        id: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum EndpointsCommand {
    /// The endpoints with their health, sorted by id, a page at a time.
    List {
        /// A tenant id; "*" for the endpoints of every tenant, "" for those
        /// without a tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only endpoints whose id contains this.
        #[arg(long)]
        search: Option<String>,
        /// 1 to 1000 (default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Where the previous page stopped.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// The last hour of one endpoint as a text chart: attempts a minute, by
    /// result, and latency.
    Stats {
        id: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Args)]
struct AdminArgs {
    /// The sidecar's admin API.
    #[arg(long = "admin", env = "HOOKD_ADMIN_URL", default_value = DEFAULT_ADMIN_URL)]
    url: String,
}

#[derive(Args)]
struct Output {
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    admin: AdminArgs,
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
        Command::Healthcheck { live, admin } => run_async(async move {
            let probe = if live {
                operator::Probe::Live
            } else {
                operator::Probe::Ready
            };
            let healthy = operator::healthy(&admin_client(&admin), probe).await?;
            anyhow::ensure!(healthy, "not {}", probe.as_str());
            Ok(String::new())
        }),
        Command::Sign { secret_env } => finish(
            hookd::cli::secret_from_env(&secret_env)
                .and_then(|secret| hookd::cli::sign_stdin(&secret))
                .map(|signature| format!("{signature}\n")),
        ),
        Command::Receive { listen, secret_env } => run_async(async move {
            let secret = hookd::cli::secret_from_env(&secret_env)?;
            hookd::cli::receive::receive(listen, &secret).await?;
            Ok(String::new())
        }),
        Command::Deliveries(command) => run_async(async move {
            match command {
                DeliveriesCommand::List {
                    status,
                    endpoint,
                    event,
                    tenant,
                    event_id,
                    limit,
                    cursor,
                    output,
                } => {
                    let filters = ListFilters {
                        status,
                        endpoint,
                        event,
                        tenant,
                        event_id,
                        limit,
                        cursor,
                    };
                    operator::deliveries_list(&admin_client(&output.admin), &filters, output.json).await
                }
                DeliveriesCommand::Show { id, output } => {
                    operator::deliveries_show(&admin_client(&output.admin), &id, output.json).await
                }
                DeliveriesCommand::Retry { id, output } => {
                    operator::deliveries_retry(&admin_client(&output.admin), &id, output.json).await
                }
            }
        }),
        Command::Endpoints(EndpointsCommand::List {
            tenant,
            search,
            limit,
            cursor,
            output,
        }) => run_async(async move {
            let filters = EndpointFilters {
                tenant,
                search,
                limit,
                cursor,
            };
            operator::endpoints_list(&admin_client(&output.admin), &filters, output.json).await
        }),
        Command::Endpoints(EndpointsCommand::Stats { id, output }) => {
            run_async(
                async move { hookd::cli::stats::endpoint_stats(&admin_client(&output.admin), &id, output.json).await },
            )
        }
    }
}

fn admin_client(admin: &AdminArgs) -> AdminClient {
    AdminClient::new(
        &admin.url,
        std::env::var("HOOKD_ADMIN_TOKEN")
            .ok()
            .filter(|token| !token.is_empty()),
    )
}

/// Runs a client command on a small runtime and prints what it returns.
fn run_async(command: impl Future<Output = anyhow::Result<String>>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => finish(runtime.block_on(command)),
        Err(error) => finish(Err(error.into())),
    }
}

/// Prints the output, or the error on stderr with exit code 1.
fn finish(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hookd: {error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Loads the config, or prints every problem and gives the exit code.
fn load(args: &ConfigArgs) -> Result<Settings, ExitCode> {
    config::load(&args.config).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Threads for the store's reads off the async runtime (the workers' reads
/// of their queues, the admin API's, the sweeper). Each read is short; more
/// threads would only cost memory when thousands of workers read at once,
/// as they all do at start.
const BLOCKING_THREADS: usize = 16;

fn serve(settings: Settings) -> ExitCode {
    let telemetry = match hookd::telemetry::init(&settings.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("hookd: {error:#}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookd: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(serve_until_signalled(settings));
    telemetry.shutdown();
    match result {
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
