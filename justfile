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

# Benchmarks: the gateway's own overhead per request, guardrail scanning of 10 MB inputs (MB/s),
# and the compile function at cluster scale.
bench:
    cargo bench -p tollgate-gateway
    cargo bench -p tollgate-crds

# Measurements at cluster scale (operator + real gateway against the in-memory API): times,
# config bytes, API writes of cold start, blast radius and a silent pod, reload under load.
scale routes="1000":
    TOLLGATE_SCALE_ROUTES={{routes}} cargo test -p tollgate-operator --lib measure_at_scale -- --ignored --nocapture

# Tests against the cluster in your kubeconfig (skip without one; TOLLGATE_E2E_REQUIRE_CLUSTER=1
# fails instead), then the whole install on kind: images, chart, samples, chat, key rotation,
# route change without restart, uninstall (e2e/kind.sh; SKIPPED without docker and kind).
e2e:
    cargo test -p tollgate-e2e -- --ignored --nocapture
    e2e/kind.sh

# Only the kind install suite.
e2e-kind:
    e2e/kind.sh

# Both images (needs docker with network access for the rust:alpine build stage).
images tag="dev":
    docker build --target operator -t tollgate-operator:{{tag}} .
    docker build --target gateway -t tollgate-gateway:{{tag}} .

# Load the images into a kind cluster; install with
# `helm install tollgate charts/tollgate -n tollgate-system --create-namespace --set image.registry= --set image.operator.tag=dev --set image.gateway.tag=dev`.
kind-load tag="dev" cluster="kind":
    kind load docker-image --name {{cluster}} tollgate-operator:{{tag}} tollgate-gateway:{{tag}}

# Scratch images from locally built static binaries with buildah, run with podman (no base
# image needed); SKIPPED without buildah/podman.
image-smoke:
    e2e/image-smoke.sh

# Copy crds/*.yaml into the chart and re-render config/default from it (run after `just crds`).
chart-sync:
    .ci/k8s_tools.sh .venv/bin
    PATH="$PWD/.venv/bin:$PATH" charts/sync.sh

# The installability checks CI runs: chart lint/template/schemas, kustomize, hadolint, Argo CD Lua.
install-checks:
    .ci/install_checks.sh
