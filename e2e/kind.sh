#!/usr/bin/env bash
# The install end to end on kind (`just e2e-kind`): build the images, create a kind cluster
# (e2e/kind.yaml), load the images, `helm install` the chart, apply the quickstart and an
# OpenAI-style provider backed by an in-cluster upstream double (the gateway's
# `mock-upstream`), wait for Ready, call the Service from a pod, rotate the provider key,
# change a route and see it served without a gateway pod restart, then uninstall and check
# that nothing of the gateway is left.
#
# Without docker and kind on PATH it prints "SKIPPED" and exits 0 without claiming a pass.
# TOLLGATE_E2E_KEEP=1 keeps the cluster afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker kind helm kubectl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIPPED e2e-kind: '$tool' is not on PATH (needs docker, kind, helm, kubectl). 0 passed, 1 skipped."
        exit 0
    fi
done
if ! docker info >/dev/null 2>&1; then
    echo "SKIPPED e2e-kind: no docker engine is reachable. 0 passed, 1 skipped."
    exit 0
fi

cluster=tollgate-e2e
tag="${TOLLGATE_IMAGE_TAG:-e2e}"
ns=tollgate-system
kubectl() { command kubectl --context "kind-$cluster" "$@"; }
helm() { command helm --kube-context "kind-$cluster" "$@"; }
step() { printf '\n==> %s\n' "$*"; }
cleanup() {
    if [[ "${TOLLGATE_E2E_KEEP:-}" != 1 ]]; then
        kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

step "images"
docker build --target operator -t "tollgate-operator:$tag" .
docker build --target gateway -t "tollgate-gateway:$tag" .

step "kind cluster"
kind get clusters | grep -qx "$cluster" || kind create cluster --config e2e/kind.yaml --wait 120s
kind load docker-image --name "$cluster" "tollgate-operator:$tag" "tollgate-gateway:$tag"

step "helm install"
helm install tollgate charts/tollgate -n "$ns" --create-namespace --wait --timeout 5m \
    --set image.registry= --set image.operator.tag="$tag" --set image.gateway.tag="$tag" \
    --set image.pullPolicy=Never
kubectl -n "$ns" rollout status deployment/tollgate-operator --timeout=3m
for _ in $(seq 60); do
    kubectl -n "$ns" get deployment tollgate-gateway >/dev/null 2>&1 && break
    sleep 2
done
kubectl -n "$ns" rollout status deployment/tollgate-gateway --timeout=3m

step "samples and an in-cluster upstream double"
kubectl apply -f config/samples/quickstart.yaml
kubectl apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: upstream, namespace: default}
spec:
  selector: {matchLabels: {app: upstream}}
  template:
    metadata: {labels: {app: upstream}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: upstream
          image: tollgate-gateway:$tag
          imagePullPolicy: Never
          args: [mock-upstream, --listen, "0.0.0.0:9999", --reply, "hello from the double"]
          ports: [{containerPort: 9999}]
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: upstream, namespace: default}
spec:
  selector: {app: upstream}
  ports: [{port: 80, targetPort: 9999}]
---
apiVersion: v1
kind: Secret
metadata: {name: upstream-key, namespace: default}
stringData: {api-key: first-key}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: upstream, namespace: default}
spec:
  type: openai-compatible
  baseURL: http://upstream.default.svc/v1
  auth: {secretRefs: [{name: upstream-key, key: api-key}]}
  models: [{name: double-chat}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: double, namespace: default}
spec:
  model: double
  backends: [{providerRef: {name: upstream}, model: double-chat}]
YAML
kubectl -n default rollout status deployment/upstream --timeout=2m
kubectl -n default wait --for=condition=Ready --timeout=2m llmroute/demo llmroute/double llmprovider/mock llmprovider/upstream

chat() {
    kubectl -n default run "curl-$RANDOM" --rm -i --restart=Never --quiet \
        --image=curlimages/curl:8.11.1 -- \
        curl -sf "http://tollgate-gateway.$ns.svc/v1/chat/completions" \
        -H 'content-type: application/json' \
        -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
pods() { kubectl -n "$ns" get pods -l app.kubernetes.io/component=gateway -o jsonpath='{range .items[*]}{.metadata.name}:{.status.containerStatuses[0].restartCount} {end}'; }

step "a chat request through the Service"
chat demo | grep -q '"choices"'
chat double | grep -q 'hello from the double'
before="$(pods)"

step "rotate the provider key"
kubectl -n default create secret generic upstream-key --from-literal=api-key=second-key \
    --dry-run=client -o yaml | kubectl apply -f -
for _ in $(seq 60); do
    kubectl -n "$ns" get secret tollgate-gateway-keys -o json | grep -q "$(printf second-key | base64)" && break
    sleep 2
done
kubectl -n "$ns" get secret tollgate-gateway-keys -o json | grep -q "$(printf second-key | base64)"
chat double | grep -q 'hello from the double'

step "change a route: served without a pod restart"
kubectl -n default patch llmroute double --type=merge -p '{"spec":{"aliases":["renamed"]}}'
for _ in $(seq 60); do
    chat renamed 2>/dev/null | grep -q 'hello from the double' && break
    sleep 2
done
chat renamed | grep -q 'hello from the double'
after="$(pods)"
if [[ "$before" != "$after" ]]; then
    echo "gateway pods changed: before [$before] after [$after]" >&2
    exit 1
fi

step "uninstall"
kubectl delete -f config/samples/quickstart.yaml
helm uninstall tollgate -n "$ns" --wait
for _ in $(seq 60); do
    [[ -z "$(kubectl -n "$ns" get deployment,service,pdb -l app.kubernetes.io/managed-by=tollgate-operator -o name)" ]] && break
    sleep 2
done
left="$(kubectl -n "$ns" get deployment,service,pdb -l app.kubernetes.io/managed-by=tollgate-operator -o name)"
if [[ -n "$left" ]]; then
    echo "left behind after uninstall: $left" >&2
    exit 1
fi
echo "e2e-kind: 1 passed"
