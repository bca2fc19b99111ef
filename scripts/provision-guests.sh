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
# libvirtd runs with our own config ($STATE/libvirtd.conf, Debian's plus the settings below; /etc is not
# touched) and --listen: besides the unix socket (group libvirt, 0770, no polkit) it listens on
# 127.0.0.1:16509 (qemu+tcp, no auth) and 127.0.0.1:16514 (qemu+tls, client certificate required),
# with certificates from scripts/libvirt-pki.sh under $STATE/pki (client files for ?pkipath= in
# pki/client). A libvirtd started otherwise, or before a change of that config or its certificates,
# is restarted once; running guests survive that (their qemu processes are not its children).
# Env: QGA_GUESTS_TIMEOUT (seconds to wait for the guests, default 120).
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPTS/.." && pwd)
GUEST_SRC=$SCRIPTS/guest
GUESTS_JSON=$REPO/test/e2e/guests.json
CACHE=/var/cache/qga-gateway
LOG_DIR=/var/log/qga-gateway
STATE=/var/lib/qga-gateway
PKI=$STATE/pki
LIBVIRTD_CONF=$STATE/libvirtd.conf
# What the running libvirtd was started with: "PID HASH" (HASH of its config and certificates).
LIBVIRTD_STAMP=/run/qga-gateway/libvirtd.started
TCP_URI=qemu+tcp://127.0.0.1/system
TLS_URI="qemu+tls://127.0.0.1/system?pkipath=$PKI/client"
URI=qemu:///system
PY=/usr/bin/python3            # Debian's, with python3-libvirt; not a pyenv shim from PATH
TIMEOUT=${QGA_GUESTS_TIMEOUT:-120}
PACKAGES=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-guest-agent qemu-utils
          busybox-static python3-libvirt cpio procps xz-utils e2fsprogs mmdebstrap)

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
QGA_PROVISION_T0_US=$(now_us); export QGA_PROVISION_T0_US   # guests.py logs relative to it too
log() { printf '[provision-guests +%3ss] %s\n' "$((($(now_us) - QGA_PROVISION_T0_US) / 1000000))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
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
pid_alive() { [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) == [^Z] ]]; }
# Prints the pid of the live process of that name.
live_pid() {
    local pid
    for pid in $(pgrep -x "$1"); do
        pid_alive "$pid" && { echo "$pid"; return 0; }
    done
    return 1
}
alive() { live_pid "$1" >/dev/null; }

# Debian's libvirtd.conf with our settings in place of any of its own for the same keys (libvirt
# takes the first occurrence of a key, so ours could not simply be appended).
write_libvirtd_conf() {
    local keys=(listen_tls listen_tcp listen_addr tcp_port tls_port auth_tcp auth_tls key_file cert_file
                ca_file tls_no_verify_certificate unix_sock_group unix_sock_rw_perms auth_unix_rw)
    local pattern tmp
    pattern="^[[:space:]]*($(IFS='|'; echo "${keys[*]}"))[[:space:]]*="
    tmp=$(mktemp "$LIBVIRTD_CONF.XXXXXX")
    {
        if [[ -r /etc/libvirt/libvirtd.conf ]]; then grep -Ev "$pattern" /etc/libvirt/libvirtd.conf || true; fi
        cat <<EOF

# ---- qga-gateway (scripts/provision-guests.sh): TCP and TLS on loopback for the multi-host tests,
# ---- and the unix socket for group libvirt without polkit (the gateway's container user).
listen_tls = 1
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "16509"
tls_port = "16514"
auth_tcp = "none"
auth_tls = "none"
tls_no_verify_certificate = 0
key_file = "$PKI/server/serverkey.pem"
cert_file = "$PKI/server/servercert.pem"
ca_file = "$PKI/ca/cacert.pem"
unix_sock_group = "libvirt"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
EOF
    } > "$tmp"
    if cmp -s "$tmp" "$LIBVIRTD_CONF"; then rm -f "$tmp"; else chmod 644 "$tmp"; mv "$tmp" "$LIBVIRTD_CONF"; fi
}

