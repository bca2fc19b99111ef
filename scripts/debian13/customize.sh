#!/usr/bin/env bash
# mmdebstrap customize hook for the Debian 13 test guest (scripts/debian13/build-image.sh): runs on the
# host with the finished root file system as $1.
set -euo pipefail
root=$1

echo debian13 > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian13\n' > "$root/etc/hosts"
# discard: deleted blocks go back to the qcow2 overlay at once; guest-fstrim still has work after a
# large delete made before the mount option applied (it is checked by the tests either way).
echo '/dev/vda / ext4 defaults,discard 0 1' > "$root/etc/fstab"
# As Debian's installer leaves them (mmdebstrap had made /etc/hostname executable).
chmod 644 "$root/etc/hostname" "$root/etc/hosts" "$root/etc/fstab"
# The first boot makes one (systemd's firstboot); an image with a fixed id would give every copy the same.
: > "$root/etc/machine-id"

mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/80-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Timers that would change the guest under the tests (trim, package lists, scrubs) and the wait for
# "online" that only delays boot under TCG.
for unit in fstrim.timer apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
            systemd-networkd-wait-online.service; do
    chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done

# A real user for the password and SSH key routes (no password: the tests set one through the agent).
chroot "$root" useradd --create-home --shell /bin/bash --comment 'qga-gateway test user' qgauser
# Root may not log in with a password either; the serial console is for reading boot messages.
chroot "$root" passwd --lock root >/dev/null
