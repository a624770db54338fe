#!/usr/bin/env bash
# End to end on a throw-away kind cluster (the .gitlab-ci.yml job e2e-kind, nightly or by
# hand; also runs on a workstation with Docker): build the image, apply overlays/dev, smoke
# test through the gateway, then a canary from publish to verdict.
#   bash deploy/ci/e2e-kind.sh            (needs docker, curl, node; fetches kind and kubectl)
set -euo pipefail
cd "$(dirname "$0")/../.."

KIND_VERSION=${KIND_VERSION:-v0.25.0}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.32.4}
PROM_OPERATOR_VERSION=${PROM_OPERATOR_VERSION:-v0.78.2}
CLUSTER=${CLUSTER:-segserve-e2e}
NS=segserve
MODEL=facade-ads
BIN=$(mktemp -d)
export PATH="$BIN:$PATH"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
  rm -rf "$BIN"
}
trap cleanup EXIT

echo "--- tools"
curl -fsSL -o "$BIN/kind" "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-linux-amd64"
curl -fsSL -o "$BIN/kubectl" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl"
chmod +x "$BIN/kind" "$BIN/kubectl"

echo "--- cluster"
# With a remote Docker daemon (GitLab's docker:dind service) the API server must listen on
# the daemon's address and carry it in its certificate.
DOCKER_ADDR=$(echo "${DOCKER_HOST:-}" | sed -nE 's#^tcp://([^:]+):.*#\1#p')
LISTEN=127.0.0.1
[ -n "$DOCKER_ADDR" ] && LISTEN=0.0.0.0
cat > "$BIN/kind.yaml" <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: "$LISTEN"
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      certSANs: ["localhost", "127.0.0.1", "${DOCKER_ADDR:-localhost}"]
KIND
kind create cluster --name "$CLUSTER" --config "$BIN/kind.yaml" --wait 180s
if [ -n "$DOCKER_ADDR" ]; then
  kubectl config set-cluster "kind-$CLUSTER" --server="https://$DOCKER_ADDR:$(kubectl config view -o jsonpath='{.clusters[0].cluster.server}' | sed -E 's#.*:([0-9]+)$#\1#')"
fi

echo "--- image"
docker build -f deploy/docker/Dockerfile -t segserve:dev .
kind load docker-image segserve:dev --name "$CLUSTER"

echo "--- Prometheus Operator CRDs (PodMonitor, ServiceMonitor, PrometheusRule)"
kubectl apply --server-side -f "https://github.com/prometheus-operator/prometheus-operator/releases/download/$PROM_OPERATOR_VERSION/stripped-down-crds.yaml"
kubectl wait --for condition=Established --timeout=60s crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com crd/servicemonitors.monitoring.coreos.com

echo "--- segserve (overlays/dev)"
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
npx tsc -b
# A signing key for this run only: its public half goes to the promoter.
npx segserve keys generate --out "$BIN/seed" >/dev/null
SEED=$(cat "$BIN/seed")
PUBLIC=$(npx segserve keys public --seed-file "$BIN/seed")
kubectl apply -k deploy/k8s/overlays/dev
kubectl -n "$NS" create configmap segserve-signers --from-literal=signers="$PUBLIC" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" rollout status statefulset/nats --timeout=300s
kubectl -n "$NS" rollout restart deployment/promoter
kubectl -n "$NS" rollout status deployment/promoter --timeout=300s

kubectl -n "$NS" port-forward svc/nats 14222:4222 >/dev/null 2>&1 & pids+=($!)
kubectl -n "$NS" port-forward svc/gateway 18080:8080 >/dev/null 2>&1 & pids+=($!)
sleep 3
PUBLISHER_URL="nats://publisher:devpublisher00000000000000@127.0.0.1:14222"
OBSERVER_URL="nats://observer:devobserver000000000000000@127.0.0.1:14222"

echo "--- first version: publish the bundled default model and wait for the promoter"
default_version=$(node -e 'console.log(require("fs").readdirSync("models/facade-ads").filter(d=>/^\d+$/.test(d)).sort((a,b)=>a-b)[0])')
SEGSERVE_NATS_URL=$PUBLISHER_URL SEGSERVE_SIGNING_SEED=$SEED npx segserve publish --model "models/$MODEL/$default_version"
SEGSERVE_NATS_URL=$OBSERVER_URL timeout 1200 npx segserve rollout watch "$MODEL" --until-done
kubectl -n "$NS" rollout status "deployment/inference-$MODEL-stable" --timeout=600s

echo "--- smoke: one image through the gateway"
curl -fsS -o "$BIN/mask.png" -H "Authorization: Bearer dev-api-key-0000000000000000" \
  -F "image=@models/$MODEL/golden/images/facade-001.jpg" "http://127.0.0.1:18080/v1/models/$MODEL/segment"
head -c 8 "$BIN/mask.png" | od -An -tx1 | grep -q "89 50 4e 47" || { echo "the gateway did not answer a PNG mask"; exit 1; }

echo "--- canary end to end: the next version, with traffic, to a verdict"
next=$(node -e 'const v=require("fs").readdirSync("models/facade-ads").filter(d=>/^\d+$/.test(d)).sort((a,b)=>a-b);console.log(v[1] ?? "")')
if [ -n "$next" ]; then
  SEGSERVE_NATS_URL=$PUBLISHER_URL SEGSERVE_SIGNING_SEED=$SEED npx segserve publish --model "models/$MODEL/$next"
  ( for _ in $(seq 1 600); do
      curl -fsS -o /dev/null -H "Authorization: Bearer dev-api-key-0000000000000000" \
        -F "image=@models/$MODEL/golden/images/facade-002.jpg" "http://127.0.0.1:18080/v1/models/$MODEL/segment" || true
      sleep 1
    done ) & pids+=($!)
  # A rollback is a valid verdict for a worse candidate; the job checks that one is reached.
  SEGSERVE_NATS_URL=$OBSERVER_URL timeout 1800 npx segserve rollout watch "$MODEL" --until-done || true
  SEGSERVE_NATS_URL=$OBSERVER_URL npx segserve rollout status "$MODEL" --json | tee "$BIN/status.json"
  node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));if(!["Succeeded","Failed"].includes(s.phase)){console.error("no verdict: "+s.phase);process.exit(1)}' "$BIN/status.json"
fi
echo "e2e-kind: OK"
