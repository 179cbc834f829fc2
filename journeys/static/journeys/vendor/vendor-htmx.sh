#!/bin/sh
# How htmx.min.js was vendored (no CDN at run time): from the npm registry's tarball.
#   sh journeys/static/journeys/vendor/vendor-htmx.sh [version]
# Re-run to update; commit htmx.min.js and LICENSE-htmx together.
set -eu
VERSION="${1:-2}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
npm pack --silent "htmx.org@$VERSION" >/dev/null 2>&1
tar xzf htmx.org-*.tgz
cp package/dist/htmx.min.js "$HERE/htmx.min.js"
cp package/LICENSE "$HERE/LICENSE-htmx"
echo "vendored htmx.org $(node -p "require('./package/package.json').version")"
