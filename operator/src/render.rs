//! The gateway's ConfigMap and Secret, built from a [`Compiled`] config. The offline
//! `render` command and the controller both build them here, so they are byte-identical.

use std::{collections::BTreeMap, path::Path};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use tollgate_crds::{
    compile::Compiled,
    config::{CONFIG_FILE, ConfigError, hash_text},
    mount::{CONFIG_FILE_GZ, MAX_CONFIG_TEXT, gzip_config},
};

/// A ConfigMap's (or Secret's) `data` may hold at most 1 MiB in total; we keep headroom for
/// metadata.
pub const CONFIG_MAP_DATA_LIMIT: usize = 1024 * 1024 - 16 * 1024;

/// The annotation carrying the SHA-256 of the config, which gateway pods report back.
pub const HASH_ANNOTATION: &str = "llm.tollgate.dev/config-hash";

/// Where the gateway's objects live and what they are called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayObjects {
    /// The gateway's namespace.
    pub namespace: String,
    /// The ConfigMap holding `gateway.json`.
    pub config_map: String,
    /// The Secret holding the provider keys.
    pub secret: String,
}

impl Default for GatewayObjects {
    fn default() -> Self {
        Self {
            namespace: "tollgate-system".into(),
            config_map: "tollgate-gateway-config".into(),
            secret: "tollgate-gateway-keys".into(),
        }
    }
}

/// Why the objects cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The config could not be serialized.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config is larger than a ConfigMap may hold, even compressed.
    #[error(
        "the compiled config is {size} bytes ({packed} gzip-compressed), over the ConfigMap limit of {limit} bytes; split routes across gateways or remove unused providers"
    )]
    TooLarge {
        /// Its size as text.
        size: usize,
        /// Its compressed size (0 when the text is over [`MAX_CONFIG_TEXT`] and was not compressed).
        packed: usize,
        /// The limit.
        limit: usize,
    },
    /// The config could not be compressed.
    #[error("cannot compress the config: {0}")]
    Compress(#[source] std::io::Error),
    /// The provider keys are larger than a Secret may hold.
    #[error(
        "the gateway Secret would hold {size} bytes of keys, over the Secret limit of {limit} bytes; remove unused credentials"
    )]
    SecretTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Writing `--out-dir` failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// What was being written.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The config text and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigText {
    /// The deterministic JSON.
    pub text: String,
    /// Its SHA-256, hex.
    pub hash: String,
    /// The gzip of `text`, written instead of it when the text would not fit in a
    /// ConfigMap (about 1,000 routes plain, about 20,000 compressed).
    pub packed: Option<Vec<u8>>,
}

impl ConfigText {
    /// The file written to the ConfigMap and its bytes: `gateway.json`, or
    /// `gateway.json.gz` when the text is compressed.
    pub fn file(&self) -> (&'static str, &[u8]) {
        match &self.packed {
            Some(packed) => (CONFIG_FILE_GZ, packed),
            None => (CONFIG_FILE, self.text.as_bytes()),
        }
    }
}

/// Serializes the config, compressing it when the plain text would not fit in a ConfigMap,
/// and refusing one that does not fit even so.
pub fn config_text(compiled: &Compiled) -> Result<ConfigText, RenderError> {
    let text = compiled.config.to_json()?;
    let hash = hash_text(&text);
    if text.len() <= CONFIG_MAP_DATA_LIMIT {
        return Ok(ConfigText {
            text,
            hash,
            packed: None,
        });
    }
    let too_large = |packed| RenderError::TooLarge {
        size: text.len(),
        packed,
        limit: CONFIG_MAP_DATA_LIMIT,
    };
    if text.len() > MAX_CONFIG_TEXT {
        return Err(too_large(0));
    }
    let packed = gzip_config(&text).map_err(RenderError::Compress)?;
    if packed.len() > CONFIG_MAP_DATA_LIMIT {
        return Err(too_large(packed.len()));
    }
    Ok(ConfigText {
        text,
        hash,
        packed: Some(packed),
    })
}

/// Refuses Secret data that would not fit in a Secret (the same 1 MiB limit as a ConfigMap).
pub fn check_secret_size(data: &BTreeMap<String, Vec<u8>>) -> Result<(), RenderError> {
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > CONFIG_MAP_DATA_LIMIT {
        return Err(RenderError::SecretTooLarge {
            size,
            limit: CONFIG_MAP_DATA_LIMIT,
        });
    }
    Ok(())
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "tollgate".to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "gateway-config".to_owned(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "tollgate-operator".to_owned(),
        ),
    ])
}

