#!/usr/bin/env bash
# Provisions the libvirt test guests the qga-gateway e2e tests talk to.
#
#   scripts/provision-guests.sh          install, start libvirt, build the guest image,
#                                        define/start the guests of test/e2e/guests.json
#                                        and wait until their agents answer
#   scripts/provision-guests.sh --down   destroy and undefine those guests
#
# Run as root on Debian 12 (no systemd needed). Idempotent: a second run only checks
# (about half a second). Guests are TCG (<domain type='qemu'>): a KVM guest hung at boot on
# these machines. Log lines go to stderr; the final one-line summary to stdout.
# A guest with "dataDisk": true in guests.json (guest-power) also gets a 16 MiB ext4 disk,
# made once in /var/lib/qga-gateway/disks/ and mounted at /data in the guest: a file
# system that guest-fsfreeze-freeze really freezes (the initramfs root cannot be frozen).
# Env: QGA_GUESTS_TIMEOUT (seconds to wait for the guests, default 120).
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPTS/.." && pwd)
GUEST_SRC=$SCRIPTS/guest
GUESTS_JSON=$REPO/test/e2e/guests.json
CACHE=/var/cache/qga-gateway
LOG_DIR=/var/log/qga-gateway
URI=qemu:///system
PY=/usr/bin/python3            # Debian's, with python3-libvirt; not a pyenv shim from PATH
TIMEOUT=${QGA_GUESTS_TIMEOUT:-120}
PACKAGES=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-guest-agent
          busybox-static python3-libvirt cpio procps xz-utils e2fsprogs)

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
QGA_PROVISION_T0_US=$(now_us); export QGA_PROVISION_T0_US   # guests.py logs relative to it too
log() { printf '[provision-guests +%3ss] %s\n' "$((($(now_us) - QGA_PROVISION_T0_US) / 1000000))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Always the system daemon, whatever LIBVIRT_DEFAULT_URI says.
virsh_() { virsh -q -c "$URI" "$@"; }
guests() { "$PY" "$GUEST_SRC/guests.py" "$@"; }

# --- 1. packages ---------------------------------------------------------------------
ensure_packages() {
    local p missing=() installed
    installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "${PACKAGES[@]}" 2>/dev/null || true)"
    for p in "${PACKAGES[@]}"; do
        [[ $installed == *" installed:$p "* ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# --- 2. daemons (no systemd here: start them ourselves) -------------------------------
# A live process of that exact name; zombies do not count (a daemon killed under a
# container init that does not reap would otherwise look alive).
alive() {
    local pid
    for pid in $(pgrep -x "$1"); do
        [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) == [^Z] ]] && return 0
    done
    return 1
}

ensure_daemons() {
    mkdir -p "$LOG_DIR"
    # 9>&-: the daemons must not inherit our lock (they outlive us and would hold it).
    if ! alive virtlogd; then   # writes the guests' console logs
        log "starting virtlogd"
        virtlogd -d 9>&-
    fi
    if ! alive libvirtd; then
        log "starting libvirtd (log: $LOG_DIR/libvirtd.log)"
        LIBVIRT_LOG_OUTPUTS="3:file:$LOG_DIR/libvirtd.log" libvirtd -d 9>&-
    fi
    # The socket appears before the daemon serves; a real call proves it is up.
    local i
    for ((i = 0; i < 150; i++)); do
        if [[ -S /run/libvirt/libvirt-sock ]] && virsh_ list >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "libvirtd does not answer on /run/libvirt/libvirt-sock (see $LOG_DIR/libvirtd.log)"
}

# --- 3. guest image (built once, cached by content) -----------------------------------
ensure_image() {
    local kpkg kver deb key tmp stamp resolved=$CACHE/kernel/resolved
    mkdir -p -m 755 "$CACHE" "$CACHE/kernel" "$CACHE/guest"
    # The kernel the linux-image-amd64 metapackage points at ("Depends: linux-image-X (= V)").
    # apt-cache takes a second here (no pkgcache.bin): remember the answer until the
    # apt lists change.
    stamp=$(stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null | sha256sum | cut -c1-16)
    if [[ -s $resolved && $(cut -d' ' -f1 "$resolved") == "$stamp" ]]; then
        read -r _ kpkg kver < "$resolved"
    else
        if ! apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; then
            log "apt lists do not know linux-image-amd64 (cleaned image?): apt-get update"
            apt-get update -q >&2
            stamp=$(stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null | sha256sum | cut -c1-16)
        fi
        read -r kpkg kver < <(apt-cache show --no-all-versions linux-image-amd64 |
            sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p') || true
        [[ -n ${kpkg:-} && -n ${kver:-} ]] || die "cannot find the kernel package linux-image-amd64 depends on"
        echo "$stamp $kpkg $kver" > "$resolved"
    fi

    # The .deb is cached on its own so that a change of scripts/guest/ does not download again.
    deb=$CACHE/kernel/${kpkg}_${kver}.deb
    if [[ ! -s $deb ]]; then
        log "downloading $kpkg $kver (not installed, only unpacked into the image)"
        tmp=$(mktemp -d "$CACHE/kernel/dl.XXXXXX")
        chown _apt "$tmp" 2>/dev/null || true   # lets apt download unsandboxed-warning-free
        (cd "$tmp" && apt-get download -q "$kpkg=$kver" >&2)
        mv "$tmp"/*.deb "$deb"
        rm -rf "$tmp"
    fi

    # Cache key: the files of scripts/guest/ (but guests.py, which only manages the
    # domains and does not go into the image) plus the versions of what goes into it.
    key=$({
        for f in "$GUEST_SRC"/*; do
            [[ ${f##*/} == guests.py ]] && continue
            echo "== ${f##*/}"; cat "$f"
        done
        echo "kernel $kpkg $kver"
        dpkg-query -W -f='${Package} ${Version}\n' qemu-guest-agent busybox-static
    } | sha256sum | cut -c1-16)
    IMAGE_DIR=$CACHE/guest/$key
    if [[ ! -s $IMAGE_DIR/initrd.gz || ! -s $IMAGE_DIR/vmlinuz ]]; then
        log "building guest image $key"
        rm -rf "$IMAGE_DIR.tmp"
        bash "$GUEST_SRC/build-image.sh" "$deb" "$IMAGE_DIR.tmp"   # bash: works without the x bit
        echo "$kpkg $kver" > "$IMAGE_DIR.tmp/kernel-package"
        mv "$IMAGE_DIR.tmp" "$IMAGE_DIR"   # atomic: a half-built image is never used
    else
        log "guest image $key cached ($kpkg $kver)"
    fi
    KERNEL_DEB=$deb
}

