# Sourced by the set-up scripts: Node.js 20 or newer with npm must be on PATH (Debian 12's own nodejs is 18).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null; then
  echo "qga-gateway needs Node.js >= 20 with npm on PATH (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
