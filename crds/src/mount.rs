//! Writes a directory the way kubelet lays out a mounted ConfigMap or Secret volume: the
//! files live in a hidden timestamped directory, `..data` links to it, and each visible
//! name links into `..data`. A new version is written beside the old one and `..data` is
//! swapped with one rename, so a reader sees the old set or the new set, never a mix.
//! `render --out-dir` uses it, and gateway tests use it to simulate a kubelet update.
//! The config file is `gateway.json`, or `gateway.json.gz` when it is too large for a
//! plain ConfigMap; [`read_config_text`] reads either, so the gateway needs no flag.

use std::{
    collections::BTreeMap,
    fs, io,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::config::CONFIG_FILE;

/// Name of the link that points at the current version.
pub const DATA_LINK: &str = "..data";

/// Replaces the contents of `dir` with `files` (name → bytes), atomically for readers that
/// go through `..data` or the per-file links. Files get `mode` (e.g. `0o644`, `0o600`).
pub fn write_atomic(dir: &Path, files: &BTreeMap<String, Vec<u8>>, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for name in files.keys() {
        if name.is_empty() || name.starts_with("..") || name.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid file name {name:?}"),
            ));
        }
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let version = format!("..{stamp}_{}", std::process::id());
    let version_dir = dir.join(&version);
    fs::create_dir(&version_dir)?;
    for (name, bytes) in files {
        let path = version_dir.join(name);
        fs::write(&path, bytes)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }

    let previous = fs::read_link(dir.join(DATA_LINK)).ok();
    let tmp_link = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp_link);
    symlink(&version, &tmp_link)?;
    fs::rename(&tmp_link, dir.join(DATA_LINK))?;

    for name in files.keys() {
        let link = dir.join(name);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA_LINK).join(name), &link)?;
        }
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !files.contains_key(&name) {
            fs::remove_file(entry.path())?;
        }
    }
    if let Some(old) = previous
        && old != Path::new(&version)
    {
        fs::remove_dir_all(dir.join(old))?;
    }
    Ok(())
}

/// Reads every visible file of a mounted directory (following the links).
pub fn read_dir_files(dir: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || !entry.path().is_file() {
            continue;
        }
        files.insert(name, fs::read(entry.path())?);
    }
    Ok(files)
}

/// The gzip-compressed config file, written to the ConfigMap's `binaryData` instead of
/// [`CONFIG_FILE`] when the plain text would not fit in a ConfigMap.
pub const CONFIG_FILE_GZ: &str = "gateway.json.gz";

/// The most config text a reader accepts after decompression: a bound on what a corrupt or
/// hostile `gateway.json.gz` can make the gateway allocate (10,000 routes are about 11 MB).
pub const MAX_CONFIG_TEXT: usize = 64 * 1024 * 1024;

/// Gzip of a config text, deterministic (no file name, no timestamp) so the same config
/// gives the same ConfigMap bytes and no needless write.
pub fn gzip_config(text: &str) -> io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes())?;
    encoder.finish()
}

/// Reads the config text from a mounted config directory: `gateway.json.gz` if it is there,
/// else `gateway.json`. A file left dangling by kubelet's `..data` swap reads as absent, so
/// a switch between the two forms never yields a mix. Refuses text over [`MAX_CONFIG_TEXT`].
pub fn read_config_text(dir: &Path) -> io::Result<String> {
    use std::io::Read;
    let packed = dir.join(CONFIG_FILE_GZ);
    let text = match fs::File::open(&packed) {
        Ok(file) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(file)
                .take(MAX_CONFIG_TEXT as u64 + 1)
                .read_to_string(&mut text)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", packed.display())))?;
            text
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let plain = dir.join(CONFIG_FILE);
            fs::read_to_string(&plain)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", plain.display())))?
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", packed.display()),
            ));
        }
    };
    if text.len() > MAX_CONFIG_TEXT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the config text is over the limit of {MAX_CONFIG_TEXT} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn swaps_versions_like_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), &files(&[("a", "1"), ("b", "2")]), 0o644).unwrap();
        assert_eq!(
            read_dir_files(dir.path()).unwrap(),
            files(&[("a", "1"), ("b", "2")])
        );
        assert!(
            fs::symlink_metadata(dir.path().join("a"))
                .unwrap()
                .file_type()
                .is_symlink()
        );

        write_atomic(dir.path(), &files(&[("a", "3")]), 0o600).unwrap();
        assert_eq!(read_dir_files(dir.path()).unwrap(), files(&[("a", "3")]));
        let hidden: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_LINK)
            .collect();
        assert_eq!(
            hidden.len(),
            1,
            "the old version directory is removed: {hidden:?}"
        );
        let mode = fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn refuses_names_that_escape() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), &files(&[("../x", "1")]), 0o644).is_err());
        assert!(write_atomic(dir.path(), &files(&[("..data", "1")]), 0o644).is_err());
    }

    #[test]
    fn reads_the_compressed_config_and_survives_a_switch_between_forms() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"version\":1}\n".repeat(1000);
        let packed = gzip_config(&text).unwrap();
        assert!(
            packed.len() < text.len() / 10,
            "gzip pays off on repetitive JSON"
        );
        assert_eq!(gzip_config(&text).unwrap(), packed, "deterministic bytes");

        let plain = BTreeMap::from([(CONFIG_FILE.to_owned(), b"plain".to_vec())]);
        write_atomic(dir.path(), &plain, 0o644).unwrap();
        assert_eq!(read_config_text(dir.path()).unwrap(), "plain");

        let gz = BTreeMap::from([(CONFIG_FILE_GZ.to_owned(), packed)]);
        write_atomic(dir.path(), &gz, 0o644).unwrap();
        assert_eq!(read_config_text(dir.path()).unwrap(), text);

        // Back to plain: kubelet would leave `gateway.json.gz` dangling for a moment.
        write_atomic(dir.path(), &plain, 0o644).unwrap();
        symlink(
            Path::new(DATA_LINK).join(CONFIG_FILE_GZ),
            dir.path().join(CONFIG_FILE_GZ),
        )
        .unwrap();
        assert_eq!(read_config_text(dir.path()).unwrap(), "plain");
    }

    #[test]
    fn refuses_a_corrupt_or_oversized_compressed_config() {
        let dir = tempfile::tempdir().unwrap();
        let bad = BTreeMap::from([(CONFIG_FILE_GZ.to_owned(), b"not gzip".to_vec())]);
        write_atomic(dir.path(), &bad, 0o644).unwrap();
        let e = read_config_text(dir.path()).unwrap_err();
        assert!(e.to_string().contains(CONFIG_FILE_GZ), "{e}");

        let bomb = gzip_config(&" ".repeat(MAX_CONFIG_TEXT + 1)).unwrap();
        assert!(bomb.len() < 1024 * 1024);
        let bomb = BTreeMap::from([(CONFIG_FILE_GZ.to_owned(), bomb)]);
        write_atomic(dir.path(), &bomb, 0o644).unwrap();
        let e = read_config_text(dir.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