# Old images and kernels: only once no domain points at them any more.
prune_cache() {
    local d
    for d in "$CACHE"/guest/* "$CACHE"/kernel/*; do
        [[ $d == "$IMAGE_DIR" || $d == "$KERNEL_DEB" || $d == */resolved ]] && continue
        [[ -e $d ]] || continue
        log "removing old cache entry $d"
        rm -rf "$d"
    done
}

# --- main -----------------------------------------------------------------------------
mode=up
case ${1:-} in
    ''|--up) ;;
    --down) mode=down ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--down]" >&2; exit 2 ;;
esac
((EUID == 0)) || die "must run as root (libvirt system daemon, apt, /var/cache)"

# One provisioning at a time (CI and the demo may both call us).
mkdir -p /run/lock
exec 9>/run/lock/qga-gateway-provision.lock
flock -w 600 9 || die "another provision-guests.sh holds /run/lock/qga-gateway-provision.lock"

ensure_packages
ensure_daemons
[[ -r $GUESTS_JSON ]] || die "missing $GUESTS_JSON"
if [[ $mode == down ]]; then
    guests down "$GUESTS_JSON"
    exit 0
fi
ensure_image
# Define/redefine, start/stop, then wait for the agents (see scripts/guest/guests.py).
guests up "$GUESTS_JSON" "$IMAGE_DIR" "$LOG_DIR" "$TIMEOUT"
prune_cache
