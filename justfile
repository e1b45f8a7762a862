# Everyday commands. `just --list` shows them.

# The gateway on the quickstart sample (mock provider: no API key needed), hot-reloaded.
run:
    cargo run -q -p tollgate-gateway -- serve -f config/samples/quickstart.yaml --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:9090 --log-format text

# The operator against the cluster in your kubeconfig (after `kubectl apply --server-side -f crds/`
# and `kubectl apply -k config/rbac/`); one replica, human-readable logs.
operator:
    cargo run -q -p tollgate-operator -- run --leader-elect=false --log-format text --metrics-addr 127.0.0.1:8081

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

# Benchmarks: the gateway's own overhead per request, and the compile function at cluster scale.
bench:
    cargo bench -p tollgate-gateway
    cargo bench -p tollgate-crds

# Measurements at cluster scale (operator + real gateway against the in-memory API): times,
# config bytes, API writes of cold start, blast radius and a silent pod, reload under load.
scale routes="1000":
    TOLLGATE_SCALE_ROUTES={{routes}} cargo test -p tollgate-operator --lib measure_at_scale -- --ignored --nocapture

# Tests against a real cluster (kind); set TOLLGATE_E2E_REQUIRE_CLUSTER=1 to fail instead of skip.
e2e:
    cargo test -p tollgate-e2e -- --nocapture
