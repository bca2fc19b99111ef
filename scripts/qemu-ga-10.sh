#!/usr/bin/env bash
# Debian 13's qemu-ga (10.0) on this Debian 12 host, for the tests against a real agent on the host
# (test/support/host-qga.ts): trixie's qemu-guest-agent and the libraries it needs, fetched from the Debian
# mirror with a separate apt state (scripts/trixie-apt.sh: the host stays bookworm), unpacked with dpkg -x, run through trixie's own
# dynamic loader. Cached in /var/cache/qga-gateway/qemu-ga-10/; a second run is instant and uses no network.
# Prints the path of a wrapper that runs it like the qemu-ga binary.
set -euo pipefail
cache=${QGA_CACHE:-/var/cache/qga-gateway}/qemu-ga-10
wrapper=$cache/qemu-ga
if [[ -x $wrapper ]] && "$wrapper" --version >/dev/null 2>&1; then
    echo "$wrapper"
    exit 0
fi
. "$(dirname "${BASH_SOURCE[0]}")/trixie-apt.sh"
trixie_lists
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs"
(cd "$work/debs" && "${TRIXIE_APT[@]}" download qemu-guest-agent libc6 libglib2.0-0t64 libffi8 libpcre2-8-0 libmount1 \
    libblkid1 libselinux1 libudev1 libnuma1 liburing2 zlib1g libcap2 >&2 2>/dev/null)
rm -rf "$cache.new"
mkdir -p "$cache.new/root"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$cache.new/root"; done
cat >"$cache.new/qemu-ga" <<'WRAP'
#!/bin/sh
root=$(dirname "$(readlink -f "$0")")/root
exec "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" "$root/usr/sbin/qemu-ga" "$@"
WRAP
chmod +x "$cache.new/qemu-ga"
"$cache.new/qemu-ga" --version >&2
rm -rf "$cache"
mv "$cache.new" "$cache"
echo "$wrapper"
