//! Where the config comes from: a directory laid out like the mounted ConfigMap and Secret
//! (`DIR/config/gateway.json`, `DIR/secrets/<key>`), or manifests compiled in-process.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tollgate_crds::{
    catalog::PriceCatalogue,
    config::{CONFIG_FILE, GatewayConfig},
    manifests::Manifests,
    mount::read_dir_files,
};

/// A config source.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// `--config-dir DIR`.
    Dir(PathBuf),
    /// `-f PATH…`.
    Manifests(Vec<PathBuf>),
}

/// A digest of a config source's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentHash([u8; 32]);

/// A config and the Secret's files, read but not yet resolved.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: GatewayConfig,
    /// Gateway-Secret key → value.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Problems that left parts of the manifests out (`-f` only); logged, not fatal.
    pub warnings: Vec<String>,
}

impl ConfigSource {
    /// Reads and checks the config. An error means: keep serving the previous one.
    pub fn load(&self) -> Result<Loaded, String> {
        match self {
            ConfigSource::Dir(dir) => load_dir(dir),
            ConfigSource::Manifests(paths) => load_manifests(paths),
        }
    }

    /// A digest of every byte [`ConfigSource::load`] would read (and of which files could
    /// not be read), so a re-check can tell that nothing changed without compiling.
    pub fn content_hash(&self) -> ContentHash {
        let mut digest = Sha256::new();
        let mut add = |path: &Path, content: std::io::Result<Vec<u8>>| {
            let path = path.as_os_str().as_encoded_bytes();
            digest.update((path.len() as u64).to_le_bytes());
            digest.update(path);
            match content {
                Ok(bytes) => {
                    digest.update((bytes.len() as u64).to_le_bytes());
                    digest.update(&bytes);
                }
                Err(e) => digest.update(format!("unreadable: {}", e.kind()).as_bytes()),
            }
        };
        match self {
            ConfigSource::Dir(dir) => {
                let config = dir.join("config").join(CONFIG_FILE);
                add(&config, std::fs::read(&config));
                let secrets_dir = dir.join("secrets");
                match read_dir_files(&secrets_dir) {
                    Ok(files) => {
                        for (name, bytes) in files {
                            add(Path::new(&name), Ok(bytes));
                        }
                    }
                    Err(e) => add(&secrets_dir, Err(e)),
                }
            }
            ConfigSource::Manifests(paths) => {
                for file in Manifests::files(paths) {
                    let content = std::fs::read(&file);
                    add(&file, content);
                }
            }
        }
        ContentHash(digest.finalize().into())
    }

    /// The paths to watch for changes.
    pub fn watch_paths(&self) -> Vec<PathBuf> {
        match self {
            ConfigSource::Dir(dir) => vec![dir.clone()],
            ConfigSource::Manifests(paths) => paths.clone(),
        }
    }
}

fn load_dir(dir: &Path) -> Result<Loaded, String> {
    let path = dir.join("config").join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config = GatewayConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let secrets_dir = dir.join("secrets");
    let secrets = if secrets_dir.exists() {
        read_dir_files(&secrets_dir)
            .map_err(|e| format!("cannot read {}: {e}", secrets_dir.display()))?
    } else {
        BTreeMap::new()
    };
    Ok(Loaded {
        config,
        secrets,
        warnings: Vec::new(),
    })
}

fn load_manifests(paths: &[PathBuf]) -> Result<Loaded, String> {
    let (manifests, errors) = Manifests::load(paths);
    if !errors.is_empty() {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("manifests cannot be read: {}", messages.join("; ")));
    }
    let catalogue = PriceCatalogue::builtin().map_err(|e| e.to_string())?;
    let compiled = manifests.compile(catalogue).map_err(|e| e.to_string())?;
    let secrets = manifests.gateway_secret_data(&compiled.config);
    Ok(Loaded {
        warnings: compiled.problems.iter().map(ToString::to_string).collect(),
        config: compiled.config,
        secrets,
    })
}
