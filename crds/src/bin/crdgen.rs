//! Writes the generated CRD YAML into a directory (default: `crds/` beside this crate).
//! `crdgen --check` exits 1 when the committed files differ from what the types generate.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: crdgen [--check] [DIR]\nWrites llmproviders.yaml, llmroutes.yaml and llmbudgets.yaml into DIR (default: the crds/ folder)."
                );
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    let mut stale = Vec::new();
    for (file, crd) in tollgate_crds::crdgen::crds() {
        let yaml = match tollgate_crds::crdgen::to_yaml(&crd) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("crdgen: cannot serialize {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let path = dir.join(file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == yaml {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "crdgen: out of date (run `just crds`): {}",
            stale.join(", ")
        );
        ExitCode::FAILURE
    }
}
