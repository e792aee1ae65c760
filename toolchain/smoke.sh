#!/usr/bin/env bash
# Smoke test of the built toolchain: versions, plugin ls, then a throwaway
# control plane on loopback (etcd + kube-apiserver + kube-controller-manager
# + kwok), a fake node and a Deployment whose pod must become Running/Ready,
# then (with the project's .venv, or SMOKE_PYTHON) a Pulumi inline program.
# Everything runs under a temp dir and is stopped (by PID) on exit.
# Usage: toolchain/smoke.sh [--keep]   (--keep: leave the temp dir for inspection)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$(python3 "$HERE/build.py" --env)"
BIN="$(python3 "$HERE/build.py" --print-bin)"
python3 "$HERE/build.py" --check || { echo "smoke: toolchain not built (make toolchain)" >&2; exit 1; }

echo "== versions"
pulumi version
kubectl version --client
kube-apiserver --version
kube-controller-manager --version
etcd --version | head -1
kwok --version 2>/dev/null || true
pulumi plugin ls

T="$(mktemp -d /tmp/meshca-smoke.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${1:-}" = keep ] || rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); PEER_PORT=$(free_port); API_PORT=$(free_port); KCM_PORT=$(free_port); KWOK_PORT=$(free_port)

echo "== etcd on 127.0.0.1:$ETCD_PORT"
etcd --name smoke --data-dir "$T/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "smoke=http://127.0.0.1:$PEER_PORT" --listen-metrics-urls "" \
  --log-level warn >"$T/etcd.log" 2>&1 &
PIDS+=($!)

# credentials: a service-account signing key and a static admin token
openssl genrsa -out "$T/sa.key" 2048 2>/dev/null
openssl rsa -in "$T/sa.key" -pubout -out "$T/sa.pub" 2>/dev/null
TOKEN="$(python3 -c 'import secrets;print(secrets.token_hex(16))')"
echo "$TOKEN,admin,admin,system:masters" >"$T/tokens.csv"

echo "== kube-apiserver on https://127.0.0.1:$API_PORT"
kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --cert-dir "$T/pki" \
  --token-auth-file "$T/tokens.csv" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$T/sa.pub" \
  --service-account-signing-key-file "$T/sa.key" \
  --service-cluster-ip-range 10.96.0.0/24 \
  --endpoint-reconciler-type none \
  >"$T/apiserver.log" 2>&1 &
PIDS+=($!)

cat >"$T/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: smoke
  context: {cluster: smoke, user: admin}
current-context: smoke
EOF
export KUBECONFIG="$T/kubeconfig"

t0=$(date +%s)
until kubectl get --raw /readyz >/dev/null 2>&1; do
  if [ $(( $(date +%s) - t0 )) -gt 90 ]; then echo "smoke: apiserver not ready in 90s" >&2; tail -30 "$T/apiserver.log" >&2; exit 1; fi
  sleep 1
done
echo "apiserver ready after $(( $(date +%s) - t0 ))s"
kubectl version
kubectl get --raw /version

echo "== kube-controller-manager"
kube-controller-manager --kubeconfig "$T/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
  --service-account-private-key-file "$T/sa.key" \
  --use-service-account-credentials=false \
  --controllers '*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route' \
  --leader-elect=false \
  >"$T/kcm.log" 2>&1 &
PIDS+=($!)

if command -v kwok >/dev/null; then
  echo "== kwok"
  kwok --kubeconfig "$T/kubeconfig" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --manage-nodes-with-label-selector= \
    --disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom \
    --disregard-status-with-label-selector= \
    --server-address "127.0.0.1:$KWOK_PORT" \
    >"$T/kwok.log" 2>&1 &
  PIDS+=($!)
  kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
EOF
  # no kube-scheduler: the pod is bound by nodeName
  kubectl create namespace smoke
  kubectl -n smoke apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: kwok-node-0
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers: [{name: web, image: example.invalid/web:1}]
EOF
  kubectl wait --for=condition=Ready node/kwok-node-0 --timeout=60s
  kubectl -n smoke rollout status deploy/web --timeout=90s
  kubectl -n smoke get pods -o wide
fi
SMOKE_PYTHON="${SMOKE_PYTHON:-$HERE/../.venv/bin/python}"
if [ -x "$SMOKE_PYTHON" ] && "$SMOKE_PYTHON" -c 'import pulumi_kubernetes' 2>/dev/null; then
  echo "== pulumi inline program (Automation API) through pulumi-resource-kubernetes"
  timeout 300 "$SMOKE_PYTHON" "$HERE/smoke_pulumi.py"
else
  echo "== (no Python with pulumi_kubernetes at $SMOKE_PYTHON: Pulumi program check skipped)"
fi
echo "smoke: OK"
[ "${1:-}" = --keep ] && { trap - EXIT; cleanup keep; echo "left $T"; }
exit 0
