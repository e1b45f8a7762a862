//! `tollgate-gateway`: the data plane.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use tollgate_gateway::{
    config::ConfigSource,
    resilience::health::HealthSettings,
    server::{self, ConnectionLimits, Options},
};

/// mimalloc: the request path allocates many small, short-lived objects, which glibc's
/// allocator served at about a sixth of the gateway's CPU (profiled under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tollgate-gateway",
    version,
    about = "OpenAI-compatible LLM gateway"
)]
struct Cli {
    /// Log format: `json` (one object per line) or `text`.
    #[arg(
        long,
        global = true,
        default_value = "json",
        env = "TOLLGATE_LOG_FORMAT"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible API.
    Serve(ServeArgs),
    /// Run the mock upstream: a TEST DOUBLE speaking the OpenAI, Anthropic and Gemini wire
    /// formats over HTTP, with knobs for latency, errors and cut streams.
    MockUpstream(tollgate_gateway::mock_upstream::MockUpstreamArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Directory with `config/` and `secrets/` laid out like the mounted ConfigMap and
    /// Secret (what `tollgate-operator render --out-dir` writes). Watched and hot-reloaded.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    config_dir: Option<PathBuf>,
    /// Manifest files or directories, compiled in-process (Secrets in them provide keys).
    /// Watched and hot-reloaded.
    #[arg(short = 'f', long = "filename", num_args = 1.., value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Address of the OpenAI-compatible API.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of /metrics, /healthz, /readyz and /config/status.
    #[arg(long, default_value = "0.0.0.0:9090")]
    admin_listen: SocketAddr,
    /// Longest wait for in-flight requests and streams at shutdown, in seconds.
    #[arg(long, default_value_t = 30)]
    drain_timeout_seconds: u64,
    /// Largest request body accepted, in MiB (images travel inline as base64).
    #[arg(long, default_value_t = 32)]
    max_body_mib: usize,
    /// Longest time from the first byte of a request head to its end, in seconds
    /// (a client sending headers slowly is disconnected).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_seconds: u64,
    /// Longest time to receive a request body once its head arrived, in seconds (408 after).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    body_read_timeout_seconds: u64,
    /// Close a keep-alive connection with no request for this long, in seconds. Keep it above
    /// the idle timeout of any load balancer in front, so that the balancer closes first.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_seconds: u64,
    /// Most connections served at once per listener; further clients wait in the backlog.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Eject a backend (provider, key, model) after this many consecutive failures.
    #[arg(long, default_value_t = 5)]
    eject_after_failures: u32,
    /// First ejection cooldown in milliseconds; it doubles on each repeated ejection.
    #[arg(long, default_value_t = 5_000)]
    eject_cooldown_ms: u64,
    /// Longest ejection cooldown in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    eject_max_cooldown_ms: u64,
    /// Redis shared by every replica for budget counters, rate limits and key quotas (`redis://[user:pass@]host:port/db`);
    /// without it, counters live in this process. Prefer the environment variable: the URL
    /// may carry a password.
    #[arg(long, env = "TOLLGATE_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Longest wait for one Redis operation, connecting included, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    redis_timeout_ms: u64,
    /// Prefix of every Redis key, so several gateways can share one Redis.
    #[arg(long, default_value = "tollgate:")]
    redis_prefix: String,
    /// What a request gets when Redis does not answer (within --redis-timeout-ms): `open`
    /// serves it without checking rate limits, budgets and shared key quotas; `closed`
    /// refuses it with 503 until Redis answers again.
    #[arg(
        long,
        value_enum,
        default_value = "open",
        env = "TOLLGATE_STATE_FAILURE"
    )]
    state_failure: tollgate_gateway::state::FailMode,
    /// Where one JSON usage record per request goes: `off`, `stdout`, or a file path.
    #[arg(long, default_value = "off")]
    usage_log: tollgate_gateway::usage::UsageSink,
    /// Where cached answers live: `auto` (Redis when `--redis-url` is given, so replicas
    /// share them; else in process), `memory`, or `redis`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "memory", "redis"])]
    cache_store: String,
    /// Most MiB of answers the in-process cache holds (least recently used go first).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    cache_max_mib: u64,
    /// Most MiB of prompt vectors the semantic cache's index holds (per replica).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    cache_semantic_max_mib: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::MockUpstream(args) => runtime.block_on(tollgate_gateway::mock_upstream::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> std::io::Result<()> {
    let source = match args.config_dir {
        Some(dir) => ConfigSource::Dir(dir),
        None => ConfigSource::Manifests(args.files),
    };
    let cache = tollgate_gateway::cache::CacheOptions {
        store: match (args.cache_store.as_str(), &args.redis_url) {
            ("redis", None) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "--cache-store redis needs --redis-url (or TOLLGATE_REDIS_URL)",
                ));
            }
            ("memory", _) | ("auto", None) => tollgate_gateway::cache::CacheStore::Memory,
            _ => tollgate_gateway::cache::CacheStore::Shared,
        },
        max_bytes: args.cache_max_mib << 20,
        semantic_max_bytes: args.cache_semantic_max_mib << 20,
    };
    let running = server::start(Options {
        cache,
        listen: args.listen,
        admin_listen: args.admin_listen,
        source,
        drain_timeout: Duration::from_secs(args.drain_timeout_seconds),
        max_body: args.max_body_mib * 1024 * 1024,
        recheck: Duration::from_secs(10),
        limits: ConnectionLimits {
            header_read: Duration::from_secs(args.header_read_timeout_seconds),
            body_read: Duration::from_secs(args.body_read_timeout_seconds),
            idle: Duration::from_secs(args.idle_timeout_seconds),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        },
        pays: tollgate_gateway::server::PaysOptions {
            state: match args.redis_url {
                Some(url) => tollgate_gateway::state::StateSettings::Redis {
                    url,
                    timeout: Duration::from_millis(args.redis_timeout_ms),
                    prefix: args.redis_prefix,
                },
                None => tollgate_gateway::state::StateSettings::Memory,
            },
            clock: tollgate_gateway::budget::WallClock::System,
            usage: args.usage_log,
            on_state_failure: args.state_failure,
        },
        health: HealthSettings {
            failure_threshold: args.eject_after_failures.max(1),
            base_cooldown: Duration::from_millis(args.eject_cooldown_ms),
            max_cooldown: Duration::from_millis(
                args.eject_max_cooldown_ms.max(args.eject_cooldown_ms),
            ),
        },
    })
    .await?;
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}
