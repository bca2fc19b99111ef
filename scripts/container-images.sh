#!/usr/bin/env bash
# Makes the local base images the Dockerfile needs, since no container registry is reachable here:
#   localhost/qga-debian:bookworm        a Debian bookworm root file system (debootstrap --variant=minbase),
#                                        cached as a tarball and brought in with `podman import`
#   localhost/node:24-bookworm-slim      a stand-in for Docker Hub's node:24-bookworm-slim built FROM it, carrying
#                                        the Node 24 and npm of scripts/node.sh laid out as the official image
#                                        does (/usr/local/bin/node, /usr/local/lib/node_modules/npm, user node
#                                        1000, docker-entrypoint.sh)
# `podman build --pull=never` then resolves the Dockerfile's short name node:24-bookworm-slim to the local image.
#
#   bash scripts/container-images.sh                 as root: install podman, runc, debootstrap if missing, make both images
#   bash scripts/container-images.sh --podman-flags     print podman's global flags for this machine, one a line
#   bash scripts/container-images.sh --container-flags  the flags `podman build` and `podman run` need here
#
# Idempotent: each image carries a label with the hash of its inputs and is rebuilt only when they change.
# The apt mirror comes from the host's own apt configuration and is written nowhere in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

# Global flags rather than a containers.conf, so nothing on the host changes behind anyone's back:
# - runc: crun 1.8 (Debian 12) fails on this machine's cgroup v1 layout;
# - cgroupfs: there is no systemd to ask for cgroups; events to a file: there is no journald either;
# - overlay works natively on this ext4 root (Native Overlay Diff: true), so no vfs copying of every layer.
PODMAN_FLAGS=(--runtime runc --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
# Per-container flags for `podman build` and `podman run`: the host's rlimit defaults do not fit what runc may
# set inside this sandbox, and the host network leaves the host's firewall alone (no CNI bridge, no NAT rules).
CONTAINER_FLAGS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --network host)
case "${1:-}" in
  --podman-flags) printf '%s\n' "${PODMAN_FLAGS[@]}"; exit 0 ;;
  --container-flags) printf '%s\n' "${CONTAINER_FLAGS[@]}"; exit 0 ;;
  '') ;;
  *) echo "usage: $0 [--podman-flags | --container-flags]" >&2; exit 2 ;;
esac

SUITE=bookworm
BASE_IMAGE=localhost/qga-debian:$SUITE
NODE_IMAGE=localhost/node:24-bookworm-slim
CACHE=/var/cache/qga-gateway/container
LABEL=org.qga-gateway.inputs

log() { echo "container-images: $*" >&2; }
[[ $(id -u) == 0 ]] || { log "run as root (podman storage, debootstrap)"; exit 1; }

# ---- packages ---------------------------------------------------------------------------------------------
missing=()
type -P podman >/dev/null || missing+=(podman)
type -P runc >/dev/null || missing+=(runc)
type -P debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  # Without recommends: no slirp4netns, fuse-overlayfs or buildah (root, host network, native overlay); naming
  # runc satisfies podman's crun|runc dependency, so the crun that fails here is not installed either.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null
fi

