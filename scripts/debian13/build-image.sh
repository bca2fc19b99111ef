#!/usr/bin/env bash
# Builds the Debian 13 (trixie) test guest: a real systemd system with Debian's qemu-guest-agent (10.0),
# its kernel and initrd, on an ext4 root for a virtio disk, networking by DHCP (systemd-networkd).
#
#   build-image.sh OUTDIR
#
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.img and OUTDIR/root.img (raw ext4, sparse; the domains boot a
# qcow2 overlay of it, so this file stays as built). Called by scripts/provision-guests.sh, which
# caches OUTDIR by a hash of this directory and the trixie versions of the packages that go in.
# mmdebstrap (Debian's package) builds the root as root (--mode=root) from the same Debian mirror the
# host uses; the host's own apt state is not touched.
set -euo pipefail

out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${QGA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/qga-debian13-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root

# What an operator's minimal Debian 13 VM has, plus what the agent's commands call: hwclock
# (util-linux-extra) for guest-set-time, chpasswd/useradd (passwd) for the password route,
# fstrim (util-linux), e2fsprogs for the root's fsck, iproute2 for the tests.
packages=systemd-sysv,udev,dbus,qemu-guest-agent,linux-image-amd64,initramfs-tools,kmod,iproute2,procps
packages+=,util-linux,util-linux-extra,e2fsprogs,passwd,login,coreutils

mmdebstrap --variant=minbase --mode=root --include="$packages" \
    --customize-hook="bash '$here/customize.sh' \"\$1\"" \
    trixie "$root" "$mirror" >&2

mkdir -p "$out"
# The kernel and initrd boot the domain directly (<kernel>, <initrd>): no boot loader in the image.
cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$out/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)" "$out/initrd.img"
chmod 644 "$out/vmlinuz" "$out/initrd.img"
"$root/usr/sbin/qemu-ga" --version > "$out/qemu-ga-version" 2>/dev/null ||
    chroot "$root" /usr/sbin/qemu-ga --version > "$out/qemu-ga-version"
# 1.5 GiB of which ~0.6 GiB used: room for the tests' files; discard lets fstrim give blocks back.
mkfs.ext4 -q -F -L debian13-root -d "$root" "$out/root.img" 1536M
chmod 644 "$out/root.img"
