#!/usr/bin/env bash
# Prints the path of Debian's chromium, installing the package once when it is missing:
#   bash scripts/chromium.sh           # e.g. /usr/bin/chromium
#
# The browser tests (test/browser/, puppeteer-core) drive it headless. Installed with --no-install-recommends
# (no fonts beyond the dependencies, no desktop integration); as root on Debian 12. puppeteer-core starts it with
# --headless --no-sandbox, which it needs as root (the sandbox refuses to run as uid 0); a second run installs nothing.
set -euo pipefail

log() { echo "chromium: $*" >&2; }

# The binary must run headless, not merely exist: a half-installed package (missing libraries) is caught here.
works() { "$1" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; }
found() {
    local path
    for name in chromium chromium-browser; do
        if path=$(command -v "$name") && works "$path"; then echo "$path"; return 0; fi
    done
    return 1
}

if found; then exit 0; fi
[[ $(id -u) == 0 ]] || { log "chromium is missing and installing Debian's package needs root"; exit 1; }

# One install at a time (test files may ask together): a second caller waits, then finds the first one's browser.
mkdir -p /var/lock
exec 9>/var/lock/qga-gateway-chromium.lock
flock 9
if found; then exit 0; fi

log "installing Debian's chromium package (about 100 MB with its libraries)"
export DEBIAN_FRONTEND=noninteractive
# Another apt (provisioning, promtool.sh) may hold dpkg's lock for a while: wait for it rather than fail.
apt-get -o DPkg::Lock::Timeout=600 update -q >&2
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium >&2

found || { log "the chromium package is installed but does not start headless"; exit 1; }