podman() { command podman "${PODMAN_FLAGS[@]}" "$@"; }
image_label() { podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

# ---- the apt mirror -----------------------------------------------------------------------------------------
# The first enabled source that serves the Debian suite itself (not -security, -updates), from the one-line
# format (sources.list, *.list) or deb822 (*.sources); apt reads no other file names, so neither do we.
apt_mirror() {
  local f files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do [[ -f $f ]] && files+=("$f"); done
  local uri
  for f in "${files[@]}"; do
    if [[ $f == *.sources ]]; then
      # Stanzas are separated by blank lines; a stanza counts when it is Types: deb, names the suite and is enabled.
      uri=$(awk -v suite="$SUITE" '
        function flush() {
          if (uris != "" && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && tolower(enabled) != "no") { split(uris, u, " "); print u[1]; found = 1; exit }
          uris = types = suites = enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        { key = tolower($1); sub(/^[^:]*:[ \t]*/, ""); if (key == "uris:") uris = $0; else if (key == "types:") types = $0; else if (key == "suites:") suites = $0; else if (key == "enabled:") enabled = $0 }
        END { if (!found) flush() }' "$f")
    else
      # deb [option=value ...] URI SUITE COMPONENT...
      uri=$(awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f")
    fi
    if [[ -n $uri ]]; then echo "$uri"; return 0; fi
  done
  return 0
}

# ---- the Debian root file system ------------------------------------------------------------------------------
mkdir -p "$CACHE"
ROOTFS_TAR=$CACHE/debian-$SUITE-minbase.tar
if [[ ! -s $ROOTFS_TAR ]]; then
  mirror=$(apt_mirror)
  [[ -n $mirror ]] || { log "no apt source for Debian $SUITE in /etc/apt (sources.list, sources.list.d)"; exit 1; }
  log "debootstrap --variant=minbase $SUITE from the host's apt mirror (about a minute)"
  work=$(mktemp -d "$CACHE/.rootfs-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  # As debian:*-slim does: no package downloads, lists, docs, man pages or locales in the image.
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
    "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/* \
    "$work"/rootfs/usr/share/locale/* "$work"/rootfs/var/log/*.log "$work"/rootfs/var/log/apt/*
  tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$ROOTFS_TAR"  # atomic: the cache holds a whole tarball or none
  rm -rf "$work"
  trap - EXIT
fi

base_inputs=$(sha256sum "$ROOTFS_TAR" | cut -c1-64)
if [[ $(image_label "$BASE_IMAGE") != "$base_inputs" ]]; then
  log "importing $BASE_IMAGE"
  podman import -q --change "LABEL $LABEL=$base_inputs" --change 'CMD ["bash"]' "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
else
  log "$BASE_IMAGE is up to date"
fi

# ---- the node:24-bookworm-slim stand-in -----------------------------------------------------------------------
node_bin=$(bash scripts/node.sh 24)
node_tree=$(dirname "$node_bin")
node_version=$("$node_bin/node" --version)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# What the official image's entrypoint does: a first argument that is an option or not a command goes to node.
cat >"$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
# The host's node and npm may trust extra CAs (NODE_EXTRA_CA_CERTS, npm's cafile): here the registry is reached
# through a proxy that re-signs TLS. `npm ci` in the Dockerfile's build stage needs the same trust, and where such
# a proxy sits the base image an operator pulls carries it too; so the stand-in gets the host's bundle, and
# nothing when the host has none.
ca_lines=
ca_file=${NODE_EXTRA_CA_CERTS:-}
[[ -n $ca_file ]] || ca_file=$(npm config get cafile 2>/dev/null || true)
if [[ -n $ca_file && $ca_file != null && $ca_file != undefined && -s $ca_file ]]; then
  cp "$ca_file" "$ctx/extra-ca-certs.pem"
  ca_lines=$'COPY extra-ca-certs.pem /usr/local/share/qga-gateway/extra-ca-certs.pem\nENV NODE_EXTRA_CA_CERTS=/usr/local/share/qga-gateway/extra-ca-certs.pem'
fi
cat >"$ctx/Containerfile" <<EOF
FROM $BASE_IMAGE
ENV NODE_VERSION=${node_version#v}
$ca_lines
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node/bin/ /usr/local/bin/
COPY node/lib/ /usr/local/lib/
COPY node/LICENSE /usr/local/share/doc/node/LICENSE
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh && node --version && npm --version
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
EOF
node_inputs=$( (echo "$base_inputs"; echo "$node_tree"; cat "$ctx"/Containerfile "$ctx"/docker-entrypoint.sh "$ctx"/*.pem 2>/dev/null) | sha256sum | cut -c1-64)
if [[ $(image_label "$NODE_IMAGE") != "$node_inputs" ]]; then
  log "building $NODE_IMAGE with Node $node_version"
  cp -a "$node_tree" "$ctx/node"
  podman build --pull=never "${CONTAINER_FLAGS[@]}" --label "$LABEL=$node_inputs" \
    -t "$NODE_IMAGE" -f "$ctx/Containerfile" "$ctx" >"$ctx/build.log" 2>&1 || {
    tail -20 "$ctx/build.log" >&2
    exit 1
  }
else
  log "$NODE_IMAGE is up to date"
fi
echo "$NODE_IMAGE"