# Sorted names of every defined domain, as seen over one URI (always explicit, whatever
# LIBVIRT_DEFAULT_URI says); fails when the URI does not answer.
domain_names() {
    local out
    out=$(virsh -q -c "$1" list --all --name 2>/dev/null) || return 1
    sed '/^$/d' <<<"$out" | sort
}

# Without udev (containers, this CI) /dev/kvm stays root:root 0600. libvirtd probes QEMU's capabilities
# as root and finds KVM, then checks the cached answer against what its QEMU user (libvirt-qemu, group
# kvm) may open, finds KVM "not available now" and throws the cache away: every define and start probed
# QEMU again (~4 s here, ~50 s on a fresh machine) and /var/cache/libvirt/qemu/capabilities stayed
# empty. udev's own rule on a Debian host gives the device to group kvm, 0660: do what it would.
kvm_device_access() {
    [[ -c /dev/kvm ]] && getent group kvm >/dev/null || return 0
    if [[ $(stat -c '%G %a' /dev/kvm) != "kvm 660" ]]; then
        log "/dev/kvm: root:kvm 0660 as udev would set it (libvirtd's capabilities cache depends on it)"
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    fi
}

ensure_daemons() {
    mkdir -p "$LOG_DIR" "$(dirname "$LIBVIRTD_STAMP")"
    # 9>&-: the daemons must not inherit our lock (they outlive us and would hold it).
    if ! alive virtlogd; then   # writes the guests' console logs
        log "starting virtlogd"
        virtlogd -d 9>&-
    fi
    getent group libvirt >/dev/null || groupadd -r libvirt   # libvirt-daemon-system makes it; just in case
    kvm_device_access
    bash "$SCRIPTS/libvirt-pki.sh" "$PKI"
    write_libvirtd_conf
    local want pid i
    want=$(cat "$LIBVIRTD_CONF" "$PKI/ca/cacert.pem" "$PKI/server/servercert.pem" "$PKI/server/serverkey.pem" | sha256sum | cut -c1-16)
    if pid=$(live_pid libvirtd) && [[ "$(cat "$LIBVIRTD_STAMP" 2>/dev/null)" != "$pid $want" ]]; then
        log "restarting libvirtd $pid: not started with $LIBVIRTD_CONF and its certificates as they are now (running guests stay up)"
        kill -TERM "$pid"
        for ((i = 0; i < 150; i++)); do
            pid_alive "$pid" || break
            sleep 0.2
        done
        if pid_alive "$pid"; then
            log "libvirtd $pid ignored SIGTERM for 30 s: SIGKILL"
            kill -KILL "$pid"
            sleep 0.5
        fi
    fi
    if ! alive libvirtd; then
        log "starting libvirtd --listen -f $LIBVIRTD_CONF (log: $LOG_DIR/libvirtd.log)"
        LIBVIRT_LOG_OUTPUTS="3:file:$LOG_DIR/libvirtd.log" libvirtd -d --listen -f "$LIBVIRTD_CONF" 9>&-
        pid=
        for ((i = 0; i < 50; i++)); do pid=$(live_pid libvirtd) && break; sleep 0.1; done
        [[ -n $pid ]] || die "libvirtd did not start (see $LOG_DIR/libvirtd.log)"
        echo "$pid $want" > "$LIBVIRTD_STAMP"
    fi
    # The sockets appear before the daemon serves: real calls prove it is up on all three ways in,
    # and that they reach the same daemon (the same domains).
    local names tcp_names tls_names
    for ((i = 0; i < 150; i++)); do
        if [[ -S /run/libvirt/libvirt-sock ]] && names=$(domain_names "$URI") &&
            tcp_names=$(domain_names "$TCP_URI") && tls_names=$(domain_names "$TLS_URI") &&
            [[ $tcp_names == "$names" && $tls_names == "$names" ]]; then
            return 0
        fi
        sleep 0.2
    done
    virsh -q -c "$TCP_URI" list >&2 || true
    virsh -q -c "$TLS_URI" list >&2 || true
    die "libvirtd does not answer alike on /run/libvirt/libvirt-sock, $TCP_URI and $TLS_URI (see $LOG_DIR/libvirtd.log)"
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

    # Cache key: the files of scripts/guest/ (but its Python, guests.py and nova_metadata.py, which
    # only manages the domains and does not go into the image) plus the versions of what goes into it.
    key=$({
        for f in "$GUEST_SRC"/*; do
            [[ ${f##*/} == *.py ]] && continue
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

