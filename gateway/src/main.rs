//! `tollgate-gateway`: the data plane. The command line is the contract the chart, docs and
//! tests rely on; serving itself is not built yet, so `serve` loads and checks its
//! configuration exactly as it will at start-up, reports what it found, and refuses to start.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tollgate_crds::{
    catalog::PriceCatalogue,
    config::{CONFIG_FILE, GatewayConfig},
    manifests::Manifests,
};

#[derive(Parser)]
#[command(
    name = "tollgate-gateway",
    version,
    about = "OpenAI-compatible LLM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible API.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Directory with `config/` and `secrets/` laid out like the mounted ConfigMap and
    /// Secret (what `tollgate-operator render --out-dir` writes).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    config_dir: Option<PathBuf>,
    /// Manifest files or directories, compiled in-process (Secrets in them provide keys).
    #[arg(short = 'f', long = "filename", num_args = 1.., value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Address of the OpenAI-compatible API.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of /metrics, /healthz, /readyz and /config/status.
    #[arg(long, default_value = "0.0.0.0:9090")]
    admin_listen: SocketAddr,
}

fn main() -> ExitCode {
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    let config = match &args.config_dir {
        Some(dir) => load_dir(dir),
        None => load_manifests(&args.files),
    };
    match config {
        Ok(config) => {
            eprintln!(
                "tollgate-gateway: configuration is valid ({} providers, {} routes, hash {}).",
                config.providers.len(),
                config.routes.len(),
                config.hash().unwrap_or_default()
            );
            eprintln!(
                "tollgate-gateway: serving on {} (admin {}) is not built yet; see the gateway data-plane issue. Use `tollgate-operator render` to check manifests meanwhile.",
                args.listen, args.admin_listen
            );
            ExitCode::from(2)
        }
        Err(message) => {
            eprintln!("tollgate-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and checks `DIR/config/gateway.json`, and that `DIR/secrets` holds every key it names.
fn load_dir(dir: &std::path::Path) -> Result<GatewayConfig, String> {
    let path = dir.join("config").join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config = GatewayConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let missing: Vec<&str> = config
        .providers
        .iter()
        .flat_map(|p| &p.credentials)
        .flat_map(|c| c.secret_keys())
        .filter(|k| !dir.join("secrets").join(k).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}/secrets lacks key(s) the config names: {}",
            dir.display(),
            missing.join(", ")
        ));
    }
    Ok(config)
}

/// Compiles manifests in-process, as `render` does.
fn load_manifests(files: &[PathBuf]) -> Result<GatewayConfig, String> {
    let (manifests, errors) = Manifests::load(files);
    let catalogue = PriceCatalogue::builtin().map_err(|e| e.to_string())?;
    let compiled = manifests.compile(catalogue).map_err(|e| e.to_string())?;
    let mut messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.extend(compiled.problems.iter().map(ToString::to_string));
    if messages.is_empty() {
        Ok(compiled.config)
    } else {
        Err(format!(
            "the manifests have problems:\n  {}",
            messages.join("\n  ")
        ))
    }
}