/// The ConfigMap holding the config: `data.gateway.json`, or `binaryData.gateway.json.gz`
/// when compressed (the gateway reads either).
pub fn config_map(config: &ConfigText, names: &GatewayObjects) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(names.config_map.clone()),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels()),
            annotations: Some(BTreeMap::from([(
                HASH_ANNOTATION.to_owned(),
                config.hash.clone(),
            )])),
            ..ObjectMeta::default()
        },
        data: config
            .packed
            .is_none()
            .then(|| BTreeMap::from([(CONFIG_FILE.to_owned(), config.text.clone())])),
        binary_data: config.packed.as_ref().map(|packed| {
            BTreeMap::from([(CONFIG_FILE_GZ.to_owned(), ByteString(packed.clone()))])
        }),
        ..ConfigMap::default()
    }
}

/// The Secret holding exactly the provider keys the config names.
pub fn secret(data: &BTreeMap<String, Vec<u8>>, names: &GatewayObjects) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(names.secret.clone()),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Writes `out_dir/config` and `out_dir/secrets` laid out like the gateway's mounted
/// ConfigMap and Secret volumes (kubelet's `..data` layout); the gateway reads this with
/// `serve --config-dir out_dir`.
#[cfg(unix)]
pub fn write_out_dir(
    out_dir: &Path,
    config: &ConfigText,
    secret_data: &BTreeMap<String, Vec<u8>>,
) -> Result<(), RenderError> {
    use tollgate_crds::mount::write_atomic;
    let write = |dir: &Path, files: &BTreeMap<String, Vec<u8>>, mode| {
        write_atomic(dir, files, mode).map_err(|source| RenderError::Write {
            path: dir.display().to_string(),
            source,
        })
    };
    let (file, bytes) = config.file();
    let config_files = BTreeMap::from([(file.to_owned(), bytes.to_vec())]);
    write(&out_dir.join("config"), &config_files, 0o644)?;
    write(&out_dir.join("secrets"), secret_data, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_crds::config::{GatewayConfig, hash_text};

    fn compiled_with_sources(n: usize) -> Compiled {
        let mut config = GatewayConfig::empty();
        config.sources = (0..n)
            .map(|i| tollgate_crds::config::Source {
                kind: "LLMRoute".into(),
                id: format!("team-{}/route-with-a-long-name-{i}", i % 50),
                generation: 1,
            })
            .collect();
        Compiled {
            config,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_config_over_the_plain_limit_is_written_compressed_and_reads_back() {
        let small = config_text(&compiled_with_sources(10)).unwrap();
        assert!(small.packed.is_none(), "small configs stay readable");
        let cm = config_map(&small, &GatewayObjects::default());
        assert!(cm.data.unwrap().contains_key(CONFIG_FILE) && cm.binary_data.is_none());

        let big = config_text(&compiled_with_sources(40_000)).unwrap();
        assert!(big.text.len() > CONFIG_MAP_DATA_LIMIT, "{}", big.text.len());
        let cm = config_map(&big, &GatewayObjects::default());
        assert!(cm.data.is_none());
        let packed = &cm.binary_data.unwrap()[CONFIG_FILE_GZ];
        assert!(packed.0.len() <= CONFIG_MAP_DATA_LIMIT);

        let dir = tempfile::tempdir().unwrap();
        write_out_dir(dir.path(), &big, &BTreeMap::new()).unwrap();
        let read = tollgate_crds::mount::read_config_text(&dir.path().join("config")).unwrap();
        assert_eq!(read, big.text);
        assert_eq!(
            hash_text(&read),
            big.hash,
            "the hash is of the text, either way"
        );
    }

    #[test]
    fn secret_data_over_the_limit_is_refused_with_its_size() {
        let mut data = BTreeMap::from([("ns__s__k".to_owned(), vec![b'x'; 1000])]);
        assert!(check_secret_size(&data).is_ok());
        data.insert("ns__s__big".to_owned(), vec![b'x'; CONFIG_MAP_DATA_LIMIT]);
        let e = check_secret_size(&data).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "the gateway Secret would hold 1033210 bytes of keys, over the Secret limit of 1032192 bytes; remove unused credentials"
            )
        );
    }
}
