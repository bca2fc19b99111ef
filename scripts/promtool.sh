#!/usr/bin/env bash
# Prints the path of promtool (Debian's prometheus package), installing the package once when it is missing:
#   bash scripts/promtool.sh           # e.g. /usr/bin/promtool
#   curl -s localhost:8080/metrics | "$(bash scripts/promtool.sh)" check metrics
#
# The tests check the gateway's /metrics with `promtool check metrics`. The package also carries the Prometheus
# server, which its maintainer scripts would start and enable (on :9090): only the tool is wanted here, so the
# install runs under a policy-rc.d that lets no service start, and the service is disabled after it. As root on
# Debian 12; a second run installs nothing.
set -euo pipefail

log() { echo "promtool: $*" >&2; }

if path=$(command -v promtool); then echo "$path"; exit 0; fi
[[ $(id -u) == 0 ]] || { log "promtool is missing and installing Debian's prometheus package needs root"; exit 1; }

# One install at a time (unit and end-to-end tests may ask together): a second caller waits, then finds promtool.
mkdir -p /var/lock
exec 9>/var/lock/qga-gateway-promtool.lock
flock 9
if path=$(command -v promtool); then echo "$path"; exit 0; fi

# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting anything; 101 means "not allowed".
# Any policy already there (one that allows starts, say) is put back afterwards, as it was.
policy=/usr/sbin/policy-rc.d
saved=
if [[ -e $policy || -L $policy ]]; then
    saved=$(mktemp "$policy.qga-saved-XXXXXX")
    mv -f "$policy" "$saved"
fi
restore_policy() {
    rm -f "$policy"
    if [[ -n $saved ]]; then mv -f "$saved" "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# Written by qga-gateway scripts/promtool.sh for the length of one apt-get install.\nexit 101\n' >"$policy"
chmod 0755 "$policy"

# Servers already running are not ours to stop; one that appears during the install is.
before=" $(pgrep -x prometheus | tr '\n' ' ' || true) "

log "installing Debian's prometheus package for promtool (its server is neither started nor enabled)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends prometheus >&2

# The maintainer scripts enabled the service for the next boot (sysv links, and systemd's through systemctl):
# disabled, it stays installed and can be enabled by whoever wants the server.
update-rc.d prometheus disable >/dev/null 2>&1 || log "update-rc.d prometheus disable failed"
for pid in $(pgrep -x prometheus); do
    [[ $before == *" $pid "* ]] && continue
    log "a prometheus server started during the install (pid $pid): stopping it"
    if [[ -d /run/systemd/system ]]; then systemctl stop prometheus.service || true; fi
    kill "$pid" 2>/dev/null || true
done

command -v promtool || { log "the prometheus package is installed but promtool is not on PATH"; exit 1; }
