#!/usr/bin/env bash
# Builds the gateway and runs the benchmarks in order (ping, concurrency, rss, files, upload, addresses, hosts, events, container,
# direct, agents, keystone; ping, files and upload again against debian13; boot; many-hosts, which restarts libvirtd), without
# npm. Needs the provisioned guests (bash scripts/provision-guests.sh) and Keystone (bash scripts/keystone.sh provision).
# Extra arguments go to every script
# (e.g. --log-level info). Exits non-zero if the build or any benchmark failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=node_modules/.bin
[[ -x $BIN/tsx && -x $BIN/tsc ]] || { echo "run-all: node_modules missing (npm ci first)" >&2; exit 2; }
URI=${LIBVIRT_URI:-qemu:///system}
for g in guest1 guest2; do
    state=$(virsh -q -c "$URI" domstate "$g" 2>/dev/null)
    [[ $state == running ]] || { echo "run-all: $g is '${state:-missing}', not running: bash scripts/provision-guests.sh" >&2; exit 2; }
    # A guest that has just booted needs ~12 s before its agent answers.
    for ((i = 0; i < 30; i++)); do
        virsh -q -c "$URI" qemu-agent-command --timeout 5 "$g" '{"execute":"guest-ping"}' >/dev/null 2>&1 && break
        sleep 2
    done
    ((i < 30)) || { echo "run-all: $g's guest agent does not answer guest-ping" >&2; exit 2; }
done

echo "== build (tsc -p tsconfig.build.json)"
"$BIN/tsc" -p tsconfig.build.json || { echo "run-all: build failed" >&2; exit 1; }

failed=()
for b in ping concurrency rss files upload addresses hosts events container direct agents keystone; do
    echo
    echo "== bench/$b.ts $*"
    # Each script bounds its own run time (BENCH_MAX_SECONDS, default 900) and stops its children.
    "$BIN/tsx" "bench/$b.ts" "$@" || failed+=("$b")
done
# The same round trips and transfers against the Debian 13 guest (qemu-ga 10.0, systemd), then boot to agent,
# which destroys and restarts guest-power and debian13: last.
for b in ping files upload; do
    echo
    echo "== bench/$b.ts --domain debian13 $*"
    "$BIN/tsx" "bench/$b.ts" --domain debian13 "$@" || failed+=("$b@debian13")
done
echo
echo "== bench/boot.ts $*"
"$BIN/tsx" bench/boot.ts "$@" || failed+=(boot)
# One gateway with 10 and 30 libvirt hosts (the local libvirtd under many names). It restarts libvirtd (the guests keep
# running), so it comes last.
echo
echo "== bench/many-hosts.ts $*"
"$BIN/tsx" bench/many-hosts.ts "$@" || failed+=(many-hosts)
echo
if ((${#failed[@]})); then
    echo "run-all: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-all: every benchmark ran"
