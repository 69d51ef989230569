#!/usr/bin/env bash
# Vendors axe-core (the accessibility checker the browser tests inject) from npm.
# Usage: ./update_axe.sh [VERSION]   (then commit axe.min.js and the licences)
# The tests read these files only; nothing here is served or collected as static.
set -euo pipefail
version=${1:-4.14.1}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "axe-core@$version" >/dev/null
tar -xzf "axe-core-$version.tgz"
cp package/axe.min.js "$here/axe.min.js"
cp package/LICENSE "$here/LICENSE-axe-core"
cp package/LICENSE-3RD-PARTY.txt "$here/LICENSE-axe-core-3RD-PARTY.txt"
head -c 30 "$here/axe.min.js"; echo
