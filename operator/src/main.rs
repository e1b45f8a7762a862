//! `tollgate-operator`: the controllers (`run`) and the offline `render` command.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use clap::{Parser, Subcommand};
use k8s_openapi::ByteString;
use tollgate_crds::{catalog::PriceCatalogue, manifests::Manifests};
use tollgate_operator::{
    health::{self, Health},
    leader::LeaseSettings,
    logging,
    metrics::Metrics,
    render::{self, GatewayObjects},
    run::RunOptions,
    settings::{RunArgs, SecretPolicy, Settings},
};

#[derive(Parser)]
#[command(
    name = "tollgate-operator",
    version,
    about = "Reconciles Tollgate's custom resources into the gateway's ConfigMap and Secret"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster in the kubeconfig or the pod's service
    /// account: watch the CRs, write the gateway's ConfigMap and Secret, and their status.
    Run(RunArgs),
    /// Compile manifests offline and print the gateway's ConfigMap and Secret (or write
    /// them as mounted-volume directories with --out-dir). Problems go to stderr; exit 1.
    Render(RenderArgs),
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Manifest files or directories (their .yaml/.yml/.json files). Secrets in them
    /// provide the provider keys.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Write DIR/config and DIR/secrets laid out like the gateway's mounted volumes
    /// instead of printing YAML.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Namespace of the gateway's ConfigMap and Secret.
    #[arg(long, default_value = "tollgate-system")]
    gateway_namespace: String,
    /// Name of the gateway's ConfigMap.
    #[arg(long, default_value = "tollgate-gateway-config")]
    config_map_name: String,
    /// Name of the gateway's Secret.
    #[arg(long, default_value = "tollgate-gateway-keys")]
    secret_name: String,
    /// Print the Secret's real values. By default they are blanked, so CI logs never
    /// show provider keys; --out-dir always writes real values (mode 0600).
    #[arg(long)]
    show_secret_values: bool,
    /// Mirror the operator's `--secret-namespaces`: credentials of providers in other
    /// namespaces are left out and reported `RefNotPermitted`, as in the cluster. List the
    /// operator's namespace too. Default `*`: any namespace.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    secret_namespaces: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Render(args) => render_command(&args),
        Command::Run(args) => run_command(&args),
    }
}

fn run_command(args: &RunArgs) -> ExitCode {
    if let Err(e) = logging::init(&args.log_level, args.log_format) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "bad flag");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// Serves health, then runs the operator (see [`tollgate_operator::run`]) until SIGTERM
/// or SIGINT.
async fn run(args: &RunArgs, settings: Settings) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    health::serve(args.metrics_addr, health.clone(), metrics.clone())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_addr))?;
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    let client = tollgate_operator::api_client::rate_limited(builder, settings.limits.qps);
    let identity = args
        .identity
        .clone()
        .filter(|i| !i.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "tollgate-operator".to_owned());
    let lease = args.leader_elect.then(|| LeaseSettings {
        name: args.lease_name.clone(),
        namespace: settings.operator_namespace.clone(),
        identity: identity.clone(),
        duration: Duration::from_secs(args.lease_duration_seconds),
    });
    let options = RunOptions {
        settings,
        lease,
        identity,
    };
    tollgate_operator::run::run(client, options, health, metrics, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn render_command(args: &RenderArgs) -> ExitCode {
    let (manifests, load_errors) = Manifests::load(&args.files);
    for e in &load_errors {
        eprintln!("error: {e}");
    }
    for warning in &manifests.warnings {
        eprintln!("warning: {warning}");
    }
    for skipped in &manifests.skipped {
        eprintln!("note: ignored {skipped} (not a Tollgate object or Secret)");
    }
    let catalogue = match PriceCatalogue::builtin() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match SecretPolicy::from_names(&args.secret_namespaces) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut secrets = manifests.secret_index();
    for p in &manifests.providers {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        if !policy.permits(ns) {
            secrets.forbid_namespace(ns);
        }
    }
    let (keys, keyed_namespaces, key_problems) = manifests.client_keys();
    let inputs = tollgate_crds::compile::Inputs {
        providers: &manifests.providers,
        routes: &manifests.routes,
        budgets: &manifests.budgets,
        secrets: &secrets,
        catalogue,
    };
    // The same fitting as the operator's: the newest objects are left out of a config too
    // large for its ConfigMap, each reported as a problem.
    let fitted = match tollgate_operator::fit::compile_to_fit(&inputs, |compiled| {
        compiled.config.client_keys = keys.clone();
        compiled.config.keyed_namespaces = keyed_namespaces.clone();
    }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let compiled = fitted.compiled;
    for p in &compiled.problems {
        eprintln!("problem: {p}");
    }
    for p in &key_problems {
        eprintln!("problem: Secret {}: {}: {}", p.secret, p.field, p.message);
    }
    let config = match fitted.text {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secret_data = manifests.gateway_secret_data(&compiled.config);
    if let Err(e) = render::check_secret_size(&secret_data) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let names = GatewayObjects {
        namespace: args.gateway_namespace.clone(),
        config_map: args.config_map_name.clone(),
        secret: args.secret_name.clone(),
    };
    if let Some(dir) = &args.out_dir {
        if let Err(e) = render::write_out_dir(dir, &config, &secret_data) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!(
            "wrote {}/config and {}/secrets (config hash {})",
            dir.display(),
            dir.display(),
            config.hash
        );
    } else {
        let mut secret = render::secret(&secret_data, &names);
        if !args.show_secret_values {
            for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
                *value = ByteString(Vec::new());
            }
        }
        let docs = (
            serde_saphyr::to_string(&render::config_map(&config, &names)),
            serde_saphyr::to_string(&secret),
        );
        match docs {
            (Ok(cm), Ok(secret)) => {
                let note = if args.show_secret_values {
                    ""
                } else {
                    "# values blanked; use --show-secret-values or --out-dir for real ones\n"
                };
                print!("---\n{cm}---\n{note}{secret}");
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: cannot print YAML: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if load_errors.is_empty()
        && compiled.problems.is_empty()
        && key_problems.is_empty()
        && manifests.warnings.is_empty()
    {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "render: {} load error(s), {} problem(s), {} warning(s)",
            load_errors.len(),
            compiled.problems.len() + key_problems.len(),
            manifests.warnings.len()
        );
        ExitCode::FAILURE
    }
}
