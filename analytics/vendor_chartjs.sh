#!/bin/sh
# Vendor Chart.js from the npm registry (no CDN at run time): fetch the pinned release with
# `npm pack`, check its integrity, keep the UMD dist file and the licence under static/.
# Re-run to upgrade: change VERSION, run, commit analytics/static/analytics/vendor/.
set -eu
VERSION="4.5.1"
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/static/analytics/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "chart.js@$VERSION" >/dev/null && tar -xzf chart.js-"$VERSION".tgz)
mkdir -p "$OUT"
cp "$TMP/package/dist/chart.umd.min.js" "$OUT/chart.umd.min.js" 2>/dev/null \
  || cp "$TMP/package/dist/chart.umd.js" "$OUT/chart.umd.min.js"
cp "$TMP/package/LICENSE.md" "$OUT/chart.js-LICENSE.md"
echo "chart.js $VERSION" > "$OUT/VERSION"
sha256sum "$OUT/chart.umd.min.js"
