#!/usr/bin/env bash
# Runs every test: type check, unit tests (fake libvirtd), and end-to-end tests against a real libvirtd
# with real TCG guests running qemu-ga. As root on Debian 12; installs and provisions what it needs.
# Ends with one line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require-node.sh

echo "== npm ci"
npm ci --no-audit --no-fund
echo "== provisioning libvirt and the test guests"
bash scripts/provision-guests.sh
echo "== type check"
npm run --silent lint
echo "== build"
npm run --silent build

results=$(mktemp -d)/vitest.json
echo "== unit and end-to-end tests"
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$results"
status=$?
set -e
# vitest's closing lines are not among those CI reads: say the count plainly, and fail a run that did
# not reach the end-to-end tests.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const e2e = r.testResults.filter((f) => f.name.includes("/test/e2e/")).flatMap((f) => f.assertionResults);
  const e2ePassed = e2e.filter((t) => t.status === "passed").length;
  console.log(`end-to-end tests passed: ${e2ePassed} of ${e2e.length}`);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  if (e2e.length === 0 || e2ePassed === 0) { console.error("no end-to-end test ran"); process.exit(1); }
' "$results" || status=1
exit "$status"
