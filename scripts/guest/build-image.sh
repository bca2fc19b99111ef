#!/usr/bin/env bash
# Builds the qga-gateway test guest image: Debian's kernel plus a tiny initramfs
# (busybox-static, the host's qemu-ga with its shared libraries, the virtio modules,
# the init scripts of this directory).
#
#   build-image.sh KERNEL_DEB OUTDIR
#
# Writes OUTDIR/vmlinuz and OUTDIR/initrd.gz. Called by scripts/provision-guests.sh,
# which caches OUTDIR by a hash of this directory and the package versions.
set -euo pipefail

kernel_deb=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d /tmp/qga-guest-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
kx=$work/kernel

# The kernel package is unpacked, never installed: the host's boot setup stays untouched.
dpkg -x "$kernel_deb" "$kx"
vmlinuzes=("$kx"/boot/vmlinuz-*)
vmlinuz=${vmlinuzes[0]}
kver=${vmlinuz##*/vmlinuz-}
moddir=$kx/lib/modules/$kver
[[ -d $moddir ]] || { echo "build-image: no modules for $kver in $kernel_deb" >&2; exit 1; }

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,lib/modules,lib64,dev,proc,sys,tmp,run,root,var/lib/qemu-ga,srv}
ln -s /run "$root/var/run"
# The kernel's built-in initramfs already has /dev/console; this is a fallback and may
# fail where mknod is not allowed (containers).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# busybox-static: every applet as a symlink, so /bin/sh, kill, sleep, pidof... are in PATH.
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    [[ -e $root/$applet || -L $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done

# qemu-ga from the host's qemu-guest-agent package, with what ldd says it needs
# (including the ELF interpreter, which ldd prints without "=>").
qga=$(command -v qemu-ga || echo /usr/sbin/qemu-ga)
cp "$qga" "$root/usr/sbin/qemu-ga"
ldd "$qga" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }' | sort -u |
while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# Kernel modules, in load order; skip built-ins, decompress if the kernel ships them so.
: > "$root/etc/qga-modules"
while read -r m; do
    [[ -z $m || $m == \#* ]] && continue
    f=$(find "$moddir/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) -print -quit)
    if [[ -z $f ]]; then
        if grep -q "/$m.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
            echo "build-image: $m is built into $kver, not needed as a module" >&2
            continue
        fi
        echo "build-image: module $m not found in $kernel_deb" >&2
        exit 1
    fi
    case $f in
        *.ko.xz)  xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
        *.ko.gz)  gzip -dc "$f" > "$root/lib/modules/$m.ko" ;;
        *)        cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    echo "$m" >> "$root/etc/qga-modules"
done < "$here/modules"

# The guest's own scripts.
install -m 755 "$here/init" "$root/init"
install -m 755 "$here/qga-run" "$root/sbin/qga-run"
rm -f "$root/sbin/shutdown"
install -m 755 "$here/shutdown" "$root/sbin/shutdown"
install -m 644 "$here/inittab" "$root/etc/inittab"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
echo "$kver" > "$root/etc/qga-kernel"

mkdir -p "$out"
cp "$vmlinuz" "$out/vmlinuz"
# newc cpio, gzip'd, reproducible order, owned by root.
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) | gzip -9n > "$out/initrd.gz"
chmod 644 "$out/vmlinuz" "$out/initrd.gz"
echo "build-image: kernel $kver, initramfs $(du -h "$out/initrd.gz" | cut -f1)" >&2
