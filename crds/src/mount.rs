//! Writes a directory the way kubelet lays out a mounted ConfigMap or Secret volume: the
//! files live in a hidden timestamped directory, `..data` links to it, and each visible
//! name links into `..data`. A new version is written beside the old one and `..data` is
//! swapped with one rename, so a reader sees the old set or the new set, never a mix.
//! `render --out-dir` uses it, and gateway tests use it to simulate a kubelet update.

use std::{
    collections::BTreeMap,
    fs, io,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

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
}
