# Everyday commands. `just --list` shows them.

# Until the gateway serves, "run" validates and renders the quickstart sample (no API key needed).
run:
    cargo run -q -p tollgate-operator -- render -f config/samples/quickstart.yaml

# Every test that needs no cluster (the e2e suite skips itself without one).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate crds/*.yaml from the Rust types.
crds:
    cargo run -q -p tollgate-crds --bin crdgen

# Benchmarks: so far the compile function at cluster scale (the gateway's joins it later).
bench:
    cargo bench -p tollgate-crds

# Tests against a real cluster (kind); set TOLLGATE_E2E_REQUIRE_CLUSTER=1 to fail instead of skip.
e2e:
    cargo test -p tollgate-e2e -- --nocapture