# The Debian 13 guest (scripts/debian13/): built with mmdebstrap from trixie, cached by a hash of
# that directory and the trixie versions of what goes in (from scripts/trixie-apt.sh's own lists,
# fetched once; the answer is remembered until those lists change).
ensure_debian13_image() {
    local key stamp versions resolved=$CACHE/debian13/resolved
    . "$SCRIPTS/trixie-apt.sh"
    mkdir -p -m 755 "$CACHE/debian13"
    trixie_lists
    stamp=$(stat -c '%n %Y %s' "$trixie_state"/lists/*Packages* | sha256sum | cut -c1-16)
    if [[ -s $resolved && $(head -1 "$resolved") == "$stamp" ]]; then
        versions=$(tail -n +2 "$resolved")
    else
        versions=$("${TRIXIE_APT_CACHE[@]}" show --no-all-versions linux-image-amd64 qemu-guest-agent systemd |
            sed -n 's/^Package: //p; s/^Version: //p; s/^Depends:.*\(linux-image-[0-9][^ ,]*\) (= .*/\1/p' | paste -sd' ')
        [[ $versions == *qemu-guest-agent* ]] || die "trixie's package lists do not know qemu-guest-agent"
        printf '%s\n%s\n' "$stamp" "$versions" > "$resolved"
    fi
    key=$({ for f in "$SCRIPTS"/debian13/*; do echo "== ${f##*/}"; cat "$f"; done; echo "$versions"; } |
        sha256sum | cut -c1-16)
    DEBIAN13_DIR=$CACHE/debian13/$key
    if [[ ! -s $DEBIAN13_DIR/root.img || ! -s $DEBIAN13_DIR/initrd.img || ! -s $DEBIAN13_DIR/vmlinuz ]]; then
        log "building the Debian 13 guest image $key ($versions)"
        rm -rf "$DEBIAN13_DIR.tmp"
        bash "$SCRIPTS/debian13/build-image.sh" "$DEBIAN13_DIR.tmp"
        mv "$DEBIAN13_DIR.tmp" "$DEBIAN13_DIR"
    else
        log "Debian 13 guest image $key cached ($(cat "$DEBIAN13_DIR/qemu-ga-version"))"
    fi
}

# Old images and kernels: only once no domain points at them any more.
prune_cache() {
    local d
    for d in "$CACHE"/guest/* "$CACHE"/kernel/* "$CACHE"/debian13/*; do
        [[ $d == "$IMAGE_DIR" || $d == "$KERNEL_DEB" || $d == "$DEBIAN13_DIR" || $d == */resolved ]] && continue
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
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;p}' "$0"; exit 0 ;;
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
    bash "$SCRIPTS/direct-guests.sh" down
    exit 0
fi
ensure_image
ensure_debian13_image
# Define/redefine, start/stop, then wait for the agents (see scripts/guest/guests.py).
guests up "$GUESTS_JSON" "$LOG_DIR" "$TIMEOUT" busybox="$IMAGE_DIR" debian13="$DEBIAN13_DIR"
prune_cache
# Guests booted by qemu-system-x86_64 itself, agents on socket chardevs (test/e2e/direct-guests.json).
bash "$SCRIPTS/direct-guests.sh" up "$IMAGE_DIR"
