//! Every YAML example in `docs/` is a manifest the API accepts: it loads as the Rust types
//! (no unknown fields) and passes the CRD's schema and CEL rules. References to objects
//! the example does not define may stay unresolved; invalid specs may not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use std::path::{Path, PathBuf};

use tollgate_crds::{catalog::PriceCatalogue, compile::Reason, manifests::Manifests};

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_docs_example_is_a_valid_manifest() {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for (i, block) in yaml_blocks(&std::fs::read_to_string(&path).unwrap())
            .into_iter()
            .enumerate()
        {
            let mut m = Manifests::default();
            let mut errors = Vec::new();
            m.add_text(
                Path::new(&format!("{}#{i}", path.display())),
                &block,
                &mut errors,
            );
            assert!(
                errors.is_empty(),
                "{}: example {i}: {errors:?}",
                path.display()
            );
            let compiled = m.compile(PriceCatalogue::builtin().unwrap()).unwrap();
            let invalid: Vec<String> = compiled
                .problems
                .iter()
                .filter(|p| p.reason == Reason::Invalid)
                .map(ToString::to_string)
                .collect();
            assert!(
                invalid.is_empty(),
                "{}: example {i}:\n{}",
                path.display(),
                invalid.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "found only {checked} examples");
}
