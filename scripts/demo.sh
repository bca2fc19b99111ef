#!/usr/bin/env bash
# Starts the gateway on http://127.0.0.1:8080 against the local libvirtd, with the demo guests booted
# (the same tiny TCG guests the end-to-end tests use). As root on Debian 12. Ctrl-C stops the gateway;
# `bash scripts/provision-guests.sh --down` removes the guests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require-node.sh

npm ci --no-audit --no-fund
bash scripts/provision-guests.sh
npm run --silent build
echo "qga-gateway: try  curl -s localhost:${PORT:-8080}/domains  and  curl -s localhost:${PORT:-8080}/domains/guest1/network-interfaces" >&2
# Development mode from config/demo.yaml (no tokens, loopback only) unless another config is given.
[ "$#" -gt 0 ] || set -- --config config/demo.yaml
# On Node 24, as in the image: the machine's Node (20) is past its end of life and below package.json's engines.
exec "$(bash scripts/node.sh 24)/node" dist/server.js "$@"
