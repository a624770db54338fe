#!/usr/bin/env bash
# One set-up for everyone: the README, `npm start`, `npm test` and CI (.ci/run) all call this.
# Idempotent and quick when everything is already there.
#   bash scripts/setup.sh              Debian packages the tests need, npm packages, build
#   bash scripts/setup.sh --node-only  npm packages and build only (what `npm start` needs)
set -euo pipefail
cd "$(dirname "$0")/.."

node_only=0
[ "${1:-}" = "--node-only" ] && node_only=1

# Debian packages: real nats-server (JetStream), prometheus + promtool, chromium for the upload
# page test, the PyTorch stack for experiments/ and the Flask peer benchmark, and the fonts the
# facade generator draws lettering with (the golden sets re-render byte-identically only with them).
DEBIAN_PACKAGES=(nats-server prometheus chromium python3-torch python3-torchvision python3-onnx python3-flask python3-yaml python3-pil python3-numpy fonts-dejavu-core fonts-liberation)

if [ "$node_only" = 0 ]; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages: ${missing[*]}" >&2
      echo "setup: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# onnxruntime-node's postinstall would download GPU binaries; the CPU ones ship in the package.
export ONNXRUNTIME_NODE_INSTALL=skip
stamp=node_modules/.segserve-install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# Build the TypeScript packages (incremental: a no-op when nothing changed).
npx tsc -b
chmod +x packages/cli/dist/bin.js
